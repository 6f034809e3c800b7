"""What the real CLI makes of Anthropic's unified rate-limit headers: the `rate_limit_event`
line's `rate_limit_info` for each status, window and overage case (docs/standin.md, "Plan
state"). The proxy's plan tracking (proxy/plan.py) reads exactly these fields, so a CLI upgrade
that changes them fails here first.
"""

from __future__ import annotations

import time
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import pytest

from proxy.standin import Scenario, StandInUpstream

from .clirun import CLIRun, claude_path, run_claude

pytestmark = [
    pytest.mark.live,
    pytest.mark.skipif(
        claude_path() is None,
        reason="the claude CLI is not on PATH (npm install -g @anthropic-ai/claude-code@2.1.332)",
    ),
]

U = "anthropic-ratelimit-unified-"
# A subscription login as the CLI sees one: an OAuth token and no API key. With an API key the
# CLI prints no rate_limit_event at all, whatever the upstream's headers say.
OAUTH = {"CLAUDE_CODE_OAUTH_TOKEN": "standin-oauth-token", "ANTHROPIC_API_KEY": None}


def _windows(now: int) -> tuple[int, int]:
    # 5-hour window 40 % elapsed, 7-day window about 29 % elapsed: early enough that the CLI's
    # own time-based warning thresholds decide only where a test wants them to.
    return now + 3 * 3600, now + 5 * 86400


def _run_all(up: StandInUpstream, cases: dict[str, Scenario], env: dict | None = None
             ) -> dict[str, CLIRun]:
    for name, scenario in cases.items():
        up.add_scenario(name, scenario)
    with ThreadPoolExecutor(4) as pool:
        runs = dict(zip(cases, pool.map(
            lambda name: run_claude(up.base_url_for(name), env=OAUTH if env is None else env), cases)))
    for run in runs.values():
        assert not run.timed_out, run.stderr
    return runs


def _info(run: CLIRun) -> list[dict[str, Any]]:
    return [e["rate_limit_info"] for e in run.of_type("rate_limit_event")]


def test_rate_limit_info_for_each_header_set(upstream: StandInUpstream) -> None:
    now = int(time.time())
    r5, r7 = _windows(now)
    both = {U + "5h-status": "allowed", U + "5h-utilization": "0.31", U + "5h-reset": str(r5),
            U + "7d-status": "allowed", U + "7d-utilization": "0.12", U + "7d-reset": str(r7)}
    cases = {
        "none": Scenario(),
        "allowed": Scenario(answer_headers={U + "status": "allowed", U + "reset": str(r5),
                                            U + "representative-claim": "five_hour", **both}),
        # The server's own allowed_warning is not passed on: the CLI's top-level status says
        # allowed_warning only for a window with a surpassed threshold, or past its own
        # time-based thresholds (5h: >= 90 % used before 72 % of the window has passed).
        "server_warning": Scenario(answer_headers={
            U + "status": "allowed_warning", U + "reset": str(r5), **both,
            U + "5h-status": "allowed_warning", U + "5h-utilization": "0.85"}),
        "threshold": Scenario(answer_headers={
            U + "status": "allowed_warning", U + "reset": str(r5), **both,
            U + "5h-status": "allowed_warning", U + "5h-utilization": "0.82",
            U + "5h-surpassed-threshold": "0.75"}),
        "client_threshold": Scenario(answer_headers={
            U + "status": "allowed", U + "reset": str(r5), **both, U + "5h-utilization": "0.95"}),
        "weekly": Scenario(answer_headers={
            U + "status": "allowed_warning", U + "reset": str(r7), **both,
            U + "7d-status": "allowed_warning", U + "7d-utilization": "0.9",
            U + "7d-surpassed-threshold": "0.9"}),
        "overage": Scenario(answer_headers={
            U + "status": "rejected", U + "reset": str(r5), U + "representative-claim": "five_hour",
            U + "overage-status": "allowed", U + "overage-reset": str(r7),
            U + "overage-in-use": "true", **both,
            U + "5h-status": "rejected", U + "5h-utilization": "1.0"}),
    }
    runs = _run_all(upstream, cases)
    for name, run in runs.items():
        assert run.returncode == 0 and run.result["is_error"] is False, name
        assert len(_info(run)) == 1, name
    info = {name: _info(run)[0] for name, run in runs.items()}
    windows = {"five_hour": {"utilization": 0.31, "resetsAt": r5, "status": "allowed"},
               "seven_day": {"utilization": 0.12, "resetsAt": r7, "status": "allowed"}}

    assert info["none"] == {"status": "allowed", "isUsingOverage": False}
    assert info["allowed"] == {"status": "allowed", "resetsAt": r5, "rateLimitType": "five_hour",
                               "isUsingOverage": False, "unifiedWindows": windows}
    assert info["server_warning"]["status"] == "allowed"
    assert info["server_warning"]["unifiedWindows"]["five_hour"] == {
        "utilization": 0.85, "resetsAt": r5, "status": "allowed_warning"}
    assert info["threshold"] == {
        "status": "allowed_warning", "resetsAt": r5, "rateLimitType": "five_hour",
        "utilization": 0.82, "isUsingOverage": False, "surpassedThreshold": 0.75,
        "unifiedWindows": {**windows, "five_hour": {
            "utilization": 0.82, "resetsAt": r5, "status": "allowed_warning",
            "surpassedThreshold": 0.75}}}
    assert info["client_threshold"] == {
        "status": "allowed_warning", "resetsAt": r5, "rateLimitType": "five_hour",
        "utilization": 0.95, "isUsingOverage": False,
        "unifiedWindows": {**windows, "five_hour": {**windows["five_hour"], "utilization": 0.95}}}
    assert info["weekly"] == {
        "status": "allowed_warning", "resetsAt": r7, "rateLimitType": "seven_day",
        "utilization": 0.9, "isUsingOverage": False, "surpassedThreshold": 0.9,
        "unifiedWindows": {**windows, "seven_day": {
            "utilization": 0.9, "resetsAt": r7, "status": "allowed_warning",
            "surpassedThreshold": 0.9}}}
    # Past the plan's limit with extra usage allowed, the answer still comes: rejected at the
    # top, isUsingOverage true (computed: rejected + overage allowed), overageInUse from its header.
    assert info["overage"] == {
        "status": "rejected", "resetsAt": r5, "rateLimitType": "five_hour",
        "overageStatus": "allowed", "overageResetsAt": r7, "isUsingOverage": True,
        "overageInUse": True, "unifiedWindows": {**windows, "five_hour": {
            "utilization": 1, "resetsAt": r5, "status": "rejected"}}}


def test_rate_limit_info_when_the_plan_refuses(upstream: StandInUpstream) -> None:
    now = int(time.time())
    r5, r7 = _windows(now)
    cases = {
        "five_hour": Scenario(fail_status=429, fail_headers={
            U + "status": "rejected", U + "reset": str(r5), U + "representative-claim": "five_hour",
            U + "5h-status": "rejected", U + "5h-utilization": "1.0", U + "5h-reset": str(r5),
            U + "7d-utilization": "0.4", U + "7d-reset": str(r7),
            U + "overage-status": "rejected", U + "overage-disabled-reason": "out_of_credits"}),
        "seven_day": Scenario(fail_status=429, fail_headers={
            U + "status": "rejected", U + "reset": str(r7), U + "representative-claim": "seven_day",
            U + "7d-status": "rejected", U + "7d-utilization": "1.0", U + "7d-reset": str(r7)}),
        # A 429 without the unified headers is the API's short-term rate limit, not the plan:
        # the CLI still prints status "rejected", but with no window and no reset.
        "plain_429": Scenario(fail_status=429),
    }
    runs = _run_all(upstream, cases)
    info = {name: _info(run) for name, run in runs.items()}
    assert info["five_hour"] == [{
        "status": "rejected", "resetsAt": r5, "rateLimitType": "five_hour",
        "overageStatus": "rejected", "overageDisabledReason": "out_of_credits",
        "isUsingOverage": False, "unifiedWindows": {
            "five_hour": {"utilization": 1, "resetsAt": r5, "status": "rejected"},
            "seven_day": {"utilization": 0.4, "resetsAt": r7}}}]
    assert info["seven_day"] == [{
        "status": "rejected", "resetsAt": r7, "rateLimitType": "seven_day",
        "isUsingOverage": False, "unifiedWindows": {
            "seven_day": {"utilization": 1, "resetsAt": r7, "status": "rejected"}}}]
    assert info["plain_429"] == [{"status": "rejected", "isUsingOverage": False}]
    for name in ("five_hour", "seven_day"):
        assert runs[name].result["api_error"] == "usage_limit_reached", name
    assert runs["plain_429"].result.get("api_error") is None
    assert "not your usage limit" in runs["plain_429"].result["result"]


def test_when_the_event_comes_and_how_often(upstream: StandInUpstream) -> None:
    r5, _ = _windows(int(time.time()))
    headers = {U + "status": "allowed", U + "reset": str(r5), U + "5h-utilization": "0.4",
               U + "5h-reset": str(r5)}
    cases = {"ok": Scenario(answer_headers=headers),
             # max_tokens: the CLI continues three times, four upstream calls in all
             "four_calls": Scenario(answer_headers=headers, stop_reason="max_tokens"),
             "refused": Scenario(fail_status=429, fail_headers={
                 **headers, U + "status": "rejected", U + "representative-claim": "five_hour"})}
    runs = _run_all(upstream, cases, env={**OAUTH, "CLAUDE_CODE_MAX_OUTPUT_TOKENS": "50"})
    kinds = [e.get("type") if e.get("type") != "stream_event" else e["event"]["type"]
             for e in runs["ok"].events]
    # After the answer: a stream's headers, sent at message_start, cannot carry this run's state.
    assert kinds.index("rate_limit_event") > kinds.index("message_stop")
    assert kinds.index("rate_limit_event") < kinds.index("result")
    # Only when the state changes: four calls with the same headers print one event.
    assert len(upstream.requests_for("four_calls")) == 4
    assert len(_info(runs["four_calls"])) == 1
    # A refusal's event comes before its result, so the error can carry it.
    kinds = [e.get("type") for e in runs["refused"].events]
    assert kinds.index("rate_limit_event") < kinds.index("result")


def test_an_api_key_login_gets_no_rate_limit_event(upstream: StandInUpstream) -> None:
    r5, _ = _windows(int(time.time()))
    runs = _run_all(upstream, {"api_key": Scenario(answer_headers={
        U + "status": "allowed_warning", U + "reset": str(r5), U + "5h-utilization": "0.95",
        U + "5h-reset": str(r5), U + "5h-surpassed-threshold": "0.9"})}, env={})
    assert runs["api_key"].returncode == 0 and _info(runs["api_key"]) == []
