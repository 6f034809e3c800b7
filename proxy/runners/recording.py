"""The recording runner: wraps a live runner and turns every run into a cassette.

The proxy drives a recording run exactly like a live one (same seam, same reads, same close),
so the cassette holds what the proxy saw: each stdout line with its time offset, stderr and
the exit status. When the run ends the cassette is redacted, scanned for leaks and handed to
`on_cassette` (typically `CassetteDirectory.save`).

Two endings need a decision:
* the proxy closes a run right after the CLI's `result` line (it has its answer); the CLI is
  then still exiting, so the recorder first lets it finish on its own (bounded), to store its
  real exit status instead of the SIGTERM the close would cause;
* the proxy closes a run before any `result` (it ends a `max_tokens` turn at once): that is
  stored as it happened, the lines read so far and `closed_by_proxy: true`.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import logging
import os
import threading
import time
from typing import Callable, Mapping, Sequence

from proxy.cassettes import serializer
from proxy.cassettes.cassette import Cassette, Ending, RecordedInvocation, Recording
from proxy.cassettes.redaction import Redactor, cassette_leaks
from proxy.claude.invocation import (RESUME_AT_TOKEN, SESSION_ID_TOKEN,
                                     SYSTEM_PROMPT_FILE_TOKEN, Invocation)
from proxy.conversations.turns import fingerprint
from proxy.runners.base import CLIProcess, ExitStatus, Runner

log = logging.getLogger("claude_max_api.recording")

DRAIN_AFTER_RESULT = 10.0  # seconds the CLI gets to exit by itself after its result line
EXIT_WAIT = 10.0


@dataclasses.dataclass(frozen=True)
class InvocationWithArgs(Invocation):
    """An invocation with CLI arguments the proxy does not produce itself (e.g. a recording
    with `--fallback-model`). Matching ignores them unless `argv` is in match_on."""

    extra_args: tuple[str, ...] = ()

    @classmethod
    def of(cls, invocation: Invocation, extra_args: Sequence[str]) -> "InvocationWithArgs":
        values = {f.name: getattr(invocation, f.name) for f in dataclasses.fields(Invocation)}
        return cls(**values, extra_args=tuple(extra_args))

    def argv(self, system_prompt_file: str = SYSTEM_PROMPT_FILE_TOKEN,
             session_id: str = SESSION_ID_TOKEN, resume_at: str = RESUME_AT_TOKEN) -> list[str]:
        return [*super().argv(system_prompt_file, session_id, resume_at), *self.extra_args]


def default_name(invocation: Invocation) -> str:
    """A name from everything the default matcher compares (proxy/cassettes/matcher.py), so
    two runs a replay tells apart never share a name (and one is never dropped as a repeat)."""
    key = "\n".join([*invocation.stdin_lines(), invocation.model, invocation.system_prompt,
                     repr(invocation.max_output_tokens),
                     *(f"{t.role}:{b}" for t in invocation.history for b in t.blocks)])
    # Reasoning, tools and a format only when set, so the names of runs without them stay.
    key += "".join(f"\n{name}={getattr(invocation, name)}"
                   for name in ("effort", "thinking", "thinking_display", "json_schema")
                   if getattr(invocation, name) is not None)
    key += "".join(f"\ntool={t.name}:{t.schema}" for t in invocation.tools)
    return "run-" + hashlib.sha256(key.encode("utf-8", "surrogatepass")).hexdigest()[:12]


class RecordingFailed(Exception):
    """A run could not be turned into a cassette (a leak the redaction missed, ...)."""


class RecordingRunner:
    def __init__(self, inner: Runner, on_cassette: Callable[[Cassette], None] | None = None, *,
                 name_for: Callable[[Invocation], str] = default_name,
                 recording: Recording | None = None, cli_version: str | None = None,
                 paths: Mapping[str, str] | None = None, extra_args: Sequence[str] = (),
                 with_request: bool = False,
                 clock: Callable[[], float] = time.monotonic) -> None:
        self.inner = inner
        self.on_cassette = on_cassette
        self.name_for = name_for
        self.recording = recording or Recording()
        self.cli_version = cli_version
        self.paths = dict(paths or {})
        self.extra_args = tuple(extra_args)
        # Write how the client asked (`recording.request`): for recordings of users' apps; the
        # catalogue's cassettes have their requests in the catalogue.
        self.with_request = with_request
        self._clock = clock
        self._lock = threading.Lock()
        self.cassettes: list[Cassette] = []
        self.failures: list[tuple[str, str]] = []  # (cassette name, why)

    def start(self, invocation: Invocation) -> "RecordingProcess":
        run_as = InvocationWithArgs.of(invocation, self.extra_args) if self.extra_args \
            else invocation
        started = self._clock()
        process = self.inner.start(run_as)
        # A conversation runner (proxy/conversations/runner.py) may have written this turn to
        # a process kept from the previous one; its handle says so.
        continued = getattr(process, "continued", False) is True
        recording = self.recording
        if continued:
            recording = dataclasses.replace(recording, process="continued")
        if self.with_request and invocation.request is not None:
            recording = dataclasses.replace(recording, request=dict(invocation.request))
        return RecordingProcess(process, RecordedInvocation.of(invocation, run_as.argv()),
                                self.name_for(invocation), started, self._finish, self._clock,
                                recording=recording)

    def close(self) -> None:
        self.inner.close()

    def __getattr__(self, name: str):
        # What the rest of the server asks a runner (claude_bin, base_env, pool_state,
        # conversation_state...) is the wrapped runner's.
        if name.startswith("__") or name == "inner":
            raise AttributeError(name)
        return getattr(self.inner, name)

    def _redaction_paths(self, process: CLIProcess) -> dict[str, str]:
        paths = dict(self.paths)
        req_dir = getattr(process, "req_dir", None)
        if req_dir is not None:
            paths.update({str(req_dir / "tmp"): "<TMPDIR>",
                          str(req_dir): "<REQUEST_DIR>"})
        sessions = _part(self.inner, "sessions")
        if sessions is not None:
            paths[os.path.realpath(sessions.cwd)] = "<CWD>"
            paths[str(sessions.cwd)] = "<CWD>"
        work_root = _part(self.inner, "work_root")
        if work_root is not None:
            paths.setdefault(str(work_root.path), "<WORK_ROOT>")
        return paths

    def _finish(self, run: "RecordingProcess") -> None:
        try:
            cassette = self.build(run)
        except Exception as exc:  # recording must never break the run it records
            log.error("recording %s failed: %s", run.name, exc)
            with self._lock:
                self.failures.append((run.name, str(exc)))
            return
        with self._lock:
            self.cassettes.append(cassette)
        if self.on_cassette is not None:
            try:
                self.on_cassette(cassette)
            except Exception as exc:
                log.error("saving cassette %s failed: %s", cassette.name, exc)
                with self._lock:
                    self.failures.append((cassette.name, str(exc)))

    def build(self, run: "RecordingProcess") -> Cassette:
        redactor = Redactor(self._redaction_paths(run.inner))
        status = run.status or ExitStatus(None, "")
        cassette = Cassette(
            name=run.name,
            invocation=run.invocation,
            stdout=tuple(redactor.stdout_line(line) for line in run.lines),
            offsets=tuple(run.offsets),
            exit_offset=run.exit_offset,
            ending=Ending(returncode=status.returncode, stderr=redactor.text(status.stderr),
                          closed_by_proxy=run.closed_by_proxy),
            recording=run.recording or self.recording,
            cli_version=self.cli_version,
        )
        leaks = cassette_leaks(serializer.dumps(cassette))
        if leaks:
            raise RecordingFailed(f"cassette {run.name} not written: it would carry "
                                  + "; ".join(map(str, leaks[:5])) + " (the request is kept "
                                  "verbatim for matching: a secret, e-mail address or machine "
                                  "path in a prompt cannot be recorded)")
        return cassette


def _part(runner: object, name: str) -> object | None:
    """An attribute of a runner or of the runners it wraps (a conversation runner around a
    warm pool around the live runner)."""
    for _ in range(4):
        if runner is None:
            return None
        found = getattr(runner, name, None)
        if found is not None:
            return found
        runner = getattr(runner, "inner", None) or getattr(runner, "live", None)
    return None


class RecordingProcess:
    """A live CLIProcess whose output is kept as it is read.

    It may wrap a conversation turn (a TurnHandle), whose process lives on after the turn: its
    output ends at the turn's `result` line and it reports exit 0 then, so the wait for the
    CLI to exit after its result ends at once instead of after DRAIN_AFTER_RESULT."""

    def __init__(self, inner: CLIProcess, invocation: RecordedInvocation, name: str,
                 started: float, finish: Callable[["RecordingProcess"], None],
                 clock: Callable[[], float] = time.monotonic, *,
                 recording: Recording | None = None) -> None:
        self.inner = inner
        self.invocation = invocation
        self.name = name
        self.recording = recording
        self._started = started
        self._finish = finish
        self._clock = clock
        self.lines: list[str] = []
        self.offsets: list[float] = []
        self.saw_result = False
        self.eof = False
        self.closed_by_proxy = False
        self.status: ExitStatus | None = None
        self.exit_offset = 0.0
        self._closed = False
        self._lock = threading.Lock()

    @property
    def pid(self) -> int | None:
        return getattr(self.inner, "pid", None)

    def _now(self) -> float:
        return self._clock() - self._started

    def _keep(self, line: str) -> None:
        self.lines.append(line)
        self.offsets.append(self._now())
        if not self.saw_result and line.startswith("{") and '"result"' in line:
            try:
                self.saw_result = json.loads(line).get("type") == "result"
            except (ValueError, AttributeError):
                pass

    # -- CLIProcess -----------------------------------------------------------------------
    def read_line(self, timeout: float) -> str | None:
        try:
            line = self.inner.read_line(timeout)
        except EOFError:
            self.eof = True
            raise
        if line is not None:
            self._keep(line)
        return line

    def exit_status(self, timeout: float | None = None) -> ExitStatus:
        status = self.inner.exit_status(timeout)
        if status.returncode is not None and self.status is None:
            self.status = status
            self.exit_offset = self._now()
        return status

    def close(self) -> None:
        with self._lock:
            if self._closed:
                return
            self._closed = True
        try:
            if not self.eof and self.saw_result:
                self._drain()
            if not self.eof:
                self.closed_by_proxy = True
                self.exit_offset = self._now()
            self.inner.close()
            if self.status is None or self.status.returncode is None:
                self.status = self.inner.exit_status(EXIT_WAIT)
                if not self.closed_by_proxy:
                    self.exit_offset = self._now()
        finally:
            self._finish(self)

    def _drain(self) -> None:
        deadline = self._clock() + DRAIN_AFTER_RESULT
        while self._clock() < deadline:
            try:
                line = self.inner.read_line(min(0.5, max(0.0, deadline - self._clock())))
            except EOFError:
                self.eof = True
                self.exit_status(EXIT_WAIT)
                return
            if line is not None:
                self._keep(line)
