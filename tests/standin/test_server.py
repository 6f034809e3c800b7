"""StandInUpstream as a server: selection, the request log, concurrency, aborts and shutdown."""

from __future__ import annotations

import http.client
import json
import logging
import signal
import socket
import subprocess
import sys
import threading
import time
from concurrent.futures import ThreadPoolExecutor

import pytest

from proxy.standin import Scenario, StandInUpstream

from .sseclient import messages_body, post


def text_of(r) -> str:
    return "".join(r.deltas("text_delta"))


# --- selection -----------------------------------------------------------------------------------

def test_path_prefix_selects_the_scenario(upstream: StandInUpstream) -> None:
    upstream.add_scenario("one", Scenario(reply_text="one"))
    upstream.add_scenario("two", Scenario(reply_text="two"))
    assert upstream.base_url_for("one") == upstream.base_url + "/scenario/one"
    assert text_of(post(upstream.base_url_for("one"), messages_body())) == "one"
    assert text_of(post(upstream.base_url_for("two") + "/", messages_body())) == "two"
    assert text_of(post(upstream.base_url, messages_body())) == "Hello from the stand-in."
    assert [r.scenario for r in upstream.requests] == ["one", "two", "default"]


def test_unknown_scenario_and_unknown_paths_are_404(upstream: StandInUpstream) -> None:
    r = post(upstream.base_url + "/scenario/nope", messages_body())
    assert r.status == 404 and r.json["error"]["type"] == "not_found_error" and "nope" in r.json["error"]["message"]
    r = post(upstream.base_url, messages_body(), path="/v1/complete")
    assert r.status == 404 and r.json["type"] == "error"
    with pytest.raises(KeyError):
        upstream.base_url_for("nope")
    with pytest.raises(ValueError):
        upstream.add_scenario("has/slash", Scenario())


def test_bad_json_is_400(upstream: StandInUpstream) -> None:
    r = post(upstream.base_url, b"{not json")
    assert r.status == 400 and r.json["error"]["type"] == "invalid_request_error"


@pytest.mark.parametrize("content, message", [
    ("", "messages: text content blocks must be non-empty"),
    ([{"type": "text", "text": "ok"}, {"type": "text", "text": " \n"}],
     "messages: text content blocks must contain non-whitespace text"),
    ([{"type": "text", "text": "\u3000"}],
     "messages: text content blocks must contain non-whitespace text"),
])
def test_blank_text_blocks_are_refused_as_the_api_refuses_them(upstream, content, message) -> None:
    body = {"model": "claude-sonnet-5-5", "max_tokens": 5, "stream": True,
            "messages": [{"role": "user", "content": content}]}
    r = post(upstream.base_url, json.dumps(body).encode())
    assert (r.status, r.json["error"]["type"], r.json["error"]["message"]) == (
        400, "invalid_request_error", message)


def test_prompt_rules_select_at_the_root_url(upstream: StandInUpstream) -> None:
    upstream.add_scenario("busy", Scenario(fail_status=529, when_prompt_contains="[overload]"))
    upstream.add_scenario("think", Scenario(thinking="t", reply_text="thought", when_prompt_contains="[think]"))
    assert post(upstream.base_url, messages_body("please [overload] now")).status == 529
    assert text_of(post(upstream.base_url, messages_body("a [think] b"))) == "thought"
    assert text_of(post(upstream.base_url, messages_body("nothing special"))) == "Hello from the stand-in."
    # A tool_result follow-up has no new user text: the earlier user turn still selects.
    history = [{"role": "user", "content": "[think]"}, {"role": "assistant", "content": "x"},
               {"role": "user", "content": [{"type": "tool_result", "tool_use_id": "t", "content": "r"}]}]
    assert text_of(post(upstream.base_url, messages_body(messages=history))) == "thought"
    # The path prefix wins over rules.
    upstream.add_scenario("plain", Scenario(reply_text="plain"))
    assert text_of(post(upstream.base_url_for("plain"), messages_body("[overload]"))) == "plain"


def test_replacing_the_default_scenario(upstream: StandInUpstream) -> None:
    upstream.add_scenario("default", Scenario(reply_text="new default"))
    assert text_of(post(upstream.base_url, messages_body())) == "new default"


def test_counters_are_per_scenario_and_reset(upstream: StandInUpstream) -> None:
    upstream.add_scenario("flaky", Scenario(fail_status=500, fail_count=1))
    upstream.add_scenario("other", Scenario())
    assert post(upstream.base_url_for("flaky"), messages_body()).status == 500
    assert post(upstream.base_url_for("other"), messages_body()).status == 200  # own counter
    assert post(upstream.base_url_for("flaky"), messages_body()).status == 200
    assert [(r.scenario, r.call_index) for r in upstream.requests] == [("flaky", 0), ("other", 0), ("flaky", 1)]
    upstream.reset()
    assert upstream.requests == []
    assert post(upstream.base_url_for("flaky"), messages_body()).status == 500


# --- the request log -------------------------------------------------------------------------------

def test_requests_are_logged_with_credentials_redacted(upstream: StandInUpstream) -> None:
    body = messages_body("keep me intact: ünïcode --flag")
    body["tools"] = []
    post(upstream.base_url, body, headers={"authorization": "Bearer secret", "x-api-key": "sk-secret",
                                           "anthropic-beta": "b1"})
    (req,) = upstream.wait_for_requests(1)
    assert req.method == "POST" and req.path == "/v1/messages?beta=true"
    assert req.headers["x-api-key"] == "<redacted>" and req.headers["authorization"] == "<redacted>"
    assert req.headers["anthropic-beta"] == "b1"
    assert req.body == body
    assert (req.scenario, req.call_index, req.status, req.client_aborted) == ("default", 0, 200, False)
    assert req.events_sent == len(post(upstream.base_url, messages_body()).events)
    assert "secret" not in repr(upstream.requests)


def test_requests_snapshot_is_a_copy(upstream: StandInUpstream) -> None:
    post(upstream.base_url, messages_body())
    upstream.requests[0].headers["x"] = "changed"
    upstream.requests.clear()
    assert "x" not in upstream.requests[0].headers


def test_wait_for_requests_times_out(upstream: StandInUpstream) -> None:
    with pytest.raises(TimeoutError):
        upstream.wait_for_requests(1, timeout=0.1)


# --- concurrency -------------------------------------------------------------------------------

def test_many_concurrent_streams(upstream: StandInUpstream) -> None:
    for i in range(4):
        upstream.add_scenario(f"s{i}", Scenario(reply_text=f"reply {i} " * 3, split=4, chunk_delay=0.02))
    jobs = [(i % 4, upstream.base_url_for(f"s{i % 4}")) for i in range(24)]
    started = time.monotonic()
    with ThreadPoolExecutor(24) as pool:
        results = list(pool.map(lambda job: (job[0], post(job[1], messages_body(), timeout=30)), jobs))
    elapsed = time.monotonic() - started
    for i, r in results:
        assert r.status == 200 and not r.truncated and text_of(r) == f"reply {i} " * 3
    serial = sum(r.times[-1] for _, r in results)
    assert elapsed < serial / 4  # they really streamed side by side
    assert sorted(r.call_index for r in upstream.requests_for("s0")) == list(range(6))


# --- hangs, aborts, shutdown -----------------------------------------------------------------------

def test_hang_never_answers_and_records_the_client_abort(upstream: StandInUpstream) -> None:
    upstream.add_scenario("hang", Scenario(hang=True))
    with pytest.raises(socket.timeout):
        post(upstream.base_url_for("hang"), messages_body(), timeout=0.5)
    (req,) = upstream.wait_for_requests(1)
    assert req.status is None
    _eventually(lambda: upstream.requests[0].client_aborted)


def test_hang_after_events_stalls_mid_stream(upstream: StandInUpstream) -> None:
    upstream.add_scenario("stall", Scenario(reply_text="abcdefgh", split=2, hang_after_events=4))
    conn = http.client.HTTPConnection("127.0.0.1", upstream.port, timeout=0.5)
    conn.request("POST", "/scenario/stall/v1/messages", json.dumps(messages_body()))
    resp = conn.getresponse()
    lines = []
    with pytest.raises(socket.timeout):
        while True:
            lines.append(resp.readline())
    conn.close()
    assert [line for line in lines if line.startswith(b"event:")] == [
        b"event: message_start\n", b"event: content_block_start\n", b"event: ping\n", b"event: content_block_delta\n"]
    _eventually(lambda: upstream.requests[0].client_aborted)


def test_client_abort_mid_stream_is_recorded_without_tracebacks(upstream: StandInUpstream, capfd, caplog) -> None:
    caplog.set_level(logging.DEBUG, logger="proxy.standin")
    upstream.add_scenario("slow", Scenario(reply_text="x" * 40, split=1, chunk_delay=0.02))
    for _ in range(3):
        conn = http.client.HTTPConnection("127.0.0.1", upstream.port, timeout=5)
        conn.request("POST", "/scenario/slow/v1/messages", json.dumps(messages_body()))
        resp = conn.getresponse()
        resp.readline()
        conn.sock.shutdown(socket.SHUT_RDWR)  # hang up after the first line
        conn.close()
    _eventually(lambda: [r.client_aborted for r in upstream.requests] == [True] * 3)
    assert all(0 < r.events_sent < 44 for r in upstream.requests)
    assert "Traceback" not in capfd.readouterr().err
    assert not [r for r in caplog.records if r.levelno >= logging.WARNING]


def test_close_is_prompt_and_leaves_no_threads() -> None:
    before = set(threading.enumerate())
    up = StandInUpstream(Scenario(hang=True))
    up.add_scenario("slow", Scenario(first_byte_delay=30))
    up.add_scenario("stall", Scenario(hang_after_events=2))
    idle = socket.create_connection(("127.0.0.1", up.port))  # an idle keep-alive connection
    waiting = [threading.Thread(target=_swallow, args=(post, url, messages_body()), kwargs={"timeout": 30})
               for url in (up.base_url, up.base_url_for("slow"), up.base_url_for("stall"))]
    for t in waiting:
        t.start()
    up.wait_for_requests(3)
    started = time.monotonic()
    up.close()
    assert time.monotonic() - started < 2
    for t in waiting:
        t.join(5)
        assert not t.is_alive()
    idle.close()
    assert set(threading.enumerate()) <= before
    assert not any(r.client_aborted for r in up.requests)  # the server left, not the clients
    with pytest.raises(ConnectionRefusedError):
        socket.create_connection(("127.0.0.1", up.port), timeout=1)
    up.close()  # idempotent


def test_keep_alive_connection_serves_several_requests(upstream: StandInUpstream) -> None:
    conn = http.client.HTTPConnection("127.0.0.1", upstream.port, timeout=5)
    for _ in range(3):
        conn.request("POST", "/v1/messages", json.dumps(messages_body()))
        resp = conn.getresponse()
        assert resp.status == 200 and resp.read().endswith(b"event: message_stop\ndata: {\"type\":\"message_stop\"}\n\n")
    conn.close()
    assert len(upstream.requests) == 3


def test_a_fixed_port(unused_port: int) -> None:
    with StandInUpstream(port=unused_port) as up:
        assert up.base_url == f"http://127.0.0.1:{unused_port}"
        assert post(up.base_url, messages_body()).status == 200


# --- python -m proxy.standin -------------------------------------------------------------------

@pytest.mark.parametrize("stop_signal", [signal.SIGINT, signal.SIGTERM])
def test_module_entry_point_serves_a_catalogue(tmp_path, stop_signal: int) -> None:
    catalogue = tmp_path / "scenarios.json"
    catalogue.write_text(json.dumps({"default": {"reply_text": "from file"}, "busy": {"fail_status": 529}}))
    proc = subprocess.Popen([sys.executable, "-m", "proxy.standin", "--port", "0", "--scenario-file", str(catalogue)],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        base_url = proc.stdout.readline().strip()
        busy_line = proc.stdout.readline().strip()
        assert base_url.startswith("http://127.0.0.1:")
        assert busy_line == f"busy: {base_url}/scenario/busy"
        assert text_of(post(base_url, messages_body())) == "from file"
        assert post(base_url + "/scenario/busy", messages_body()).status == 529
        proc.send_signal(stop_signal)
        assert proc.wait(10) == 0
        assert "Traceback" not in proc.stderr.read()
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
        proc.stdout.close()
        proc.stderr.close()


# --- helpers -------------------------------------------------------------------------------------

@pytest.fixture
def unused_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _swallow(fn, *args, **kwargs) -> None:
    try:
        fn(*args, **kwargs)
    except (OSError, http.client.HTTPException):
        pass


def _eventually(check, timeout: float = 3.0) -> None:
    deadline = time.monotonic() + timeout
    while not check():
        if time.monotonic() > deadline:
            raise AssertionError("condition not met in time")
        time.sleep(0.02)


def test_a_stand_in_bug_is_a_500_and_a_log_record(upstream: StandInUpstream, monkeypatch, caplog) -> None:
    from proxy.standin import responder

    def broken(*args, **kwargs):
        raise RuntimeError("boom")

    monkeypatch.setattr(responder, "answer", broken)
    r = post(upstream.base_url, messages_body())
    assert r.status == 500 and r.json["error"]["type"] == "api_error"
    assert any("failed to answer" in rec.getMessage() and rec.exc_info for rec in caplog.records)
    monkeypatch.undo()
    assert post(upstream.base_url, messages_body()).status == 200  # still serving


# --- answer headers ------------------------------------------------------------------------------

def test_answer_headers_reach_streamed_and_json_answers(upstream: StandInUpstream) -> None:
    headers = {"anthropic-ratelimit-unified-status": "allowed_warning",
               "anthropic-ratelimit-unified-5h-utilization": "0.82"}
    upstream.add_scenario("plan", Scenario(answer_headers=headers))
    streamed = post(upstream.base_url_for("plan"), messages_body("hi"))
    plain = post(upstream.base_url_for("plan"), messages_body("hi", stream=False))
    for answer in (streamed, plain):
        assert answer.status == 200
        assert {k: answer.headers[k] for k in headers} == headers
        assert answer.headers["request-id"].startswith("req_standin_")
    # A failure carries fail_headers only: answer_headers describe a successful answer.
    upstream.add_scenario("refused", Scenario(fail_status=429, answer_headers=headers))
    refused = post(upstream.base_url_for("refused"), messages_body("hi"))
    assert refused.status == 429 and "anthropic-ratelimit-unified-status" not in refused.headers
