"""Shared fixtures, and the live tier's gate.

Live tests (marked `live`) need the pinned Claude Code CLI. On a developer's machine without
it they are skipped with the reason and every other test still runs (replay mode needs no
CLI). In CI (tests/support/ci.py) a CLI that is missing, does not answer `--version`, or is
not the pinned version fails every live test instead: CI must not be green without its live
tier.
"""

from __future__ import annotations

import itertools
import os
import re
import shutil
from pathlib import Path

import openai
import pytest

from proxy.claude.version import cli_version
from proxy.runners.live import LiveRunner, WorkRoot
from proxy.settings import Settings
from proxy.standin.scenario import Scenario
from proxy.standin.server import StandInUpstream
from tests.support.ci import in_ci
from tests.support.servers import cli_environ, cli_home, running_proxy

REPO = Path(__file__).resolve().parents[1]

# Every answer of every in-process test server is checked against the official OpenAI spec
# and the stream rules (tests/support/fidelity.py); what the run proved is counted and
# reported (tests/support/tiers.py).
pytest_plugins = ("tests.support.fidelity", "tests.support.tiers")


def pinned_cli_version() -> str:
    text = (REPO / "pyproject.toml").read_text(encoding="utf-8")
    return re.search(r'^claude-cli-version\s*=\s*"([^"]+)"', text, re.M).group(1)


def _installed_cli() -> tuple[str | None, str | None]:
    """(path, version) of the `claude` on PATH. Asked twice before concluding it has no
    version: a slow first start on a loaded machine is not a broken CLI."""
    path = shutil.which("claude")
    if path is None:
        return None, None
    return path, cli_version(path, timeout=20) or cli_version(path, timeout=60)


CLI_PATH, CLI_VERSION = _installed_cli()


def live_tier_problem(path: str | None, version: str | None, pinned: str, ci: bool) -> str | None:
    """Why the live tier cannot run as CI requires (None: it can)."""
    install = f"npm install -g @anthropic-ai/claude-code@{pinned}"
    if path is None:
        return f"the Claude Code CLI is not installed ({install})"
    if version is None:
        return f"`{path} --version` gave no version: the CLI failed, hung or printed nothing"
    if ci and version != pinned:
        return f"the installed CLI is {version}, not the pinned {pinned} ({install})"
    return None


LIVE_TIER_PROBLEM = live_tier_problem(CLI_PATH, CLI_VERSION, pinned_cli_version(), in_ci())


def pytest_collection_modifyitems(config, items):
    if LIVE_TIER_PROBLEM is None or in_ci():
        return
    for item in items:
        if item.get_closest_marker("live"):
            item.add_marker(pytest.mark.skip(reason=LIVE_TIER_PROBLEM))


@pytest.hookimpl(tryfirst=True)
def pytest_runtest_setup(item):
    if LIVE_TIER_PROBLEM is not None and in_ci() and item.get_closest_marker("live"):
        pytest.fail(f"CI requires the live tier, and it cannot run: {LIVE_TIER_PROBLEM}",
                    pytrace=False)


@pytest.fixture(scope="session")
def standin():
    """One stand-in Anthropic API for the session; tests select scenarios by name."""
    with StandInUpstream() as upstream:
        yield upstream


@pytest.fixture
def cli_env(standin):
    """Environment for a live runner: the stand-in upstream and a throwaway HOME."""
    with cli_home() as home:
        yield cli_environ(standin.base_url, home)


@pytest.fixture
def live_runner_for(standin, tmp_path):
    """Builds a LiveRunner whose CLI talks to the named stand-in scenario."""
    made = []

    def make(scenario: str = "default", *, max_retries: int = 0, extra_env=None) -> LiveRunner:
        home = tmp_path / f"home-{len(made)}"
        home.mkdir()
        base = standin.base_url if scenario == "default" else standin.base_url_for(scenario)
        runner = LiveRunner(work_root=WorkRoot(str(tmp_path / f"work-{len(made)}")), max_retries=max_retries,
                            environ=cli_environ(base, str(home), extra_env))
        made.append(runner)
        return runner

    yield make
    for runner in made:
        runner.close()


_live_names = itertools.count()


@pytest.fixture
def live_proxy_for(standin, live_runner_for):
    """`live_proxy_for(scenario, **settings)`: the proxy on a socket (waitress) whose CLI answers
    from `scenario` on the stand-in. The proxy it returns has `scenario` (its name), `runner`,
    `client` (the official openai SDK) and `upstream()` (the bodies the stand-in received).
    `runner_wrapper` wraps the live runner (a ConversationRunner, say)."""
    opened = []

    def start(scenario: Scenario | None = None, *, max_retries: int = 0, extra_env=None,
              runner_wrapper=None, **settings):
        name = f"live-{os.getpid()}-{next(_live_names)}"
        standin.add_scenario(name, scenario or Scenario())
        runner = live_runner_for(name, max_retries=max_retries, extra_env=extra_env)
        if runner_wrapper is not None:
            runner = runner_wrapper(runner)
        context = running_proxy(Settings(**settings), runner)
        proxy = context.__enter__()
        opened.append(context)
        proxy.scenario, proxy.runner = name, runner
        proxy.client = openai.OpenAI(base_url=proxy.base_url, api_key="unused", max_retries=0,
                                     timeout=60)
        proxy.upstream = lambda: [r.body for r in standin.requests_for(name)]
        return proxy

    yield start
    for context in reversed(opened):
        context.__exit__(None, None, None)
