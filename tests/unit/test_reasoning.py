"""Reasoning: reasoning_effort and the ask to see the thinking -> the CLI invocation; thinking
lines -> ReasoningDelta; reasoning_content in completions and chunks."""

from __future__ import annotations

import dataclasses
import json

import pytest

from proxy.chat.completion import ChunkFactory, CompletionIdentity, completion_object
from proxy.chat.models import ModelCatalogue
from proxy.chat.reasoning import EFFORTS, Reasoning
from proxy.claude.events import Activity, EventTranslator, ReasoningDelta, TextDelta, Usage
from proxy.claude.invocation import Invocation
from proxy.concurrency import ConcurrencyLimiter
from proxy.claude.run import Limits
from proxy.errors import ProxyError
from proxy.backend import ChatService

from tests.unit.test_events import INIT, delta, message_start, result, stream, text_block


# -- the table ------------------------------------------------------------------------------

@pytest.mark.parametrize("openai, effort, thinking", [
    ("none", "low", "disabled"),
    ("minimal", "low", None),
    ("low", "low", None),
    ("medium", "medium", None),
    ("high", "high", None),
    ("xhigh", "xhigh", None),
    ("max", "max", None),
    (None, None, None),
])
def test_every_openai_effort_has_a_cli_effort(openai, effort, thinking):
    asked = Reasoning.of(openai, show=False)
    assert (asked.effort, asked.thinking, asked.thinking_display, asked.show) == (
        effort, thinking, None, False)


def test_the_table_covers_the_official_enum():
    from proxy.contract.official import official_schemas

    enum = official_schemas(["ReasoningEffort"])["$defs"]["ReasoningEffort"]["anyOf"][0]["enum"]
    assert sorted(EFFORTS) == sorted(enum)
    assert set(e for e, _ in EFFORTS.values()) <= {"low", "medium", "high", "xhigh", "max"}


def test_the_ask_turns_on_summaries_and_nothing_else():
    assert Reasoning.of(None, show=True) == Reasoning(None, None, "summarized", True)
    assert Reasoning.of("high", show=True) == Reasoning("high", None, "summarized", True)


# -- the invocation -------------------------------------------------------------------------

def test_argv_carries_the_reasoning_flags_only_when_asked():
    plain = Invocation("sonnet").argv()
    assert not {"--effort", "--thinking", "--thinking-display"} & set(plain)
    argv = Invocation("sonnet", effort="low", thinking="disabled",
                      thinking_display="summarized").argv()
    assert argv[len(plain):] == ["--effort", "low", "--thinking", "disabled",
                                 "--thinking-display", "summarized"]


def test_settings_key_holds_every_compared_field_but_the_conversation():
    inv = Invocation("sonnet", effort="high", thinking_display="summarized")
    names = [name for name, _ in inv.settings_key()]
    compared = [f.name for f in dataclasses.fields(Invocation) if f.compare]
    assert names == [n for n in compared
                     if n not in ("blocks", "images", "history", "tool_results")]
    assert {"effort", "thinking", "thinking_display", "model", "system_prompt"} <= set(names)
    # A kept process started with other reasoning settings never continues this request.
    for change in ({"effort": "low"}, {"effort": None}, {"thinking": "disabled"},
                   {"thinking_display": None}):
        assert dataclasses.replace(inv, **change).settings_key() != inv.settings_key()
    assert dataclasses.replace(inv, blocks=("next",)).settings_key() == inv.settings_key()


# -- the service ----------------------------------------------------------------------------

def service(include_reasoning: bool = False) -> ChatService:
    return ChatService(ModelCatalogue(), runner=None, limiter=ConcurrencyLimiter(1, 1, 1.0),
                       limits=Limits(total=10, idle=10), include_reasoning=include_reasoning)


def prepare(svc: ChatService, **fields):
    return svc.prepare({"model": "sonnet", "messages": [{"role": "user", "content": "hi"}],
                        **fields})


def test_prepare_maps_reasoning_effort_onto_the_invocation():
    inv = prepare(service(), reasoning_effort="none").invocation()
    assert (inv.effort, inv.thinking, inv.thinking_display) == ("low", "disabled", None)
    inv = prepare(service(), reasoning_effort="xhigh").invocation()
    assert (inv.effort, inv.thinking, inv.thinking_display) == ("xhigh", None, None)


def test_without_an_ask_nothing_changes():
    assert prepare(service()).invocation() == Invocation(
        model="sonnet", blocks=("hi",), continuable=True)
    asked_nothing = prepare(service(), reasoning_effort=None, include_reasoning=None)
    assert asked_nothing.reasoning == Reasoning()


@pytest.mark.parametrize("server, asked, shown", [
    (False, None, False), (False, True, True), (False, False, False),
    (True, None, True), (True, False, False), (True, True, True),
])
def test_the_request_decides_and_the_server_default_fills_in(server, asked, shown):
    chat = prepare(service(server), include_reasoning=asked)
    assert chat.reasoning.show is shown
    assert chat.invocation().thinking_display == ("summarized" if shown else None)


def test_an_unknown_effort_is_a_400_naming_it():
    with pytest.raises(ProxyError) as caught:
        prepare(service(), reasoning_effort="extreme")
    assert (caught.value.status, caught.value.param) == (400, "reasoning_effort")


# -- the stream -----------------------------------------------------------------------------

def thinking_block(index: int = 0) -> str:
    return stream({"type": "content_block_start", "index": index,
                   "content_block": {"type": "thinking", "thinking": "", "signature": ""}})


def thinking(text: str, index: int = 0) -> str:
    return stream({"type": "content_block_delta", "index": index,
                   "delta": {"type": "thinking_delta", "thinking": text}})


def assistant(mid: str, *blocks: dict) -> str:
    return json.dumps({"type": "assistant", "message": {"id": mid, "model": "claude-sonnet-5-5",
                                                        "content": list(blocks)}})


def run(lines: list[str]) -> list:
    translator = EventTranslator()
    return [e for item in lines for e in translator.feed(item)]


def reasoning(events) -> str:
    return "".join(e.text for e in events if isinstance(e, ReasoningDelta))


def test_thinking_deltas_are_reasoning_and_still_activity():
    events = run([INIT, message_start(), thinking_block(), thinking("Let me "), thinking("see."),
                  assistant("msg_1", {"type": "thinking", "thinking": "Let me see.",
                                      "signature": "s"}),
                  text_block(1), delta("Hi", 1), result()])
    found = [e for e in events if isinstance(e, ReasoningDelta)]
    assert [e.text for e in found] == ["Let me ", "see."]  # the assistant line adds nothing
    assert all(isinstance(e, Activity) and e.kind == "thinking_delta" for e in found)
    assert "".join(e.text for e in events if isinstance(e, TextDelta)) == "Hi"


def test_thinking_of_two_model_calls_is_separated():
    events = run([INIT, message_start("m1"), thinking_block(), thinking("First."),
                  message_start("m2"), thinking_block(), thinking("Second."), result()])
    assert reasoning(events) == "First.\n\nSecond."


def test_a_message_that_streamed_no_thinking_gives_it_once():
    # The CLI's non-streaming retry: whole blocks in assistant lines, no deltas.
    events = run([INIT, message_start("m1"),
                  assistant("m2", {"type": "thinking", "thinking": "Retried.", "signature": "s"}),
                  assistant("m2", {"type": "text", "text": "Answer."}), result()])
    assert reasoning(events) == "Retried."
    assert "".join(e.text for e in events if isinstance(e, TextDelta)) == "Answer."


def test_empty_thinking_is_nothing():
    # display omitted: a block with a signature and no text.
    events = run([INIT, message_start(), thinking_block(),
                  stream({"type": "content_block_delta", "index": 0,
                          "delta": {"type": "signature_delta", "signature": "s"}}),
                  assistant("msg_1", {"type": "thinking", "thinking": "", "signature": "s"}),
                  result()])
    assert not [e for e in events if isinstance(e, ReasoningDelta)]


# -- the wire format ------------------------------------------------------------------------

IDENTITY = CompletionIdentity("chatcmpl-x", 1, "sonnet")


def test_a_completion_has_reasoning_content_only_when_asked():
    usage = Usage(output_tokens=5, reasoning_tokens=3)
    plain = completion_object(IDENTITY, "Hi", "stop", usage)
    assert "reasoning_content" not in plain["choices"][0]["message"]
    assert plain["usage"]["completion_tokens_details"]["reasoning_tokens"] == 3
    shown = completion_object(IDENTITY, "Hi", "stop", usage, reasoning="Thought.")
    assert shown["choices"][0]["message"]["reasoning_content"] == "Thought."
    none = completion_object(IDENTITY, "Hi", "stop", usage, reasoning="")
    assert none["choices"][0]["message"]["reasoning_content"] is None


def test_a_reasoning_chunk():
    chunk = ChunkFactory(IDENTITY, include_usage=True).reasoning("Hmm.")
    assert chunk["choices"] == [{"index": 0, "delta": {"reasoning_content": "Hmm."},
                                 "logprobs": None, "finish_reason": None}]
    assert chunk["usage"] is None


def test_reasoning_content_sent_back_in_history_is_ignored():
    # Clients may echo it; it is never made into a thinking block (the API would refuse a
    # block without Claude's signature), and the history stays the one a kept process holds.
    base = [{"role": "user", "content": "hi"}, {"role": "assistant", "content": "Hello."},
            {"role": "user", "content": "more"}]
    echoed = [base[0], {**base[1], "reasoning_content": "I thought."}, base[2]]
    svc = service()
    plain = svc.prepare({"model": "sonnet", "messages": base}).invocation()
    again = svc.prepare({"model": "sonnet", "messages": echoed}).invocation()
    assert again == plain and again.history
    assert "thinking" not in json.dumps([t.blocks for t in again.history])


def test_a_warm_process_serves_only_requests_without_reasoning_settings():
    from proxy.runners.pool import warm_can_serve

    assert warm_can_serve(Invocation("sonnet"))
    for asked in ({"effort": "low"}, {"thinking": "disabled"}, {"thinking_display": "summarized"}):
        assert not warm_can_serve(Invocation("sonnet", **asked))
