"""Serve claude-max-api for the conformance suite without a Claude subscription.

    python -m conformance.servers.claude_max_api [--port 18300]            # live CLI, stand-in model
    python -m conformance.servers.claude_max_api --replay fixtures/DIR    # replay mode, no CLI

Live: the real `claude` CLI runs under a throwaway HOME against the stand-in Anthropic API
(proxy.standin) loaded with `standin-scenarios.yaml`, which plays a well-behaved model for the
suite's prompts. Replay: `claude-max-api serve --replay DIR` serves recorded CLI transcripts.
Prints the OpenAI base URL, then serves until interrupted. Everything binds 127.0.0.1.
"""

from __future__ import annotations

import argparse
import contextlib
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path
from typing import Iterator
from urllib.error import URLError
from urllib.request import urlopen

SCENARIOS = Path(__file__).resolve().parent / "standin-scenarios.yaml"


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def _wait_ready(url: str, process: subprocess.Popen, timeout: float = 60.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"claude-max-api exited with {process.returncode} before serving")
        try:
            with urlopen(url + "/health", timeout=2) as response:
                if response.status == 200:
                    return
        except (URLError, OSError):
            time.sleep(0.2)
    raise TimeoutError(f"claude-max-api did not answer {url}/health in {timeout:.0f}s")


@contextlib.contextmanager
def standin_upstream() -> Iterator[str]:
    """The stand-in Anthropic API with the conformance scenarios; yields its base URL."""
    from proxy.standin.scenario import load_catalogue
    from proxy.standin.server import DEFAULT, StandInUpstream

    scenarios = load_catalogue(SCENARIOS)
    default = scenarios.pop(DEFAULT)
    with StandInUpstream(default, scenarios=scenarios) as upstream:
        yield upstream.base_url


@contextlib.contextmanager
def serve_claude_max_api(port: int = 0, replay: str | None = None,
                         extra_args: tuple[str, ...] = ()) -> Iterator[str]:
    """Runs `claude-max-api serve` as a subprocess; yields its OpenAI base URL (…/v1)."""
    port = port or free_port()
    home = tempfile.mkdtemp(prefix="cma-conformance-home-")
    env = {k: v for k, v in os.environ.items()
           if not k.startswith(("ANTHROPIC_", "CLAUDE_CODE_", "CLAUDE_MAX_API_"))}
    env.update(HOME=home, LANG="C.UTF-8")
    args = [sys.executable, "-m", "proxy", "serve", "--host", "127.0.0.1", "--port", str(port),
            "--cli-max-retries", "0", *extra_args]
    with contextlib.ExitStack() as stack:
        if replay:
            args += ["--replay", str(Path(replay).resolve())]   # the server runs elsewhere
        else:
            env.update(ANTHROPIC_BASE_URL=stack.enter_context(standin_upstream()),
                       ANTHROPIC_API_KEY="sk-ant-standin")
        process = subprocess.Popen(args, env=env, cwd=home, stdout=subprocess.DEVNULL,
                                   start_new_session=True)
        try:
            url = f"http://127.0.0.1:{port}"
            _wait_ready(url, process)
            yield url + "/v1"
        finally:
            if process.poll() is None:
                os.killpg(process.pid, signal.SIGTERM)
                try:
                    process.wait(15)
                except subprocess.TimeoutExpired:
                    os.killpg(process.pid, signal.SIGKILL)
                    process.wait()
            shutil.rmtree(home, ignore_errors=True)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m conformance.servers.claude_max_api",
                                     description=__doc__.split("\n\n")[0])
    parser.add_argument("--port", type=int, default=0, help="port (default: a free one)")
    parser.add_argument("--replay", help="serve recorded CLI transcripts from this directory")
    parser.add_argument("--api-key", help="require this API key (tests the auth checks)")
    args = parser.parse_args(argv)
    stop = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    extra = ("--api-key", args.api_key) if args.api_key else ()
    with serve_claude_max_api(args.port, args.replay, extra) as base_url:
        print(base_url, flush=True)
        try:
            stop.wait()
        except KeyboardInterrupt:
            pass
    return 0


if __name__ == "__main__":
    sys.exit(main())
