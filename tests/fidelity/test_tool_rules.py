"""Tool calls, function calls and refusals under the official-spec tee: recorded answers pass,
streamed and not, and each defect injected into the real app is caught, with what the
official schemas cannot say (how a call streams, arguments that are JSON, finish_reason
`tool_calls` exactly with calls) judged by the stream and completion rules."""

from __future__ import annotations

import json

import falcon.testing
import pytest

import proxy.http.resources.chat as chat_resource
from proxy.app import create_app
from proxy.cassettes.catalogue import load
from proxy.chat.completion import ChunkFactory
from proxy.settings import Settings
from tests.support.fidelity import Recorder, TeeApp
from tests.support.runners import REPO, wildcard_replay
from tests.support.stream_rules import check_stream, completion_problems

PATH = "/v1/chat/completions"
CATALOGUE = load(REPO / "fixtures" / "catalogue.json")


def _answer(entry: str, stream: bool, **extra) -> list[str]:
    """The problems the tee finds in the app's answer to a catalogue entry's request."""
    recorder = Recorder()
    app = TeeApp(create_app(Settings(), wildcard_replay(entry)), recorder)
    client = falcon.testing.TestClient(app, headers={"Host": "127.0.0.1"})
    body = {k: v for k, v in {**CATALOGUE.entries[entry].request, **extra}.items()
            if v is not None}
    if stream:
        body.update(stream=True, stream_options={"include_usage": True})
    result = client.simulate_post(PATH, json=body)
    assert result.status_code == 200, result.text
    [exchange] = recorder.drain()
    return exchange.problems()


@pytest.mark.parametrize("stream", [False, True], ids=["whole", "stream"])
@pytest.mark.parametrize("entry", ["tool_call_single", "tool_calls_parallel",
                                   "tool_choice_required_corrected", "structured_json_schema",
                                   "structured_refusal"])
def test_recorded_tool_and_format_answers_pass(entry, stream):
    assert _answer(entry, stream) == []


def test_legacy_function_call_answers_pass():
    request = CATALOGUE.entries["tool_call_single"].request
    legacy = {"functions": [t["function"] for t in request["tools"]], "tools": None}
    for stream in (False, True):
        assert _answer("tool_call_single", stream, **legacy) == []


def _first_delta_without(key):
    real = ChunkFactory.tool_call

    def broken(self, index, call):
        return real(self, index, {k: v for k, v in call.items() if k != key})
    return broken


@pytest.mark.parametrize("defect, patch, words", [
    ("no id on the first delta", ("tool_call", _first_delta_without("id")),
     "lacks its id, type or name"),
    ("the name on every delta", ("tool_arguments", lambda self, index, piece: self._chunk(
        [self._choice({"tool_calls": [{"index": index, "function": {
            "name": "get_weather", "arguments": piece}}]})])), "repeats its name"),
    ("indexes from 1", ("tool_call", lambda self, index, call: self._chunk(
        [self._choice({"tool_calls": [{"index": index + 1, **call}]})])),
     "indexes first appear as [1,"),
    ("no index", ("tool_arguments", lambda self, index, piece: self._chunk(
        [self._choice({"tool_calls": [{"function": {"arguments": piece}}]})])),
     "without an integer index"),
    ("a fragment lost", ("tool_arguments", lambda self, index, piece: self._chunk(
        [self._choice({"tool_calls": [{"index": index, "function": {
            "arguments": piece if not piece.endswith("}") else ""}}]})])),
     "the arguments are not JSON"),
    ("finish_reason stop", ("finish", lambda self, reason: self._chunk(
        [self._choice({}, "stop")])), "finish_reason 'stop' for a stream with 2 tool call(s)"),
])
def test_a_broken_tool_call_stream_is_caught(monkeypatch, defect, patch, words):
    monkeypatch.setattr(ChunkFactory, *patch)
    problems = _answer("tool_calls_parallel", stream=True)
    assert any(words in p for p in problems), (defect, problems)


def test_one_id_for_two_calls_is_caught_streamed_and_not(monkeypatch):
    real_call, real_object = ChunkFactory.tool_call, chat_resource.completion_object

    def same_id(self, index, call):
        return real_call(self, index, {**call, "id": "toolu_same"})

    def same_ids(*args, **kwargs):
        answer = real_object(*args, **kwargs)
        for call in answer["choices"][0]["message"]["tool_calls"]:
            call["id"] = "toolu_same"
        return answer

    monkeypatch.setattr(ChunkFactory, "tool_call", same_id)
    monkeypatch.setattr(chat_resource, "completion_object", same_ids)
    assert any("share ids" in p for p in _answer("tool_calls_parallel", stream=True))
    assert any("share ids" in p for p in _answer("tool_calls_parallel", stream=False))


@pytest.mark.parametrize("defect, change, words", [
    ("finish_reason stop", lambda c: c.update(finish_reason="stop"),
     "finish_reason 'stop' with 2 tool call(s)"),
    ("arguments not JSON", lambda c: c["message"]["tool_calls"][0]["function"].update(
        arguments="{city: Paris"), "the arguments are not JSON"),
    ("arguments an object", lambda c: c["message"]["tool_calls"][0]["function"].update(
        arguments={"city": "Paris"}), "official CreateChatCompletionResponse"),
    ("a call without an id", lambda c: c["message"]["tool_calls"][0].pop("id"),
     "official CreateChatCompletionResponse: choices/0/message/tool_calls/0"),
    ("finish_reason tool_calls, no calls", lambda c: c["message"].pop("tool_calls"),
     "finish_reason 'tool_calls' with 0 tool call(s)"),
])
def test_a_broken_completion_with_calls_is_caught(monkeypatch, defect, change, words):
    real = chat_resource.completion_object

    def broken(*args, **kwargs):
        answer = real(*args, **kwargs)
        change(answer["choices"][0])
        return answer

    monkeypatch.setattr(chat_resource, "completion_object", broken)
    problems = _answer("tool_calls_parallel", stream=False)
    assert any(words in p for p in problems), (defect, problems)


def test_a_refusal_beside_content_is_caught(monkeypatch):
    monkeypatch.setattr(ChunkFactory, "refusal", lambda self, text: self._chunk(
        [self._choice({"refusal": text, "content": text})]))
    assert any("both a refusal and content" in p for p in _answer("structured_refusal", True))
    real = chat_resource.completion_object

    def with_content(*args, **kwargs):
        answer = real(*args, **kwargs)
        answer["choices"][0]["message"]["content"] = "{}"
        return answer

    monkeypatch.setattr(chat_resource, "completion_object", with_content)
    assert any("refusal beside content" in p for p in _answer("structured_refusal", False))


def test_a_legacy_function_call_streamed_without_its_name_is_caught(monkeypatch):
    real = ChunkFactory.function_call
    monkeypatch.setattr(ChunkFactory, "function_call", lambda self, delta: real(
        self, {k: v for k, v in delta.items() if k != "name"}))
    request = CATALOGUE.entries["tool_call_single"].request
    problems = _answer("tool_call_single", True,
                       functions=[t["function"] for t in request["tools"]], tools=None)
    assert any("first function_call delta has no name" in p for p in problems), problems


def test_the_rules_read_raw_bytes_too():
    """What a stream that never came from this app looks like to the rules: a conforming one
    from another server, OpenAI's own framing."""
    chunk = {"id": "c", "object": "chat.completion.chunk", "created": 1, "model": "m"}

    def event(delta, finish=None):
        return b"data: " + json.dumps({**chunk, "choices": [
            {"index": 0, "delta": delta, "finish_reason": finish}]}).encode() + b"\n\n"

    raw = (event({"role": "assistant", "content": None})
           + event({"tool_calls": [{"index": 0, "id": "call_1", "type": "function",
                                    "function": {"name": "f", "arguments": ""}}]})
           + event({"tool_calls": [{"index": 0, "function": {"arguments": "{\"a\":"}}]})
           + event({"tool_calls": [{"index": 0, "function": {"arguments": " 1}"}}]})
           + event({}, "tool_calls") + b"data: [DONE]\n\n")
    assert check_stream(raw, include_usage=False).problems == []
    assert completion_problems({"choices": [{"index": 0, "finish_reason": "stop", "message": {
        "role": "assistant", "content": "hi", "refusal": None}}]}) == []
