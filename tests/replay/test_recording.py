"""Recording: the real CLI against the stand-in, through the real server, into cassettes that
replay to the same answers. And the `record` command end to end."""

from __future__ import annotations

import json
import os
import time
from pathlib import Path

import pytest
from openai import OpenAI

from proxy.cassettes import serializer
from proxy.cassettes.cassette import Recording
from proxy.cassettes.catalogue import load
from proxy.cassettes.persister import CassetteDirectory
from proxy.cassettes.redaction import scan
from proxy.cli import main
from proxy.commands.record import record_catalogue
from proxy.runners.recording import RecordingRunner
from proxy.runners.replay import SIGTERM_EXIT, ReplayRunner
from proxy.settings import Settings
from proxy.standin import Scenario, StandInUpstream
from tests.conftest import CLI_VERSION
from tests.replay.conftest import FIXTURES
from tests.support.servers import running_proxy


def _wait_for(directory: CassetteDirectory, name: str, timeout: float = 30.0) -> None:
    # The cassette is written when the run is closed, just after the response was sent.
    deadline = time.monotonic() + timeout
    while not directory.exists(name):
        assert time.monotonic() < deadline, f"no cassette {name} after {timeout} s"
        time.sleep(0.05)


def _ask(base_url: str, request: dict, stream: bool):
    with OpenAI(base_url=base_url, api_key="x", max_retries=0, timeout=120) as sdk:
        if not stream:
            answer = sdk.chat.completions.create(**request)
            return (answer.choices[0].message.content, answer.choices[0].finish_reason,
                    (answer.usage.prompt_tokens, answer.usage.completion_tokens))
        text, finish, usage = [], None, None
        for chunk in sdk.chat.completions.create(**request, stream=True,
                                                 stream_options={"include_usage": True}):
            if chunk.choices:
                text.append(chunk.choices[0].delta.content or "")
                finish = chunk.choices[0].finish_reason or finish
            if chunk.usage:
                usage = (chunk.usage.prompt_tokens, chunk.usage.completion_tokens)
        return "".join(text), finish, usage


def _record_then_replay(standin, live_runner_for, tmp_path, scenario_name, request, stream):
    live = live_runner_for(scenario_name, max_retries=0)
    directory = CassetteDirectory(tmp_path / "cassettes")
    recorder = RecordingRunner(live, directory.save, name_for=lambda _: scenario_name,
                               recording=Recording(description="test", scenario={}),
                               cli_version=CLI_VERSION, paths={str(tmp_path): "<TEST_DIR>"})
    with running_proxy(Settings(), recorder) as proxy:
        live_answer = _ask(proxy.base_url, request, stream)
        _wait_for(directory, scenario_name)
    assert recorder.failures == []
    runner = ReplayRunner.from_directory(directory.path)
    with running_proxy(Settings(), runner) as proxy:
        replayed = _ask(proxy.base_url, request, stream)
    assert list(runner.started) == [scenario_name]
    return live_answer, replayed, directory.load(scenario_name)


@pytest.mark.live
@pytest.mark.parametrize("stream", [False, True], ids=["whole", "stream"])
def test_a_recorded_run_replays_to_the_same_answer(standin, live_runner_for, tmp_path, stream):
    standin.add_scenario("rec_echo", Scenario(reply_text="You said: {echo}", split=3,
                                              input_tokens=7, output_tokens=5))
    request = {"model": "claude-haiku-4",
               "messages": [{"role": "system", "content": "Be brief."},
                            {"role": "user", "content": "héllo \"there\" 🎉"}]}
    live, replayed, cassette = _record_then_replay(standin, live_runner_for, tmp_path,
                                                   "rec_echo", request, stream)
    assert live == ('You said: héllo "there" 🎉', "stop", (7, 5))
    assert replayed == live
    # What was written is redacted, and records how the run went.
    text = serializer.dumps(cassette)
    assert scan(text) == []
    assert str(tmp_path) not in text and "<CWD>" in text
    assert cassette.ending.returncode == 0 and not cassette.ending.closed_by_proxy
    assert cassette.cli_version == CLI_VERSION
    assert json.loads(cassette.stdout[-1])["type"] == "result"
    assert cassette.invocation.model == "haiku"
    assert cassette.invocation.system_prompt.full == "Be brief."
    assert list(cassette.offsets) == sorted(cassette.offsets) and cassette.exit_offset > 0


@pytest.mark.live
def test_a_run_the_proxy_ends_early_is_recorded_as_such(standin, live_runner_for, tmp_path):
    standin.add_scenario("rec_cut", Scenario(reply_text="This will be cut",
                                             stop_reason="max_tokens", output_tokens=4))
    request = {"model": "sonnet", "max_tokens": 4,
               "messages": [{"role": "user", "content": "Say a lot."}]}
    live, replayed, cassette = _record_then_replay(standin, live_runner_for, tmp_path,
                                                   "rec_cut", request, stream=False)
    assert live == ("This will be cut", "length", (100, 4)) == replayed
    assert cassette.ending.closed_by_proxy
    assert cassette.ending.returncode == SIGTERM_EXIT
    last = json.loads(cassette.stdout[-1])
    assert last["event"]["type"] == "message_delta"
    assert last["event"]["delta"]["stop_reason"] == "max_tokens"
    assert cassette.invocation.max_output_tokens == 4


def _tiny_catalogue(tmp_path: Path) -> Path:
    fake = os.path.relpath(FIXTURES / "fake-cli" / "claude-garbage", tmp_path)
    catalogue = {"format": "claude-max-api-catalogue", "entries": {
        "hello": {"description": "hello", "request": {
            "model": "sonnet", "messages": [{"role": "user", "content": "Hi (tiny catalogue)"}]},
            "scenario": {"reply_text": "Hello, tiny."}},
        "broken": {"description": "a broken CLI", "cli": fake, "request": {
            "model": "sonnet", "messages": [{"role": "user", "content": "Hi (broken)"}]}},
    }}
    path = tmp_path / "catalogue.json"
    path.write_text(json.dumps(catalogue), encoding="utf-8")
    return path


@pytest.mark.live
def test_the_record_command(tmp_path, capsys):
    catalogue = _tiny_catalogue(tmp_path)
    out = tmp_path / "out"
    argv = ["record", "--upstream", "stand-in", "--catalogue", str(catalogue),
            "--output", str(out)]
    assert main(argv) == 0
    err = capsys.readouterr().err
    assert "2/2" in err and "Done in" in err and "2 recorded" in err
    recorded = {c.name: c for c in CassetteDirectory(out).load_all()}
    assert set(recorded) == {"hello", "broken"}
    assert recorded["broken"].cli_version is None
    assert recorded["broken"].recording.cli.endswith("fake-cli/claude-garbage")
    assert recorded["hello"].recording.scenario == {"reply_text": "Hello, tiny."}

    assert main(argv) == 1  # existing cassettes are not replaced...
    err = capsys.readouterr().err
    assert "2 exists" in err and "--overwrite" in err
    assert main(argv + ["--overwrite"]) == 0  # ...unless asked; same behaviour, same file
    assert "2 unchanged" in capsys.readouterr().err


def test_login_mode_skips_what_only_the_stand_in_can_play(tmp_path):
    catalogue = load(FIXTURES / "catalogue.json")
    needs = [n for n, e in catalogue.entries.items() if e.needs_stand_in]
    assert {"upstream_401", "upstream_unreachable", "not_logged_in", "garbage_cli",
            "killed_mid_stream", "tool_use_refused", "upstream_529_fallback"} <= set(needs)
    assert not {"plain_question", "hostile_text", "stop_max_tokens", "model_opus",
                "prompt_1mb"} & set(needs)
    results = record_catalogue(catalogue, tmp_path, upstream="login", only=needs)
    assert {r.status for r in results} == {"skipped"}
    assert list(tmp_path.iterdir()) == []


def test_the_record_command_rejects_an_unknown_entry(capsys):
    assert main(["record", "--upstream", "stand-in", "--only", "no_such_entry",
                 "--catalogue", str(FIXTURES / "catalogue.json"), "--output", "/nonexistent"]) \
        in (1, 2)
    assert "no_such_entry" in capsys.readouterr().err


@pytest.mark.live
def test_login_mode_records_with_the_users_own_environment(tmp_path, monkeypatch):
    """Stands in for a subscriber's login: the user's environment points the CLI at a
    stand-in, and the recorder must use that environment as it is (and redact its HOME)."""
    home = tmp_path / "home"
    home.mkdir()
    catalogue = load(FIXTURES / "catalogue.json")
    with StandInUpstream(Scenario(reply_text="Real-ish answer.")) as upstream:
        monkeypatch.setenv("HOME", str(home))
        monkeypatch.setenv("ANTHROPIC_BASE_URL", upstream.base_url)
        monkeypatch.setenv("ANTHROPIC_API_KEY", "sk-ant-users-own-key")
        results = record_catalogue(catalogue, tmp_path / "login", upstream="login",
                                   only=["plain_question"])
    assert [(r.name, r.status) for r in results] == [("plain_question", "recorded")]
    cassette = CassetteDirectory(tmp_path / "login").load("plain_question")
    assert cassette.recording.upstream == "login" and cassette.recording.scenario is None
    text = serializer.dumps(cassette)
    assert scan(text) == [] and str(home) not in text and "<HOME>" in text
    assert "sk-ant-users-own-key" not in text
    result = json.loads(cassette.stdout[-1])
    assert result["type"] == "result" and result["result"] == "Real-ish answer."
