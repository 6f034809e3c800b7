"""The Claude plan's usage state, as the server's CLI runs last saw it.

Every run's `rate_limit_event` (proxy/claude/rate_limit.py) and every plan refusal it maps
(`usage_limit_reached`, `insufficient_quota`) is observed here. The tracker keeps the latest
top-level state and, per window (5-hour, weekly, ...), the latest reading with the time it was
seen, so a run that reports one window does not erase another. A state whose reset time has
passed is no longer reported as current: the window has started over, and what it holds now is
unknown until the next run.

Readers: /health/ready (`snapshot()`), /metrics (`proxy.metrics`), response headers
(`proxy/http/plan_headers.py`), `doctor`. A transition to a warning, to the limit or to paid
extra usage is logged once, as a warning.
"""

from __future__ import annotations

import logging
import threading
import time
from dataclasses import dataclass, replace
from typing import Any, Callable

from proxy.claude.rate_limit import PlanReading, Window, from_info
from proxy.errors import ProxyError

log = logging.getLogger("claude_max_api.plan")

WINDOW_NAMES = {"five_hour": "5-hour", "seven_day": "weekly", "seven_day_opus": "weekly Opus",
                "seven_day_sonnet": "weekly Sonnet",
                "seven_day_overage_included": "weekly (extra usage included)",
                "overage": "extra usage"}
# The failures that tell about the plan (proxy/claude/failures.py).
PLAN_REFUSALS = ("usage_limit_reached", "insufficient_quota")


@dataclass(frozen=True)
class Refusal:
    code: str
    seen_at: float


@dataclass(frozen=True)
class PlanState:
    """What is known now. `reading` is None until a run reported the plan, and after the
    reported state's reset time has passed."""
    reading: PlanReading | None
    windows: dict[str, Window]          # current ones only (reset time not passed)
    last_refusal: Refusal | None
    now: float
    expired: bool = False               # a state was reported, and its reset has passed

    @property
    def refusing_until(self) -> int | None:
        """When the plan refuses requests now: the epoch its limit resets."""
        if self.reading is not None and self.reading.refusing:
            return self.reading.resets_at
        return None

    @property
    def status(self) -> str:
        return self.reading.status if self.reading is not None else "unknown"

    @property
    def age(self) -> float | None:
        return max(0.0, self.now - self.reading.seen_at) if self.reading is not None else None


def _iso(epoch: float | None) -> str | None:
    if epoch is None:
        return None
    return time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(epoch))


def _percent(fraction: float | None) -> str:
    return "?" if fraction is None else f"{fraction * 100:.0f} %"


def window_name(name: str | None) -> str:
    return WINDOW_NAMES.get(name or "", name or "plan")


class PlanTracker:
    def __init__(self, clock: Callable[[], float] = time.time,
                 logger: logging.Logger | None = log) -> None:
        """`logger=None`: no transition lines (doctor reports the state itself)."""
        self._clock = clock
        self._log = logger
        self._lock = threading.Lock()
        self._reading: PlanReading | None = None
        self._windows: dict[str, Window] = {}
        self._refusal: Refusal | None = None

    # --- observing --------------------------------------------------------------------
    def observe(self, info: Any) -> None:
        """A run's `rate_limit_info` (the last rate_limit_event's)."""
        reading = from_info(info, self._clock())
        if reading is None:
            return
        with self._lock:
            before = self._current(reading.seen_at)
            self._reading = reading
            self._windows.update(reading.windows)
            # The limiting window, when the CLI named it without per-window readings.
            name = reading.limiting_window
            if name and name not in reading.windows and reading.resets_at is not None:
                known = self._windows.get(name)
                self._windows[name] = Window(
                    name, reading.utilization if reading.utilization is not None
                    else (known.utilization if known else None),
                    reading.resets_at, None, reading.surpassed_threshold, reading.seen_at)
        if self._log is not None:
            self._log_transition(before, reading)

    def observe_failure(self, error: ProxyError) -> None:
        """A run's error: plan refusals are kept (the rate_limit_event before them carries
        the windows; a billing refusal has no event at all)."""
        if error.code not in PLAN_REFUSALS:
            return
        now = self._clock()
        with self._lock:
            self._refusal = Refusal(error.code, now)
            if error.code == "usage_limit_reached" and \
                    (self._reading is None or not self._reading.refusing):
                # No event said so (e.g. a replayed run without one): the refusal itself does.
                resets = int(now + error.retry_after) if error.retry_after else None
                self._reading = PlanReading("rejected", now, resets_at=resets)

    # --- reading ----------------------------------------------------------------------
    def state(self) -> PlanState:
        now = self._clock()
        with self._lock:
            current = self._current(now)
            return PlanState(current, self._current_windows(now), self._refusal, now,
                             expired=current is None and self._reading is not None)

    def snapshot(self, state: PlanState | None = None) -> dict[str, Any]:
        """The `plan` section of /health/ready."""
        state = state or self.state()
        reading = state.reading
        out: dict[str, Any] = {"status": state.status}
        if reading is None:
            out["detail"] = ("the last reported plan state has reset since; the next request "
                             "will tell" if state.expired else
                             "no plan state reported yet: the CLI reports it only under a "
                             "subscription login, after a request")
        else:
            out.update({
                "observed_at": _iso(reading.seen_at),
                "age_seconds": round(state.age or 0.0, 1),
                "limiting_window": reading.limiting_window,
                "resets_at": _iso(reading.resets_at),
                "utilization": reading.utilization,
                "surpassed_threshold": reading.surpassed_threshold,
                "overage": {"status": reading.overage_status, "in_use": reading.using_overage,
                            "resets_at": _iso(reading.overage_resets_at),
                            "disabled_reason": reading.overage_disabled_reason},
            })
        out["windows"] = {name: {"utilization": w.utilization, "resets_at": _iso(w.resets_at),
                                 "status": w.status, "surpassed_threshold": w.surpassed_threshold,
                                 "observed_at": _iso(w.seen_at)}
                          for name, w in sorted(state.windows.items())}
        if state.last_refusal is not None:
            out["last_refusal"] = {"code": state.last_refusal.code,
                                   "observed_at": _iso(state.last_refusal.seen_at)}
        return out

    # --- internals --------------------------------------------------------------------
    def _current(self, now: float) -> PlanReading | None:
        reading = self._reading
        if reading is None:
            return None
        if reading.resets_at is not None and reading.resets_at <= now:
            return None  # that window has started over: its state is no longer known
        if reading.using_overage and reading.overage_resets_at is not None \
                and reading.overage_resets_at <= now:
            return replace(reading, using_overage=False)
        return reading

    def _current_windows(self, now: float) -> dict[str, Window]:
        return {name: w for name, w in self._windows.items()
                if w.resets_at is None or w.resets_at > now}

    def _log_transition(self, before: PlanReading | None, after: PlanReading) -> None:
        assert self._log is not None
        old_status = before.status if before is not None else "unknown"
        window = window_name(after.limiting_window)
        resets = f"; it resets at {_iso(after.resets_at)}" if after.resets_at else ""
        if after.using_overage and not (before is not None and before.using_overage):
            self._log.warning("Claude plan: extra usage is now paying for requests (the %s "
                              "limit is reached%s)", window, resets)
        elif after.refusing and (old_status != "rejected" or before is None or not before.refusing):
            self._log.warning("Claude plan: the %s limit is reached; requests are refused%s",
                              window, resets)
        elif after.status == "allowed_warning" and (
                old_status != "allowed_warning"
                or before is not None and before.limiting_window != after.limiting_window):
            threshold = (f" (past the {_percent(after.surpassed_threshold)} warning threshold)"
                         if after.surpassed_threshold is not None else "")
            self._log.warning("Claude plan: the %s window is %s used%s%s", window,
                              _percent(after.utilization), threshold, resets)
        elif after.status == "allowed" and old_status in ("allowed_warning", "rejected"):
            self._log.info("Claude plan: requests are allowed again")
