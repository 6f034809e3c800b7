"""Shared fixtures. Live tests need the pinned Claude Code CLI; without it they are skipped
with a reason and every other test still runs (replay mode needs no CLI)."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from proxy.claude.version import cli_version
from proxy.runners.live import LiveRunner, WorkRoot
from proxy.standin.server import StandInUpstream
from tests.support.servers import cli_environ, cli_home

REPO = Path(__file__).resolve().parents[1]

# Every answer of every in-process test server is checked against the official OpenAI spec
# and the stream rules (tests/support/fidelity.py); what the run proved is counted and
# reported (tests/support/tiers.py).
pytest_plugins = ("tests.support.fidelity", "tests.support.tiers")


def pinned_cli_version() -> str:
    import re
    text = (REPO / "pyproject.toml").read_text(encoding="utf-8")
    return re.search(r'^claude-cli-version\s*=\s*"([^"]+)"', text, re.M).group(1)


def _installed_cli_version() -> str | None:
    path = shutil.which("claude")
    return cli_version(path, timeout=20) if path else None


CLI_VERSION = _installed_cli_version()
requires_cli = pytest.mark.skipif(
    CLI_VERSION is None, reason="the Claude Code CLI is not installed (npm install -g "
                                "@anthropic-ai/claude-code@" + pinned_cli_version() + ")")


def pytest_collection_modifyitems(config, items):
    for item in items:
        if item.get_closest_marker("live") and CLI_VERSION is None:
            item.add_marker(requires_cli)


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
