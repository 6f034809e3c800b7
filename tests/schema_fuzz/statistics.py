"""How far schemathesis's generated chat requests got, and the floors they are held to.

The fuzz tests record every chat exchange that passed schemathesis's checks; at the end of the
module the counts are handed to the run report (tests/support/tiers.py, printed by CI) and
held to floors, so that a change which makes the server refuse everything, or generation
collapse, fails the run instead of passing on refusals:

* of the valid requests of the fuzzing phase (steered, tests/schema_fuzz/steering.py), at
  least `MIN_2XX_SHARE` are answered 2xx (about 90% are);
* at least `MIN_STREAM_SHARE` of them are whole streams the stream rules checked (about 75%);
* the fuzzing phase made at least a quarter of its budget of valid requests (about half of
  the budget is spent on invalid ones).
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field
from typing import Any

from tests.schema_fuzz.hooks import is_chat_case, whole_stream_checked

MIN_2XX_SHARE = 0.6
MIN_STREAM_SHARE = 0.4
MIN_VALID_SHARE_OF_BUDGET = 0.25


@dataclass
class FuzzStatistics:
    budget: int                                            # fuzzing examples of the chat operation
    calls: Counter = field(default_factory=Counter)        # (phase, mode) -> chat calls
    answered_2xx: Counter = field(default_factory=Counter)
    streams: Counter = field(default_factory=Counter)      # whole streams the rules checked
    refusals: Counter = field(default_factory=Counter)     # codes of refused valid fuzz requests

    def record(self, case: Any, response: Any) -> None:
        if not is_chat_case(case):
            return
        meta = case.meta
        key = (meta.phase.name.value, meta.generation.mode.value) if meta is not None \
            else ("explicit", "positive")
        self.calls[key] += 1
        if 200 <= response.status_code < 300:
            self.answered_2xx[key] += 1
        if whole_stream_checked(case, response):
            self.streams[key] += 1
        if key == ("fuzzing", "positive") and response.status_code >= 400:
            try:
                self.refusals[response.json()["error"]["code"]] += 1
            except (ValueError, KeyError, TypeError):
                self.refusals[str(response.status_code)] += 1

    @property
    def ran(self) -> bool:
        return sum(self.calls.values()) > 0

    def values(self) -> dict[str, Any]:
        valid = self.calls["fuzzing", "positive"]
        served = self.answered_2xx["fuzzing", "positive"]
        return {
            "chat calls": sum(self.calls.values()),
            "valid fuzzing requests": valid,
            "answered 2xx": served,
            "2xx share": round(served / valid, 3) if valid else 0.0,
            "streams checked (fuzzing)": self.streams["fuzzing", "positive"],
            "streams checked (all phases)": sum(self.streams.values()),
            "refused valid fuzzing requests": dict(self.refusals.most_common()),
        }

    def shortfalls(self) -> list[str]:
        valid = self.calls["fuzzing", "positive"]
        served = self.answered_2xx["fuzzing", "positive"]
        streams = self.streams["fuzzing", "positive"]
        found = []
        if valid < MIN_VALID_SHARE_OF_BUDGET * self.budget:
            found.append(f"the fuzzing phase made {valid} valid chat requests, under "
                         f"{MIN_VALID_SHARE_OF_BUDGET:.0%} of its budget of {self.budget}")
        if served < MIN_2XX_SHARE * valid or not served:
            found.append(f"{served} of {valid} valid fuzzing requests were answered 2xx (at "
                         f"least {MIN_2XX_SHARE:.0%} must be); refused: "
                         f"{dict(self.refusals.most_common(8))}")
        if streams < MIN_STREAM_SHARE * valid or not streams:
            found.append(f"{streams} of {valid} valid fuzzing requests were whole streams the "
                         f"stream rules checked (at least {MIN_STREAM_SHARE:.0%} must be)")
        return found
