"""The writer: the backend's events -> output items and the event sequence, for what the HTTP
tests cannot easily provoke (a withdrawn text, a refusal, a custom tool, a call cut short).
Every sequence is checked against the official event schema and the stream rules too."""

from __future__ import annotations

import json

import pytest

from conformance.responses_stream import check_responses_stream
from proxy.claude.events import (Failed, Finished, Refusal, Revision, Started, TextDelta,
                                 ToolCallArguments, ToolCallEnd, ToolCallStart, Usage)
from proxy.contract.official import official_validator
from proxy.errors import ProxyError
from proxy.responses.output import ResponseState, ResponseWriter
from proxy.responses.tools import ToolNames

USAGE = Usage(input_tokens=3, cache_creation_input_tokens=4, cache_read_input_tokens=5,
              output_tokens=6, reasoning_tokens=2)


def run(events, *, streaming=True, one_call=False, names=ToolNames()):
    state = ResponseState("resp_1", "sonnet", {"instructions": None, "tools": [],
                                               "tool_choice": "auto", "parallel_tool_calls": True,
                                               "metadata": {}, "temperature": 1.0, "top_p": 1.0})
    writer = ResponseWriter(state, names, one_call=one_call, streaming=streaming)
    out = writer.begin()
    for event in events:
        out += writer.feed(event)
    if not streaming:  # a plain answer sends only the final object
        return state, out
    frames = b"".join(b"event: " + e["type"].encode() + b"\ndata: " + json.dumps(e).encode()
                      + b"\n\n" for e in out)
    check_responses_stream(frames).assert_ok()
    validator = official_validator("ResponseStreamEvent")
    for event in out:
        assert not list(validator.iter_errors(event)), event
    return state, out


def test_usage_is_counted_as_openai_counts_it():
    state, _ = run([Started(), TextDelta("hi"), Finished("stop", USAGE)])
    assert state.object()["usage"] == {
        "input_tokens": 12, "input_tokens_details": {"cached_tokens": 5, "cache_write_tokens": 4},
        "output_tokens": 6, "output_tokens_details": {"reasoning_tokens": 2},
        "total_tokens": 18}


def test_a_buffered_answer_takes_the_clis_retry_and_a_stream_fails():
    events = [Started(), TextDelta("Hello wor"), Revision(3, "ld, again"), Finished("stop", USAGE)]
    state, _ = run(events, streaming=False)
    assert state.output[0]["content"][0]["text"] == "Hello ld, again"
    state, out = run(events, streaming=True)
    assert out[-1]["type"] == "response.failed" and state.status == "failed"
    assert "upstream_stream_interrupted" in state.error["message"]


def test_a_refusal_is_a_refusal_part():
    state, out = run([Started(), Refusal("I cannot do that."), Finished("stop", USAGE)])
    assert [e["type"] for e in out][2:-1] == [
        "response.output_item.added", "response.content_part.added", "response.refusal.delta",
        "response.refusal.done", "response.content_part.done", "response.output_item.done"]
    assert state.output[0]["content"] == [{"type": "refusal", "refusal": "I cannot do that."}]


def test_a_custom_tools_input_is_sent_whole():
    state, out = run([Started(), ToolCallStart(0, "toolu_1", "apply_patch", "custom"),
                      ToolCallArguments(0, '{"input": "*** Begin'),
                      ToolCallArguments(0, ' Patch"}'),
                      ToolCallEnd(0, '{"input": "*** Begin Patch"}'),
                      Finished("tool_calls", USAGE, "tool_use")])
    assert state.output == [{"id": state.output[0]["id"], "type": "custom_tool_call",
                             "call_id": "toolu_1", "name": "apply_patch",
                             "input": "*** Begin Patch"}]
    assert [e["type"] for e in out][3:5] == ["response.custom_tool_call_input.delta",
                                             "response.custom_tool_call_input.done"]


def test_a_failure_closes_every_open_item_before_response_failed():
    state, out = run([Started(), TextDelta("Let me"), ToolCallStart(0, "toolu_1", "f"),
                      ToolCallArguments(0, '{"a":'),
                      Failed(ProxyError(429, "Slow down.", code="rate_limit_exceeded"))])
    assert [(i["type"], i["status"]) for i in state.output] == [
        ("message", "completed"), ("function_call", "incomplete")]
    assert state.error == {"code": "rate_limit_exceeded",
                           "message": "Slow down. (rate_limit_exceeded)"}


def test_one_call_answers_skip_the_others_entirely():
    state, out = run([Started(), ToolCallStart(0, "toolu_1", "f"), ToolCallEnd(0, "{}"),
                      ToolCallStart(1, "toolu_2", "g"), ToolCallArguments(1, "{}"),
                      ToolCallEnd(1, "{}"), Finished("tool_calls", USAGE, "tool_use")],
                     one_call=True)
    assert [i["call_id"] for i in state.output] == ["toolu_1"]


def test_a_namespaced_alias_is_mapped_back():
    names = ToolNames({"ns__f": ("ns", "f")})
    state, _ = run([Started(), ToolCallStart(0, "toolu_1", "ns__f"), ToolCallEnd(0, "{}"),
                    Finished("tool_calls", USAGE, "tool_use")], names=names)
    assert (state.output[0]["namespace"], state.output[0]["name"]) == ("ns", "f")


@pytest.mark.parametrize("reason, status, detail", [
    ("stop", "completed", None), ("tool_calls", "completed", None),
    ("length", "incomplete", "max_output_tokens"),
    ("content_filter", "incomplete", "content_filter")])
def test_finish_reasons_map_to_statuses(reason, status, detail):
    state, out = run([Started(), TextDelta("x"), Finished(reason, USAGE)])
    assert state.status == status and state.incomplete == detail
    assert out[-1]["type"] == ("response.completed" if status == "completed"
                               else "response.incomplete")


def test_a_cancelled_response_says_so():
    state = ResponseState("resp_1", "sonnet", {})
    writer = ResponseWriter(state, ToolNames())
    writer.begin()
    writer.feed(TextDelta("half"))
    writer.cancel()
    assert state.status == "cancelled" and state.output[0]["status"] == "incomplete"
    assert writer.feed(TextDelta("more")) == []
