"""Replay-mode fixtures: the recorded catalogue served by the real waitress server.

Nothing here needs the Claude Code CLI: these tests run offline, from fixtures/ alone.
"""

from __future__ import annotations

from pathlib import Path

import pytest
from openai import OpenAI

from proxy.cassettes.catalogue import Catalogue, load
from proxy.runners.replay import ReplayRunner
from proxy.settings import Settings
from tests.support.servers import running_proxy

REPO = Path(__file__).resolve().parents[2]
FIXTURES = REPO / "fixtures"
CASSETTES = FIXTURES / "cassettes"
CATALOGUE = FIXTURES / "catalogue.json"


@pytest.fixture(scope="session")
def catalogue() -> Catalogue:
    return load(CATALOGUE)


@pytest.fixture(scope="module")
def replay_proxy():
    """The proxy under waitress, answering from fixtures/cassettes as fast as possible."""
    runner = ReplayRunner.from_directory(CASSETTES)
    with running_proxy(Settings(), runner) as proxy:
        yield proxy


@pytest.fixture
def client(replay_proxy):
    """The official SDK; closed after the test, so no keep-alive connection outlives it (the
    server's shutdown waits for open connections)."""
    with OpenAI(base_url=replay_proxy.base_url, api_key="unused", max_retries=0,
                timeout=60) as sdk:
        yield sdk
