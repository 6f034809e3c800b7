"""`claude-max-api cassettes list|show|check DIR`."""

from __future__ import annotations

import json

import pytest

from proxy.cassettes import serializer
from proxy.cassettes.cassette import Cassette, Ending, RecordedInvocation, Recording
from proxy.cassettes.persister import CassetteDirectory
from proxy.claude.invocation import Invocation
from proxy.claude.version import PINNED_CLI_VERSION
from proxy.cli import main
from tests.replay.conftest import CASSETTES

RESULT = {"type": "result", "subtype": "success", "is_error": False, "result": "Fine."}


def _cassette(name: str, *, prompt: str = "Hello", line: dict | None = None,
              version: str = PINNED_CLI_VERSION, request=None) -> Cassette:
    lines = [json.dumps(line or RESULT, separators=(",", ":"))]
    return Cassette(name=name, invocation=RecordedInvocation.of(
        Invocation(model="sonnet", blocks=(prompt,))), stdout=tuple(lines),
        ending=Ending(0), cli_version=version,
        recording=Recording(description="planted", request=request))


def _write(directory, *cassettes: Cassette) -> None:
    for cassette in cassettes:
        CassetteDirectory(directory).save(cassette)  # writes what it is given: no scan


def test_list_says_what_each_cassette_answers(capsys):
    assert main(["cassettes", "list", str(CASSETTES)]) == 0
    out = capsys.readouterr().out
    rows = {line.split()[0]: line for line in out.splitlines() if line.strip()}
    assert "sonnet" in rows["plain_question"] and '"What is 2 + 2?"' in rows["plain_question"]
    turn = rows["conversation_continued/turn-2"].split()
    assert turn[1:5] == ["sonnet", "2", "continued", "-"]
    assert rows["conversation_edited/turn-3"].split()[3] == "resumed"
    assert rows["garbage_cli"].split()[5] == "(fake)"
    count = sum(1 for _ in CASSETTES.rglob("*.json"))
    assert f"{count} cassette(s)." in out


def test_list_shows_how_a_recorded_request_streamed(tmp_path, capsys):
    _write(tmp_path, _cassette("a", request={"model": "claude-sonnet-4", "stream": True}),
           _cassette("b", prompt="Other", request={"model": "sonnet", "stream": False}))
    assert main(["cassettes", "list", str(tmp_path)]) == 0
    rows = [line.split() for line in capsys.readouterr().out.splitlines()[1:3]]
    assert [r[4] for r in rows] == ["yes", "no"]


def test_show_prints_the_match_view_and_the_answer(capsys):
    assert main(["cassettes", "show", str(CASSETTES), "conversation_edited/turn-3"]) == 0
    out = capsys.readouterr().out
    assert "process resumed" in out
    assert '1: {"role": "assistant", "content": [{"text": "Noted: 41.", "type": "text"}]}' in out
    assert 'answers:   "Noted: What is the result?"' in out
    assert main(["cassettes", "show", str(CASSETTES), "no/such"]) == 2
    assert "no cassette named no/such" in capsys.readouterr().err


def test_check_passes_the_fixtures_and_fails_on_what_redaction_missed(tmp_path, capsys):
    assert main(["cassettes", "check", str(CASSETTES), "--strict"]) == 0
    capsys.readouterr()
    _write(tmp_path,
           _cassette("email", line={**RESULT, "result": "Mail ada@example.com"}),
           _cassette("home", line={**RESULT, "result": "See /home/ada/notes.txt"}),
           _cassette("key", line={**RESULT, "result": "sk-ant-api03-abcdefghijklmnop"}),
           _cassette("uuid_out", line={**RESULT, "session_id":
                                       "123e4567-e89b-12d3-a456-426614174000"}),
           # the client's own text is kept verbatim: an id in a prompt is the client's business
           _cassette("uuid_in", prompt="Order 123e4567-e89b-12d3-a456-426614174000"),
           _cassette("clean", prompt="Hello again"))
    assert main(["cassettes", "check", str(tmp_path)]) == 1
    out = capsys.readouterr().out
    errors = [line for line in out.splitlines() if line.startswith("error:")]
    assert {line.split(":")[1].strip().rsplit("/", 1)[-1] for line in errors} == {
        "email.json", "home.json", "key.json", "uuid_out.json"}
    assert "e-mail address" in out and "path of the recording machine" in out
    assert "Anthropic API key" in out and ": uuid:" in out
    assert "6 cassette(s): 5 error(s), 0 warning(s)." in out  # the key matches two patterns


def test_check_warns_about_another_cli_version_and_strict_refuses_it(tmp_path, capsys):
    _write(tmp_path, _cassette("old", version="2.0.1"))
    assert main(["cassettes", "check", str(tmp_path)]) == 0
    out = capsys.readouterr().out
    assert out.startswith("warning:") and "recorded with claude 2.0.1" in out
    assert main(["cassettes", "check", str(tmp_path), "--strict"]) == 1
    assert capsys.readouterr().out.startswith("error:")


def test_check_reports_a_damaged_cassette_and_a_missing_directory(tmp_path, capsys):
    text = serializer.dumps(_cassette("whole"))
    (tmp_path / "broken.json").write_text(text[:-30], encoding="utf-8")
    (tmp_path / "other.json").write_text('{"not": "a cassette"}', encoding="utf-8")
    assert main(["cassettes", "check", str(tmp_path)]) == 1
    out = capsys.readouterr().out
    assert "broken.json: not valid JSON" in out and "other.json" not in out
    assert main(["cassettes", "list", str(tmp_path / "nowhere")]) == 2
    assert "no cassette directory" in capsys.readouterr().err


@pytest.mark.parametrize("action", ["list", "show", "check"])
def test_every_action_needs_a_directory(action, capsys):
    with pytest.raises(SystemExit):
        main(["cassettes", action])
    assert "directory" in capsys.readouterr().err
