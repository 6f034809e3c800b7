"""The pytest plugin, exercised as a user's project uses it: pytest run on docs/example-app,
recording through the real CLI (against the stand-in), and replaying with no CLI on PATH, as
in CI. Also: loading the plugin costs a pytest run nothing it does not use."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from proxy.cassettes.persister import CassetteDirectory
from proxy.standin import Scenario
from tests.replay.conftest import REPO
from tests.support.servers import cli_environ

EXAMPLE = REPO / "docs" / "example-app"
NEW_TEST = '''
import openai, pytest
from openai import OpenAI
from chat_app import Assistant

def test_an_unrecorded_request(claude_max_api_server):
    with OpenAI(base_url=claude_max_api_server, api_key="x", max_retries=0) as sdk:
        with pytest.raises(openai.APIStatusError) as caught:
            Assistant(sdk).ask("What is the capital of Franc?")
    print("MISS:", caught.value.message)
    assert caught.value.code == "fixture_not_found"
'''


def _project(tmp_path: Path, cassettes: bool = True) -> Path:
    project = tmp_path / "example-app"
    shutil.copytree(EXAMPLE, project, ignore=shutil.ignore_patterns(
        "__pycache__", *(() if cassettes else ("cassettes",))))
    return project


def _pytest(project: Path, env: dict, *args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider",
                           "-s", *args], cwd=project, env=env, capture_output=True, text=True,
                          timeout=240)


def _offline_ci(tmp_path: Path) -> dict:
    """CI: `CI` set, no Claude CLI on PATH, no login."""
    empty = tmp_path / "empty-bin"
    empty.mkdir(exist_ok=True)
    env = {k: v for k, v in os.environ.items()
           if not k.startswith(("CLAUDE", "ANTHROPIC_", "PYTEST_"))}
    env.update(PATH=str(empty), HOME=str(tmp_path), CI="true")
    assert shutil.which("claude", path=env["PATH"]) is None
    return env


def _files(directory: Path) -> dict[str, str]:
    return {p.name: p.read_text(encoding="utf-8") for p in sorted(directory.glob("*.json"))}


def test_the_example_replays_its_committed_cassettes_in_ci_without_a_cli(tmp_path):
    project = _project(tmp_path)
    (project / "tests" / "test_new.py").write_text(NEW_TEST, encoding="utf-8")
    before = _files(project / "tests" / "cassettes")
    result = _pytest(project, _offline_ci(tmp_path))
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    assert "5 passed" in result.stdout
    # In CI nothing is recorded: the unrecorded request is a miss that says what is closest.
    assert _files(project / "tests" / "cassettes") == before
    miss = next(line.split("MISS: ", 1)[1] for line in result.stdout.splitlines()
                if "MISS: " in line)
    assert 'Closest: what-is-the-capital-of-france-' in miss
    assert 'blocks[0] differs: "What is the capital of Franc?" here, "What is the capital of ' \
           'France?" in the cassette' in miss
    assert miss.endswith("Record it with record mode new_episodes (or all).")


def test_replaying_an_empty_cassette_directory_fails_the_session_clearly(tmp_path):
    project = _project(tmp_path, cassettes=False)
    result = _pytest(project, _offline_ci(tmp_path))
    assert result.returncode != 0
    assert "record mode `none` replays" in result.stdout and "holds no cassettes" in result.stdout


@pytest.mark.live
@pytest.mark.slow
def test_the_example_records_with_the_cli_then_replays_without_it(standin, tmp_path):
    project = _project(tmp_path, cassettes=False)
    standin.add_scenario("example-app", Scenario(reply_text="You said: {echo}"))
    home = tmp_path / "home"
    home.mkdir()
    env = {k: v for k, v in cli_environ(standin.base_url_for("example-app"), str(home)).items()
           if k != "CI" and not k.startswith("PYTEST_")}
    recorded = _pytest(project, env)  # not in CI: the default mode, once, records
    assert recorded.returncode == 0, recorded.stdout[-3000:] + recorded.stderr[-3000:]
    assert "4 passed" in recorded.stdout
    cassettes = CassetteDirectory(project / "tests" / "cassettes").load_all()
    assert len(cassettes) == 6  # six requests; the chats' second turns continued their first
    assert sum(c.recording.process == "continued" for c in cassettes) == 2
    check = subprocess.run([sys.executable, "-m", "proxy", "cassettes", "check",
                            str(project / "tests" / "cassettes")], capture_output=True,
                           text=True, timeout=60)
    assert check.returncode == 0, check.stdout

    replayed = _pytest(project, _offline_ci(tmp_path))
    assert replayed.returncode == 0, replayed.stdout[-3000:] + replayed.stderr[-3000:]
    assert "4 passed" in replayed.stdout


def test_the_committed_example_cassettes_pass_the_check():
    from proxy.commands.cassettes import do_check, read_directory
    found = read_directory(EXAMPLE / "tests" / "cassettes")
    assert len(found) == 6 and do_check(found, strict=True, out=open(os.devnull, "w")) == 0


def test_loading_the_plugin_imports_nothing_of_the_server():
    """Entry points load in every pytest run where claude-max-api is installed, ours too."""
    out = subprocess.run([sys.executable, "-c", "import sys, proxy.pytest_plugin\n"
                          "print(sorted(k for k in sys.modules if k.startswith('proxy')))"],
                         capture_output=True, text=True, timeout=60, cwd=REPO)
    assert out.stdout.strip() == "['proxy', 'proxy.pytest_plugin']", out.stderr
    from proxy import pytest_plugin
    from proxy.runners.record_modes import RECORD_MODES
    assert pytest_plugin.RECORD_MODES == RECORD_MODES


def test_the_cassette_directory_can_be_given_on_the_command_line(tmp_path):
    """Relative to where pytest starts; here the example's cassettes, from its parent."""
    project = _project(tmp_path)
    (project / "pytest.ini").write_text("[pytest]\npythonpath = .\n", encoding="utf-8")
    moved = tmp_path / "elsewhere"
    shutil.move(str(project / "tests" / "cassettes"), moved)
    result = _pytest(project, _offline_ci(tmp_path), "--claude-max-api-cassettes",
                     "../elsewhere", "--claude-max-api-record-mode", "none")
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    assert "4 passed" in result.stdout
