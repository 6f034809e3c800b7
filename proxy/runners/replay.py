"""The replay runner: answers each invocation from a recorded cassette, no CLI needed.

A request finds its cassette through the matcher (proxy/cassettes/matcher.py: the model, the
system prompt, the earlier turns, the user turn and the output limit by default). No match is
a 503 `fixture_not_found` whose message (and the log) names the closest cassettes and the first
difference of each. A cassette can be replayed any number of times, concurrently.

Timing: "fast" hands out every line at once, as if the CLI had already finished and its output
sat in the pipe; "recorded" hands out each line at its recorded offset, so streams look as
they did live. The replayed process behaves like a live one towards the proxy: `close()` is
idempotent and ends the run (a run closed before its recorded exit reports 143, as the CLI
does on SIGTERM), `exit_status()` waits like a live process would.
"""

from __future__ import annotations

import logging
import os
from collections import deque
import threading
import time
from typing import Callable, Sequence

from proxy.cassettes.cassette import Cassette
from proxy.cassettes.matcher import DEFAULT_MATCH_ON, Matcher, describe
from proxy.cassettes.persister import CassetteDirectory
from proxy.claude.invocation import Invocation
from proxy.errors import ProxyError
from proxy.runners.base import ExitStatus

log = logging.getLogger("claude_max_api.replay")

TIMINGS = ("fast", "recorded")
SIGTERM_EXIT = 143  # what the CLI exits with when the proxy ends it
_MEMO_SIZE = 4096
MISS_MESSAGE_CHARS = 1500


class ReplayRunner:
    def __init__(self, cassettes: Sequence[Cassette], *, timing: str = "fast",
                 matcher: Matcher | None = None, source: str = "", miss_hint: str = "",
                 clock: Callable[[], float] = time.monotonic) -> None:
        if timing not in TIMINGS:
            raise ValueError(f"replay timing must be one of {', '.join(TIMINGS)}, not {timing!r}")
        self.cassettes: list[Cassette] = []
        self.timing = timing
        self.matcher = matcher or Matcher()
        self.source = source or "the loaded cassettes"
        self.miss_hint = miss_hint  # said after a miss: how to record what is missing
        self._clock = clock
        self._lock = threading.Lock()
        self._open: set[ReplayProcess] = set()
        # Names of the cassettes replayed, latest last (diagnostics; bounded for long serving).
        self.started: deque[str] = deque(maxlen=1000)
        # The cassettes by the key of their match view: a request finds its own in one lookup.
        self._index: dict[str, list[Cassette]] = {}
        # Invocations are frozen and hashable: a request seen before skips the match.
        self._found: dict[Invocation, Cassette] = {}
        for cassette in cassettes:
            self.add(cassette)

    @classmethod
    def from_directory(cls, path: str | os.PathLike[str], timing: str = "fast",
                       match_on: Sequence[str] = DEFAULT_MATCH_ON,
                       ignore: Sequence[str] = (), miss_hint: str = "") -> "ReplayRunner":
        """Every cassette below `path`; ValueError (a clear one, for the command line) if the
        directory is missing, holds no cassette or holds a damaged one."""
        try:
            cassettes = CassetteDirectory(path).load_all()
        except FileNotFoundError as exc:
            raise ValueError(f"cannot replay: {exc}") from None
        if not cassettes:
            raise ValueError(f"cannot replay: no cassettes below {path}")
        return cls(cassettes, timing=timing, matcher=Matcher(match_on, ignore=ignore),
                   source=str(path), miss_hint=miss_hint)

    def add(self, cassette: Cassette, *, replace_equal: bool = False) -> list[Cassette]:
        """Adds a cassette (one recorded while serving), replacing the one of the same name;
        with `replace_equal` also those that answer the same requests. Returns those others."""
        key = self.matcher.key(self.matcher.recorded_view(cassette.invocation)) \
            if self.matcher.keyed else ""
        with self._lock:
            replaced = [c for c in self._index.get(key, ()) if c.name != cassette.name] \
                if replace_equal and self.matcher.keyed else []
            gone = {cassette.name, *(c.name for c in replaced)}
            self.cassettes = [c for c in self.cassettes if c.name not in gone] + [cassette]
            for same in self._index.values():
                same[:] = [c for c in same if c.name not in gone]
            self._index.setdefault(key, []).append(cassette)
            self._found.clear()
        return replaced

    def matching(self, invocation: Invocation) -> list[Cassette]:
        """Every cassette that answers this invocation (oldest first)."""
        if self.matcher.keyed:
            key = self.matcher.key(self.matcher.asked_view(invocation))
            with self._lock:
                return list(self._index.get(key, ()))
        with self._lock:
            cassettes = list(self.cassettes)
        return [c for c in cassettes if self.matcher.matches(invocation, c.invocation)]

    def find(self, invocation: Invocation) -> Cassette:
        known = self._found.get(invocation)
        if known is not None:
            return known
        found = self.matching(invocation)
        if not found:
            raise self.miss(invocation)
        if len(found) > 1:
            log.warning("replay: %d cassettes match %s; using %s (others: %s)", len(found),
                        describe(invocation), found[0].name,
                        ", ".join(c.name for c in found[1:]))
        with self._lock:
            if len(self._found) >= _MEMO_SIZE:
                self._found.clear()
            self._found[invocation] = found[0]
        return found[0]

    def miss(self, invocation: Invocation) -> ProxyError:
        """The 503 for a request no cassette answers: it names the closest cassettes and the
        first difference of each, in words; the log says the same."""
        with self._lock:
            cassettes = list(self.cassettes)
        nearest = self.matcher.nearest(invocation, cassettes)
        closest = "; ".join(n.describe() for n in nearest) or "none (no cassettes)"
        log.warning("replay: no cassette in %s matches %s (match_on: %s%s); closest: %s",
                    self.source, describe(invocation), ", ".join(self.matcher.match_on),
                    f"; ignoring {', '.join(self.matcher.ignore)}" if self.matcher.ignore
                    else "", "; ".join(n.describe(pointer=True) for n in nearest) or "none")
        message = (f"No recorded CLI run in {self.source} matches this request ("
                   f"{describe(invocation)}). Closest: {closest}.")
        if len(message) > MISS_MESSAGE_CHARS:
            message = message[:MISS_MESSAGE_CHARS - 1] + "…"
        if self.miss_hint:
            message += " " + self.miss_hint
        return ProxyError(503, message, code="fixture_not_found")

    def start(self, invocation: Invocation) -> "ReplayProcess":
        cassette = self.find(invocation)
        process = ReplayProcess(cassette, timing=self.timing, clock=self._clock,
                                on_close=self._forget)
        with self._lock:
            self._open.add(process)
            self.started.append(cassette.name)
        log.debug("replay: %s (%s timing)", cassette.name, self.timing)
        return process

    def open_processes(self) -> list["ReplayProcess"]:
        with self._lock:
            return list(self._open)

    def _forget(self, process: "ReplayProcess") -> None:
        with self._lock:
            self._open.discard(process)

    def close(self) -> None:
        for process in self.open_processes():
            process.close()


class ReplayProcess:
    """One replayed CLI run: the cassette's stdout lines, then its exit status."""

    def __init__(self, cassette: Cassette, *, timing: str = "fast",
                 clock: Callable[[], float] = time.monotonic,
                 on_close: Callable[["ReplayProcess"], None] | None = None) -> None:
        self.cassette = cassette
        self.timing = timing
        self._clock = clock
        self._on_close = on_close
        self._started_at = clock()
        self._next = 0
        self._closed_at: float | None = None  # run time at close, None while open
        self._wake = threading.Event()  # set by close(): ends any wait at once
        self._lock = threading.Lock()

    @property
    def closed(self) -> bool:
        return self._closed_at is not None

    def _elapsed(self) -> float:
        return self._clock() - self._started_at

    def _exited(self) -> bool:
        """Whether the recorded run would have ended by now."""
        if self.timing == "fast":
            return True
        return self._elapsed() >= self.cassette.exit_offset

    # -- CLIProcess -----------------------------------------------------------------------
    def read_line(self, timeout: float) -> str | None:
        lines = self.cassette.stdout
        if self.closed:
            raise EOFError
        if self._next >= len(lines):
            if self.cassette.ending.closed_by_proxy and self._next == len(lines):
                self._next += 1  # warn once
                log.warning("replay: %s ends where the recording proxy closed the run, but this "
                            "proxy read on: the proxy's behaviour changed; re-record it",
                            self.cassette.name)
            raise EOFError
        if self.timing == "recorded":
            wait = self.cassette.offsets[self._next] - self._elapsed()
            if wait > 0:
                if wait > timeout:
                    self._wake.wait(max(0.0, timeout))
                    return None
                self._wake.wait(wait)
                if self.closed:
                    raise EOFError
        line = lines[self._next]
        self._next += 1
        return line

    def exit_status(self, timeout: float | None = None) -> ExitStatus:
        ending = self.cassette.ending
        if self.closed:
            # A run the proxy closed before its recorded end was ended by SIGTERM.
            ended_early = self.timing == "recorded" \
                and self._closed_at < self.cassette.exit_offset  # type: ignore[operator]
            return ExitStatus(SIGTERM_EXIT, "") if ended_early else \
                ExitStatus(ending.returncode, ending.stderr)
        if not self._exited():
            left = self.cassette.exit_offset - self._elapsed()
            if timeout is not None and left > timeout:
                self._wake.wait(max(0.0, timeout))
                return ExitStatus(None, "")
            self._wake.wait(max(0.0, left))
            if self.closed:
                return self.exit_status()
        return ExitStatus(ending.returncode, ending.stderr)

    def close(self) -> None:
        with self._lock:
            if self.closed:
                return
            self._closed_at = self._elapsed()
        self._wake.set()
        if self._on_close is not None:
            self._on_close(self)
