"""Runs the app under waitress, configured for streaming, and shuts down without leftovers."""

from __future__ import annotations

import ipaddress
import logging
import signal
import sys
from typing import Callable

import waitress
from waitress import wasyncore
from waitress.server import BaseWSGIServer, MultiSocketServer

from proxy.app import create_app
from proxy.claude.probe import CLIProbe
from proxy.doctor import cli_checks
from proxy.http import server_errors
from proxy.http.logging import configure_logging
from proxy.http.middleware.auth import KeyRing
from proxy.runners.base import Runner
from proxy.settings import Settings

log = logging.getLogger("claude_max_api")

LOOPBACK_NAMES = {"localhost", "ip6-localhost", "ip6-loopback"}


def is_loopback(host: str) -> bool:
    host = host.strip("[]")
    if host in LOOPBACK_NAMES:
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


class UnsafeBind(Exception):
    pass


def check_bind(settings: Settings) -> None:
    """Refuses to expose the user's subscription to the network without a key."""
    # The same test the auth middleware applies: blank keys do not count.
    if not is_loopback(settings.host) and not KeyRing(settings.api_keys):
        raise UnsafeBind(
            f"Refusing to listen on {settings.host}: anything that can reach that address could "
            f"use your Claude subscription. Set an API key (--api-key, CLAUDE_MAX_API_KEY or "
            f"--api-key-file) or bind to 127.0.0.1.")


def check_origins(settings: Settings) -> None:
    """Refuses malformed origins, and letting every web page in when nothing else guards it."""
    from proxy.http.middleware.origins import normalise_origin
    for origin in settings.allowed_origins:
        normalise_origin(origin)  # ValueError names the bad one
    if "*" in [o.strip() for o in settings.allowed_origins] and not KeyRing(settings.api_keys):
        raise UnsafeBind(
            "Refusing --allowed-origin '*' without an API key: every web page you visit could "
            "use your Claude subscription. List the origins of your web apps instead, or also "
            "set an API key.")


def create_server(settings: Settings, runner: Runner | None = None
                  ) -> "BaseWSGIServer | MultiSocketServer":
    check_bind(settings)
    check_origins(settings)
    app = create_app(settings, runner)
    try:
        server = _create_waitress(app, settings)
    except BaseException:
        app.parts.runner.close()  # e.g. the port is taken: end the warm pool, remove its dirs
        raise
    # waitress's own 400/413/431 in OpenAI's shape (a body far over the limit is refused from
    # its Content-Length, before it is read).
    server_errors.install(server, body_limit=settings.max_body_bytes)
    server.app_parts = app.parts  # type: ignore[attr-defined]
    return server


def _create_waitress(app: object, settings: Settings) -> "BaseWSGIServer | MultiSocketServer":
    threads = settings.effective_threads()
    return waitress.create_server(
        app,
        host=settings.host,
        port=settings.port,
        threads=threads,
        # Reads the socket while a request runs, so a client that leaves is noticed at once
        # (environ["waitress.client_disconnected"]) and its CLI process ended.
        channel_request_lookahead=1,
        # The app answers oversize bodies itself in OpenAI's shape; this is only a backstop.
        max_request_body_size=settings.max_body_bytes + 64 * 1024,
        max_request_header_size=settings.max_header_bytes,
        # Closes idle keep-alive connections; never a request in flight (waitress only reaps
        # channels without one), so slow streams are unaffected.
        channel_timeout=settings.connection_idle_timeout,
        # waitress counts its listener and wake-up pipe among the connections. Every stream
        # and queued request holds a connection too: never fewer than the threads, so a full
        # house of streams cannot keep /health and /v1/models from even connecting.
        connection_limit=max(settings.max_connections, threads) + 2,
        ident="claude-max-api",
        clear_untrusted_proxy_headers=True,
    )


def warn_about_the_cli(probe: CLIProbe | None) -> list[str]:
    """Start-up tells the truth: one warning line per CLI problem (missing, another version
    than the tested one, no login), with the fix `doctor` gives. Returns the lines."""
    if probe is None:  # replay mode, or a runner that is not the CLI
        return []
    lines = [f"{check.summary} fix: {check.fix}" if check.fix else check.summary
             for check in cli_checks(probe.status()) if check.status in ("warn", "fail")]
    for line in lines:
        log.warning("%s", line)
    return lines


def server_url(server: "BaseWSGIServer | MultiSocketServer") -> str:
    host, port = server.effective_host, server.effective_port  # type: ignore[union-attr]
    if ":" in str(host):
        host = f"[{host}]"
    return f"http://{host}:{port}"


def serve(settings: Settings, runner: Runner | None = None,
          on_ready: Callable[[str], None] | None = None) -> int:
    configure_logging(settings.log_format)
    try:
        server = create_server(settings, runner)
    except (UnsafeBind, ValueError) as exc:
        print(f"claude-max-api: {exc}", file=sys.stderr)
        return 2
    except OSError as exc:
        print(f"claude-max-api: cannot listen on {settings.host}:{settings.port}: {exc.strerror}",
              file=sys.stderr)
        return 2
    parts = server.app_parts
    url = server_url(server)
    stopping = False
    warn_about_the_cli(parts.probe)

    def stop(signum: int, frame: object) -> None:
        # Stop accepting, end the CLI children (so streaming threads finish), leave the loop;
        # waitress then waits for its threads. A second signal does not interrupt this.
        nonlocal stopping
        if stopping:
            return
        stopping = True
        log.info("signal %d: stopping", signum)
        stop_listening(server)
        parts.runner.close()
        raise SystemExit(0)

    # Installed before the server says it is ready, so an early signal still cleans up.
    previous = {sig: signal.signal(sig, stop) for sig in (signal.SIGTERM, signal.SIGINT)}
    try:
        log.info("claude-max-api listening on %s/v1 (%s)", url,
                 f"replaying {settings.replay}" if settings.replay else "live CLI")
        if on_ready:
            on_ready(url)
        server.run()
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)
        parts.runner.close()
        server.close()
    return 0


def stop_listening(server: "BaseWSGIServer | MultiSocketServer") -> None:
    """Closes the listening socket(s), so new connections are refused during shutdown."""
    listeners = [d for d in getattr(server, "map", {}).values()
                 if isinstance(d, BaseWSGIServer)] or [server]
    for listener in listeners:
        wasyncore.dispatcher.close(listener)
