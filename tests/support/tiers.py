"""What a test run proved, beyond pass and fail: a pytest plugin, and the check .ci/run applies.

A green run can prove less than it seems: live tests skipped because the CLI did not answer,
a fuzzer that reached the success path four times. The plugin counts, for the whole session:

* every test that ran or was skipped, and why it was skipped;
* the live tier (tests marked `live`): how many ran, how many were skipped;
* statistics that tests hand in through the `run_statistics` fixture (the fuzzing and
  property tests: how many generated requests reached a 200, how many streams were checked).

It prints them at the end of the run, and writes them as JSON to the file `CMA_RUN_REPORT`
names, if set. `.ci/run` sets it, then checks the report:

    python -m tests.support.tiers REPORT

fails (exit 1, saying why) when a test was skipped, when fewer than `LIVE_FLOOR` live tests
ran, or when statistics a CI run must produce are missing. (The floors on the statistics
themselves are asserted by the tests that collect them.)
"""

from __future__ import annotations

import json
import os
import sys
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Iterator

import pytest

ENV_REPORT = "CMA_RUN_REPORT"
# About 125 live tests exist; fewer than this means the tier shrank or stopped running.
LIVE_FLOOR = 100
# Statistics every CI run must hand in (the names the tests record them under).
REQUIRED_STATISTICS = (
    "schemathesis in process", "schemathesis over a socket",
    "request property", "servable request property",
)


@dataclass
class RunReport:
    outcomes: dict[str, str] = field(default_factory=dict)      # nodeid -> passed, failed,
    #                                                             error (in setup) or skipped
    live: set[str] = field(default_factory=set)                 # nodeids marked live
    skipped: dict[str, str] = field(default_factory=dict)       # nodeid -> reason
    statistics: dict[str, dict[str, Any]] = field(default_factory=dict)

    def record(self, report: pytest.TestReport, live: bool) -> None:
        if live:
            self.live.add(report.nodeid)
        if report.skipped:
            self.outcomes[report.nodeid] = "skipped"
            self.skipped[report.nodeid] = _skip_reason(report)
        elif report.failed:
            self.outcomes[report.nodeid] = "error" if report.when == "setup" else "failed"
        elif report.when == "call" and self.outcomes.get(report.nodeid) != "failed":
            self.outcomes[report.nodeid] = "passed"

    def add_statistics(self, name: str, values: dict[str, Any]) -> None:
        self.statistics[name] = values

    def summary(self) -> dict[str, Any]:
        live = Counter(self.outcomes.get(nodeid, "not run") for nodeid in self.live)
        return {
            "tests": dict(Counter(self.outcomes.values())),
            "live": {"ran": live["passed"] + live["failed"], "passed": live["passed"],
                     "failed": live["failed"], "errors": live["error"],
                     "skipped": live["skipped"]},
            "skipped": dict(sorted(self.skipped.items())),
            "statistics": self.statistics,
        }


def _skip_reason(report: pytest.TestReport) -> str:
    longrepr = report.longrepr
    if isinstance(longrepr, tuple) and len(longrepr) == 3:
        return str(longrepr[2]).removeprefix("Skipped: ")
    return str(longrepr)


def problems(summary: dict[str, Any], live_floor: int = LIVE_FLOOR,
             required: tuple[str, ...] = REQUIRED_STATISTICS) -> list[str]:
    """Why a run's report falls short of what CI claims ([] when it does not)."""
    found = []
    live = summary.get("live", {})
    if live.get("ran", 0) < live_floor:
        found.append(f"only {live.get('ran', 0)} live tests ran (at least {live_floor} must): "
                     f"the live tier did not run")
    for nodeid, reason in summary.get("skipped", {}).items():
        found.append(f"skipped in CI: {nodeid}: {reason}")
    missing = [name for name in required if name not in summary.get("statistics", {})]
    if missing:
        found.append(f"no statistics from {', '.join(missing)}: those tests did not run")
    return found


# ---------------------------------------------------------------------------- pytest plugin


_KEY = pytest.StashKey[RunReport]()


def pytest_configure(config: pytest.Config) -> None:
    config.stash[_KEY] = RunReport()


@pytest.hookimpl(wrapper=True)
def pytest_runtest_makereport(item: pytest.Item, call: pytest.CallInfo) -> Iterator[None]:
    report = yield
    item.config.stash[_KEY].record(report, live=item.get_closest_marker("live") is not None)
    return report


@pytest.fixture(scope="session")
def run_statistics(pytestconfig: pytest.Config) -> RunReport:
    """Where tests hand in statistics: `run_statistics.add_statistics(name, {...})`."""
    return pytestconfig.stash[_KEY]


def pytest_terminal_summary(terminalreporter: Any, config: pytest.Config) -> None:
    summary = config.stash[_KEY].summary()
    write = terminalreporter.write_line
    terminalreporter.section("what this run proved")
    live = summary["live"]
    write(f"live tier: {live['ran']} ran ({live['passed']} passed, {live['failed']} failed), "
          f"{live['errors']} could not start, {live['skipped']} skipped")
    for name, values in summary["statistics"].items():
        write(f"{name}: " + ", ".join(f"{k} {v}" for k, v in values.items()))
    path = os.environ.get(ENV_REPORT)
    if path:
        Path(path).write_text(json.dumps(summary, indent=1, sort_keys=True) + "\n")
        write(f"report written to {path}")


def main(argv: list[str] | None = None) -> int:
    args = sys.argv[1:] if argv is None else argv
    if len(args) != 1:
        print("usage: python -m tests.support.tiers REPORT.json", file=sys.stderr)
        return 2
    try:
        summary = json.loads(Path(args[0]).read_text())
    except (OSError, ValueError) as exc:
        print(f"no readable run report at {args[0]}: {exc}", file=sys.stderr)
        return 1
    found = problems(summary)
    for problem in found:
        print(f"CI: {problem}", file=sys.stderr)
    if not found:
        live = summary["live"]
        print(f"CI: the run report holds: {live['ran']} live tests ran, nothing skipped, "
              f"statistics from {len(summary['statistics'])} generators")
    return 1 if found else 0


if __name__ == "__main__":
    sys.exit(main())
