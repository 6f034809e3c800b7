"""The plan state: reading the CLI's rate_limit_info (the shapes measured in
tests/standin/test_live_cli_plan.py), keeping it per window, expiring it at its reset, the
transition log lines, and the headers built from it."""

from __future__ import annotations

import logging

import pytest

from proxy.claude.rate_limit import from_info, is_plan_refusal
from proxy.errors import ProxyError
from proxy.http.plan_headers import plan_headers
from proxy.plan import PlanTracker

NOW = 1_800_000_000
R5, R7 = NOW + 3 * 3600, NOW + 5 * 86400

ALLOWED = {"status": "allowed", "resetsAt": R5, "rateLimitType": "five_hour",
           "isUsingOverage": False, "unifiedWindows": {
               "five_hour": {"utilization": 0.31, "resetsAt": R5, "status": "allowed"},
               "seven_day": {"utilization": 0.12, "resetsAt": R7, "status": "allowed"}}}
WARNING = {"status": "allowed_warning", "resetsAt": R5, "rateLimitType": "five_hour",
           "utilization": 0.82, "isUsingOverage": False, "surpassedThreshold": 0.75,
           "unifiedWindows": {"five_hour": {"utilization": 0.82, "resetsAt": R5,
                                            "status": "allowed_warning",
                                            "surpassedThreshold": 0.75}}}
OVERAGE = {"status": "rejected", "resetsAt": R5, "rateLimitType": "five_hour",
           "overageStatus": "allowed", "overageResetsAt": R7, "isUsingOverage": True,
           "overageInUse": True, "unifiedWindows": {
               "five_hour": {"utilization": 1, "resetsAt": R5, "status": "rejected"}}}
REJECTED = {"status": "rejected", "resetsAt": R7, "rateLimitType": "seven_day",
            "isUsingOverage": False, "unifiedWindows": {
                "seven_day": {"utilization": 1, "resetsAt": R7, "status": "rejected"}}}
SHORT_TERM_429 = {"status": "rejected", "isUsingOverage": False}


class Clock:
    def __init__(self, now: float = NOW) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now


@pytest.fixture
def clock():
    return Clock()


@pytest.fixture
def tracker(clock):
    return PlanTracker(clock=clock)


def test_reading_the_measured_shapes():
    allowed = from_info(ALLOWED, NOW)
    assert (allowed.status, allowed.limiting_window, allowed.resets_at) == ("allowed", "five_hour", R5)
    assert allowed.windows["seven_day"].utilization == 0.12 and not allowed.refusing
    warning = from_info(WARNING, NOW)
    assert (warning.utilization, warning.surpassed_threshold) == (0.82, 0.75)
    overage = from_info(OVERAGE, NOW)
    assert overage.using_overage and not overage.refusing and overage.overage_resets_at == R7
    assert from_info(REJECTED, NOW).refusing


@pytest.mark.parametrize("info", [
    SHORT_TERM_429,                               # the API's short-term limit, not the plan
    None, "allowed", {"status": "exhausted"}, {"isUsingOverage": True}, [],
])
def test_what_says_nothing_about_the_plan(info):
    assert from_info(info, NOW) is None


def test_only_a_windowed_rejection_is_a_plan_refusal():
    assert is_plan_refusal(REJECTED) and is_plan_refusal({"status": "rejected", "resetsAt": 5})
    assert not is_plan_refusal(SHORT_TERM_429) and not is_plan_refusal(ALLOWED)


def test_odd_values_are_dropped_not_trusted():
    reading = from_info({"status": "allowed", "resetsAt": "soon", "utilization": True,
                         "unifiedWindows": {"five_hour": {"utilization": "lots", "resetsAt": -1,
                                                          "status": "fine"}, "x": 3}}, NOW)
    assert reading.resets_at is None and reading.utilization is None
    window = reading.windows["five_hour"]
    assert (window.utilization, window.resets_at, window.status) == (None, None, None)


def test_unknown_until_a_run_reports(tracker):
    state = tracker.state()
    assert state.status == "unknown" and state.windows == {} and state.age is None
    assert tracker.snapshot() == {"status": "unknown", "windows": {}, "detail": (
        "no plan state reported yet: the CLI reports it only under a subscription login, "
        "after a request")}
    assert plan_headers(state) == {"x-claude-plan-status": "unknown"}


def test_windows_are_kept_each_with_the_time_it_was_seen(tracker, clock):
    tracker.observe(ALLOWED)
    clock.now += 30
    tracker.observe(WARNING)            # reports the 5-hour window only
    state = tracker.state()
    assert state.status == "allowed_warning" and state.age == 0
    assert state.windows["five_hour"].utilization == 0.82
    assert state.windows["five_hour"].seen_at == NOW + 30
    assert state.windows["seven_day"].utilization == 0.12       # kept from the first run
    assert state.windows["seven_day"].seen_at == NOW
    snapshot = tracker.snapshot()
    assert snapshot["limiting_window"] == "five_hour" and snapshot["surpassed_threshold"] == 0.75
    assert snapshot["windows"]["seven_day"]["observed_at"] == "2027-01-15T08:00:00Z"
    assert snapshot["resets_at"] == "2027-01-15T11:00:00Z"


def test_a_state_past_its_reset_is_no_longer_current(tracker, clock):
    tracker.observe(REJECTED)
    assert tracker.state().refusing_until == R7
    clock.now = R5 + 1                   # the 5-hour window reset; the weekly one did not
    state = tracker.state()
    assert state.status == "rejected" and "five_hour" not in state.windows
    clock.now = R7
    state = tracker.state()
    assert state.status == "unknown" and state.expired and state.refusing_until is None
    assert state.windows == {}
    assert "has reset since" in tracker.snapshot()["detail"]


def test_overage_stops_counting_at_its_reset(tracker, clock):
    tracker.observe({**OVERAGE, "resetsAt": R7 + 10})
    assert tracker.state().reading.using_overage
    clock.now = R7
    assert not tracker.state().reading.using_overage


def test_a_limit_named_without_windows_still_has_its_reset(tracker):
    tracker.observe({"status": "rejected", "resetsAt": R5, "rateLimitType": "five_hour",
                     "isUsingOverage": False})
    assert tracker.state().windows["five_hour"].resets_at == R5
    assert plan_headers(tracker.state())["x-claude-plan-reset-5h"] == str(R5)


def test_failures_that_tell_about_the_plan(tracker, clock):
    tracker.observe_failure(ProxyError(429, "slow down", code="rate_limit_exceeded"))
    assert tracker.state().status == "unknown" and tracker.state().last_refusal is None
    tracker.observe_failure(ProxyError(429, "billing", code="insufficient_quota"))
    assert tracker.state().last_refusal.code == "insufficient_quota"
    assert tracker.state().status == "unknown"   # a billing refusal has no window state
    # A plan refusal with no event before it (a replayed run without one): the error says it.
    tracker.observe_failure(ProxyError(429, "limit", code="usage_limit_reached",
                                       retry_after=600))
    state = tracker.state()
    assert state.status == "rejected" and state.refusing_until == NOW + 600
    assert tracker.snapshot()["last_refusal"] == {"code": "usage_limit_reached",
                                                  "observed_at": "2027-01-15T08:00:00Z"}


def test_the_event_before_a_refusal_is_not_overwritten_by_it(tracker):
    tracker.observe(REJECTED)
    tracker.observe_failure(ProxyError(429, "limit", code="usage_limit_reached", retry_after=5))
    assert tracker.state().reading.limiting_window == "seven_day"
    assert tracker.state().refusing_until == R7


def test_transitions_are_logged_once(tracker, caplog):
    caplog.set_level(logging.INFO, logger="claude_max_api.plan")

    def lines():
        out = [(r.levelname, r.getMessage()) for r in caplog.records]
        caplog.clear()
        return out

    tracker.observe(ALLOWED)
    assert lines() == []
    tracker.observe(WARNING)
    assert lines() == [("WARNING", "Claude plan: the 5-hour window is 82 % used (past the "
                                   "75 % warning threshold); it resets at 2027-01-15T11:00:00Z")]
    tracker.observe(WARNING)
    assert lines() == []                                   # no news, no line
    tracker.observe(OVERAGE)
    assert lines() == [("WARNING", "Claude plan: extra usage is now paying for requests (the "
                                   "5-hour limit is reached; it resets at 2027-01-15T11:00:00Z)")]
    tracker.observe(OVERAGE)
    assert lines() == []
    tracker.observe(REJECTED)
    assert lines() == [("WARNING", "Claude plan: the weekly limit is reached; requests are "
                                   "refused; it resets at 2027-01-20T08:00:00Z")]
    tracker.observe(ALLOWED)
    assert lines() == [("INFO", "Claude plan: requests are allowed again")]


def test_headers_for_each_status(tracker, clock):
    tracker.observe(ALLOWED)
    clock.now += 42
    assert plan_headers(tracker.state()) == {
        "x-claude-plan-status": "allowed", "x-claude-plan-age": "42",
        "x-claude-plan-limiting-window": "five_hour", "x-claude-plan-reset": str(R5),
        "x-claude-plan-overage-in-use": "false",
        "x-claude-plan-utilization-5h": "0.31", "x-claude-plan-reset-5h": str(R5),
        "x-claude-plan-status-5h": "allowed",
        "x-claude-plan-utilization-7d": "0.12", "x-claude-plan-reset-7d": str(R7),
        "x-claude-plan-status-7d": "allowed"}
    tracker.observe(OVERAGE)
    headers = plan_headers(tracker.state())
    assert headers["x-claude-plan-status"] == "rejected"
    assert headers["x-claude-plan-overage-in-use"] == "true"
    assert headers["x-claude-plan-overage-status"] == "allowed"
    assert headers["x-claude-plan-utilization-5h"] == "1" and headers["x-claude-plan-age"] == "0"
    assert not any(name.startswith("x-ratelimit-") for name in headers)
