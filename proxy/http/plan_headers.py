"""Response headers that tell a client how close the Claude plan is to its limits.

`plan_headers(state)` is the one place that decides them; the `PlanHeaders` middleware puts them
on every authorised POST to an endpoint that spends the plan (SPENDING_PATHS), whatever
resource answers it, errors included.

They describe the plan state known **when the headers are sent**, with its age
(`x-claude-plan-age`). The CLI reports a run's state after its answer (measured:
`rate_limit_event` comes after `message_stop`), so a non-streamed answer carries the state its
own run reported, and a stream, whose headers leave when Claude begins answering, carries the
state earlier runs reported. A refusal carries the refusing run's state.

OpenAI's `x-ratelimit-remaining-*` headers are counts; the plan reports fractions used, not
counts, so they are never derived from it. Only per-key request limits, which the proxy counts
itself, produce `x-ratelimit-*-requests` (proxy/http/middleware/key_limits.py).
"""

from __future__ import annotations

from typing import Any, Iterable

import falcon

from proxy.plan import PlanState, PlanTracker

# The endpoints whose requests run the CLI, and so spend the plan.
SPENDING_PATHS = frozenset({"/v1/chat/completions", "/v1/completions", "/v1/responses"})

# Header suffixes of the windows (Anthropic's own: -5h-, -7d-).
WINDOW_SUFFIXES = {"five_hour": "5h", "seven_day": "7d", "seven_day_opus": "7d-opus",
                   "seven_day_sonnet": "7d-sonnet", "seven_day_overage_included": "7d-oi"}


def _fraction(value: float) -> str:
    return f"{value:.4f}".rstrip("0").rstrip(".") if value != int(value) else str(int(value))


def plan_headers(state: PlanState) -> dict[str, str]:
    """The `x-claude-plan-*` headers for a plan state (see docs/operations.md)."""
    headers = {"x-claude-plan-status": state.status}
    reading = state.reading
    if reading is not None:
        headers["x-claude-plan-age"] = str(int(state.age or 0))
        if reading.limiting_window:
            headers["x-claude-plan-limiting-window"] = reading.limiting_window
        if reading.resets_at is not None:
            headers["x-claude-plan-reset"] = str(reading.resets_at)
        headers["x-claude-plan-overage-in-use"] = "true" if reading.using_overage else "false"
        if reading.overage_status:
            headers["x-claude-plan-overage-status"] = reading.overage_status
    for name, window in sorted(state.windows.items()):
        suffix = WINDOW_SUFFIXES.get(name)
        if suffix is None:
            continue
        if window.utilization is not None:
            headers[f"x-claude-plan-utilization-{suffix}"] = _fraction(window.utilization)
        if window.resets_at is not None:
            headers[f"x-claude-plan-reset-{suffix}"] = str(window.resets_at)
        if window.status:
            headers[f"x-claude-plan-status-{suffix}"] = window.status
    return headers


class PlanHeaders:
    """Adds plan_headers() to responses of authorised POSTs to SPENDING_PATHS."""

    def __init__(self, tracker: PlanTracker, paths: Iterable[str] = SPENDING_PATHS) -> None:
        self.tracker = tracker
        self.paths = frozenset(paths)

    def process_response(self, req: falcon.Request, resp: falcon.Response, resource: Any,
                         req_succeeded: bool) -> None:
        # Only for clients that passed the key check: the plan is the operator's business.
        if req.method != "POST" or req.path not in self.paths \
                or not getattr(req.context, "authorised", False):
            return
        resp.set_headers(plan_headers(self.tracker.state()))
