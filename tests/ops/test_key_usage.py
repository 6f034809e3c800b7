"""Per-key usage and limits with the real CLI, under concurrency: requests and tokens per key
name in /metrics, the log names keys and never shows them, requests-per-minute and
concurrent-request limits answer OpenAI's 429 with Retry-After, and a stream holds its key's
slot until it ends."""

from __future__ import annotations

import logging
import threading
import time
from concurrent.futures import ThreadPoolExecutor

import httpx
import pytest
from prometheus_client.parser import text_string_to_metric_families

from proxy.standin.scenario import Scenario
from tests.support.http import call

pytestmark = pytest.mark.live

ALICE, BOB, BARE = "alice-secret-0123456789", "bob-secret-abcdefghij", "bare-secret-9876543210"
KEYS = [f"alice={ALICE}", f"bob={BOB}", BARE]
ROUTE = "/v1/chat/completions"


def _post(proxy, key: str, *, stream: bool = False, timeout: float = 60) -> httpx.Response:
    body = {"model": "sonnet", "messages": [{"role": "user", "content": "hi"}], "stream": stream}
    if stream:
        body["stream_options"] = {"include_usage": True}
    return httpx.post(proxy.base_url + "/chat/completions", json=body, timeout=timeout,
                      headers={"Authorization": f"Bearer {key}"})


def _all_at_once(calls):
    """Runs the calls on threads released together; returns their results in order."""
    barrier = threading.Barrier(len(calls))

    def run(call_):
        barrier.wait()
        return call_()

    with ThreadPoolExecutor(len(calls)) as pool:
        return list(pool.map(run, calls))


def _samples(proxy) -> dict[tuple[str, tuple], float]:
    reply = call(proxy.url, "GET", "/metrics", headers={"Authorization": f"Bearer {BOB}"})
    assert reply.status == 200
    out = {}
    for family in text_string_to_metric_families(reply.body.decode()):
        for sample in family.samples:
            out[(sample.name, tuple(sorted(sample.labels.items())))] = sample.value
    return out


def _value(samples, name, **labels) -> float:
    return samples.get((name, tuple(sorted(labels.items()))), 0.0)


def test_requests_and_tokens_are_counted_per_key(live_proxy_for, caplog):
    caplog.set_level(logging.INFO)
    proxy = live_proxy_for(Scenario(input_tokens=100, cache_read_input_tokens=7,
                                cache_creation_input_tokens=3, output_tokens=12),
                       api_keys=list(KEYS), max_concurrent=4, queue_size=8)
    replies = _all_at_once([
        lambda: _post(proxy, ALICE), lambda: _post(proxy, ALICE),
        lambda: _post(proxy, ALICE, stream=True), lambda: _post(proxy, BOB),
        lambda: _post(proxy, BOB, stream=True), lambda: _post(proxy, BARE),
        lambda: _post(proxy, "not-a-key")])
    assert [r.status_code for r in replies] == [200] * 6 + [401]

    s = _samples(proxy)
    requests = "claude_max_api_key_requests_total"
    tokens = "claude_max_api_key_tokens_total"
    for name, count in (("alice", 3), ("bob", 2), ("key-1", 1)):
        assert _value(s, requests, key=name, route=ROUTE, status="200") == count, name
        assert _value(s, tokens, key=name, kind="prompt") == 110 * count, name
        assert _value(s, tokens, key=name, kind="cached") == 7 * count, name
        assert _value(s, tokens, key=name, kind="completion") == 12 * count, name
        assert _value(s, "claude_max_api_key_requests_in_progress", key=name) == 0
    assert not any(dict(labels).get("key") not in ("alice", "bob", "key-1")
                   for (name, labels) in s if name.startswith("claude_max_api_key_"))
    # The log says which key, never the key.
    lines = [r.getMessage() for r in caplog.records if r.name == "claude_max_api.access"]
    assert sum("key=alice" in line and f"path={ROUTE}" in line for line in lines) == 3
    assert sum("key=key-1" in line for line in lines) == 1
    for secret in (ALICE, BOB, BARE, "not-a-key"):
        assert secret not in caplog.text


def test_concurrent_requests_per_key(live_proxy_for):
    # Slow enough that the requests overlap: 1.5 s before the first byte, then ~2 s of chunks.
    proxy = live_proxy_for(Scenario(first_byte_delay=1.5, chunk_delay=0.3, split=4,
                                reply_text="one two three four five six seven"),
                       api_keys=list(KEYS), key_limits=["alice:concurrent=1"],
                       max_concurrent=4, queue_size=8)
    replies = _all_at_once([lambda: _post(proxy, ALICE) for _ in range(4)]
                           + [lambda: _post(proxy, BOB)])
    alice, bob = replies[:4], replies[4]
    assert sorted(r.status_code for r in alice) == [200, 429, 429, 429]
    assert bob.status_code == 200
    for refused in (r for r in alice if r.status_code == 429):
        assert refused.headers["retry-after"] == "1"
        error = refused.json()["error"]
        assert (error["type"], error["code"], error["param"]) == (
            "requests", "rate_limit_exceeded", None)
        assert "concurrent requests" in error["message"] and "'alice'" in error["message"]

    # A stream holds its key's slot until it ends.
    with httpx.Client(timeout=60) as client:
        with client.stream("POST", proxy.base_url + "/chat/completions",
                           headers={"Authorization": f"Bearer {ALICE}"},
                           json={"model": "sonnet", "stream": True,
                                 "messages": [{"role": "user", "content": "hi"}]}) as stream:
            assert stream.status_code == 200
            lines = stream.iter_lines()
            assert next(lines).startswith("data: ")      # the role chunk: the stream is running
            assert _post(proxy, ALICE).status_code == 429
            assert _post(proxy, BOB).status_code == 200  # another key is not held up
            rest = list(lines)
        assert "data: [DONE]" in rest
    deadline = time.monotonic() + 5                      # the log line frees the slot
    while _value(_samples(proxy), "claude_max_api_key_requests_in_progress", key="alice") \
            and time.monotonic() < deadline:
        time.sleep(0.05)
    assert _post(proxy, ALICE).status_code == 200

    s = _samples(proxy)
    assert _value(s, "claude_max_api_key_limit_rejections_total", key="alice",
                  limit="concurrent") == 4
    assert _value(s, "claude_max_api_key_requests_total", key="alice", route=ROUTE,
                  status="429") == 4
    assert _value(s, "claude_max_api_key_requests_in_progress", key="alice") == 0


def test_requests_per_minute_per_key(live_proxy_for):
    proxy = live_proxy_for(Scenario(), api_keys=list(KEYS), key_rpm=2, max_concurrent=4,
                       queue_size=8)
    replies = _all_at_once([lambda: _post(proxy, ALICE) for _ in range(4)])
    served = [r for r in replies if r.status_code == 200]
    refused = [r for r in replies if r.status_code == 429]
    assert (len(served), len(refused)) == (2, 2)
    assert sorted(r.headers["x-ratelimit-remaining-requests"] for r in served) == ["0", "1"]
    for reply in served + refused:
        assert reply.headers["x-ratelimit-limit-requests"] == "2"
        assert reply.headers["x-ratelimit-reset-requests"].endswith("s")
    for reply in refused:
        assert 55 <= int(reply.headers["retry-after"]) <= 60
        assert reply.headers["x-ratelimit-remaining-requests"] == "0"
        error = reply.json()["error"]
        assert error["code"] == "rate_limit_exceeded"
        assert "requests per min (RPM): Limit 2, Used 2" in error["message"]
    # Other keys have their own minute; other endpoints are not limited.
    bob = _post(proxy, BOB)
    assert bob.status_code == 200 and bob.headers["x-ratelimit-remaining-requests"] == "1"
    assert call(proxy.url, "GET", "/v1/models",
                headers={"Authorization": f"Bearer {ALICE}"}).status == 200
    assert _value(_samples(proxy), "claude_max_api_key_limit_rejections_total", key="alice",
                  limit="requests_per_minute") == 2
