"""Test runners behind the proxy's one seam (proxy/runners/base.py), for generated requests.

Generated requests cannot match a recorded invocation, and replay mode rightly answers them
503 `fixture_not_found`. To put them on the 200 path anyway:

* `wildcard_replay(name)` is the real `ReplayRunner` with a matcher that accepts any
  invocation, so it answers every request with that one recorded cassette;
* `LinesRunner(lines)` plays given stdout lines (recorded or generated) for every run, so a
  property test can drive the real app with any CLI event stream;
* `replay_or(fallback)` is replay mode over every recorded cassette (fixtures/), answering
  what matches no recording from `fallback`: one server for recorded and generated requests.

The wildcard and lines runners record the invocations they were started with, for assertions
on what the proxy asked the CLI to do.
"""

from __future__ import annotations

import threading
from pathlib import Path
from typing import Sequence

from proxy.cassettes.cassette import Cassette
from proxy.cassettes.matcher import Matcher
from proxy.cassettes.persister import CassetteDirectory
from proxy.claude.invocation import Invocation
from proxy.errors import ProxyError
from proxy.runners.base import CLIProcess, ExitStatus, Runner
from proxy.runners.replay import ReplayProcess, ReplayRunner

REPO = Path(__file__).resolve().parents[2]
CASSETTES = REPO / "fixtures" / "cassettes"


def load_cassette(name: str) -> Cassette:
    return CassetteDirectory(CASSETTES).load(name)


def all_cassettes() -> list[Cassette]:
    return CassetteDirectory(CASSETTES).load_all()


def _any_invocation(invocation: Invocation, recorded: object) -> bool:
    return True


class WildcardReplay(ReplayRunner):
    """A ReplayRunner that answers every invocation with one cassette."""

    def __init__(self, cassette: Cassette, timing: str = "fast") -> None:
        super().__init__([cassette], timing=timing, matcher=Matcher([_any_invocation]),
                         source=f"wildcard:{cassette.name}")
        self.invocations: list[Invocation] = []

    def start(self, invocation: Invocation) -> ReplayProcess:
        self.invocations.append(invocation)
        return super().start(invocation)


def wildcard_replay(name: str = "plain_question", timing: str = "fast") -> WildcardReplay:
    return WildcardReplay(load_cassette(name), timing)


class LinesProcess:
    """A finished CLI run: its stdout lines are all there, then it reports its exit."""

    def __init__(self, lines: Sequence[str], returncode: int, stderr: str) -> None:
        self._lines = list(lines)
        self._next = 0
        self._status = ExitStatus(returncode, stderr)
        self.closed = False

    def read_line(self, timeout: float) -> str | None:
        if self.closed or self._next >= len(self._lines):
            raise EOFError
        self._next += 1
        return self._lines[self._next - 1]

    def exit_status(self, timeout: float | None = None) -> ExitStatus:
        return self._status

    def close(self) -> None:
        self.closed = True


class LinesRunner:
    """Plays the same stdout lines for every run (a Runner)."""

    def __init__(self, lines: Sequence[str], returncode: int = 0, stderr: str = "") -> None:
        self.lines = list(lines)
        self.returncode = returncode
        self.stderr = stderr
        self.invocations: list[Invocation] = []
        self.processes: list[LinesProcess] = []
        self._lock = threading.Lock()

    def start(self, invocation: Invocation) -> LinesProcess:
        process = LinesProcess(self.lines, self.returncode, self.stderr)
        with self._lock:
            self.invocations.append(invocation)
            self.processes.append(process)
        return process

    def close(self) -> None:
        for process in self.processes:
            process.close()


class ReplayOr:
    """Replay mode over fixtures/; an invocation no cassette matches goes to `fallback`."""

    def __init__(self, fallback: Runner, replay: ReplayRunner | None = None) -> None:
        self.replay = replay or ReplayRunner.from_directory(CASSETTES, timing="fast")
        self.fallback = fallback
        self.fell_back = 0

    def start(self, invocation: Invocation) -> CLIProcess:
        try:
            return self.replay.start(invocation)
        except ProxyError as exc:
            if exc.code != "fixture_not_found":
                raise
        self.fell_back += 1
        return self.fallback.start(invocation)

    def close(self) -> None:
        try:
            self.replay.close()
        finally:
            self.fallback.close()


def replay_or(fallback: Runner | None = None) -> ReplayOr:
    return ReplayOr(fallback if fallback is not None else wildcard_replay())
