"""The one seam between the proxy and whatever produces CLI output.

Like an httpx transport: `Runner.start(invocation)` returns a `CLIProcess`, a stream of stdout
lines with `close()`. The live runner spawns `claude`, the replay runner reads a cassette, the
recording runner wraps the live one and writes cassettes; the HTTP layer cannot tell them apart.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Protocol, runtime_checkable

from proxy.claude.invocation import Invocation


@dataclass(frozen=True)
class ExitStatus:
    returncode: int | None  # None: still running when asked; negative: ended by that signal
    stderr: str


@runtime_checkable
class CLIProcess(Protocol):
    def read_line(self, timeout: float) -> str | None:
        """The next stdout line without its newline, or None if none arrived within `timeout`.

        Raises EOFError once stdout has ended and every line has been read.
        """

    def exit_status(self, timeout: float | None = None) -> ExitStatus:
        """Waits up to `timeout` seconds for the process to end and reports how it ended."""

    def close(self) -> None:
        """Ends the process (and everything it started) and removes its files. Idempotent."""


@runtime_checkable
class Runner(Protocol):
    def start(self, invocation: Invocation) -> CLIProcess:
        """Starts one CLI run. Raises ProxyError when it cannot (CLI missing, no fixture...)."""

    def close(self) -> None:
        """Releases everything the runner holds (warm processes, directories)."""
