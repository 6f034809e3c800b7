"""The official `openai` npm SDK's legacy `completions.create` against the real waitress server
replaying fixtures/ (tests/sdk/node/completions_check.mjs); skipped without Node, like the
chat test it shares its installation with (tests/sdk/test_node_sdk.py)."""

from __future__ import annotations

import json
import os
import subprocess

import pytest

from proxy.runners.replay import ReplayRunner
from proxy.settings import Settings
from tests.sdk.test_node_sdk import NODE_DIR, node_sdk  # noqa: F401  (the fixture)
from tests.support.runners import REPO
from tests.support.servers import running_proxy

API_KEY = "sk-node-completions"


@pytest.fixture(scope="module")
def fixtures_server():
    runner = ReplayRunner.from_directory(REPO / "fixtures")
    with running_proxy(Settings(api_keys=[API_KEY]), runner) as proxy:
        yield proxy


def test_the_npm_sdk_parses_legacy_completions(node_sdk, fixtures_server):  # noqa: F811
    env = {**os.environ, "BASE_URL": fixtures_server.base_url, "API_KEY": API_KEY}
    done = subprocess.run([node_sdk, "completions_check.mjs"], cwd=NODE_DIR, env=env,
                          capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr[-3000:]
    out = json.loads(done.stdout)
    usage = {"prompt_tokens": 14, "completion_tokens": 6, "total_tokens": 20}
    assert out["completion"]["object"] == "text_completion"
    assert out["completion"]["id"] == "cmpl-"
    assert out["completion"]["choices"] == [[0, "This is a test.", "stop", None]]
    assert {k: out["completion"]["usage"][k] for k in usage} == usage
    assert out["stream"]["text"] == "This is a test."
    assert out["stream"]["finish_reasons"] == ["stop"]
    assert (out["stream"]["ids"], out["stream"]["last_choices"]) == (1, 0)
    assert {k: out["stream"]["usage"][k] for k in usage} == usage
    assert out["list"] == [[0, "Name a colour.Blue."], [1, "Name a fruit.Apple."]]
    assert out["length"] == ["The lighthouse keeper climbed the stairs", "length"]
    assert out["stop"] == "This is"
    assert out["errors"] == {
        "suffix": ["BadRequestError", 400, "unsupported_parameter", "suffix"],
        "tokens": ["BadRequestError", 400, "unsupported_value", "prompt"],
        "overloaded": ["InternalServerError", 503, "upstream_overloaded", None],
    }
