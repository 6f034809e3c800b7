"""The official `openai` npm SDK drives the real waitress server in replay mode: a small Node
script (tests/sdk/node/sdk_check.mjs) makes a completion, a stream, a stream through the SDK's
helper, lists and retrieves models and provokes errors; this test checks what it parsed.

The SDK is pinned in tests/sdk/node/package.json (and its lock file): openai 6.49.0, the last
major that supports Node 20 (7.x requires Node 22). The test installs it with `npm ci` into
tests/sdk/node/node_modules (ignored by git) on first use, under a file lock. When node or npm
is missing or `npm ci` fails (the registry cannot be reached, say), it is skipped with the
reason on a developer's machine and fails in CI (tests/support/ci.py).
"""

from __future__ import annotations

import fcntl
import json
import os
import shutil
import subprocess
import tempfile
from pathlib import Path

import pytest

from tests.sdk.conftest import API_KEY
from tests.support.ci import missing

NODE_DIR = Path(__file__).resolve().parent / "node"
SDK_VERSION = json.loads((NODE_DIR / "package.json").read_text())["dependencies"]["openai"]


def _installed_version() -> str | None:
    try:
        return json.loads((NODE_DIR / "node_modules" / "openai" / "package.json")
                          .read_text())["version"]
    except (OSError, ValueError, KeyError):
        return None


@pytest.fixture(scope="session")
def node_sdk() -> str:
    node, npm = shutil.which("node"), shutil.which("npm")
    if not node or not npm:
        missing("node and npm are needed for the openai npm SDK test")
    lock_path = Path(tempfile.gettempdir()) / f"claude-max-api-npm-{os.getuid()}.lock"
    with open(lock_path, "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)  # other pytest processes may install at the same time
        if _installed_version() != SDK_VERSION:
            done = subprocess.run([npm, "ci", "--no-audit", "--no-fund", "--loglevel=error"],
                                  cwd=NODE_DIR, capture_output=True, text=True, timeout=600)
            if done.returncode != 0:
                missing(f"npm ci could not install openai {SDK_VERSION}: "
                        f"{done.stderr.strip()[-500:]}")
    assert _installed_version() == SDK_VERSION
    return node


def test_the_npm_sdk_parses_everything(node_sdk, replay_server):
    env = {**os.environ, "BASE_URL": replay_server.base_url, "API_KEY": API_KEY}
    done = subprocess.run([node_sdk, "sdk_check.mjs"], cwd=NODE_DIR, env=env,
                          capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr[-3000:]
    out = json.loads(done.stdout)

    assert out["completion"] == {
        "object": "chat.completion", "model": "claude-sonnet-4", "content": "2 + 2 = 4.",
        "role": "assistant", "refusal": None, "finish_reason": "stop",
        "usage": out["completion"]["usage"]}
    usage = out["completion"]["usage"]
    assert (usage["prompt_tokens"], usage["completion_tokens"], usage["total_tokens"]) == \
        (21, 9, 30)

    assert out["stream"] == {"first_role": "assistant", "text": "2 + 2 = 4.",
                             "finish_reasons": ["stop"], "ids": 1, "usage": usage,
                             "last_choices": 0}
    assert out["helper"] == {"content": "2 + 2 = 4.", "finish_reason": "stop"}

    assert {"claude-sonnet-4", "sonnet", "opus"} <= set(out["models"]["ids"])
    assert out["models"]["objects"] == ["model"]
    assert out["retrieve"] == {"id": "sonnet", "object": "model", "owned_by": "anthropic"}

    errors = out["errors"]
    expected = {
        "not_found": ("NotFoundError", 404, "model_not_found"),
        "bad_request": ("BadRequestError", 400, "empty_array"),
        "unauthorized": ("AuthenticationError", 401, "invalid_api_key"),
        "rate_limited": ("RateLimitError", 429, "rate_limit_exceeded"),
        "stream_refused": ("NotFoundError", 404, "model_not_found"),
    }
    for name, (cls, status, code) in expected.items():
        assert (errors[name]["class"], errors[name]["status"], errors[name]["code"]) == \
            (cls, status, code), (name, errors[name])
        assert errors[name]["isAPIError"] and errors[name]["message"]
    mid = errors["mid_stream"]
    assert mid["isAPIError"] and mid["code"] == "claude_cli_crashed", mid
    assert mid["partial"] == "Once upon "
