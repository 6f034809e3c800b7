"""GET /metrics after real requests through the real CLI, parsed with prometheus_client's own
parser: requests by route and status, latency, first-token latency, CLI failures by kind,
tokens, and the CLI slot gauges."""

from __future__ import annotations

import httpx
import pytest
from prometheus_client.parser import text_string_to_metric_families

from proxy.metrics import Metrics
from proxy.standin.scenario import Scenario
from tests.support.http import call

pytestmark = pytest.mark.live


def scrape(proxy, **headers) -> dict[tuple[str, tuple], float]:
    reply = call(proxy.url, "GET", "/metrics", headers=headers)
    assert reply.status == 200
    assert reply.header("Content-Type") == "text/plain; version=0.0.4; charset=utf-8"
    samples = {}
    for family in text_string_to_metric_families(reply.body.decode()):
        for sample in family.samples:
            samples[(sample.name, tuple(sorted(sample.labels.items())))] = sample.value
    return samples


def value(samples, name, **labels) -> float:
    return samples.get((name, tuple(sorted(labels.items()))), 0.0)


def _chat(proxy, stream=False):
    return httpx.post(proxy.base_url + "/chat/completions", timeout=60, json={
        "model": "sonnet", "stream": stream, "messages": [{"role": "user", "content": "hi"}]})


def test_metrics_after_a_few_requests(live_proxy_for):
    # The first upstream call fails (HTTP 500), the later ones succeed.
    proxy = live_proxy_for(Scenario(fail_status=500, fail_count=1, input_tokens=100,
                                output_tokens=12), max_concurrent=2, queue_size=3)
    assert _chat(proxy).status_code == 502                      # the failed run
    assert _chat(proxy).status_code == 200
    assert _chat(proxy, stream=True).status_code == 200
    assert call(proxy.url, "GET", "/v1/models").status == 200
    assert call(proxy.url, "GET", "/v1/models/no-such-model").status == 404
    assert call(proxy.url, "GET", "/nowhere").status == 404

    s = scrape(proxy)
    req = "claude_max_api_http_requests_total"
    assert value(s, req, route="/v1/chat/completions", method="POST", status="200") == 2
    assert value(s, req, route="/v1/chat/completions", method="POST", status="502") == 1
    assert value(s, req, route="/v1/models", method="GET", status="200") == 1
    assert value(s, req, route="/v1/models/{model}", method="GET", status="404") == 1
    assert value(s, req, route="other", method="GET", status="404") == 1   # no raw paths

    latency = "claude_max_api_http_request_duration_seconds"
    assert value(s, latency + "_count", route="/v1/chat/completions") == 3
    assert value(s, latency + "_sum", route="/v1/chat/completions") > 0
    assert value(s, latency + "_bucket", route="/v1/chat/completions", le="+Inf") == 3

    first = "claude_max_api_first_token_seconds"
    assert value(s, first + "_count", model="sonnet") == 2   # the two answers that had content
    assert 0 < value(s, first + "_sum", model="sonnet") < value(
        s, latency + "_sum", route="/v1/chat/completions")

    assert value(s, "claude_max_api_cli_failures_total", code="upstream_error") == 1
    assert value(s, "claude_max_api_tokens_total", model="sonnet", kind="prompt") == 200
    assert value(s, "claude_max_api_tokens_total", model="sonnet", kind="completion") == 24

    assert value(s, "claude_max_api_cli_processes", state="active") == 0
    assert value(s, "claude_max_api_cli_processes", state="queued") == 0
    assert value(s, "claude_max_api_cli_limit", state="active") == 2
    assert value(s, "claude_max_api_cli_limit", state="queued") == 3
    assert value(s, "claude_max_api_capacity_rejections_total") == 0


def test_gauges_follow_the_limiter_and_rejections_count(live_proxy_for):
    proxy = live_proxy_for(max_concurrent=1, queue_size=0)
    release = proxy.parts.limiter.acquire()
    try:
        s = scrape(proxy)
        assert value(s, "claude_max_api_cli_processes", state="active") == 1
        assert _chat(proxy).status_code == 429                 # no slot, no queue
        s = scrape(proxy)
        assert value(s, "claude_max_api_capacity_rejections_total") == 1
        assert value(s, "claude_max_api_http_requests_total", route="/v1/chat/completions",
                     method="POST", status="429") == 1
        assert value(s, "claude_max_api_cli_failures_total", code="rate_limit_exceeded") == 0
    finally:
        release()


def test_metrics_need_the_key_and_count_refusals(live_proxy_for):
    proxy = live_proxy_for(api_keys=["m-key"])
    assert call(proxy.url, "GET", "/metrics").status == 401
    assert call(proxy.url, "GET", "/v1/models", headers={"Origin": "https://evil.example"}).status == 403
    s = scrape(proxy, **{"Authorization": "Bearer m-key"})
    req = "claude_max_api_http_requests_total"
    assert value(s, req, route="/metrics", method="GET", status="401") == 1
    assert value(s, req, route="/v1/models", method="GET", status="403") == 1


def test_each_app_has_its_own_registry():
    one, two = Metrics(), Metrics()
    one.observe("/health", {"method": "GET", "status": 200, "duration_ms": 1.0})
    assert b'route="/health"' in one.exposition()
    assert b'route="/health"' not in two.exposition()
