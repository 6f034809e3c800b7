"""The real waitress server in replay mode (fixtures/), behind an API key, for the official
clients; plus servers whose runner fails in the two ways no recording can (500, 504)."""

from __future__ import annotations

import json

import pytest

from proxy.cassettes.catalogue import load
from proxy.runners.replay import ReplayRunner
from proxy.settings import Settings
from tests.support.runners import CASSETTES, REPO, LinesRunner, wildcard_replay
from tests.support.servers import running_proxy

API_KEY = "sk-sdk-test-key"
MAX_BODY = 256 * 1024


@pytest.fixture(scope="session")
def catalogue():
    return load(REPO / "fixtures" / "catalogue.json")


@pytest.fixture(scope="module")
def replay_server():
    """Replay mode over every recorded cassette; the key is required."""
    settings = Settings(api_keys=[API_KEY], max_body_bytes=MAX_BODY)
    with running_proxy(settings, ReplayRunner.from_directory(CASSETTES)) as proxy:
        yield proxy


def _tools_enabled_cli() -> LinesRunner:
    """A CLI that starts with tools on: the proxy stops it for safety (a 500, unsafe_cli)."""
    init = {"type": "system", "subtype": "init", "session_id": "s", "tools": ["Bash"],
            "model": "claude-sonnet-5-5"}
    return LinesRunner([json.dumps(init)])


@pytest.fixture(scope="module")
def unsafe_cli_server():
    with running_proxy(Settings(api_keys=[API_KEY]), _tools_enabled_cli()) as proxy:
        yield proxy


@pytest.fixture(scope="module")
def slow_server():
    """Replays the slow recording at its recorded pace, with a limit it cannot meet: 504."""
    settings = Settings(api_keys=[API_KEY], timeout=0.5)
    with running_proxy(settings, wildcard_replay("slow_stream", timing="recorded")) as proxy:
        yield proxy
