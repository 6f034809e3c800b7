"""Real servers for tests: the proxy under waitress on a loopback port, in this process.

`running_proxy(settings, runner)` starts the real waitress server (the same `create_server`
the command uses) on an ephemeral port in a thread and stops it afterwards; `cli_environ()`
is the environment a live runner gives the real CLI so it talks to the stand-in upstream with
a throwaway HOME instead of the machine's own login.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import tempfile
import threading
from dataclasses import dataclass
from typing import Iterator, Mapping

from waitress import wasyncore

from proxy.runners.base import Runner
from proxy.server import create_server, server_url
from proxy.settings import Settings


@dataclass
class RunningProxy:
    url: str            # http://127.0.0.1:PORT
    server: object      # the waitress server
    settings: Settings

    @property
    def base_url(self) -> str:
        return self.url + "/v1"

    @property
    def parts(self):
        return self.server.app_parts


@contextlib.contextmanager
def running_proxy(settings: Settings | None = None, runner: Runner | None = None
                  ) -> Iterator[RunningProxy]:
    settings = settings or Settings()
    settings.host, settings.port = settings.host or "127.0.0.1", 0
    server = create_server(settings, runner)
    stop = threading.Event()
    # The loop thread itself closes the server when asked: closing its sockets from another
    # thread while it sits in poll() makes waitress log "Bad file descriptor".
    socket_map = server.map if hasattr(server, "map") else server._map

    def loop() -> None:
        try:
            while not stop.is_set():
                wasyncore.loop(timeout=0.05, map=socket_map, count=1)
        finally:
            server.close()

    thread = threading.Thread(target=loop, name="test-proxy", daemon=True)
    thread.start()
    try:
        yield RunningProxy(server_url(server), server, settings)
    finally:
        server.app_parts.runner.close()
        stop.set()
        thread.join(10)


@contextlib.contextmanager
def cli_home() -> Iterator[str]:
    """A throwaway HOME for the CLI (it writes ~/.claude.json on every run)."""
    home = tempfile.mkdtemp(prefix="cma-home-")
    try:
        yield home
    finally:
        shutil.rmtree(home, ignore_errors=True)


def cli_environ(base_url: str, home: str, extra: Mapping[str, str] | None = None) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items()
           if not k.startswith(("ANTHROPIC_", "CLAUDE_CODE_", "CLAUDE_MAX_API_"))}
    env.update(HOME=home, ANTHROPIC_BASE_URL=base_url, ANTHROPIC_API_KEY="sk-ant-standin",
               LANG="C.UTF-8")
    env.update(extra or {})
    return env
