"""What a run produced: one result per check, per server. Plain data, to and from JSON."""

from __future__ import annotations

from dataclasses import dataclass, field
from enum import Enum
from typing import Any


class Outcome(str, Enum):
    PASS = "pass"
    FAIL = "fail"
    SKIP = "skip"
    ERROR = "error"     # the check could not run (a suite bug, or no model to test)


@dataclass
class Result:
    check_id: str
    outcome: Outcome
    message: str = ""
    evidence: list[dict[str, Any]] = field(default_factory=list)   # the exchanges it judged
    duration: float = 0.0

    def to_dict(self) -> dict[str, Any]:
        return {"outcome": self.outcome.value, "message": self.message,
                "evidence": self.evidence, "duration": round(self.duration, 3)}

    @classmethod
    def from_dict(cls, check_id: str, data: dict[str, Any]) -> "Result":
        return cls(check_id, Outcome(data["outcome"]), data.get("message", ""),
                   list(data.get("evidence") or []), float(data.get("duration") or 0.0))


@dataclass
class ServerRun:
    target: dict[str, Any]                     # Target.describe()
    model: str | None
    source: str                                # "live", "recording <dir>"
    started_at: str
    duration: float = 0.0
    server_header: str | None = None
    results: dict[str, Result] = field(default_factory=dict)

    @property
    def name(self) -> str:
        return self.target["name"]

    def counts(self) -> dict[str, int]:
        out = {o.value: 0 for o in Outcome}
        for result in self.results.values():
            out[result.outcome.value] += 1
        return out

    def must_failures(self, levels: dict[str, str]) -> list[Result]:
        """Must-level checks that failed or could not run."""
        return [r for r in self.results.values()
                if levels.get(r.check_id) == "must" and r.outcome in (Outcome.FAIL, Outcome.ERROR)]

    def to_dict(self) -> dict[str, Any]:
        return {"target": self.target, "model": self.model, "source": self.source,
                "started_at": self.started_at, "duration": round(self.duration, 2),
                "server_header": self.server_header, "counts": self.counts(),
                "results": {cid: r.to_dict() for cid, r in self.results.items()}}

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> "ServerRun":
        run = cls(data["target"], data.get("model"), data.get("source", ""),
                  data.get("started_at", ""), float(data.get("duration") or 0.0),
                  data.get("server_header"))
        run.results = {cid: Result.from_dict(cid, r) for cid, r in data["results"].items()}
        return run
