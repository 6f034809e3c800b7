"""The guards that keep a green CI honest fail when they should:

* in CI, a broken CLI, a missing Node and a missing official spec fail the tests that need
  them, where a developer's run skips them (tests/support/ci.py, tests/conftest.py);
* the run report check fails a run whose live tier did not run, that skipped anything, or
  that lacks the fuzzing statistics (tests/support/tiers.py);
* the fuzzing floor fails a server that refuses every valid request with a documented
  refusal, which every per-request check accepts (tests/schema_fuzz/statistics.py).
"""

from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest
import schemathesis
from hypothesis import given, settings

from proxy.app import create_app
from proxy.contract.document import load_document
from proxy.errors import ProxyError
from proxy.settings import Settings
from tests.properties.budget import SUPPRESSED_HEALTH_CHECKS
from tests.schema_fuzz.budget import config
from tests.schema_fuzz.statistics import FuzzStatistics
from tests.support import tiers
from tests.support.ci import CI_VARIABLES, in_ci
from tests.support.runners import REPO, ScriptedTools, wildcard_replay

# One test of each kind that needs something from outside the repository.
NEEDS_OUTSIDE = (
    "tests/ops/test_readiness.py::test_not_ready_without_a_cli",                  # the CLI
    "tests/sdk/test_node_sdk.py::test_the_npm_sdk_parses_everything",             # node, npm
    "tests/contract/test_official.py::test_vendored_subset_matches_the_full_spec",  # the spec
)


def test_what_counts_as_ci():
    assert not in_ci({}) and not in_ci({"CI": ""}) and not in_ci({"CI": "false"})
    assert not in_ci({"CI": "0", "CMA_CI": "0"})
    assert in_ci({"CI": "true"}) and in_ci({"CI": "1"}) and in_ci({"CMA_CI": "1"})


def _pytest_without_its_requirements(tmp_path, ci: bool) -> subprocess.CompletedProcess:
    """pytest on NEEDS_OUTSIDE with a `claude` that prints nothing and fails, no node or npm
    on PATH, and the official spec somewhere it is not."""
    fake = tmp_path / "bin"
    fake.mkdir(exist_ok=True)
    claude = fake / "claude"
    claude.write_text("#!/bin/sh\nexit 1\n")
    claude.chmod(0o755)
    env = {k: v for k, v in os.environ.items()
           if k not in CI_VARIABLES and k != tiers.ENV_REPORT}
    env.update(PATH=str(fake), OPENAI_OPENAPI_SPEC=str(tmp_path / "absent.yaml"))
    if ci:
        env["CMA_CI"] = "1"
    return subprocess.run([sys.executable, "-m", "pytest", "-q", "-rfEs", "-p", "no:cacheprovider",
                           *NEEDS_OUTSIDE], cwd=REPO, env=env, capture_output=True, text=True,
                          timeout=240)


@pytest.mark.slow
def test_ci_fails_what_a_developer_run_skips(tmp_path):
    developer = _pytest_without_its_requirements(tmp_path, ci=False)
    assert developer.returncode == 0, developer.stdout[-3000:]
    assert "3 skipped" in developer.stdout, developer.stdout[-3000:]
    assert "--version` gave no version" in developer.stdout
    assert "node and npm are needed" in developer.stdout
    assert "the official spec is not at" in developer.stdout

    ci = _pytest_without_its_requirements(tmp_path, ci=True)
    assert ci.returncode == 1, ci.stdout[-3000:]
    assert "skipped" not in ci.stdout.splitlines()[-1], ci.stdout[-3000:]
    assert "CI requires the live tier, and it cannot run" in ci.stdout
    assert ci.stdout.count("CI requires this, and it is missing") == 2, ci.stdout[-3000:]


GOOD_SUMMARY = {
    "live": {"ran": tiers.LIVE_FLOOR, "passed": tiers.LIVE_FLOOR, "failed": 0, "skipped": 0},
    "skipped": {},
    "statistics": {name: {"draws": 1} for name in tiers.REQUIRED_STATISTICS},
}


def test_the_run_report_check(tmp_path):
    assert tiers.problems(GOOD_SUMMARY) == []
    no_live = {**GOOD_SUMMARY, "live": {"ran": 0, "passed": 0, "failed": 0, "skipped": 125}}
    assert any("live tier did not run" in p for p in tiers.problems(no_live))
    skipped = {**GOOD_SUMMARY, "skipped": {"tests/x.py::test_y": "no node"}}
    assert tiers.problems(skipped) == ["skipped in CI: tests/x.py::test_y: no node"]
    no_fuzz = {**GOOD_SUMMARY, "statistics": {}}
    assert any("schemathesis in process" in p for p in tiers.problems(no_fuzz))

    report = tmp_path / "report.json"
    assert tiers.main([str(report)]) == 1                      # no report at all
    report.write_text(json.dumps(no_live))
    assert tiers.main([str(report)]) == 1
    report.write_text(json.dumps(GOOD_SUMMARY))
    assert tiers.main([str(report)]) == 0


FUZZ = schemathesis.openapi.from_dict(load_document(), config=config())
CHAT = FUZZ["/v1/chat/completions"]["POST"]
EXAMPLES = 12


def _refuse_everything(self, body, owner=""):
    raise ProxyError(400, "Not today.", param="messages", code="unsupported_parameter")


def test_the_fuzz_floor_fails_a_server_that_refuses_everything(monkeypatch):
    # As the in-process fuzz test serves it: a request with tools or a response_format runs on
    # a scripted model, so the working app answers those too.
    working = create_app(Settings(), ScriptedTools(wildcard_replay()))
    served, refused = FuzzStatistics(budget=EXAMPLES), FuzzStatistics(budget=EXAMPLES)

    @settings(max_examples=EXAMPLES, deadline=None, database=None, derandomize=True,
              suppress_health_check=SUPPRESSED_HEALTH_CHECKS)
    @given(CHAT.as_strategy())
    def fuzz(case):
        served.record(case, case.call_and_validate(app=working))

    fuzz()
    assert served.shortfalls() == [], served.values()

    monkeypatch.setattr("proxy.backend.ChatService.prepare", _refuse_everything)
    refusing = create_app(Settings(), ScriptedTools(wildcard_replay()))

    @settings(max_examples=EXAMPLES, deadline=None, database=None, derandomize=True,
              suppress_health_check=SUPPRESSED_HEALTH_CHECKS)
    @given(CHAT.as_strategy())
    def fuzz_refusing(case):
        # Every check passes: a documented refusal of a valid request is allowed, one by one.
        refused.record(case, case.call_and_validate(app=refusing))

    fuzz_refusing()
    shortfalls = refused.shortfalls()
    assert any("answered 2xx" in s for s in shortfalls), shortfalls
    assert any("whole streams" in s for s in shortfalls), shortfalls
