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
from proxy.runners.base import ExitStatus
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


class _KeptProcess:
    """A CLI process that answers a turn and lives on (as a kept one does): it never exits
    while the test runs, so waiting for its exit would hang."""

    def __init__(self, lines):
        self.lines = list(lines)
        self.pid = 4242
        self.alive = True
        self.exit_waits = []
        self.closed = False

    def read_line(self, timeout):
        if not self.lines:
            return None  # no EOF: stdout stays open for the next turn
        return self.lines.pop(0)

    def exit_status(self, timeout=None):
        self.exit_waits.append(timeout)
        return ExitStatus(None, "")

    def detach(self):
        return self

    def close(self):
        self.closed = True
        self.alive = False


def test_recording_a_conversation_turn_does_not_wait_for_an_exit_that_never_comes():
    from proxy.claude.invocation import Invocation
    from proxy.conversations.runner import TurnHandle
    result = {"type": "result", "subtype": "success", "is_error": False,
              "stop_reason": "end_turn", "result": "Hi.", "session_id": "s"}
    assistant = {"type": "assistant", "message": {"id": "m", "model": "claude-sonnet-5-5",
                                                  "content": [{"type": "text", "text": "Hi."}]}}
    kept = _KeptProcess([json.dumps(m, separators=(",", ":")) for m in (assistant, result)])
    ended = []
    turn = TurnHandle(kept, Invocation(model="sonnet", blocks=("Hello",)),
                      lambda handle: False, ended.append,
                      taken=object(), prefetched='{"type":"system","subtype":"init"}')
    saved = []

    class _Inner:
        def start(self, invocation):
            return turn

        def close(self):
            pass

    recorder = RecordingRunner(_Inner(), saved.append, name_for=lambda _: "turn-2")
    process = recorder.start(Invocation(model="sonnet", blocks=("Hello",)))
    lines = []
    while True:  # as CLIRun reads: up to the result line, then it closes the run
        line = process.read_line(0.1)
        lines.append(line)
        if '"type":"result"' in line:
            break
    process.close()
    assert ended == [turn] and kept.exit_waits == [] and not kept.closed
    (cassette,) = saved
    assert cassette.ending.returncode == 0 and not cassette.ending.closed_by_proxy
    assert cassette.recording.process == "continued"
    assert len(cassette.stdout) == 3 and recorder.failures == []


@pytest.mark.live
def test_a_conversation_entry_records_each_turn_and_checks_how_it_ran(tmp_path):
    def turns(answer: str) -> list:
        first = [{"role": "user", "content": "Hi, I am Bob."}]
        second = first + [{"role": "assistant", "content": answer},
                          {"role": "user", "content": "Who am I?"}]
        return [{"process": "new", "request": {"model": "sonnet", "messages": first}},
                {"process": "continued", "request": {"model": "sonnet", "messages": second}}]
    catalogue = {"format": "claude-max-api-catalogue", "entries": {
        "chat": {"scenario": {"reply_text": "Echo: {echo}"},
                 "turns": turns("Echo: Hi, I am Bob.")},
        # the client "edited" the answer: the turn cannot continue the kept process
        "not_continued": {"scenario": {"reply_text": "Echo: {echo}"},
                          "turns": turns("Something else, Eve.")},
    }}
    path = tmp_path / "catalogue.json"
    path.write_text(json.dumps(catalogue), encoding="utf-8")
    results = {r.name: r for r in record_catalogue(load(path), tmp_path / "out")}
    assert results["chat"].status == "recorded", results["chat"].detail
    first, second = CassetteDirectory(tmp_path / "out").load_all()
    assert (first.name, second.name) == ("chat/turn-1", "chat/turn-2")
    assert first.recording.process is None and second.recording.process == "continued"
    assert [role for role, _ in second.invocation.history] == ["user", "assistant"]
    assert json.loads(second.stdout[-1])["result"] == "Echo: Who am I?"
    assert second.ending.returncode == 0 and second.exit_offset < 5.0
    failed = results["not_continued"]
    assert failed.status == "failed"
    assert "expected to run as 'continued' but ran as 'resumed'" in failed.detail
