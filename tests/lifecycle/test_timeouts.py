"""Time limits and keep-alive with the real CLI: 504 before headers, an SSE error event after,
and `: keep-alive` comments while the answer is silent (slow upstream, thinking)."""

from __future__ import annotations

import json
import os

import pytest

from proxy.settings import Settings
from proxy.standin.scenario import Scenario
from tests.lifecycle.support import (RawClient, chat_body, claude_children, split_response,
                                     sse_payloads, wait_until)
from tests.support.servers import running_proxy

pytestmark = pytest.mark.live


def _proxy(standin, live_runner_for, name: str, scenario: Scenario, **settings):
    standin.add_scenario(name, scenario)
    values = dict(timeout=60.0, idle_timeout=60.0, heartbeat_interval=15.0)
    values.update(settings)
    return running_proxy(Settings(**values), live_runner_for(name))


def _no_children_left() -> bool:
    return wait_until(lambda: not claude_children(os.getpid()), 30)


def test_idle_timeout_before_any_answer_is_a_504(standin, live_runner_for):
    with _proxy(standin, live_runner_for, "lc-to-hang", Scenario(hang=True),
                idle_timeout=1.5) as proxy:
        client = RawClient(proxy.url, chat_body())
        status, _, body = split_response(client.read_all(timeout=60))
        assert status == 504
        error = json.loads(body)["error"]
        assert error["code"] == "timeout" and "no output for 1.5 s" in error["message"]
        assert proxy.parts.runner.live_processes() == []
    assert _no_children_left()


def test_streaming_idle_timeout_before_headers_is_a_504(standin, live_runner_for):
    # Headers are held until the answer begins; the limit comes first, so the status is honest.
    with _proxy(standin, live_runner_for, "lc-to-hang-s", Scenario(hang=True),
                idle_timeout=1.5) as proxy:
        status, _, body = split_response(RawClient(proxy.url, chat_body(stream=True)).read_all())
        assert status == 504
        assert json.loads(body)["error"]["code"] == "timeout"
    assert _no_children_left()


def test_stall_mid_stream_gives_heartbeats_then_an_sse_error_event(standin, live_runner_for):
    scenario = Scenario(reply_text="one two three four five six seven", split=4,
                        hang_after_events=5)
    with _proxy(standin, live_runner_for, "lc-to-stall", scenario, idle_timeout=2.0,
                heartbeat_interval=0.3) as proxy:
        raw = RawClient(proxy.url, chat_body(stream=True)).read_all()
        status, headers, body = split_response(raw)
        assert status == 200 and headers["content-type"].startswith("text/event-stream")
        payloads = sse_payloads(body)
        assert payloads[-1] == "[DONE]"
        error = json.loads(payloads[-2])["error"]
        assert error["code"] == "timeout" and "no output for 2 s" in error["message"]
        assert body.count(b": keep-alive") >= 2  # ~2 s of silence at 0.3 s intervals
        assert proxy.parts.runner.live_processes() == []
    assert _no_children_left()


def test_total_timeout_mid_stream_and_non_streaming(standin, live_runner_for):
    # ~30 s of answer; the 6 s limit leaves a loaded machine time to start the CLI first.
    scenario = Scenario(reply_text="word " * 600, split=5, chunk_delay=0.05)
    with _proxy(standin, live_runner_for, "lc-to-total", scenario, timeout=6.0,
                heartbeat_interval=0.5) as proxy:
        status, _, body = split_response(RawClient(proxy.url, chat_body(stream=True)).read_all())
        payloads = sse_payloads(body)
        assert status == 200 and payloads[-1] == "[DONE]"
        assert any('"content"' in p for p in payloads[:-2])  # the answer had begun
        assert json.loads(payloads[-2])["error"]["code"] == "timeout"

        status, _, body = split_response(RawClient(proxy.url, chat_body()).read_all())
        assert status == 504
        assert "longer than the 6 s limit" in json.loads(body)["error"]["message"]
    assert _no_children_left()


def test_heartbeats_keep_a_slow_first_byte_alive(standin, live_runner_for):
    # The upstream says nothing for 3 s: the stream commits after heartbeat_interval and sends
    # comments until the answer comes, then the answer arrives complete.
    scenario = Scenario(reply_text="late but whole", first_byte_delay=3.0)
    with _proxy(standin, live_runner_for, "lc-to-slow", scenario, heartbeat_interval=0.5) as proxy:
        status, _, body = split_response(RawClient(proxy.url, chat_body(stream=True)).read_all())
        assert status == 200
        before_answer = body.split(b'"content":"late')[0]
        assert before_answer.count(b": keep-alive") >= 3
        text = "".join(json.loads(p)["choices"][0]["delta"].get("content") or ""
                       for p in sse_payloads(body) if p != "[DONE]" and '"choices":[{' in p)
        assert text == "late but whole"
    assert _no_children_left()


def test_heartbeats_while_the_model_thinks(standin, live_runner_for):
    scenario = Scenario(reply_text="17 * 3 = 51", thinking="Let me multiply. " * 12, split=4,
                        chunk_delay=0.04)  # ~2 s of thinking deltas, which clients never see
    with _proxy(standin, live_runner_for, "lc-to-think", scenario, heartbeat_interval=0.3) as proxy:
        status, _, body = split_response(RawClient(proxy.url, chat_body(stream=True)).read_all())
        assert status == 200
        before_answer = body.split(b'"content":"17')[0]
        assert before_answer.count(b": keep-alive") >= 2
        assert sse_payloads(body)[-1] == "[DONE]"
    assert _no_children_left()
