from __future__ import annotations

import json

import pytest

from proxy.standin import Scenario, ToolUse, load_catalogue


def test_defaults_round_trip_to_an_empty_dict() -> None:
    assert Scenario().to_dict() == {}
    assert Scenario.from_dict({}) == Scenario()


def test_every_kind_of_field_round_trips() -> None:
    scenario = Scenario(
        reply_text="x {echo} {model}",
        split=3,
        thinking="hmm",
        thinking_updates="a note",
        thinking_tokens=3,
        tool_use=ToolUse(name="Bash", input={"command": "echo hi"}, text="Let me run it."),
        after_tool_text="done: {tool_result}",
        stop_reason="stop_sequence",
        stop_sequence="STOP",
        input_tokens=7,
        cache_creation_input_tokens=5,
        cache_read_input_tokens=3,
        output_tokens=2,
        fail_status=529,
        fail_count=2,
        fail_models=("claude-opus-5-5",),
        fail_headers={"retry-after": "1"},
        fail_body={"type": "error", "error": {"type": "overloaded_error", "message": "busy"}},
        answer_headers={"anthropic-ratelimit-unified-status": "allowed"},
        first_byte_delay=0.5,
        chunk_delay=0.1,
        hang=True,
        hang_after_events=4,
        abort_after_events=3,
        error_event_after=2,
        when_prompt_contains="magic",
    )
    data = scenario.to_dict()
    assert json.loads(json.dumps(data)) == data  # JSON-ready
    assert data["tool_use"] == {"name": "Bash", "input": {"command": "echo hi"}, "text": "Let me run it."}
    assert data["fail_models"] == ["claude-opus-5-5"]
    assert Scenario.from_dict(data) == scenario


@pytest.mark.parametrize(
    "data, message",
    [
        ({"reply_txt": "typo"}, "unknown Scenario field"),
        ({"tool_use": {"name": "X", "inputs": {}}}, "unknown ToolUse field"),
        ({"split": 0}, "split"),
        ({"stop_reason": "done"}, "stop_reason"),
        ({"fail_status": 200}, "fail_status"),
        ({"abort_after_events": -1}, "abort_after_events"),
        ({"thinking_tokens": -1}, "thinking_tokens"),
        ({"reply_text": "{nope}"}, "placeholder"),
        ({"after_tool_text": "{"}, "placeholder"),
    ],
)
def test_bad_catalogue_entries_are_rejected_when_loaded(data: dict, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        Scenario.from_dict(data)


def test_literal_braces_are_written_doubled() -> None:
    Scenario(reply_text='{{"json": true}} {echo}')  # does not raise


def test_load_catalogue_json_and_yaml(tmp_path) -> None:
    entries = {"default": {"reply_text": "hi"}, "busy": {"fail_status": 529, "fail_models": ["a"]}}
    json_file = tmp_path / "c.json"
    json_file.write_text(json.dumps(entries))
    yaml_file = tmp_path / "c.yaml"
    yaml_file.write_text("default:\n  reply_text: hi\nbusy:\n  fail_status: 529\n  fail_models: [a]\n")
    expected = {"default": Scenario(reply_text="hi"), "busy": Scenario(fail_status=529, fail_models=("a",))}
    assert load_catalogue(json_file) == expected
    assert load_catalogue(yaml_file) == expected


def test_load_catalogue_rejects_a_list(tmp_path) -> None:
    path = tmp_path / "c.json"
    path.write_text("[]")
    with pytest.raises(ValueError, match="mapping"):
        load_catalogue(path)
