"""The CLI's stream-json lines -> events, for the shapes measured with CLI 2.1.332."""

from __future__ import annotations

import json

import pytest

from proxy.claude.events import (Activity, EventTranslator, Failed, Finished, Revision, Started,
                                 TextDelta)


def line(obj: dict) -> str:
    return json.dumps(obj)


def stream(event: dict, **extra) -> str:
    return line({"type": "stream_event", "event": event, **extra})


def message_start(mid: str = "msg_1", **usage) -> str:
    return stream({"type": "message_start", "message": {
        "id": mid, "usage": {"input_tokens": 10, "cache_read_input_tokens": 2,
                             "cache_creation_input_tokens": 1, "output_tokens": 1, **usage}}})


def text_block(index: int = 0) -> str:
    return stream({"type": "content_block_start", "index": index,
                   "content_block": {"type": "text", "text": ""}})


def delta(text: str, index: int = 0) -> str:
    return stream({"type": "content_block_delta", "index": index,
                   "delta": {"type": "text_delta", "text": text}})


def result(**fields) -> str:
    base = {"type": "result", "subtype": "success", "is_error": False, "stop_reason": "end_turn",
            "result": "", "usage": {"input_tokens": 10, "cache_read_input_tokens": 2,
                                    "cache_creation_input_tokens": 1, "output_tokens": 5,
                                    "output_tokens_details": {"thinking_tokens": 3}}}
    base.update(fields)
    return line(base)


def run(lines: list[str]) -> list:
    translator = EventTranslator()
    out = []
    for item in lines:
        out.extend(translator.feed(item))
    return out


def texts(events) -> str:
    return "".join(e.text for e in events if isinstance(e, TextDelta))


def answer(events) -> str:
    """The text a buffered response ends with: deltas, with each Revision applied."""
    text = ""
    for event in events:
        if isinstance(event, TextDelta):
            text += event.text
        elif isinstance(event, Revision):
            text = text[:len(text) - event.drop] + event.text
    return text


INIT = line({"type": "system", "subtype": "init", "tools": [], "model": "claude-sonnet-5-5"})


def test_plain_answer():
    events = run([INIT, message_start(), text_block(), delta("Hel"), delta("lo"),
                  line({"type": "assistant", "message": {"id": "msg_1", "content": [
                      {"type": "text", "text": "Hello"}]}}),
                  result(result="Hello")])
    assert isinstance(events[0], Started)
    assert texts(events) == "Hello"                   # the assistant line is not repeated
    finished = events[-1]
    assert isinstance(finished, Finished)
    assert finished.finish_reason == "stop"
    assert finished.usage.prompt_tokens == 13
    assert finished.usage.output_tokens == 5
    assert finished.usage.reasoning_tokens == 3


@pytest.mark.parametrize("stop, finish", [("end_turn", "stop"), ("stop_sequence", "stop"),
                                          ("max_tokens", "length"), ("refusal", "content_filter"),
                                          (None, "stop")])
def test_stop_reasons(stop, finish):
    (event,) = run([result(stop_reason=stop)])[-1:]
    assert event.finish_reason == finish


def test_max_tokens_ends_the_turn_at_the_first_message_delta():
    translator = EventTranslator()
    events = []
    for item in [message_start(), text_block(), delta("cut"),
                 stream({"type": "message_delta", "delta": {"stop_reason": "max_tokens"},
                         "usage": {"output_tokens": 7}})]:
        events.extend(translator.feed(item))
    assert isinstance(events[-1], Finished) and events[-1].cut_short
    assert events[-1].finish_reason == "length"
    assert events[-1].usage.output_tokens == 7 and events[-1].usage.prompt_tokens == 13
    assert translator.done and translator.feed(result()) == []


def test_thinking_is_activity_not_content():
    events = run([message_start(), stream({"type": "content_block_start", "index": 0,
                                           "content_block": {"type": "thinking", "thinking": ""}}),
                  stream({"type": "content_block_delta", "index": 0,
                          "delta": {"type": "thinking_delta", "thinking": "hmm"}}),
                  text_block(1), delta("Answer", 1), result()])
    assert texts(events) == "Answer"
    assert any(isinstance(e, Activity) and e.kind == "thinking_delta" for e in events)


def test_text_of_two_model_calls_is_separated():
    # A tool request (refused: tools are off) makes the CLI call the model a second time.
    events = run([message_start("m1"), text_block(), delta("Let me check."),
                  stream({"type": "content_block_start", "index": 1,
                          "content_block": {"type": "tool_use", "name": "Bash"}}),
                  line({"type": "user", "message": {"content": [{"type": "tool_result"}]}}),
                  message_start("m2"), text_block(), delta("It is 4."), result()])
    assert texts(events) == "Let me check.\n\nIt is 4."


def test_abandoned_stream_replaced_by_a_continuation_sends_only_the_rest():
    events = run([message_start("m1"), text_block(), delta("partial "),
                  stream({"type": "message_stop"}, abandoned_blocks={"api_message_id": "m1"}),
                  line({"type": "assistant", "message": {"id": "m2", "content": [
                      {"type": "text", "text": "partial answer"}]}}),
                  result(result="partial answer")])
    assert texts(events) == "partial answer"
    assert not any(isinstance(e, Revision) for e in events)


def test_abandoned_stream_replaced_by_a_different_answer_is_a_revision():
    events = run([message_start("m1"), text_block(), delta("first try"),
                  stream({"type": "message_stop"}, abandoned_blocks={"api_message_id": "m1"}),
                  line({"type": "assistant", "message": {"id": "m2", "content": [
                      {"type": "text", "text": "second answer"}]}}),
                  result()])
    (revision,) = [e for e in events if isinstance(e, Revision)]
    assert (revision.drop, revision.text) == (len("first try"), "second answer")


def test_a_retry_abandoned_while_it_repeats_what_was_sent_does_not_double_it():
    # Recorded with CLI 2.1.332 (a stand-in connection dropped twice): the first retry streamed
    # the same beginning again and was abandoned too, then the third answer came whole. The
    # second try's text was still counted when the third arrived: "Once upon a timeOnce upon...".
    events = run([message_start("m1"), text_block(), delta("Once upo"), delta("n a time"),
                  stream({"type": "message_stop"}, abandoned_blocks={"api_message_id": "m1"}),
                  message_start("m2"), text_block(), delta("Once upo"), delta("n a time"),
                  stream({"type": "message_stop"}, abandoned_blocks={"api_message_id": "m2"}),
                  line({"type": "assistant", "message": {"id": "m3", "content": [
                      {"type": "text", "text": "Once upon a time the connection"}]}}),
                  result(result="Once upon a time the connection")])
    assert texts(events) == answer(events) == "Once upon a time the connection"
    assert not any(isinstance(e, Revision) for e in events)


def test_a_retry_abandoned_after_it_diverged_is_replaced_in_turn():
    events = run([message_start("m1"), text_block(), delta("first"),
                  stream({"type": "message_stop"}, abandoned_blocks={"api_message_id": "m1"}),
                  message_start("m2"), text_block(), delta("second"),
                  stream({"type": "message_stop"}, abandoned_blocks={"api_message_id": "m2"}),
                  line({"type": "assistant", "message": {"id": "m3", "content": [
                      {"type": "text", "text": "second answer"}]}}),
                  result()])
    assert answer(events) == "second answer"


def test_error_result_is_a_failure():
    (event,) = run([result(is_error=True, api_error_status=529, api_error_type="overloaded_error",
                           result="API Error: Repeated 529 Overloaded errors.")])
    assert isinstance(event, Failed)
    assert (event.error.status, event.error.code) == (503, "upstream_overloaded")


def test_tools_in_init_fail_closed():
    (event,) = run([line({"type": "system", "subtype": "init", "tools": ["Bash"]})])
    assert isinstance(event, Failed) and event.error.code == "unsafe_cli"


def test_garbage_output_without_result_is_bad_output():
    translator = EventTranslator()
    assert translator.feed("this is not json") == []
    assert translator.feed("[1, 2]") == []
    (event,) = translator.end_of_output(0, "")
    assert (event.error.status, event.error.code) == (502, "claude_cli_bad_output")


def test_end_without_result_after_output_is_a_crash():
    translator = EventTranslator()
    translator.feed(INIT)
    (event,) = translator.end_of_output(-15, "")
    assert (event.error.code, "signal 15" in event.error.message) == ("claude_cli_crashed", True)


def test_a_result_without_deltas_still_delivers_its_text():
    events = run([INIT, result(result="only in the result")])
    assert texts(events) == "only in the result"


def _message_delta(output_tokens: int, stop: str = "end_turn") -> str:
    return stream({"type": "message_delta", "delta": {"stop_reason": stop},
                   "usage": {"output_tokens": output_tokens}})


@pytest.mark.parametrize("continues_turn", [False, True])
def test_usage_of_a_turn_continued_by_tool_results_is_its_own_messages(continues_turn):
    """A kept process answers held calls within the CLI turn that made them: its `result`
    counts that whole turn, the calls' message included, which the request that got the
    calls was already given. The request with the results counts only what it saw."""
    translator = EventTranslator()
    translator.continues_turn = continues_turn
    events = []
    for item in [message_start("m2", input_tokens=30, cache_read_input_tokens=0,
                               cache_creation_input_tokens=0),
                 text_block(), delta("It is sunny."), _message_delta(6),
                 result(usage={"input_tokens": 130, "output_tokens": 18,
                               "cache_read_input_tokens": 0,
                               "cache_creation_input_tokens": 0})]:
        events.extend(translator.feed(item))
    usage = events[-1].usage
    if continues_turn:   # the calls' message (100 in, 12 out) was reported with the calls
        assert (usage.prompt_tokens, usage.output_tokens) == (30, 6)
    else:                # any other run: the result line's, the whole turn
        assert (usage.prompt_tokens, usage.output_tokens) == (130, 18)


def test_usage_of_a_continued_turn_counts_every_message_it_saw():
    # e.g. the proxy's referee asked again in the same request: both answers were paid for
    translator = EventTranslator()
    translator.continues_turn = True
    events = []
    for item in [message_start("m2", input_tokens=30), text_block(), delta("a"),
                 _message_delta(6),
                 message_start("m3", input_tokens=40), text_block(), delta("b"),
                 _message_delta(4), result()]:
        events.extend(translator.feed(item))
    usage = events[-1].usage
    assert (usage.input_tokens, usage.cache_read_input_tokens, usage.output_tokens) == \
        (70, 4, 10)
