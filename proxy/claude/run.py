"""Drives one CLI process to its end: events out, time limits and client departure enforced.

The request thread waits on the process in short slices (POLL seconds), so between lines it
can notice that the client went away (waitress's `client_disconnected`, reliable with
`channel_request_lookahead=1`) or that a time limit passed, and end the process at once.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Any, Callable, Iterator, Protocol

from proxy.claude import failures
from proxy.claude.events import Activity, Event, EventTranslator, Failed, Finished, TextDelta
from proxy.errors import ProxyError
from proxy.runners.base import CLIProcess

POLL = 0.1


class ClientGone(Exception):
    """The HTTP client disconnected; the run was ended."""


@dataclass(frozen=True)
class Idle:
    """No output for `seconds`; lets a stream send a heartbeat."""
    seconds: float


class PlanObserver(Protocol):
    """Told what a run learns about the Claude plan (proxy/plan.py PlanTracker)."""
    def observe(self, info: Any) -> None: ...
    def observe_failure(self, error: ProxyError) -> None: ...


@dataclass(frozen=True)
class Limits:
    total: float = 600.0
    idle: float = 300.0


class CLIRun:
    def __init__(self, process: CLIProcess, *, limits: Limits = Limits(),
                 is_disconnected: Callable[[], bool] = lambda: False,
                 clock: Callable[[], float] = time.monotonic,
                 started_at: float | None = None,
                 on_close: Callable[[], None] | None = None,
                 plan: PlanObserver | None = None, tools: Any = None,
                 referee: Any = None, structured: Any = None) -> None:
        self.process = process
        self.plan = plan
        self._on_close = on_close
        self.limits = limits
        self.is_disconnected = is_disconnected
        self.tools = tools  # the request's proxy.tools.spec.ToolRequest, when it offers tools
        self.referee = referee  # checks tool turns against tool_choice and strict
        self.translator = EventTranslator(tools, structured)
        # a kept process's turn that this request's tool results continue (usage: events.py)
        self.translator.continues_turn = bool(getattr(process, "continues_turn", False))
        self._clock = clock
        self.started_at = clock() if started_at is None else started_at
        self.first_output_at: float | None = None
        self.first_text_at: float | None = None  # the first content (first-token latency)
        self.outcome: Event | None = None

    def events(self) -> Iterator[Event | Idle]:
        """Yields events until Finished or Failed (always the last one); raises ClientGone.
        With a referee (proxy/tools/guard.py), each attempt is held back until it holds."""
        try:
            if self.referee is None:
                yield from self._read()
            else:
                yield from self.referee.guard(self, self._read())
        finally:
            self.close()

    def reopen(self) -> None:
        """Reads on past an outcome: the proxy asked the model again in the same run."""
        self.outcome = None
        self.translator.reopen()
        handle = self.process
        for _ in range(8):  # down the wrappers to the turn handle, if there is one
            if hasattr(handle, "reopen"):
                handle.reopen()
                break
            handle = getattr(handle, "inner", None) or getattr(handle, "process", None)
            if handle is None:
                break

    def _read(self) -> Iterator[Event | Idle]:
        last_output = last_probe = self._clock()
        while True:
            try:
                line = self.process.read_line(POLL)
            except EOFError:
                status = self.process.exit_status(timeout=5.0)
                for event in self.translator.end_of_output(status.returncode, status.stderr):
                    yield from self._emit(event)
                return
            now = self._clock()
            if now - self.started_at > self.limits.total:
                yield from self._emit(Failed(failures.timeout("total", self.limits.total)))
                return
            # Probed between lines too: a non-streaming client that leaves while the CLI
            # writes steadily must not keep its process running to the end.
            if line is None or now - last_probe >= POLL:
                last_probe = now
                if self.is_disconnected():
                    raise ClientGone()
            if line is None:
                if now - last_output > self.limits.idle:
                    yield from self._emit(Failed(failures.timeout("idle", self.limits.idle)))
                    return
                yield Idle(now - last_output)
                continue
            last_output = now
            if self.first_output_at is None:
                self.first_output_at = now
            for event in self.translator.feed(line):
                if self.first_text_at is None and isinstance(event, TextDelta):
                    self.first_text_at = now
                yield from self._emit(event)
                if self.outcome is not None:
                    return

    def _emit(self, event: Event) -> Iterator[Event]:
        if isinstance(event, (Finished, Failed)):
            self.outcome = event
        if self.plan is not None:  # as soon as it is read: other requests' headers use it
            if isinstance(event, Activity) and event.kind == "rate_limit_event":
                self.plan.observe(self.translator.rate_limit)
            elif isinstance(event, Failed):
                self.plan.observe_failure(event.error)
        yield event

    def close(self) -> None:
        try:
            self.process.close()
        finally:
            on_close, self._on_close = self._on_close, None
            if on_close is not None:
                on_close()
