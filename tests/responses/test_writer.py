"""The writer: the backend's events -> output items and the event sequence, for what the HTTP
tests cannot easily provoke (a withdrawn text, a refusal, a custom tool, a call cut short).
Every sequence is checked against the official event schema and the stream rules too."""

from __future__ import annotations

import json

import pytest

from conformance.responses_stream import check_responses_stream
from proxy.claude.events import (Failed, Finished, ReasoningDelta, Refusal, Revision, Started,
                                 TextDelta, ThinkingBlock, ToolCallArguments, ToolCallEnd,
                                 ToolCallStart, Usage)
from proxy.contract.official import official_validator
from proxy.errors import ProxyError
from proxy.responses.output import ResponseState, ResponseWriter
from proxy.responses.reasoning import Settings
from proxy.responses.tools import ToolNames

USAGE = Usage(input_tokens=3, cache_creation_input_tokens=4, cache_read_input_tokens=5,
              output_tokens=6, reasoning_tokens=2)


def run(events, *, streaming=True, one_call=False, names=ToolNames(), reasoning=Settings(),
        sealed=None):
    state = ResponseState("resp_1", "sonnet", {"instructions": None, "tools": [],
                                               "tool_choice": "auto", "parallel_tool_calls": True,
                                               "metadata": {}, "temperature": 1.0, "top_p": 1.0})
    seal = None
    if sealed is not None:  # a list that collects what was sealed
        def seal(block, message):
            sealed.append((block, message))
            return f"sealed-{len(sealed)}"
    writer = ResponseWriter(state, names, one_call=one_call, streaming=streaming,
                            reasoning=reasoning, seal=seal)
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


# ---------------------------------------------------------------------------- reasoning

SHOW, SEAL, BOTH = Settings(show=True), Settings(sealed=True), Settings(show=True, sealed=True)
BLOCK = {"type": "thinking", "thinking": "Two plus two.", "signature": "sig_1"}
META = (("id", "msg_1"), ("model", "claude-sonnet-5-5"))


def thought(text="Two plus two.", block=BLOCK, pieces=("Two ", "plus two.")):
    return [ReasoningDelta("thinking_delta", text=p) for p in pieces] + \
        [ThinkingBlock("thinking", block=block, message=META)]


def test_shown_thinking_is_a_reasoning_item_before_the_message_in_the_official_order():
    state, out = run([Started(), *thought(), TextDelta("Four."), Finished("stop", USAGE)],
                     reasoning=SHOW)
    assert [e["type"] for e in out][2:9] == [
        "response.output_item.added", "response.reasoning_summary_part.added",
        "response.reasoning_summary_text.delta", "response.reasoning_summary_text.delta",
        "response.reasoning_summary_text.done", "response.reasoning_summary_part.done",
        "response.output_item.done"]
    assert [e["output_index"] for e in out[2:9]] == [0] * 7
    assert out[9]["type"] == "response.output_item.added" and out[9]["output_index"] == 1
    reasoning, message = state.output
    assert reasoning == {"id": reasoning["id"], "type": "reasoning", "status": "completed",
                         "summary": [{"type": "summary_text", "text": "Two plus two."}]}
    assert reasoning["id"].startswith("rs_") and message["type"] == "message"
    added = out[2]["item"]
    assert (added["summary"], added["status"]) == ([], "in_progress")
    assert [e["summary_index"] for e in out[3:8]] == [0] * 5
    assert out[7]["part"] == {"type": "summary_text", "text": "Two plus two."}
    assert "status" not in out[7]          # the part ended normally
    assert state.object()["output"][0]["summary"][0]["text"] == "Two plus two."


def test_without_the_ask_thinking_makes_no_item_and_no_event():
    with_thinking = run([Started(), *thought(), TextDelta("Four."), Finished("stop", USAGE)])
    without = run([Started(), TextDelta("Four."), Finished("stop", USAGE)])
    assert [e["type"] for e in with_thinking[1]] == [e["type"] for e in without[1]]
    assert [i["type"] for i in with_thinking[0].output] == ["message"]


def test_sealed_only_the_item_has_no_summary_and_carries_the_block():
    sealed = []
    state, out = run([Started(), *thought(), TextDelta("Four."), Finished("stop", USAGE)],
                     reasoning=SEAL, sealed=sealed)
    assert [e["type"] for e in out][2:4] == ["response.output_item.added",
                                             "response.output_item.done"]
    assert out[2]["item"] == {"id": out[2]["item"]["id"], "type": "reasoning", "summary": [],
                              "status": "in_progress"}
    assert out[3]["item"]["encrypted_content"] == "sealed-1"
    assert sealed == [(BLOCK, META)]
    assert state.output[0]["encrypted_content"] == "sealed-1"


def test_shown_and_sealed():
    sealed = []
    state, out = run([Started(), *thought(), ToolCallStart(0, "toolu_1", "f"),
                      ToolCallEnd(0, "{}"), Finished("tool_calls", USAGE, "tool_use")],
                     reasoning=BOTH, sealed=sealed)
    assert [i["type"] for i in state.output] == ["reasoning", "function_call"]
    assert state.output[0]["summary"][0]["text"] == "Two plus two."
    assert state.output[0]["encrypted_content"] == "sealed-1"
    done = [e for e in out if e["type"] == "response.output_item.done"]
    assert done[0]["item"]["encrypted_content"] == "sealed-1"   # Codex reads the done item


def test_a_block_too_large_to_seal_is_an_item_without_encrypted_content():
    state = ResponseState("resp_1", "sonnet", {})
    writer = ResponseWriter(state, ToolNames(), reasoning=BOTH, seal=lambda block, meta: None)
    out = writer.begin()
    for event in [Started(), *thought(), TextDelta("Four."), Finished("stop", USAGE)]:
        out += writer.feed(event)
    done = next(e for e in out if e["type"] == "response.output_item.done")
    assert "encrypted_content" not in done["item"] and done["item"]["summary"]
    assert "encrypted_content" not in state.output[0]


def test_a_redacted_or_empty_block_is_an_item_only_when_sealed():
    redacted = {"type": "redacted_thinking", "data": "opaque"}
    events = [Started(), ThinkingBlock("redacted_thinking", block=redacted, message=META),
              TextDelta("x"), Finished("stop", USAGE)]
    state, _ = run(events, reasoning=SHOW)
    assert [i["type"] for i in state.output] == ["message"]
    sealed = []
    state, _ = run(events, reasoning=BOTH, sealed=sealed)
    assert state.output[0]["summary"] == [] and sealed == [(redacted, META)]


def test_each_thinking_block_is_its_own_item_without_the_joining_blank_line():
    second = {**BLOCK, "thinking": "Again."}
    events = [Started(), *thought(), TextDelta("Four."),
              ReasoningDelta("thinking_delta", text="\n\nAgain.", separator="\n\n"),
              ThinkingBlock("thinking", block=second, message=META), TextDelta(" Yes."),
              Finished("stop", USAGE)]
    state, out = run(events, reasoning=SHOW)
    assert [i["type"] for i in state.output] == ["reasoning", "message", "reasoning", "message"]
    assert state.output[2]["summary"][0]["text"] == "Again."
    assert "".join(p["text"] for i in state.output if i["type"] == "message"
                   for p in i["content"]) == "Four. Yes."


def test_thinking_cut_short_closes_incomplete_and_unsealed():
    sealed = []
    state, out = run([Started(), ReasoningDelta("thinking_delta", text="Hmm"),
                      Failed(ProxyError(502, "Broken.", code="upstream_error"))],
                     reasoning=BOTH, sealed=sealed)
    (item,) = state.output
    assert item["status"] == "incomplete" and "encrypted_content" not in item
    part_done = next(e for e in out if e["type"] == "response.reasoning_summary_part.done")
    assert part_done["status"] == "incomplete" and sealed == []
    assert out[-1]["type"] == "response.failed"


def test_a_plain_response_carries_the_same_reasoning_item():
    events = [Started(), *thought(), TextDelta("Four."), Finished("stop", USAGE)]
    streamed, _ = run(events, reasoning=SHOW)
    plain, _ = run(events, reasoning=SHOW, streaming=False)
    assert [{k: v for k, v in i.items() if k != "id"} for i in plain.output] == \
        [{k: v for k, v in i.items() if k != "id"} for i in streamed.output]


def _frames(events):
    return b"".join(b"event: " + e["type"].encode() + b"\ndata: " + json.dumps(e).encode()
                    + b"\n\n" for e in events)


@pytest.mark.parametrize("tamper, problem", [
    (lambda out: [e for e in out if e["type"] != "response.reasoning_summary_part.added"],
     "was never added"),
    (lambda out: [{**e, "text": "Other."} if e["type"] == "response.reasoning_summary_text.done"
                  else e for e in out], "done says 'Other.'"),
    (lambda out: [{**e, "part": {"type": "summary_text", "text": "x"}}
                  if e["type"] == "response.reasoning_summary_part.done" else e for e in out],
     "the done part says 'x'"),
    (lambda out: [{**e, "item": {**e["item"], "summary": []}}
                  if e["type"] == "response.output_item.done" and e["item"]["type"] ==
                  "reasoning" else e for e in out], "differs from its deltas"),
])
def test_the_stream_rules_catch_a_broken_summary(tamper, problem):
    _, out = run([Started(), *thought(), TextDelta("Four."), Finished("stop", USAGE)],
                 reasoning=SHOW)
    broken = tamper(out)
    for number, event in enumerate(broken):
        event["sequence_number"] = number
    problems = check_responses_stream(_frames(broken)).problems
    assert any(problem in p for p in problems), problems
