"""Reasoning over HTTP, with a CLI scripted per invocation (the real waitress server, the official
Python SDK; every answer judged by the official-spec tee): what the CLI is asked for each
setting, the reasoning items streamed and not, and encrypted_content given back."""

from __future__ import annotations

import json

import openai
import pytest
import requests

from conformance.responses_stream import check_responses_stream
from proxy.responses.reasoning import PREFIX
from tests.responses.fake_cli import Call, Stop, Text, Thinking

WEATHER = {"type": "function", "name": "get_weather",
           "parameters": {"type": "object", "properties": {"city": {"type": "string"}}},
           "strict": False}
THINKS = lambda invocation: [Thinking("Two and two make four."), Text("4."), Stop()]  # noqa: E731
SEALED = ["reasoning.encrypted_content"]


def post(proxy, body):
    return requests.post(proxy.base_url + "/responses", json=body, timeout=30)


def calls_after_thinking(invocation):
    if invocation.tool_results:
        return [Thinking("Now answer."), Text("It is sunny."), Stop()]
    return [Thinking("I should look it up.", signature="sig_call_1"),
            Call("get_weather", {"city": "Paris"}), Stop("tool_use")]


def test_a_summary_asks_the_cli_for_it_and_is_a_reasoning_item_first(scripted):
    proxy = scripted(THINKS)
    result = proxy.client.responses.create(model="sonnet", input="2 + 2?",
                                           reasoning={"summary": "auto", "effort": "high"})
    reasoning, message = result.output
    assert reasoning.type == "reasoning" and reasoning.id.startswith("rs_")
    assert [(s.type, s.text) for s in reasoning.summary] == [("summary_text",
                                                             "Two and two make four.")]
    assert reasoning.encrypted_content is None and reasoning.status == "completed"
    assert message.type == "message" and result.output_text == "4."
    assert result.reasoning.summary == "auto" and result.reasoning.effort == "high"
    (invocation,) = proxy.runner.invocations
    assert (invocation.thinking_display, invocation.effort) == ("summarized", "high")


@pytest.mark.parametrize("reasoning", [None, {"effort": "low"}, {"summary": None}])
def test_without_a_summary_nothing_changes(scripted, reasoning):
    proxy = scripted(THINKS)
    body = {"model": "sonnet", "input": "2 + 2?"}
    if reasoning is not None:
        body["reasoning"] = reasoning
    plain = post(proxy, body).json()
    assert [i["type"] for i in plain["output"]] == ["message"]
    events = check_responses_stream(post(proxy, {**body, "stream": True}).content) \
        .assert_ok().events
    assert not [e for e in events if "reasoning" in e["type"]]
    assert [i["type"] for i in events[-1]["response"]["output"]] == ["message"]
    assert {i.thinking_display for i in proxy.runner.invocations} == {None}


def test_the_stream_is_the_official_sequence_and_the_sdk_builds_the_item(scripted):
    proxy = scripted(THINKS)
    raw = post(proxy, {"model": "sonnet", "input": "2 + 2?", "stream": True,
                       "reasoning": {"summary": "detailed"}})
    events = check_responses_stream(raw.content).assert_ok().events
    assert [e["type"] for e in events][2:11] == [
        "response.output_item.added", "response.reasoning_summary_part.added",
        "response.reasoning_summary_text.delta", "response.reasoning_summary_text.delta",
        "response.reasoning_summary_text.done", "response.reasoning_summary_part.done",
        "response.output_item.done", "response.output_item.added",
        "response.content_part.added"]
    with proxy.client.responses.stream(model="sonnet", input="2 + 2?",
                                       reasoning={"summary": "detailed"}) as stream:
        deltas = "".join(e.delta for e in stream
                         if e.type == "response.reasoning_summary_text.delta")
        final = stream.get_final_response()
    assert deltas == final.output[0].summary[0].text == "Two and two make four."


def test_encrypted_content_alone_gives_an_item_without_a_summary(scripted):
    proxy = scripted(THINKS)
    result = proxy.client.responses.create(model="sonnet", input="2 + 2?", include=SEALED)
    reasoning, _ = result.output
    assert reasoning.summary == [] and reasoning.encrypted_content.startswith(PREFIX)
    assert "four" not in reasoning.encrypted_content
    (invocation,) = proxy.runner.invocations
    assert invocation.thinking_display is None       # the CLI runs as without it


def test_encrypted_content_given_back_puts_the_thinking_before_the_calls(scripted):
    """Codex's way: store false, the whole history again, the reasoning items included."""
    proxy = scripted(calls_after_thinking)
    history = [{"role": "user", "content": "Weather in Paris?"}]
    first = proxy.client.responses.create(model="sonnet", input=history, tools=[WEATHER],
                                          store=False, include=SEALED,
                                          reasoning={"summary": "auto"})
    assert [i.type for i in first.output] == ["reasoning", "function_call"]
    history += [i.model_dump(exclude_none=True) for i in first.output]
    history.append({"type": "function_call_output", "call_id": first.output[1].call_id,
                    "output": "sunny"})
    second = proxy.client.responses.create(model="sonnet", input=history, tools=[WEATHER],
                                           store=False, include=SEALED,
                                           reasoning={"summary": "auto"})
    assert second.output_text == "It is sunny."
    _, resumed = proxy.runner.invocations
    call_turn = resumed.history[-1]
    assert [json.loads(b) for b in call_turn.thinking] == [
        {"type": "thinking", "thinking": "I should look it up.", "signature": "sig_call_1"}]
    assert dict(call_turn.message) == {"id": "msg_fake", "model": "claude-sonnet-5-5",
                                       "stop_reason": "tool_use"}


@pytest.mark.parametrize("token", [
    "forged", PREFIX + "AAAA", PREFIX + "A" * 200, "gAAAAABnot-ours",
])
def test_an_encrypted_content_this_server_did_not_make_is_ignored(scripted, token):
    proxy = scripted(calls_after_thinking)
    first = proxy.client.responses.create(model="sonnet", input="Weather?", tools=[WEATHER],
                                          include=SEALED)
    items = [{"role": "user", "content": "Weather?"},
             {**first.output[0].model_dump(exclude_none=True), "encrypted_content": token},
             first.output[1].model_dump(exclude_none=True),
             {"type": "function_call_output", "call_id": first.output[1].call_id,
              "output": "sunny"}]
    second = proxy.client.responses.create(model="sonnet", input=items, tools=[WEATHER])
    assert second.status == "completed"
    assert proxy.runner.invocations[-1].history[-1].thinking == ()


def test_another_keys_encrypted_content_is_ignored(scripted):
    from proxy.settings import Settings
    proxy = scripted(calls_after_thinking, settings=Settings(api_keys=("alice=ka", "bob=kb")),
                     api_key="ka")
    first = proxy.client.responses.create(model="sonnet", input="Weather?", tools=[WEATHER],
                                          include=SEALED)
    items = [{"role": "user", "content": "Weather?"},
             *[i.model_dump(exclude_none=True) for i in first.output],
             {"type": "function_call_output", "call_id": first.output[1].call_id,
              "output": "sunny"}]
    bob = openai.OpenAI(base_url=proxy.base_url, api_key="kb", max_retries=0)
    assert bob.responses.create(model="sonnet", input=items, tools=[WEATHER]).status == \
        "completed"
    assert proxy.runner.invocations[-1].history[-1].thinking == ()
    proxy.client.responses.create(model="sonnet", input=items, tools=[WEATHER])
    assert proxy.runner.invocations[-1].history[-1].thinking != ()   # alice's own: taken


def test_a_stored_response_keeps_its_reasoning_items(scripted):
    proxy = scripted(THINKS)
    first = proxy.client.responses.create(model="sonnet", input="2 + 2?", include=SEALED,
                                          reasoning={"summary": "auto"})
    stored = proxy.client.responses.retrieve(first.id)
    assert stored.output[0].model_dump() == first.output[0].model_dump()
    proxy.client.responses.create(model="sonnet", input="And 3 + 3?",
                                  previous_response_id=first.id)
    continued = proxy.runner.invocations[-1]
    assert continued.history[-1].thinking   # the stored item's thinking went back too


def test_an_invalid_effort_is_a_400_naming_it(scripted):
    proxy = scripted(THINKS)
    answer = post(proxy, {"model": "sonnet", "input": "x", "reasoning": {"effort": "extreme"}})
    assert answer.status_code == 400 and answer.json()["error"]["param"] == "reasoning.effort"


def test_a_reasoning_items_null_content_is_taken_as_none_and_nothing_else_is(scripted):
    # Codex CLI sends every reasoning item back with "content": null (OpenAI accepts it; the
    # official schema does not). Only that null is tolerated.
    proxy = scripted(THINKS)
    item = {"type": "reasoning", "id": "rs_1", "summary": [], "content": None,
            "encrypted_content": None}
    history = [{"role": "user", "content": "2 + 2?"}, item,
               {"role": "assistant", "content": "4."}, {"role": "user", "content": "3 + 3?"}]
    assert post(proxy, {"model": "sonnet", "input": history}).status_code == 200
    broken = [*history[:3], {"role": "user", "content": None}]
    answer = post(proxy, {"model": "sonnet", "input": broken})
    assert answer.status_code == 400 and answer.json()["error"]["param"] == "input[3].content"
    wrong = [history[0], {**item, "content": "text"}, *history[2:]]
    answer = post(proxy, {"model": "sonnet", "input": wrong})
    assert answer.status_code == 400 and answer.json()["error"]["param"] == "input[1].content"


@pytest.mark.parametrize("stream", [False, True])
def test_the_response_echoes_only_the_official_reasoning_and_text_fields(scripted, stream):
    # Found by CI's fuzzing: keys the request schema leaves open were echoed into the
    # response's `reasoning`, which the official Response schema (closed) refuses.
    from proxy.contract.official import closed_validator
    proxy = scripted(THINKS)
    body = {"model": "sonnet", "input": "2 + 2?", "stream": stream,
            "reasoning": {"": True, "L{x": None, "effort": "xhigh", "summary": "auto",
                          "mode": "pro"},
            "text": {"format": {"type": "text", "x": 1}, "verbosity": "low", "": [1]}}
    answer = post(proxy, body)
    assert answer.status_code == 200
    response = check_responses_stream(answer.content).assert_ok().events[-1]["response"] \
        if stream else answer.json()
    assert response["reasoning"] == {"effort": "xhigh", "summary": "auto"}
    assert response["text"] == {"format": {"type": "text"}, "verbosity": "low"}
    assert list(closed_validator("Response").iter_errors(response)) == []
    assert proxy.runner.invocations[-1].effort == "xhigh"


@pytest.mark.parametrize("choice, echoed", [
    ({"type": "custom", "name": "9Ze", "B": [], "": [[{"x": 1}]]},
     {"type": "custom", "name": "9Ze"}),
    ({"type": "allowed_tools", "mode": "auto", "tools": [{"type": "function", "name": "f"}],
      "extra": True},
     {"type": "allowed_tools", "mode": "auto", "tools": [{"type": "function", "name": "f"}]}),
])
def test_the_response_echoes_only_the_official_tool_choice_fields(scripted, choice, echoed):
    # Found by CI's fuzzing too: a tool_choice with keys the request schema leaves open (here
    # with no tools, so the choice has nothing to force) was echoed whole.
    from proxy.contract.official import closed_validator
    proxy = scripted(THINKS)
    answer = post(proxy, {"model": "sonnet", "input": "2 + 2?", "tool_choice": choice})
    assert answer.status_code == 200, answer.text
    assert answer.json()["tool_choice"] == echoed
    assert list(closed_validator("Response").iter_errors(answer.json())) == []
