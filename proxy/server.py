"""Runs the app under waitress, configured for streaming, and shuts down without leftovers."""

from __future__ import annotations

import ipaddress
import logging
import signal
import sys
import threading
from typing import Callable

import waitress
from waitress.server import BaseWSGIServer, MultiSocketServer

from proxy.app import create_app
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
    if not is_loopback(settings.host) and not settings.api_keys:
        raise UnsafeBind(
            f"Refusing to listen on {settings.host}: anything that can reach that address could "
            f"use your Claude subscription. Set an API key (--api-key, CLAUDE_MAX_API_KEY or "
            f"--api-key-file) or bind to 127.0.0.1.")


def create_server(settings: Settings, runner: Runner | None = None
                  ) -> "BaseWSGIServer | MultiSocketServer":
    check_bind(settings)
    app = create_app(settings, runner)
    server = waitress.create_server(
        app,
        host=settings.host,
        port=settings.port,
        threads=settings.effective_threads(),
        # Reads the socket while a request runs, so a client that leaves is noticed at once
        # (environ["waitress.client_disconnected"]) and its CLI process ended.
        channel_request_lookahead=1,
        # The app answers oversize bodies itself in OpenAI's shape; this is only a backstop.
        max_request_body_size=settings.max_body_bytes + 64 * 1024,
        ident="claude-max-api",
        clear_untrusted_proxy_headers=True,
    )
    server.app_parts = app.parts  # type: ignore[attr-defined]
    return server


def server_url(server: "BaseWSGIServer | MultiSocketServer") -> str:
    host, port = server.effective_host, server.effective_port  # type: ignore[union-attr]
    if ":" in str(host):
        host = f"[{host}]"
    return f"http://{host}:{port}"


def serve(settings: Settings, runner: Runner | None = None,
          on_ready: Callable[[str], None] | None = None) -> int:
    try:
        server = create_server(settings, runner)
    except UnsafeBind as exc:
        print(f"claude-max-api: {exc}", file=sys.stderr)
        return 2
    except OSError as exc:
        print(f"claude-max-api: cannot listen on {settings.host}:{settings.port}: {exc.strerror}",
              file=sys.stderr)
        return 2
    parts = server.app_parts
    url = server_url(server)
    log.info("claude-max-api listening on %s/v1 (%s)", url,
             f"replaying {settings.replay}" if settings.replay else "live CLI")
    if on_ready:
        on_ready(url)

    def stop(signum: int, frame: object) -> None:
        # End the CLI children first so streaming threads finish, then leave the loop.
        log.info("signal %d: stopping", signum)
        threading.Thread(target=parts.runner.close, daemon=True).start()
        raise SystemExit(0)

    previous = {sig: signal.signal(sig, stop) for sig in (signal.SIGTERM, signal.SIGINT)}
    try:
        server.run()
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)
        parts.runner.close()
        server.close()
    return 0
