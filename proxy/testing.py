"""A claude-max-api server inside a test process, recording into or replaying from a cassette
directory: what the pytest plugin (proxy/pytest_plugin.py) runs, usable without pytest too.

    with cassette_server("tests/cassettes", "new_episodes") as url:
        client = openai.OpenAI(base_url=url, api_key="unused")

The server is the real one (waitress on a loopback port, the same app as `serve --record`),
serving from a thread of this process, and stops with the context.
"""

from __future__ import annotations

import contextlib
import os
import threading
import time
from pathlib import Path
from typing import Iterator, Sequence

from proxy.runners.record_modes import RECORD_MODES, CassetteRunner
from proxy.settings import Settings

DRAIN_TIMEOUT = 30.0  # seconds the server waits, when stopping, for runs still writing


class ServerURL(str):
    """The server's base URL (`http://127.0.0.1:PORT/v1`), carrying what it serves."""

    runner: CassetteRunner
    mode: str             # the record mode in effect (`once` has become `all` or `none`)
    cassette_dir: Path

    @property
    def recorded(self) -> list[str]:
        """Names of the cassettes written so far."""
        return list(self.runner.recorded)

    @property
    def failures(self) -> list[tuple[str, str]]:
        """Runs that could not be recorded: (cassette name, why)."""
        return self.runner.failures()


@contextlib.contextmanager
def cassette_server(cassette_dir: str | os.PathLike[str], record_mode: str = "none", *,
                    match_ignore: Sequence[str] = (), replay_timing: str = "fast",
                    settings: Settings | None = None) -> Iterator[ServerURL]:
    """Serves on an ephemeral loopback port: replaying `cassette_dir`, and recording into it as
    `record_mode` says (live runs use the CLI, its login and environment, as `serve` does)."""
    from waitress import wasyncore

    from proxy.server import create_server, server_url
    if record_mode not in RECORD_MODES:
        raise ValueError(f"record mode must be one of {', '.join(RECORD_MODES)}, not "
                         f"{record_mode!r}")
    settings = settings or Settings()
    settings.host, settings.port = "127.0.0.1", 0
    settings.record, settings.record_mode = str(cassette_dir), record_mode
    settings.match_ignore, settings.replay_timing = list(match_ignore), replay_timing
    server = create_server(settings)
    stop = threading.Event()
    socket_map = server.map if hasattr(server, "map") else server._map  # type: ignore[attr-defined]

    def loop() -> None:
        try:
            while not stop.is_set():
                wasyncore.loop(timeout=0.05, map=socket_map, count=1)
        finally:
            server.close()

    thread = threading.Thread(target=loop, name="claude-max-api-test-server", daemon=True)
    thread.start()
    runner = server.app_parts.runner  # type: ignore[attr-defined]
    url = ServerURL(server_url(server) + "/v1")
    url.runner, url.mode, url.cassette_dir = runner, runner.mode, Path(cassette_dir)
    try:
        yield url
    finally:
        # A cassette is written when its run is closed, just after the answer was sent: let the
        # runs under way finish (and release their slots) before the runners are closed.
        limiter = server.app_parts.limiter  # type: ignore[attr-defined]
        deadline = time.monotonic() + DRAIN_TIMEOUT
        while limiter.stats()["active"] and time.monotonic() < deadline:
            time.sleep(0.02)
        try:
            runner.close()
        finally:
            stop.set()
            thread.join(10)
