"""`serve --record DIR --record-mode once|new_episodes|none|all`: an app's requests recorded
through the real CLI (against the stand-in), then replayed by `claude-max-api serve` running
with no CLI on PATH, and the client sees the same thing (streams compared chunk by chunk, ids
and timestamps aside). And what each mode replays, records and replaces, without a CLI."""

from __future__ import annotations

import itertools
import os
import shutil
import signal
import subprocess
import sys
import threading
from pathlib import Path

import openai
import pytest
from openai import OpenAI

from proxy.cassettes.persister import CassetteDirectory
from proxy.runners.record_modes import CassetteRunner, cassette_name
from proxy.runners.recording import RecordingRunner
from proxy.settings import Settings
from proxy.standin import Scenario
from tests.replay.conftest import CASSETTES
from tests.support.runners import LinesRunner, load_cassette
from tests.support.servers import cli_environ, running_proxy

_SCENARIOS = itertools.count()
QUESTION = [{"role": "system", "content": "Be brief."},
            {"role": "user", "content": "What is the boiling point of water?"}]


# -- the app, as a client sees it -------------------------------------------------------------

def _visible(value: dict) -> dict:
    """A response or chunk without what differs on every call (its id and time)."""
    return {k: v for k, v in value.items() if k not in ("id", "created")}


def _whole(sdk: OpenAI, messages: list) -> dict:
    return _visible(sdk.chat.completions.create(model="claude-sonnet-4", messages=messages)
                    .model_dump())


def _chunks(sdk: OpenAI, messages: list) -> list[dict]:
    return [_visible(c.model_dump()) for c in sdk.chat.completions.create(
        model="claude-sonnet-4", messages=messages, stream=True,
        stream_options={"include_usage": True})]


def app_session(base_url: str) -> list:
    """What an app does: a question whole and streamed, then a two-turn chat whose second
    turn continues the first (on a kept CLI process, when live)."""
    with OpenAI(base_url=base_url, api_key="unused", max_retries=0, timeout=60) as sdk:
        seen: list = [_whole(sdk, QUESTION), _chunks(sdk, QUESTION)]
        chat = [{"role": "user", "content": "My name is Ada."}]
        first = _whole(sdk, chat)
        chat += [{"role": "assistant", "content": first["choices"][0]["message"]["content"]},
                 {"role": "user", "content": "What is my name?"}]
        seen += [first, _chunks(sdk, chat)]
    return seen


# -- servers ------------------------------------------------------------------------------------

@pytest.fixture
def standin_cli(standin, tmp_path, monkeypatch):
    """The process environment `serve` hands the CLI: the stand-in, a throwaway HOME."""
    name = f"record-modes-{next(_SCENARIOS)}"
    standin.add_scenario(name, Scenario(reply_text="Reply to: {echo}", split=3))
    home = tmp_path / "home"
    home.mkdir()
    for key in list(os.environ):
        if key.startswith(("ANTHROPIC_", "CLAUDE_CODE_", "CLAUDE_MAX_API_")):
            monkeypatch.delenv(key)
    for key, value in cli_environ(standin.base_url_for(name), str(home)).items():
        monkeypatch.setenv(key, value)
    return name


class ServeProcess:
    """`claude-max-api serve` as a real process with nothing on PATH: no CLI can be found."""

    def __init__(self, tmp_path: Path, *args: str) -> None:
        empty = tmp_path / "empty-bin"
        empty.mkdir(exist_ok=True)
        env = {k: v for k, v in os.environ.items() if not k.startswith(("CLAUDE", "ANTHROPIC_"))}
        env.update(PATH=str(empty), HOME=str(tmp_path), PYTHONUNBUFFERED="1")
        assert shutil.which("claude", path=env["PATH"]) is None
        self.process = subprocess.Popen(
            [sys.executable, "-m", "proxy", "serve", "--port", "0", *args], cwd=tmp_path,
            env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        self.stderr: list[str] = []
        threading.Thread(target=lambda: self.stderr.extend(self.process.stderr),
                         daemon=True).start()
        self.url = None
        for line in self.process.stdout:
            if line.startswith("Serving on "):
                self.url = line.split()[-1]
                break
        assert self.url, "the server did not start:\n" + "".join(self.stderr)

    def stop(self) -> None:
        self.process.send_signal(signal.SIGTERM)
        try:
            self.process.wait(20)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait(10)


def replay_without_cli(tmp_path: Path, directory: Path, mode: str = "none") -> list:
    server = ServeProcess(tmp_path, "--record", str(directory), "--record-mode", mode)
    try:
        return app_session(server.url)
    finally:
        server.stop()


# -- recorded live, replayed without the CLI ----------------------------------------------------

@pytest.mark.live
@pytest.mark.parametrize("mode", ["all", "once", "new_episodes"])
def test_each_mode_records_live_and_the_replay_without_a_cli_is_identical(
        mode, standin_cli, tmp_path):
    directory = tmp_path / "cassettes"
    with running_proxy(Settings(record=str(directory), record_mode=mode,
                                work_dir=str(tmp_path / "work"))) as proxy:
        runner = proxy.parts.runner
        assert runner.mode == ("all" if mode == "once" else mode) and not runner.replay_only
        live = app_session(proxy.base_url)
    recorded = list(runner.recorded)
    if mode == "new_episodes":  # the streamed question was answered from the first recording
        assert len(recorded) == 3 and len(set(recorded)) == 3
    else:  # recorded again, under the same name: one request, one file
        assert len(recorded) == 4 and recorded[0] == recorded[1]
    assert runner.failures() == []
    cassettes = {c.name: c for c in CassetteDirectory(directory).load_all()}
    assert sorted(cassettes) == sorted(set(recorded))
    last = cassettes[recorded[-1]]
    assert last.recording.process == "continued"  # the chat's second turn, on the kept process
    assert last.recording.request == {"model": "claude-sonnet-4", "stream": True}
    assert [role for role, _ in last.invocation.history] == ["user", "assistant"]
    assert live[0]["choices"][0]["message"]["content"] == \
        "Reply to: What is the boiling point of water?"

    replayed = replay_without_cli(tmp_path, directory, "once" if mode == "once" else "none")
    assert len(replayed) == len(live)
    for i, (now, then) in enumerate(zip(replayed, live)):
        if isinstance(then, list):
            assert len(now) == len(then), f"step {i}: {len(now)} chunks, live {len(then)}"
            for j, (a, b) in enumerate(zip(now, then)):
                assert a == b, f"step {i}, chunk {j}"
        else:
            assert now == then, f"step {i}"


@pytest.mark.live
def test_all_replaces_the_recording_of_the_same_request(standin_cli, tmp_path):
    """With the date in the system prompt ignored, a new day's recording replaces the old."""
    directory = tmp_path / "cassettes"

    def ask(day: str) -> str:
        settings = Settings(record=str(directory), record_mode="all",
                            match_ignore=["/system_prompt"], work_dir=str(tmp_path / "work"))
        with running_proxy(settings) as proxy, \
                OpenAI(base_url=proxy.base_url, api_key="x", max_retries=0) as sdk:
            sdk.chat.completions.create(model="sonnet", messages=[
                {"role": "system", "content": f"Today is {day}."},
                {"role": "user", "content": "What day is it?"}])
            return proxy.parts.runner.recorded[0]

    old, new = ask("Monday"), ask("Tuesday")
    assert old != new
    (only,) = CassetteDirectory(directory).load_all()
    assert only.name == new and only.invocation.system_prompt.full == "Today is Tuesday."


# -- the modes, without a CLI -------------------------------------------------------------------

def _copy(names: list[str], into: Path) -> Path:
    for name in names:
        CassetteDirectory(into).save(load_cassette(name))
    return into


def test_none_replays_without_a_cli_and_a_miss_names_the_first_difference(tmp_path):
    directory = _copy(["system_and_developer", "plain_question"], tmp_path / "cassettes")
    server = ServeProcess(tmp_path, "--record", str(directory), "--record-mode", "none",
                          "--match-ignore", "user")
    try:
        with OpenAI(base_url=server.url, api_key="x", max_retries=0) as sdk:
            answer = sdk.chat.completions.create(model="claude-sonnet-4", user="anyone",
                                                 messages=[{"role": "user",
                                                            "content": "What is 2 + 2?"}])
            assert answer.choices[0].message.content == "2 + 2 = 4."
            with pytest.raises(openai.APIStatusError) as caught:
                sdk.chat.completions.create(model="claude-sonnet-4", messages=[
                    {"role": "system", "content": "You are a terse history tutor."},
                    {"role": "developer", "content": "Answer in one word."},
                    {"role": "user", "content": "What is the capital of France?"}])
    finally:
        server.stop()
    error = caught.value
    assert (error.status_code, error.code) == (503, "fixture_not_found")
    assert ('Closest: system_and_developer: system_prompt differs: "You are a terse history '
            'tutor.\\n\\nAnswer in one word." here, "You are a terse geography tutor.\\n\\n'
            'Answer in one word." in the cassette') in error.message
    assert error.message.endswith("Record it with record mode new_episodes (or all).")
    assert "(at /system_prompt)" in "".join(server.stderr)  # the log adds the pointer


def test_match_ignore_lets_a_varying_part_differ(tmp_path):
    directory = _copy(["system_and_developer"], tmp_path / "cassettes")
    request = {"model": "claude-sonnet-4", "messages": [
        {"role": "system", "content": "You are a terse geography tutor. Today is 2031-01-01."},
        {"role": "user", "content": "What is the capital of France?"}]}
    for ignore, found in ((["/system_prompt"], True), (["system_prompt"], True), ([], False)):
        settings = Settings(record=str(directory), record_mode="none", match_ignore=ignore)
        with running_proxy(settings) as proxy, \
                OpenAI(base_url=proxy.base_url, api_key="x", max_retries=0) as sdk:
            if found:
                assert sdk.chat.completions.create(**request).choices[0].message.content \
                    == "Paris."
            else:
                with pytest.raises(openai.APIStatusError):
                    sdk.chat.completions.create(**request)


@pytest.mark.parametrize("ignore, message", [
    ("/nothing", "the match view has no 'nothing'"),
    ("messages", "name the part of the conversation instead"),
    ("colour", "not a part of the match view"),
])
def test_serve_refuses_a_match_ignore_it_cannot_apply(tmp_path, capsys, ignore, message):
    from proxy.cli import main
    directory = _copy(["plain_question"], tmp_path / "cassettes")
    assert main(["serve", "--replay", str(directory), "--match-ignore", ignore,
                 "--port", "0"]) == 2
    assert message in capsys.readouterr().err


def test_serve_refuses_replay_and_record_together(tmp_path, capsys):
    from proxy.cli import main
    assert main(["serve", "--replay", str(tmp_path), "--record", str(tmp_path),
                 "--port", "0"]) == 2
    assert "--record-mode none" in capsys.readouterr().err


def _fake_live(name: str = "plain_question"):
    """A recording stack around a runner that prints a recorded run's lines (no CLI)."""
    cassette = load_cassette(name)
    inner = LinesRunner(cassette.stdout)
    return inner, lambda: RecordingRunner(inner, with_request=True)


def _invocation(content: str):
    from proxy.claude.invocation import Invocation
    return Invocation(model="sonnet", blocks=(content,))


def _drain(process) -> None:
    try:
        while True:
            process.read_line(0)
    except EOFError:
        pass
    process.close()


def test_once_records_into_an_empty_directory_and_only_replays_a_recorded_one(tmp_path):
    inner, live = _fake_live()
    runner = CassetteRunner(tmp_path / "cassettes", "once", live=live)
    assert runner.mode == "all" and not runner.replay_only
    _drain(runner.start(_invocation("What is 2 + 2?")))
    assert len(runner.recorded) == 1 and len(inner.invocations) == 1
    runner.close()

    again = CassetteRunner(tmp_path / "cassettes", "once", live=live)
    assert again.mode == "none" and again.replay_only
    _drain(again.start(_invocation("What is 2 + 2?")))  # replayed
    with pytest.raises(Exception) as caught:
        again.start(_invocation("Something new"))
    assert caught.value.code == "fixture_not_found"
    assert "record mode new_episodes" in caught.value.message
    assert len(inner.invocations) == 1  # nothing ran live


def test_new_episodes_replays_hits_and_records_misses(tmp_path):
    directory = _copy(["plain_question"], tmp_path / "cassettes")
    inner, live = _fake_live()
    runner = CassetteRunner(directory, "new_episodes", live=live)
    _drain(runner.start(_invocation("What is 2 + 2?")))      # recorded before: replayed
    assert inner.invocations == []
    _drain(runner.start(_invocation("What is 3 + 3?")))      # new: recorded
    _drain(runner.start(_invocation("What is 3 + 3?")))      # and replayed from then on
    assert [i.blocks for i in inner.invocations] == [("What is 3 + 3?",)]
    assert runner.recorded == [cassette_name(_invocation("What is 3 + 3?"))]
    assert runner.recorded[0].startswith("what-is-3-3-")
    names = sorted(c.name for c in CassetteDirectory(directory).load_all())
    assert names == sorted(["plain_question", *runner.recorded])


def test_a_run_that_cannot_be_recorded_is_answered_and_named(tmp_path):
    """A prompt with an e-mail address: the cassette would carry it, so none is written."""
    inner, live = _fake_live()
    runner = CassetteRunner(tmp_path / "cassettes", "all", live=live)
    _drain(runner.start(_invocation("Write to ada@example.com")))
    assert runner.recorded == []
    ((name, why),) = runner.failures()
    assert "e-mail address" in why and "cannot be recorded" in why
    assert not (tmp_path / "cassettes").exists() or \
        list((tmp_path / "cassettes").iterdir()) == []


def test_a_recording_server_that_only_replays_needs_no_cli(tmp_path):
    directory = _copy(["plain_question"], tmp_path / "cassettes")
    with running_proxy(Settings(record=str(directory), record_mode="none",
                                claude_bin=str(tmp_path / "no-such-claude"))) as proxy:
        import httpx
        ready = httpx.get(proxy.url + "/health/ready").json()
    assert ready["status"] == "ready" and ready["mode"] == "replay"
    assert ready["replay"]["source"] == str(directory)


def test_record_mode_is_checked(tmp_path):
    with pytest.raises(ValueError, match="record mode must be one of"):
        CassetteRunner(tmp_path, "sometimes", live=None)


def test_serve_refuses_to_only_replay_a_directory_without_cassettes(tmp_path, capsys):
    from proxy.cli import main
    assert main(["serve", "--record", str(tmp_path / "none-yet"), "--record-mode", "none",
                 "--port", "0"]) == 2
    assert "no cassettes below" in capsys.readouterr().err
