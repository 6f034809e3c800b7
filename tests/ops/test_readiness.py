"""GET /health/ready with the real CLI: found or missing, logged in or not, saturated, replay
mode, the warm-pool hook; and the login check's cache."""

from __future__ import annotations

import os

import pytest

from proxy.claude.probe import CLIProbe
from proxy.claude.version import PINNED_CLI_VERSION
from proxy.contract.validation import validate_response
from proxy.runners.live import LiveRunner, WorkRoot, find_claude
from proxy.settings import Settings
from tests.conftest import pinned_cli_version
from tests.support.http import call
from tests.support.servers import cli_environ, running_proxy

pytestmark = pytest.mark.live


def _ready(proxy, **headers):
    reply = call(proxy.url, "GET", "/health/ready", headers=headers)
    body = reply.json()
    assert validate_response("ReadinessResponse", body) == []
    assert reply.header("Cache-Control") == "no-store"
    return reply.status, body


def test_ready_with_a_logged_in_cli(live_proxy_for):
    proxy = live_proxy_for(max_concurrent=3, queue_size=5)
    status, body = _ready(proxy)
    assert status == 200 and body["status"] == "ready" and body["mode"] == "live"
    cli = body["cli"]
    assert cli["found"] is True and os.path.isabs(cli["path"])
    # The pin in pyproject.toml, not what the test suite's own `--version` probe parsed: the
    # server's probe must find the very version the project is tested with.
    assert cli["version"] == pinned_cli_version() and cli["pinned_version"] == PINNED_CLI_VERSION
    assert cli["logged_in"] is True and cli["auth_method"] == "api_key"
    assert body["pool"] == {"active": 0, "limit": 3}
    assert body["queue"] == {"waiting": 0, "limit": 5, "rejected": 0}
    assert "reason" not in body


def test_not_ready_without_a_login(tmp_path, standin):
    home = tmp_path / "home"
    home.mkdir()   # no credentials in it, and no key or token in the environment
    environ = cli_environ(standin.base_url, str(home))
    environ.pop("ANTHROPIC_API_KEY")
    runner = LiveRunner(work_root=WorkRoot(str(tmp_path / "w")), environ=environ)
    with running_proxy(Settings(), runner) as proxy:
        status, body = _ready(proxy)
    assert status == 503 and body["status"] == "not_ready"
    assert body["cli"]["found"] is True and body["cli"]["logged_in"] is False
    assert "not logged in" in body["reason"] and "claude auth login" in body["reason"]


def test_a_token_in_the_environment_counts_as_a_login(tmp_path, standin):
    home = tmp_path / "home"
    home.mkdir()
    environ = cli_environ(standin.base_url, str(home), {"CLAUDE_CODE_OAUTH_TOKEN": "tok"})
    environ.pop("ANTHROPIC_API_KEY")
    runner = LiveRunner(work_root=WorkRoot(str(tmp_path / "w")), environ=environ)
    with running_proxy(Settings(), runner) as proxy:
        status, body = _ready(proxy)
    assert status == 200 and body["cli"]["auth_method"] == "oauth_token"


def test_not_ready_without_a_cli(tmp_path):
    missing = str(tmp_path / "no-such-claude")
    runner = LiveRunner(missing, work_root=WorkRoot(str(tmp_path / "w")))
    with running_proxy(Settings(claude_bin=missing), runner) as proxy:
        status, body = _ready(proxy)
    assert status == 503 and body["status"] == "not_ready"
    assert body["cli"]["found"] is False and body["cli"]["path"] is None
    assert "not found" in body["reason"] and "--claude-bin" in body["reason"]


def test_not_ready_when_every_slot_and_the_queue_are_taken(live_proxy_for):
    proxy = live_proxy_for(max_concurrent=1, queue_size=0)
    release = proxy.parts.limiter.acquire()
    try:
        status, body = _ready(proxy)
        assert status == 503 and "at capacity" in body["reason"]
        assert body["pool"] == {"active": 1, "limit": 1}
    finally:
        release()
    assert _ready(proxy)[0] == 200


def test_readiness_needs_the_key_when_keys_are_set(live_proxy_for):
    proxy = live_proxy_for(api_keys=["ready-key"])
    assert call(proxy.url, "GET", "/health/ready").status == 401
    assert _ready(proxy, **{"x-api-key": "ready-key"})[0] == 200


def test_replay_mode_reports_its_source(tmp_path, live_runner_for):
    cassettes = tmp_path / "cassettes"
    cassettes.mkdir()
    runner = live_runner_for()
    with running_proxy(Settings(replay=str(cassettes)), runner) as proxy:
        status, body = _ready(proxy)
        assert status == 200 and body["mode"] == "replay" and "cli" not in body
        assert body["replay"] == {"source": str(cassettes), "available": True}
        cassettes.rmdir()
        status, body = _ready(proxy)
        assert status == 503 and "does not exist" in body["reason"]


class _WarmPoolRunner:
    """A runner with a warm pool describes it through `pool_state()`."""

    def __init__(self, runner: LiveRunner) -> None:
        self.inner = runner
        self.claude_bin = runner.claude_bin
        self.base_env = runner.base_env

    def start(self, invocation):
        return self.inner.start(invocation)

    def close(self):
        self.inner.close()

    def pool_state(self):
        return {"warm": 2, "target": 3, "spawning": 1}


def test_a_warm_pool_reports_through_the_hook(live_proxy_for):
    proxy = live_proxy_for(runner_wrapper=_WarmPoolRunner)
    status, body = _ready(proxy)
    assert status == 200
    assert body["pool"]["warm"] == {"warm": 2, "target": 3, "spawning": 1}
    metrics = call(proxy.url, "GET", "/metrics").body.decode()
    assert 'claude_max_api_warm_pool{state="target"} 3.0' in metrics


def test_the_login_check_is_cached(tmp_path, standin):
    environ = cli_environ(standin.base_url, str(tmp_path))
    runs = []
    clock_value = [0.0]

    def env_for(tmp):
        runs.append(tmp)
        return environ

    probe = CLIProbe(lambda: find_claude("", environ), env_for, login_ttl=60.0,
                     clock=lambda: clock_value[0])
    first = probe.status()
    assert first.logged_in is True and first.version == pinned_cli_version()
    assert len(runs) == 2                      # --version and auth status
    clock_value[0] = 59.0
    assert probe.status() == first and len(runs) == 2      # both cached
    clock_value[0] = 61.0
    assert probe.status().logged_in is True and len(runs) == 3  # only the login is re-checked


def test_a_missing_login_is_rechecked_sooner(tmp_path, standin):
    environ = cli_environ(standin.base_url, str(tmp_path))
    environ.pop("ANTHROPIC_API_KEY")
    clock_value = [0.0]
    state = {"env": environ}
    probe = CLIProbe(lambda: find_claude("", environ), lambda tmp: state["env"], login_ttl=60.0,
                     clock=lambda: clock_value[0])
    assert probe.status().logged_in is False
    state["env"] = {**environ, "ANTHROPIC_API_KEY": "now-logged-in"}
    clock_value[0] = 5.0
    assert probe.status().logged_in is False   # still cached
    clock_value[0] = 11.0
    assert probe.status().logged_in is True    # noticed well before the 60 s positive TTL
