"""Plan awareness end to end: the official SDK -> waitress -> the proxy -> the real CLI under a
subscription-style login (a dummy OAuth token) -> the stand-in sending Anthropic's unified
rate-limit headers. Each status (allowed, warning, overage, rejected) is checked in the
response headers, /metrics, /health/ready and the log.
"""

from __future__ import annotations

import logging
import time
from pathlib import Path

import openai
import pytest
from prometheus_client.parser import text_string_to_metric_families

from proxy.contract.validation import validate_response
from proxy.runners.live import LiveRunner, WorkRoot
from proxy.settings import Settings
from proxy.standin import Scenario, StandInUpstream
from tests.support.http import call
from tests.support.servers import cli_environ, running_proxy

pytestmark = pytest.mark.live

U = "anthropic-ratelimit-unified-"
# A subscription login as the CLI sees one (an empty ANTHROPIC_API_KEY counts as none).
OAUTH = {"CLAUDE_CODE_OAUTH_TOKEN": "standin-oauth-token", "ANTHROPIC_API_KEY": ""}


def _scenarios(now: int) -> tuple[dict[str, Scenario], int, int]:
    r5, r7 = now + 3 * 3600, now + 5 * 86400
    windows = {U + "5h-status": "allowed", U + "5h-utilization": "0.31", U + "5h-reset": str(r5),
               U + "7d-status": "allowed", U + "7d-utilization": "0.12", U + "7d-reset": str(r7)}
    scenarios = {
        "allowed": Scenario(when_prompt_contains="[allowed]", answer_headers={
            U + "status": "allowed", U + "reset": str(r5),
            U + "representative-claim": "five_hour", **windows}),
        "warning": Scenario(when_prompt_contains="[warning]", chunk_delay=0.05, answer_headers={
            U + "status": "allowed_warning", U + "reset": str(r5),
            U + "representative-claim": "five_hour", **windows,
            U + "5h-status": "allowed_warning", U + "5h-utilization": "0.82",
            U + "5h-surpassed-threshold": "0.75"}),
        "overage": Scenario(when_prompt_contains="[overage]", answer_headers={
            U + "status": "rejected", U + "reset": str(r5),
            U + "representative-claim": "five_hour", U + "overage-status": "allowed",
            U + "overage-reset": str(r7), U + "overage-in-use": "true", **windows,
            U + "5h-status": "rejected", U + "5h-utilization": "1.0"}),
        "rejected": Scenario(when_prompt_contains="[rejected]", fail_status=429, fail_headers={
            U + "status": "rejected", U + "reset": str(r7),
            U + "representative-claim": "seven_day", **windows,
            U + "7d-status": "rejected", U + "7d-utilization": "1.0"}),
        "short_term": Scenario(when_prompt_contains="[short-term]", fail_status=429),
    }
    return scenarios, r5, r7


@pytest.fixture
def plan_proxy(tmp_path: Path):
    """A proxy whose CLI logs in with an OAuth token and talks to a stand-in that picks the
    scenario from the prompt (`[allowed]`, `[warning]`, ...)."""
    now = int(time.time())
    scenarios, r5, r7 = _scenarios(now)
    with StandInUpstream(scenarios=scenarios) as upstream:
        home = tmp_path / "home"
        home.mkdir()
        runner = LiveRunner(work_root=WorkRoot(str(tmp_path / "work")), max_retries=0,
                            environ=cli_environ(upstream.base_url, str(home), OAUTH))
        with running_proxy(Settings(), runner) as proxy:
            proxy.r5, proxy.r7 = r5, r7
            proxy.client = openai.OpenAI(base_url=proxy.base_url, api_key="unused",
                                         max_retries=0, timeout=60)
            yield proxy


def _ask(proxy, tag: str, **kwargs):
    return proxy.client.chat.completions.with_raw_response.create(
        model="sonnet", messages=[{"role": "user", "content": f"hello {tag}"}], **kwargs)


def _plan_headers(headers) -> dict[str, str]:
    return {k.lower(): v for k, v in headers.items() if k.lower().startswith("x-claude-plan-")}


def _metrics(proxy) -> dict[tuple[str, tuple], float]:
    reply = call(proxy.url, "GET", "/metrics")
    samples = {}
    for family in text_string_to_metric_families(reply.body.decode()):
        for sample in family.samples:
            samples[(sample.name, tuple(sorted(sample.labels.items())))] = sample.value
    return samples


def _ready(proxy) -> tuple[int, dict]:
    reply = call(proxy.url, "GET", "/health/ready")
    body = reply.json()
    assert validate_response("ReadinessResponse", body) == []
    return reply.status, body


def _status_gauge(samples) -> str:
    current = [dict(labels)["status"] for (name, labels), value in samples.items()
               if name == "claude_max_api_plan_status" and value == 1]
    assert len(current) == 1, current
    return current[0]


def test_every_status_in_headers_metrics_readiness_and_log(plan_proxy, caplog):
    proxy = plan_proxy
    caplog.set_level(logging.INFO, logger="claude_max_api")
    r5, r7 = proxy.r5, proxy.r7

    # Nothing known before the first run.
    status, body = _ready(proxy)
    assert status == 200 and body["plan"]["status"] == "unknown"
    assert _status_gauge(_metrics(proxy)) == "unknown"

    # allowed: a non-streamed answer carries the state its own run reported.
    raw = _ask(proxy, "[allowed]")
    assert raw.parse().choices[0].message.content == "Hello from the stand-in."
    assert _plan_headers(raw.headers) == {
        "x-claude-plan-status": "allowed", "x-claude-plan-age": "0",
        "x-claude-plan-limiting-window": "five_hour", "x-claude-plan-reset": str(r5),
        "x-claude-plan-overage-in-use": "false",
        "x-claude-plan-utilization-5h": "0.31", "x-claude-plan-reset-5h": str(r5),
        "x-claude-plan-status-5h": "allowed",
        "x-claude-plan-utilization-7d": "0.12", "x-claude-plan-reset-7d": str(r7),
        "x-claude-plan-status-7d": "allowed"}
    assert not any(k.lower().startswith("x-ratelimit-") for k in raw.headers)
    samples = _metrics(proxy)
    assert _status_gauge(samples) == "allowed"
    assert samples[("claude_max_api_plan_utilization", (("window", "five_hour"),))] == 0.31
    assert samples[("claude_max_api_plan_utilization", (("window", "seven_day"),))] == 0.12
    left = samples[("claude_max_api_plan_reset_seconds", (("window", "five_hour"),))]
    assert r5 - time.time() - 5 < left <= r5 - time.time() + 1
    assert samples[("claude_max_api_plan_overage_in_use", ())] == 0

    # warning, streamed: the headers leave when Claude begins answering, before the CLI
    # reports this run's state, so they carry the state known then (allowed, from the run
    # before); the run's own state is there for the next response.
    with proxy.client.chat.completions.with_streaming_response.create(
            model="sonnet", stream=True,
            messages=[{"role": "user", "content": "hello [warning]"}]) as response:
        committed = _plan_headers(response.headers)
        text = "".join(c.choices[0].delta.content or "" for c in response.parse() if c.choices)
    assert text == "Hello from the stand-in."
    assert committed["x-claude-plan-status"] == "allowed"
    assert committed["x-claude-plan-utilization-5h"] == "0.31"
    status, body = _ready(proxy)
    plan = body["plan"]
    assert status == 200 and plan["status"] == "allowed_warning"
    assert (plan["limiting_window"], plan["utilization"], plan["surpassed_threshold"]) == (
        "five_hour", 0.82, 0.75)
    assert plan["windows"]["five_hour"]["status"] == "allowed_warning"
    assert plan["windows"]["seven_day"]["utilization"] == 0.12
    warnings = [r.getMessage() for r in caplog.records
                if r.name == "claude_max_api.plan" and r.levelno == logging.WARNING]
    assert warnings == ["Claude plan: the 5-hour window is 82 % used (past the 75 % warning "
                        "threshold); it resets at "
                        + time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(r5))]
    caplog.clear()

    # overage: past the limit, extra usage pays; the answer comes.
    raw = _ask(proxy, "[overage]")
    headers = _plan_headers(raw.headers)
    assert raw.http_response.status_code == 200
    assert (headers["x-claude-plan-status"], headers["x-claude-plan-overage-in-use"],
            headers["x-claude-plan-overage-status"], headers["x-claude-plan-utilization-5h"]) == (
        "rejected", "true", "allowed", "1")
    assert _metrics(proxy)[("claude_max_api_plan_overage_in_use", ())] == 1
    assert _ready(proxy)[0] == 200                      # extra usage serves: still ready
    assert [r.getMessage() for r in caplog.records if r.name == "claude_max_api.plan"] == [
        "Claude plan: extra usage is now paying for requests (the 5-hour limit is reached; it "
        "resets at " + time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(r5)) + ")"]
    caplog.clear()

    # rejected: a 429 usage_limit_reached until the weekly reset, carrying the refusing
    # run's state; readiness says why it cannot serve.
    with pytest.raises(openai.RateLimitError) as caught:
        _ask(proxy, "[rejected]")
    response = caught.value.response
    assert caught.value.code == "usage_limit_reached"
    assert abs(int(response.headers["retry-after"]) - (r7 - time.time())) < 10
    headers = _plan_headers(response.headers)
    assert (headers["x-claude-plan-status"], headers["x-claude-plan-limiting-window"],
            headers["x-claude-plan-utilization-7d"], headers["x-claude-plan-reset"]) == (
        "rejected", "seven_day", "1", str(r7))
    status, body = _ready(proxy)
    assert status == 503 and body["status"] == "not_ready"
    assert "the Claude plan's weekly limit is reached until" in body["reason"]
    assert body["plan"]["last_refusal"]["code"] == "usage_limit_reached"
    samples = _metrics(proxy)
    assert _status_gauge(samples) == "rejected"
    assert samples[("claude_max_api_plan_utilization", (("window", "seven_day"),))] == 1
    assert samples[("claude_max_api_cli_failures_total", (("code", "usage_limit_reached"),))] == 1
    assert "Claude plan: the weekly limit is reached; requests are refused" in caplog.text

    # A short-term 429 under the same login is not the plan: rate_limit_exceeded, no change.
    with pytest.raises(openai.RateLimitError) as caught:
        _ask(proxy, "[short-term]")
    assert caught.value.code == "rate_limit_exceeded"
    assert _plan_headers(caught.value.response.headers)["x-claude-plan-status"] == "rejected"
    assert _ready(proxy)[1]["plan"]["limiting_window"] == "seven_day"

    # allowed again: ready, and said so once.
    caplog.clear()
    assert _plan_headers(_ask(proxy, "[allowed]").headers)["x-claude-plan-status"] == "allowed"
    assert _ready(proxy)[0] == 200
    assert [r.getMessage() for r in caplog.records if r.name == "claude_max_api.plan"] == [
        "Claude plan: requests are allowed again"]


def test_an_api_key_login_reports_no_plan(tmp_path, standin):
    """Under an API key the CLI prints no rate_limit_event: the plan stays unknown, and the
    headers say so instead of guessing."""
    standin.add_scenario("plan-api-key", Scenario(answer_headers={
        U + "status": "allowed", U + "5h-utilization": "0.5",
        U + "5h-reset": str(int(time.time()) + 3600)}))
    home = tmp_path / "home"
    home.mkdir()
    runner = LiveRunner(work_root=WorkRoot(str(tmp_path / "work")), max_retries=0,
                        environ=cli_environ(standin.base_url_for("plan-api-key"), str(home)))
    with running_proxy(Settings(), runner) as proxy:
        client = openai.OpenAI(base_url=proxy.base_url, api_key="x", max_retries=0, timeout=60)
        raw = client.chat.completions.with_raw_response.create(
            model="sonnet", messages=[{"role": "user", "content": "hi"}])
        assert _plan_headers(raw.headers) == {"x-claude-plan-status": "unknown"}
        assert _ready(proxy)[1]["plan"]["status"] == "unknown"
        # Other endpoints do not carry plan headers.
        models = call(proxy.url, "GET", "/v1/models")
        assert not any(k.lower().startswith("x-claude-plan-") for k in models.headers.keys())
