"""`claude-max-api doctor`, run as the real command against the real CLI and the stand-in:
each problem is reported with a fix and makes the exit status non-zero."""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
from pathlib import Path

import pytest

from proxy.settings import Settings
from proxy.standin.scenario import Scenario
from tests.support.servers import cli_environ, running_proxy

pytestmark = pytest.mark.live


def _command() -> list[str]:
    script = Path(sys.executable).parent / "claude-max-api"
    return [str(script)] if script.exists() else [sys.executable, "-m", "proxy"]


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@pytest.fixture
def env_for(standin, tmp_path):
    """The environment of a user whose CLI talks to a stand-in scenario."""
    def make(scenario: Scenario | None = None, *, logged_in: bool = True) -> dict[str, str]:
        name = f"doctor-{os.getpid()}-{len(list(tmp_path.iterdir()))}"
        standin.add_scenario(name, scenario or Scenario(reply_text="pong"))
        home = tmp_path / name
        home.mkdir()
        env = cli_environ(standin.base_url_for(name), str(home))
        if not logged_in:
            env.pop("ANTHROPIC_API_KEY")
        return env
    return make


def doctor(env: dict[str, str], *argv: str) -> tuple[int, dict, str]:
    done = subprocess.run(_command() + ["doctor", "--json", "--port", str(_free_port()), *argv],
                          env=env, capture_output=True, text=True, timeout=240)
    report = json.loads(done.stdout)
    return done.returncode, {c["name"]: c for c in report["checks"]}, done.stdout


def test_all_good_with_a_live_request(env_for):
    code, checks, _ = doctor(env_for(), "--live")
    assert code == 0, checks
    assert {name: c["status"] for name, c in checks.items()} == {
        "cli": "ok", "version": "ok", "login": "ok", "exposure": "ok", "port": "ok", "live": "ok"}
    assert "pong" in checks["live"]["summary"]


def test_not_logged_in(env_for):
    code, checks, _ = doctor(env_for(logged_in=False), "--live")
    assert code == 1
    assert checks["login"]["status"] == "fail" and "claude auth login" in checks["login"]["fix"]
    assert checks["live"]["status"] == "skip"


def test_cli_missing(env_for, tmp_path):
    code, checks, _ = doctor(env_for(), "--claude-bin", str(tmp_path / "nope"))
    assert code == 1
    assert checks["cli"]["status"] == "fail"
    assert "npm install -g @anthropic-ai/claude-code@" in checks["cli"]["fix"]
    assert "login" not in checks


def test_live_request_failure_is_reported_with_a_fix(env_for):
    code, checks, _ = doctor(env_for(Scenario(fail_status=401)), "--live")
    assert code == 1
    assert checks["live"]["status"] == "fail"
    assert "Log in again" in checks["live"]["fix"]


def test_port_in_use_by_another_program(env_for):
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        sock.listen()
        port = sock.getsockname()[1]
        code, checks, _ = doctor(env_for(), "--port", str(port))
    assert code == 1
    assert checks["port"]["status"] == "fail" and "--port" in checks["port"]["fix"]


def test_port_used_by_a_running_claude_max_api_is_fine(env_for):
    with running_proxy(Settings()) as proxy:
        port = proxy.url.rsplit(":", 1)[1]
        code, checks, _ = doctor(env_for(), "--port", port)
    assert code == 0, checks
    assert "already served by a running claude-max-api" in checks["port"]["summary"]


def test_unsafe_exposure_and_a_readable_key_file(env_for, tmp_path):
    code, checks, _ = doctor(env_for(), "--host", "192.0.2.10")
    assert code == 1 and checks["exposure"]["status"] == "fail"
    assert "--api-key-file" in checks["exposure"]["fix"]
    key_file = tmp_path / "keys"
    key_file.write_text("k\n")
    key_file.chmod(0o644)
    code, checks, _ = doctor(env_for(), "--api-key-file", str(key_file))
    assert code == 0 and checks["key-file"]["status"] == "warn"
    assert checks["key-file"]["fix"] == f"chmod 600 {key_file}"


def test_text_output_says_how_to_fix(env_for):
    done = subprocess.run(_command() + ["doctor", "--port", str(_free_port())],
                          env=env_for(logged_in=False), capture_output=True, text=True,
                          timeout=240)
    assert done.returncode == 1
    assert "FAIL  The CLI is not logged in." in done.stdout
    assert "fix: run `claude auth login`" in done.stdout
    assert done.stdout.rstrip().endswith("1 problem(s) found.")


# --- the plan's state, when known ----------------------------------------------------------

U = "anthropic-ratelimit-unified-"


def test_a_live_request_under_a_subscription_shows_the_plan(env_for):
    import time
    reset = int(time.time()) + 3 * 3600
    env = env_for(Scenario(reply_text="pong", answer_headers={
        U + "status": "allowed_warning", U + "reset": str(reset),
        U + "representative-claim": "five_hour", U + "5h-status": "allowed_warning",
        U + "5h-utilization": "0.82", U + "5h-reset": str(reset),
        U + "5h-surpassed-threshold": "0.75"}))
    env.update(ANTHROPIC_API_KEY="", CLAUDE_CODE_OAUTH_TOKEN="standin-oauth-token")
    code, checks, _ = doctor(env, "--live")
    assert code == 0, checks                       # a warning is not a failure
    plan = checks["plan"]
    assert plan["status"] == "warn"
    assert plan["summary"].startswith("Claude plan: the 5-hour window is near its limit; "
                                      "5-hour window 82 % used (resets ")
    assert plan["summary"].endswith("(reported by the live request).")
    assert "claude.ai/settings/usage" in plan["fix"]


def test_no_plan_line_when_the_plan_is_not_known(env_for):
    code, checks, _ = doctor(env_for(), "--live")   # an API key login reports no plan
    assert code == 0 and "plan" not in checks


def test_the_running_servers_plan_is_shown(env_for):
    with running_proxy(Settings(api_keys=["ops=doctor-key-0123456789"])) as proxy:
        proxy.parts.plan.observe({
            "status": "allowed", "resetsAt": 4102444800, "rateLimitType": "five_hour",
            "isUsingOverage": False, "unifiedWindows": {
                "five_hour": {"utilization": 0.31, "resetsAt": 4102444800},
                "seven_day": {"utilization": 0.12, "resetsAt": 4102444800}}})
        port = proxy.url.rsplit(":", 1)[1]
        code, checks, _ = doctor(env_for(), "--port", port,
                                 "--api-key", "ops=doctor-key-0123456789")
    assert code == 0, checks
    assert checks["plan"] == {
        "name": "plan", "status": "ok", "fix": None,
        "summary": "Claude plan: allowed; 5-hour window 31 % used (resets 2100-01-01 00:00:00 "
                   "UTC); weekly window 12 % used (resets 2100-01-01 00:00:00 UTC) (as the "
                   f"server on port {port} last saw it)."}
