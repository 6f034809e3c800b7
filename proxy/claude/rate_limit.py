"""The CLI's `rate_limit_event` -> a PlanReading: the subscription's usage state as one run saw it.

Measured with CLI 2.1.332 (docs/standin.md, "Plan state"; tests/standin/test_live_cli_plan.py):
the CLI prints `{"type":"rate_limit_event","rate_limit_info":{...}}` only under a subscription
(OAuth) login, once per run when the state changed, built from Anthropic's
`anthropic-ratelimit-unified-*` response headers. A short-term 429 without those headers also
says `status: "rejected"`, but with no window and no reset: that is not the plan, and
`from_info` returns None for it.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

STATUSES = ("allowed", "allowed_warning", "rejected")


@dataclass(frozen=True)
class Window:
    """One usage window (`five_hour`, `seven_day`, ...) as last seen."""
    name: str
    utilization: float | None = None     # fraction used; can pass 1 past the limit
    resets_at: int | None = None         # epoch seconds
    status: str | None = None            # what the server said for this window
    surpassed_threshold: float | None = None
    seen_at: float = 0.0                 # epoch seconds


@dataclass(frozen=True)
class PlanReading:
    status: str                          # allowed | allowed_warning | rejected
    seen_at: float                       # epoch seconds
    limiting_window: str | None = None   # rateLimitType: the window the status is about
    resets_at: int | None = None
    utilization: float | None = None     # of the limiting window, when the CLI warns
    surpassed_threshold: float | None = None
    overage_status: str | None = None    # extra usage: allowed | allowed_warning | rejected
    overage_resets_at: int | None = None
    overage_disabled_reason: str | None = None
    using_overage: bool = False          # extra usage pays for answers now
    windows: dict[str, Window] = field(default_factory=dict)

    @property
    def refusing(self) -> bool:
        """The plan refuses requests (its limit is reached and extra usage does not pay)."""
        return self.status == "rejected" and not self.using_overage


def _number(value: Any) -> float | None:
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        return None
    return float(value)


def _epoch(value: Any) -> int | None:
    number = _number(value)
    return int(number) if number is not None and number > 0 else None


def _text(value: Any) -> str | None:
    return value if isinstance(value, str) and value else None


def is_plan_refusal(info: Any) -> bool:
    """A `rate_limit_info` that says the plan's limit refused the request (not a short-term
    429, which says `rejected` with neither a window nor a reset)."""
    return isinstance(info, dict) and info.get("status") == "rejected" \
        and (_text(info.get("rateLimitType")) is not None or _epoch(info.get("resetsAt")) is not None)


def from_info(info: Any, seen_at: float) -> PlanReading | None:
    """The reading a `rate_limit_info` holds; None when it says nothing about the plan."""
    if not isinstance(info, dict) or info.get("status") not in STATUSES:
        return None
    if info["status"] == "rejected" and not is_plan_refusal(info) \
            and not info.get("isUsingOverage") and not info.get("unifiedWindows"):
        return None
    windows: dict[str, Window] = {}
    raw_windows = info.get("unifiedWindows")
    for name, raw in (raw_windows.items() if isinstance(raw_windows, dict) else ()):
        if isinstance(name, str) and isinstance(raw, dict):
            status = raw.get("status")
            windows[name] = Window(name, _number(raw.get("utilization")),
                                   _epoch(raw.get("resetsAt")),
                                   status if status in STATUSES else None,
                                   _number(raw.get("surpassedThreshold")), seen_at)
    overage_status = info.get("overageStatus")
    return PlanReading(
        status=info["status"], seen_at=seen_at,
        limiting_window=_text(info.get("rateLimitType")),
        resets_at=_epoch(info.get("resetsAt")),
        utilization=_number(info.get("utilization")),
        surpassed_threshold=_number(info.get("surpassedThreshold")),
        overage_status=overage_status if overage_status in STATUSES else None,
        overage_resets_at=_epoch(info.get("overageResetsAt")),
        overage_disabled_reason=_text(info.get("overageDisabledReason")),
        using_overage=info.get("isUsingOverage") is True or info.get("overageInUse") is True,
        windows=windows)
