"""Run the real `claude` CLI against a stand-in upstream, for tests and measurements.

Each run gets fresh temporary HOME, cwd and TMPDIR directories (removed afterwards) and a
minimal environment, so nothing from the machine's own Claude Code setup leaks in. The process
is started in its own session and, if it outlives its timeout, that process group is killed.
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import tempfile
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Iterable, Mapping

from proxy.claude.invocation import SAFE_FLAGS

# The safe invocation the proxy uses (docs/standin.md), minus --model.
SAFE_ARGS: tuple[str, ...] = SAFE_FLAGS


def claude_path() -> str | None:
    return shutil.which("claude")


def user_line(content: str | list[dict[str, Any]]) -> str:
    """One stream-json stdin line carrying a user message (the SDK's shape)."""
    message = {"role": "user", "content": content}
    return json.dumps({"type": "user", "message": message, "parent_tool_use_id": None, "session_id": ""})


@dataclass
class CLIRun:
    """What one CLI process did."""

    argv: list[str]
    returncode: int | None  # None: killed after the timeout
    lines: list[str]  # stdout lines, without newlines
    line_times: list[float]  # seconds from spawn to each stdout line
    stderr: str
    wall: float  # seconds from spawn to exit (or to the kill)
    timed_out: bool = False
    started: float = 0.0  # time.monotonic() at spawn (compare with RecordedRequest.received_at)
    events: list[dict[str, Any]] = field(default_factory=list)  # the stdout lines that are JSON objects
    turn_starts: list[int] = field(default_factory=list)  # one_turn_at_a_time: index in `lines` of each turn

    def turns(self) -> list[list[dict[str, Any]]]:
        """The JSON stdout lines of each turn (one_turn_at_a_time runs)."""
        bounds = [*self.turn_starts, len(self.lines)]
        parsed = self._json_lines()
        return [[e for e in parsed[a:b] if e is not None] for a, b in zip(bounds, bounds[1:])]

    def of_type(self, type_: str, subtype: str | None = None) -> list[dict[str, Any]]:
        return [e for e in self.events if e.get("type") == type_ and (subtype is None or e.get("subtype") == subtype)]

    def stream_events(self, event_type: str | None = None) -> list[dict[str, Any]]:
        """The raw upstream SSE payloads the CLI forwarded (`stream_event` lines)."""
        found = [e["event"] for e in self.of_type("stream_event")]
        return [e for e in found if event_type is None or e.get("type") == event_type]

    @property
    def result(self) -> dict[str, Any]:
        """The last `result` line (AssertionError, with the stderr tail, if there is none)."""
        results = self.of_type("result")
        if not results:
            raise AssertionError(f"no result line (rc={self.returncode}); stderr: {self.stderr[-500:]!r}")
        return results[-1]

    def time_of_first(self, type_: str) -> float | None:
        for event, t in zip(self._json_lines(), self.line_times):
            if event is not None and event.get("type") == type_:
                return t
        return None

    def _json_lines(self) -> list[dict[str, Any] | None]:
        return [_parse(line) for line in self.lines]


def run_claude(
    base_url: str,
    stdin_lines: Iterable[str] | None = None,
    *,
    prompt: str | list[dict[str, Any]] = "hi",
    model: str = "sonnet",
    args: Iterable[str] = SAFE_ARGS,
    extra_args: Iterable[str] = (),
    env: Mapping[str, str] | None = None,
    timeout: float = 60.0,
    claude: str | None = None,
    one_turn_at_a_time: bool = False,
    cwd: str | None = None,
) -> CLIRun:
    """Spawn the CLI, write the stdin lines (default: one user line with `prompt`), close stdin,
    and collect stdout until exit. `env` adds to (or, with "", blanks) the base environment.

    `one_turn_at_a_time`: keep stdin open and write each line only after the `result` line of the
    one before (Claude Code's own session: one process, one user message a turn); close stdin after
    the last `result`. `CLIRun.turn_starts` then says where each turn's stdout lines begin."""
    binary = claude or claude_path()
    if binary is None:
        raise FileNotFoundError("the claude CLI is not on PATH")
    lines_in = list(stdin_lines) if stdin_lines is not None else [user_line(prompt)]
    argv = [binary, *args, *(["--model", model] if model else []), *extra_args]
    with tempfile.TemporaryDirectory(prefix="standin-cli-") as root:
        home, own_cwd, tmp = (Path(root) / d for d in ("home", "cwd", "tmp"))
        for d in (home, own_cwd, tmp):
            d.mkdir()
        cwd = cwd or str(own_cwd)  # a given cwd: e.g. the proxy's, to compare requests exactly
        full_env = {
            "PATH": os.environ.get("PATH", "/usr/local/bin:/usr/bin:/bin"),
            "LANG": "C.UTF-8",
            "HOME": str(home),
            "TMPDIR": str(tmp),
            "ANTHROPIC_BASE_URL": base_url,
            "ANTHROPIC_API_KEY": "sk-ant-standin",
            "CLAUDE_CODE_DISABLE_NONESSENTIAL_TRAFFIC": "1",
            "CLAUDE_CODE_MAX_RETRIES": "0",
            "DISABLE_AUTOUPDATER": "1",
            "DISABLE_TELEMETRY": "1",
        }
        full_env.update(env or {})
        full_env = {k: v for k, v in full_env.items() if v is not None}
        return _run(argv, lines_in, full_env, cwd, timeout, one_turn_at_a_time)


def _run(argv: list[str], stdin_lines: list[str], env: dict[str, str], cwd: str, timeout: float,
         one_turn_at_a_time: bool = False) -> CLIRun:
    started = time.monotonic()
    proc = subprocess.Popen(
        argv,
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        cwd=cwd,
        env=env,
        start_new_session=True,  # its own process group, so a timeout kills the CLI's children too
    )
    lines: list[str] = []
    times: list[float] = []
    stderr_parts: list[bytes] = []
    results = threading.Condition()
    turn_starts: list[int] = []

    def read_stdout() -> None:
        assert proc.stdout is not None
        for raw in proc.stdout:
            line = raw.decode("utf-8", "replace").rstrip("\n")
            with results:
                times.append(time.monotonic() - started)
                lines.append(line)
                if (_parse(line) or {}).get("type") == "result":
                    results.notify_all()
        with results:
            results.notify_all()  # EOF: nothing more will come

    def read_stderr() -> None:
        assert proc.stderr is not None
        stderr_parts.append(proc.stderr.read())

    readers = [threading.Thread(target=read_stdout, daemon=True), threading.Thread(target=read_stderr, daemon=True)]
    for t in readers:
        t.start()
    assert proc.stdin is not None
    deadline = started + timeout
    try:
        if one_turn_at_a_time:
            for turn, line in enumerate(stdin_lines):
                with results:
                    while _count_results(lines) < turn and readers[0].is_alive() and time.monotonic() < deadline:
                        results.wait(min(1.0, max(0.0, deadline - time.monotonic())))
                    turn_starts.append(len(lines))
                proc.stdin.write((line + "\n").encode())
                proc.stdin.flush()
            with results:
                while _count_results(lines) < len(stdin_lines) and readers[0].is_alive() \
                        and time.monotonic() < deadline:
                    results.wait(min(1.0, max(0.0, deadline - time.monotonic())))
        else:
            proc.stdin.write("".join(line + "\n" for line in stdin_lines).encode())
        proc.stdin.close()
    except BrokenPipeError:
        pass
    timed_out = False
    try:
        proc.wait(max(0.0, deadline - time.monotonic()))
    except subprocess.TimeoutExpired:
        timed_out = True
        try:
            os.killpg(proc.pid, signal.SIGKILL)  # the group we created with start_new_session
        except ProcessLookupError:
            pass
        proc.wait()
    wall = time.monotonic() - started
    for t in readers:
        t.join(5)
    run = CLIRun(
        argv=argv,
        returncode=None if timed_out else proc.returncode,
        lines=lines,
        line_times=times,
        stderr=b"".join(stderr_parts).decode("utf-8", "replace"),
        wall=wall,
        timed_out=timed_out,
        started=started,
        turn_starts=turn_starts,
    )
    run.events = [e for e in run._json_lines() if e is not None]
    return run


def _count_results(lines: list[str]) -> int:
    return sum(1 for line in lines if '"result"' in line and (_parse(line) or {}).get("type") == "result")


def _parse(line: str) -> dict[str, Any] | None:
    try:
        value = json.loads(line)
    except ValueError:
        return None
    return value if isinstance(value, dict) else None
