"""`claude-max-api doctor`: checks the setup and says how to fix each problem.

Each check returns a Check: `ok`, `warn` (works, but look at it), `fail` (the server will not
serve completions, or will not start) or `skip`. The command exits 1 if any check failed.
"""

from __future__ import annotations

import errno
import http.client
import json
import os
import socket
import stat
import time
from dataclasses import asdict, dataclass
from typing import Callable

from proxy.claude.probe import CLIProbe, CLIStatus
from proxy.claude.version import PINNED_CLI_VERSION
from proxy.keys import named_keys
from proxy.plan import window_name
from proxy.settings import Settings

INSTALL_HINT = f"npm install -g @anthropic-ai/claude-code@{PINNED_CLI_VERSION}"
LOGIN_HINT = ("run `claude auth login` (or `claude`, then /login) as the user that runs the server; "
              "on a machine without a browser, `claude setup-token` on another one and set "
              "CLAUDE_CODE_OAUTH_TOKEN")
LIVE_PROMPT = "Reply with the single word: pong"


@dataclass(frozen=True)
class Check:
    name: str
    status: str          # ok | warn | fail | skip
    summary: str
    fix: str | None = None

    def to_dict(self) -> dict[str, str | None]:
        return asdict(self)


def cli_checks(status: CLIStatus) -> list[Check]:
    if not status.found:
        return [Check("cli", "fail", "The Claude Code CLI (`claude`) was not found.",
                      f"Install it ({INSTALL_HINT}) or point --claude-bin / CLAUDE_BIN at it.")]
    checks = [Check("cli", "ok", f"Claude Code CLI found: {status.path}")]
    if status.version is None:
        checks.append(Check("version", "fail", f"`{status.path} --version` did not answer.",
                            f"Reinstall the CLI ({INSTALL_HINT})."))
    elif status.version != PINNED_CLI_VERSION:
        checks.append(Check("version", "warn",
                            f"CLI version {status.version}; this release was tested with "
                            f"{PINNED_CLI_VERSION}. It will probably work; if answers look wrong, "
                            f"install the tested one.", INSTALL_HINT))
    else:
        checks.append(Check("version", "ok", f"CLI version {status.version} (the tested version)"))
    if status.logged_in is True:
        checks.append(Check("login", "ok", f"The CLI has a login ({status.auth_method})."))
    elif status.logged_in is False:
        checks.append(Check("login", "fail", "The CLI is not logged in.", LOGIN_HINT + "."))
    else:
        checks.append(Check("login", "warn", f"The login state is unknown: {status.detail}.",
                            "Run `claude auth status` to see what the CLI says."))
    return checks


def bind_check(settings: Settings) -> Check:
    from proxy.server import UnsafeBind, check_bind, check_origins
    try:
        check_bind(settings)
        check_origins(settings)
    except UnsafeBind as exc:
        return Check("exposure", "fail", str(exc),
                     "Add --api-key-file FILE (one key per line) or bind to 127.0.0.1.")
    if settings.api_keys:
        return Check("exposure", "ok", f"Clients need one of {len(settings.api_keys)} API key(s).")
    return Check("exposure", "ok", f"Binds {settings.host} only (loopback); no API key "
                                   f"is needed from this machine.")


def key_file_check(settings: Settings) -> Check | None:
    if not settings.api_key_file:
        return None
    try:
        mode = os.stat(settings.api_key_file).st_mode
    except OSError as exc:
        return Check("key-file", "fail", f"The key file cannot be read: {exc.strerror}.",
                     "Create it with one key per line.")
    if mode & (stat.S_IRWXG | stat.S_IRWXO):
        return Check("key-file", "warn", f"{settings.api_key_file} can be read by other users.",
                     f"chmod 600 {settings.api_key_file}")
    return Check("key-file", "ok", f"Key file {settings.api_key_file} is private to its owner.")


def port_check(settings: Settings, timeout: float = 2.0) -> Check:
    host, port = settings.host, settings.port
    try:
        infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM, flags=socket.AI_PASSIVE)
    except socket.gaierror as exc:
        return Check("port", "fail", f"Cannot resolve the bind address {host}: {exc}.",
                     "Use an IP address such as 127.0.0.1 with --host.")
    family, kind, proto, _, address = infos[0]
    with socket.socket(family, kind, proto) as sock:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)  # as waitress does
        try:
            sock.bind(address)
            return Check("port", "ok", f"{host}:{port} is free.")
        except OSError as exc:
            if exc.errno != errno.EADDRINUSE:
                return Check("port", "fail", f"Cannot listen on {host}:{port}: {exc.strerror}.",
                             "Choose another --host or --port.")
    if _serves_claude_max_api(host, port, timeout):
        return Check("port", "ok", f"{host}:{port} is already served by a running claude-max-api.")
    return Check("port", "fail", f"{host}:{port} is in use by another program.",
                 "Stop that program or choose another port with --port.")


def _serves_claude_max_api(host: str, port: int, timeout: float) -> bool:
    connect_host = "127.0.0.1" if host in ("0.0.0.0", "") else "::1" if host == "::" else host
    try:
        conn = http.client.HTTPConnection(connect_host, port, timeout=timeout)
        conn.request("GET", "/health")
        response = conn.getresponse()
        response.read()
        conn.close()
    except (OSError, http.client.HTTPException):
        return False
    return (response.getheader("Server") or "").startswith("claude-max-api")


def plan_check(plan: dict | None, source: str) -> Check | None:
    """The plan state (a /health/ready `plan` section, or PlanTracker.snapshot()), when known."""
    if not isinstance(plan, dict) or plan.get("status") in (None, "unknown"):
        return None
    parts = []
    for name, window in sorted((plan.get("windows") or {}).items()):
        used = window.get("utilization")
        resets = (window.get("resets_at") or "").replace("T", " ").replace("Z", " UTC")
        parts.append(f"{window_name(name)} window "
                     + (f"{used * 100:.0f} % used" if isinstance(used, (int, float)) else "")
                     + (f" (resets {resets})" if resets else ""))
    detail = "; ".join(parts) or "no window readings"
    status = plan["status"]
    overage = plan.get("overage") or {}
    where = f" ({source})"
    if status == "allowed":
        return Check("plan", "ok", f"Claude plan: allowed; {detail}{where}.")
    limiting = window_name(plan.get("limiting_window"))
    if status == "allowed_warning":
        return Check("plan", "warn", f"Claude plan: the {limiting} window is near its limit; "
                                     f"{detail}{where}.",
                     "Requests will be refused when it is reached, until it resets; see "
                     "claude.ai/settings/usage.")
    if overage.get("in_use"):
        return Check("plan", "warn", f"Claude plan: the {limiting} limit is reached and extra "
                                     f"usage is paying for requests; {detail}{where}.",
                     "Extra usage is billed; see claude.ai/settings/usage.")
    return Check("plan", "warn", f"Claude plan: the {limiting} limit is reached; requests are "
                                 f"refused until {plan.get('resets_at') or 'it resets'}; "
                                 f"{detail}{where}.",
                 "Wait for the reset, or add extra usage at claude.ai/settings/usage.")


def served_plan(settings: Settings, timeout: float = 2.0) -> dict | None:
    """The plan section of the claude-max-api already serving on the configured port, if one
    does (checked without a key first: the key goes to that server only)."""
    if not _serves_claude_max_api(settings.host, settings.port, timeout):
        return None
    host = "127.0.0.1" if settings.host in ("0.0.0.0", "") else \
        "::1" if settings.host == "::" else settings.host
    headers = {}
    try:
        keys = named_keys(settings.api_keys)
    except ValueError:
        keys = []
    if keys:
        headers["Authorization"] = f"Bearer {keys[0].secret}"
    try:
        conn = http.client.HTTPConnection(host, settings.port, timeout=timeout)
        conn.request("GET", "/health/ready", headers=headers)
        response = conn.getresponse()
        body = json.loads(response.read() or b"{}")
        conn.close()
    except (OSError, http.client.HTTPException, ValueError):
        return None
    return body.get("plan") if isinstance(body, dict) else None


def replay_check(settings: Settings) -> Check | None:
    if not settings.replay:
        return None
    if os.path.isdir(settings.replay):
        return Check("replay", "ok", f"Replaying cassettes from {settings.replay}.")
    return Check("replay", "fail", f"The replay directory {settings.replay} does not exist.",
                 "Point --replay at a directory of recorded cassettes.")


def live_check(start: Callable[[], object], model: str) -> Check:
    """Sends one tiny request through the CLI. `start()` returns a started CLIRun."""
    from proxy.claude.events import Failed, Finished, TextDelta
    from proxy.errors import ProxyError
    began = time.monotonic()
    try:
        run = start()
    except ProxyError as exc:
        return Check("live", "fail", exc.message, _fix_for(exc.code))
    text: list[str] = []
    outcome = None
    try:
        for event in run.events():  # type: ignore[attr-defined]
            if isinstance(event, TextDelta):
                text.append(event.text)
            elif isinstance(event, (Finished, Failed)):
                outcome = event
    finally:
        run.close()  # type: ignore[attr-defined]
    took = time.monotonic() - began
    if isinstance(outcome, Failed):
        return Check("live", "fail", f"The live request failed: {outcome.error.message}",
                     _fix_for(outcome.error.code))
    if outcome is None:
        return Check("live", "fail", "The live request ended without an answer.", None)
    answer = "".join(text).strip()
    return Check("live", "ok", f"{model} answered in {took:.1f} s: {answer[:80]!r}")


def _fix_for(code: str | None) -> str | None:
    return {
        "claude_not_logged_in": LOGIN_HINT + ".",
        "upstream_authentication_failed": "Log in again: " + LOGIN_HINT + ".",
        "claude_cli_not_found": f"Install the CLI ({INSTALL_HINT}).",
        "rate_limit_exceeded": "Claude's API is rate-limiting this login; try again later.",
        "usage_limit_reached": "Your plan's usage limit is reached; it resets at the time "
                               "the message says.",
        "insufficient_quota": "Your plan does not cover this use: see claude.ai/settings/usage "
                              "(extra usage or credits).",
        "upstream_account_disabled": "The account's organization is disabled; contact its admin "
                                     "or log in with another account: " + LOGIN_HINT + ".",
        "upstream_overloaded": "Anthropic is overloaded; try again in a minute.",
        "upstream_unreachable": "Check this machine's internet connection and proxy settings.",
        "timeout": "The CLI did not answer in time; run `claude -p hi` to see what it does.",
        "model_not_found": "Pick a served model with --model (see GET /v1/models), e.g. haiku.",
    }.get(code or "", "Run `claude -p hi` in a terminal to see what the CLI says.")


def run_checks(settings: Settings, probe: CLIProbe,
               live: Callable[[], Check] | None = None,
               live_plan: Callable[[], dict | None] | None = None) -> list[Check]:
    """`live_plan()`, after `live()`, is what the live run reported about the plan."""
    checks: list[Check] = []
    replay = replay_check(settings)
    if replay:
        checks.append(replay)
    cli = cli_checks(probe.status())
    checks.extend(cli)
    checks.append(bind_check(settings))
    key_file = key_file_check(settings)
    if key_file:
        checks.append(key_file)
    checks.append(port_check(settings))
    if live is None:
        checks.append(Check("live", "skip", "No live request sent (add --live to send one tiny "
                                            "request through the CLI; it uses your plan)."))
    elif any(c.status == "fail" for c in cli):
        checks.append(Check("live", "skip", "No live request: fix the CLI problems above first."))
    else:
        checks.append(live())
        plan = plan_check(live_plan() if live_plan else None, "reported by the live request")
        if plan:
            checks.append(plan)
    if not any(c.name == "plan" for c in checks):
        plan = plan_check(served_plan(settings), f"as the server on port {settings.port} last "
                                                 "saw it")
        if plan:
            checks.append(plan)
    return checks
