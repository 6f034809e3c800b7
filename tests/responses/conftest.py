"""Servers and clients for the Responses API tests.

* `scripted`: the real waitress server whose CLI is scripted per invocation
  (tests/responses/fake_cli.py), for every branch of the Responses layer;
* `live`: the real server with the real CLI against the stand-in, kept conversations on;
* the clients beyond the Python SDK (the npm SDK, Codex CLI, the openai-agents SDK) are
  installed on first use, pinned, into tests/responses/clients/ (npm, from its committed lock
  file) and a venv of their own (pip, from requirements.txt there). A client that cannot be
  installed is a skip locally and a failure in CI (`CI` set): CI must not pass without it.
"""

from __future__ import annotations

import contextlib
import fcntl
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import openai
import pytest

from proxy.conversations.keeper import Keeper
from proxy.conversations.runner import ConversationRunner
from proxy.settings import Settings
from proxy.standin.scenario import Scenario
from tests.responses.fake_cli import ScriptedRunner, text
from tests.support.servers import running_proxy

CLIENTS = Path(__file__).resolve().parent / "clients"
AGENTS_VENV = CLIENTS / ".venv"


def missing_client(reason: str) -> None:
    """Skip without the client locally; fail in CI, where every client must run."""
    if os.environ.get("CI"):
        pytest.fail(f"{reason} (CI is set: a client test may not be skipped)")
    pytest.skip(reason)


@pytest.fixture
def scripted():
    opened = []

    def start(script=None, *, settings: Settings | None = None, api_key: str = "x"):
        runner = ScriptedRunner(script or text("Hello from the fake CLI."))
        context = running_proxy(settings or Settings(), runner)
        proxy = context.__enter__()
        opened.append(context)
        proxy.runner = runner
        proxy.client = openai.OpenAI(base_url=proxy.base_url, api_key=api_key, max_retries=0,
                                     timeout=30)
        return proxy

    yield start
    for context in reversed(opened):
        context.__exit__(None, None, None)


@contextlib.contextmanager
def running_live(standin, live_runner_for, scenario: Scenario, name: str, *, keep: int = 4,
                 api_key: str | None = None, **settings):
    """The real server, its CLI talking to `scenario` on the stand-in (as the account
    `api_key`, whose prompt cache is its own), kept conversations on unless `keep=0`."""
    standin.add_scenario(name, scenario)
    live_runner = live_runner_for(name, extra_env={"ANTHROPIC_API_KEY": api_key}
                                  if api_key else None)
    runner = ConversationRunner(live_runner, Keeper(max_processes=keep, watch=False)) \
        if keep else live_runner
    with running_proxy(Settings(keep_conversations=keep, **settings), runner) as proxy:
        proxy.scenario, proxy.live, proxy.conversations = name, live_runner, runner
        proxy.client = openai.OpenAI(base_url=proxy.base_url, api_key="x", max_retries=0,
                                     timeout=90)
        proxy.requests = lambda: standin.requests_for(name)
        proxy.upstream = lambda: [r.body for r in standin.requests_for(name)]
        yield proxy


@pytest.fixture
def live(standin, live_runner_for):
    """`live(scenario, keep=4, **settings)`: see running_live."""
    opened = []

    def start(scenario: Scenario, **options):
        name = f"responses-{len(opened)}-{os.getpid()}-{time.monotonic_ns()}"
        context = running_live(standin, live_runner_for, scenario, name, **options)
        proxy = context.__enter__()
        opened.append(context)
        return proxy

    yield start
    for context in reversed(opened):
        context.__exit__(None, None, None)


def _locked(name: str):
    lock = open(Path(tempfile.gettempdir()) / f"claude-max-api-{name}-{os.getuid()}.lock", "w")
    fcntl.flock(lock, fcntl.LOCK_EX)  # several pytest processes may install at once
    return lock


@pytest.fixture(scope="session")
def node_clients() -> Path:
    """tests/responses/clients/node_modules, from the committed package-lock.json."""
    node, npm = shutil.which("node"), shutil.which("npm")
    if not node or not npm:
        missing_client("node and npm are needed for the npm SDK and Codex CLI tests")
    with _locked("responses-npm"):
        stamp = CLIENTS / "node_modules" / ".package-lock.json"
        lock_file = CLIENTS / "package-lock.json"
        if not stamp.is_file() or stamp.stat().st_mtime < lock_file.stat().st_mtime:
            done = subprocess.run([npm, "ci", "--no-audit", "--no-fund", "--loglevel=error"],
                                  cwd=CLIENTS, capture_output=True, text=True, timeout=900)
            if done.returncode != 0:
                missing_client(f"npm ci failed in {CLIENTS}: {done.stderr.strip()[-500:]}")
    return CLIENTS


@pytest.fixture(scope="session")
def agents_python() -> Path:
    """A Python with the pinned openai-agents SDK (its own venv: its dependencies stay out of
    the project's)."""
    python = AGENTS_VENV / "bin" / "python"
    requirements = CLIENTS / "requirements.txt"
    with _locked("responses-agents"):
        stamp = AGENTS_VENV / "installed-requirements.txt"
        wanted = requirements.read_text()
        if not stamp.is_file() or stamp.read_text() != wanted:
            shutil.rmtree(AGENTS_VENV, ignore_errors=True)
            steps = ([sys.executable, "-m", "venv", str(AGENTS_VENV)],
                     [str(python), "-m", "pip", "install", "--quiet", "-r", str(requirements)])
            for step in steps:
                done = subprocess.run(step, capture_output=True, text=True, timeout=900)
                if done.returncode != 0:
                    missing_client(f"could not install {requirements.name}: "
                                   f"{(done.stderr or done.stdout).strip()[-500:]}")
            stamp.write_text(wanted)
    return python
