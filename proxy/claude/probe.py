"""Cheap facts about the installed CLI, for readiness and `doctor`: where it is, its version,
whether it has a login.

* `claude --version` prints e.g. `2.1.332 (Claude Code)`; cached per executable and mtime, so
  an upgrade in place is noticed.
* `claude auth status --json` (CLI 2.1.332: about 0.3 s, no network) prints
  `{"loggedIn": bool, "authMethod": "oauth_token" | "api_key" | "none", ...}` and exits 1 when
  not logged in. It sees the same credentials a run would (HOME, CLAUDE_CODE_OAUTH_TOKEN,
  ANTHROPIC_API_KEY), because it gets the runner's environment. It tells whether a login
  exists, not whether Anthropic still accepts it; a revoked login shows up as a 503
  `upstream_authentication_failed` on requests, and in `doctor --live`.

The login answer is cached: `login_ttl` seconds when logged in, less when not, so logging in
is noticed soon. One thread probes at a time; the others get the cached answer.
"""

from __future__ import annotations

import json
import os
import subprocess
import tempfile
import threading
import time
from dataclasses import asdict, dataclass
from typing import Any, Callable, Mapping

from proxy.claude.version import PINNED_CLI_VERSION

PROBE_TIMEOUT = 20.0
NOT_LOGGED_IN_TTL = 10.0


@dataclass(frozen=True)
class CLIStatus:
    found: bool
    path: str | None = None
    version: str | None = None
    pinned_version: str = PINNED_CLI_VERSION
    logged_in: bool | None = None      # None: unknown (the check itself failed)
    auth_method: str | None = None
    detail: str | None = None          # why something is unknown or missing

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


class CLIProbe:
    def __init__(self, locate: Callable[[], str | None],
                 environ: Callable[[str], Mapping[str, str]], *, login_ttl: float = 60.0,
                 timeout: float = PROBE_TIMEOUT, clock: Callable[[], float] = time.monotonic) -> None:
        """`locate()` finds the executable; `environ(tmpdir)` is the environment of a run."""
        self.locate = locate
        self.environ = environ
        self.login_ttl = login_ttl
        self.timeout = timeout
        self.clock = clock
        self._lock = threading.Lock()
        self._versions: dict[tuple[str, float], str | None] = {}
        self._login: tuple[float, str, bool | None, str | None, str | None] | None = None

    def status(self) -> CLIStatus:
        path = self.locate()
        if path is None:
            return CLIStatus(found=False, detail="the `claude` executable was not found")
        with self._lock:
            version = self._version(path)
            logged_in, method, detail = self._login_state(path)
        return CLIStatus(found=True, path=path, version=version, logged_in=logged_in,
                         auth_method=method, detail=detail)

    def _run(self, path: str, *args: str) -> subprocess.CompletedProcess[str]:
        with tempfile.TemporaryDirectory(prefix="claude-max-api-probe-") as tmp:
            return subprocess.run([path, *args], capture_output=True, text=True, cwd=tmp,
                                  env=dict(self.environ(tmp)), timeout=self.timeout,
                                  stdin=subprocess.DEVNULL)

    def _version(self, path: str) -> str | None:
        try:
            key = (path, os.stat(path).st_mtime)
        except OSError:
            key = (path, 0.0)
        if key not in self._versions:
            try:
                out = self._run(path, "--version")
                words = out.stdout.split()
                self._versions[key] = words[0] if out.returncode == 0 and words else None
            except (OSError, subprocess.SubprocessError):
                self._versions[key] = None
        return self._versions[key]

    def _login_state(self, path: str) -> tuple[bool | None, str | None, str | None]:
        now = self.clock()
        if self._login is not None:
            checked_at, for_path, logged_in, method, detail = self._login
            ttl = self.login_ttl if logged_in else min(self.login_ttl, NOT_LOGGED_IN_TTL)
            if for_path == path and now - checked_at < ttl:
                return logged_in, method, detail
        logged_in, method, detail = self._check_login(path)
        self._login = (now, path, logged_in, method, detail)
        return logged_in, method, detail

    def _check_login(self, path: str) -> tuple[bool | None, str | None, str | None]:
        try:
            out = self._run(path, "auth", "status", "--json")
        except subprocess.TimeoutExpired:
            return None, None, f"`claude auth status` did not answer within {self.timeout:g} s"
        except (OSError, subprocess.SubprocessError) as exc:
            return None, None, f"`claude auth status` could not run: {exc}"
        try:
            report = json.loads(out.stdout)
            logged_in = report["loggedIn"]
        except (ValueError, KeyError, TypeError):
            tail = (out.stderr or out.stdout).strip().splitlines()[-1:] or [""]
            return None, None, f"`claude auth status` gave no login report ({tail[0][:200]})"
        if not isinstance(logged_in, bool):
            return None, None, "`claude auth status` gave no login report"
        method = report.get("authMethod")
        return logged_in, method if isinstance(method, str) else None, None
