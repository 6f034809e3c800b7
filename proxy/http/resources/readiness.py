"""GET /health/ready: can this server answer a completion now? 200 if so, else 503 and why.

Live mode: the CLI is found and has a login (probed cheaply and cached, see
proxy/claude/probe.py). Replay mode: the cassette directory exists. Either way the CLI slots
are not all busy with a full queue, and the Claude plan is not refusing requests until a known
reset (proxy/plan.py; the `plan` section shows its last reported state). The body follows the
document's ReadinessResponse.
"""

from __future__ import annotations

import os
import time
from typing import Any, Callable, Mapping

import falcon

from proxy.claude.probe import CLIProbe
from proxy.plan import PlanTracker, window_name

PoolState = Callable[[], Mapping[str, Any]]


class Readiness:
    def __init__(self, limiter_stats: Callable[[], Mapping[str, int]], *,
                 probe: CLIProbe | None = None, replay_source: str | None = None,
                 pool_state: PoolState | None = None, plan: PlanTracker | None = None,
                 conversation_state: PoolState | None = None,
                 responses_state: PoolState | None = None) -> None:
        """`pool_state`, if given, describes a warm process pool (added under `pool.warm`);
        `conversation_state` the processes kept for conversations (`conversations`)."""
        self.plan = plan
        self.limiter_stats = limiter_stats
        self.probe = probe
        self.replay_source = replay_source
        self.pool_state = pool_state
        self.conversation_state = conversation_state
        self.responses_state = responses_state  # the stored responses (the Responses API)

    def report(self) -> dict[str, Any]:
        reasons: list[str] = []
        body: dict[str, Any] = {"status": "ready"}
        if self.replay_source is not None:
            available = os.path.isdir(self.replay_source)
            body["mode"] = "replay"
            body["replay"] = {"source": self.replay_source, "available": available}
            if not available:
                reasons.append(f"the replay directory {self.replay_source} does not exist")
        elif self.probe is not None:
            cli = self.probe.status()
            body["mode"] = "live"
            body["cli"] = cli.to_dict()
            if not cli.found:
                reasons.append("the Claude Code CLI was not found (install it, or set "
                               "--claude-bin / CLAUDE_BIN)")
            elif cli.logged_in is False:
                reasons.append("the Claude Code CLI is not logged in (run `claude auth login` "
                               "as the user that runs this server)")
        else:
            body["mode"] = "custom"
        stats = self.limiter_stats()
        body["pool"] = {"active": stats["active"], "limit": stats["max_active"]}
        if self.pool_state is not None:
            body["pool"]["warm"] = dict(self.pool_state())
        if self.conversation_state is not None:
            state = dict(self.conversation_state())
            state.pop("spawned", None)
            body["conversations"] = state
        if self.responses_state is not None:
            body["responses"] = dict(self.responses_state())
        body["queue"] = {"waiting": stats["waiting"], "limit": stats["max_waiting"],
                         "rejected": stats["rejected"]}
        if stats["active"] >= stats["max_active"] and stats["waiting"] >= stats["max_waiting"]:
            reasons.append("at capacity: every CLI slot is busy and the wait queue is full")
        if self.plan is not None:
            state = self.plan.state()
            body["plan"] = self.plan.snapshot(state)
            until = state.refusing_until
            # Replayed runs report the plan they were recorded with, not a live one.
            if until is not None and self.replay_source is None:
                reasons.append(f"the Claude plan's {window_name(body['plan'].get('limiting_window'))} "
                               f"limit is reached until "
                               f"{time.strftime('%Y-%m-%dT%H:%M:%SZ', time.gmtime(until))}")
        if reasons:
            body["status"] = "not_ready"
            body["reason"] = "; ".join(reasons)
        return body

    def on_get(self, req: falcon.Request, resp: falcon.Response) -> None:
        body = self.report()
        resp.status = falcon.HTTP_200 if body["status"] == "ready" else falcon.HTTP_503
        resp.set_header("Cache-Control", "no-store")
        resp.media = body
