"""Tool calling end to end: the official openai SDK -> waitress -> the proxy -> the real CLI ->
the stand-in, which calls offered tools the way a model does. Checked at both ends: what the
client gets (every object and chunk is also validated against the official spec by the
fidelity plugin), and what the API gets (exactly the client's tools; calls and results as
native blocks)."""

from __future__ import annotations

import json
import time

import openai
import pytest

from proxy.conversations.keeper import Keeper
from proxy.conversations.runner import ConversationRunner
from proxy.standin.scenario import Scenario, ToolUse

pytestmark = pytest.mark.live

WEATHER = {"type": "function", "function": {
    "name": "get_weather", "description": "The weather of a city, now.",
    "parameters": {"type": "object", "properties": {"city": {"type": "string"}},
                   "required": ["city"], "additionalProperties": False}}}
TIME = {"type": "function", "function": {
    "name": "get_time", "parameters": {"type": "object", "properties": {"tz": {"type": "string"}}}}}
LONG_NAME = "x" * 60
LONG = {"type": "function", "function": {"name": LONG_NAME, "parameters": {"type": "object"}}}
TOOLS = [WEATHER, TIME]
ASK = [{"role": "user", "content": "What's the weather and the time in Paris?"}]


def weather(city="Paris", text="") -> ToolUse:
    return ToolUse("mcp__c__get_weather", {"city": city}, text)


@pytest.fixture
def tool_proxy(live_proxy_for):
    """`live_proxy_for` with kept conversations; `live` is the live runner inside."""
    def start(scenario: Scenario, *, keep: int = 4, tool_call_timeout: float = 600.0,
              **settings):
        lives = []

        def keeping(live):
            lives.append(live)
            return ConversationRunner(live, Keeper(max_processes=keep, watch=False,
                                                   tool_call_timeout=tool_call_timeout))

        proxy = live_proxy_for(scenario, runner_wrapper=keeping, **settings)
        proxy.live, proxy.conversations, proxy.scenario_object = lives[0], proxy.runner, scenario
        return proxy
    return start


def answer_calls(messages, message, results=None):
    messages = messages + [message.model_dump(exclude_none=True)]
    for call in message.tool_calls:
        text = (results or {}).get(call.function.name, f"result of {call.function.name}")
        messages.append({"role": "tool", "tool_call_id": call.id, "content": text})
    return messages


def test_a_call_comes_back_as_tool_calls_with_the_text_before_it(tool_proxy):
    proxy = tool_proxy(Scenario(tool_use=weather(text="Let me check.")))
    result = proxy.client.chat.completions.create(model="sonnet", messages=ASK, tools=TOOLS)
    choice = result.choices[0]
    assert choice.finish_reason == "tool_calls"
    assert choice.message.content == "Let me check."
    (call,) = choice.message.tool_calls
    assert call.type == "function" and call.id.startswith("toolu_")
    assert (call.function.name, json.loads(call.function.arguments)) == \
        ("get_weather", {"city": "Paris"})
    # Upstream: exactly the client's tools, descriptions and schemas verbatim, nothing else.
    (body,) = proxy.upstream()
    assert sorted(body["tools"], key=lambda t: t["name"]) == [
        {"name": "mcp__c__get_time", "description": "",
         "input_schema": TIME["function"]["parameters"]},
        {"name": "mcp__c__get_weather", "description": WEATHER["function"]["description"],
         "input_schema": WEATHER["function"]["parameters"]}]


def test_parallel_calls_stream_as_openai_streams_them(tool_proxy):
    proxy = tool_proxy(Scenario(tool_uses=(weather(text="Checking both."),
                                           ToolUse("mcp__c__get_time", {"tz": "CET"})),
                                split=4))
    chunks = list(proxy.client.chat.completions.create(
        model="sonnet", messages=ASK, tools=TOOLS, stream=True,
        stream_options={"include_usage": True}))
    deltas = [c.choices[0].delta for c in chunks if c.choices]
    calls = [d.tool_calls[0] for d in deltas if d.tool_calls]
    firsts = [c for c in calls if c.id]
    assert [(c.index, c.type, c.function.name, c.function.arguments) for c in firsts] == [
        (0, "function", "get_weather", ""), (1, "function", "get_time", "")]
    for index, expected in ((0, {"city": "Paris"}), (1, {"tz": "CET"})):
        pieces = [c.function.arguments for c in calls if c.index == index and not c.id]
        assert len(pieces) > 1 and json.loads("".join(pieces)) == expected
    assert "".join(d.content or "" for d in deltas) == "Checking both."
    finishes = [c.choices[0].finish_reason for c in chunks if c.choices and
                c.choices[0].finish_reason]
    assert finishes == ["tool_calls"]
    assert chunks[-1].choices == [] and chunks[-1].usage.completion_tokens > 0


def test_results_go_back_to_the_waiting_process_natively(tool_proxy):
    proxy = tool_proxy(Scenario(tool_uses=(weather(), ToolUse("mcp__c__get_time", {})),
                                after_tool_text="Answer: {tool_result}"))
    first = proxy.client.chat.completions.create(model="sonnet", messages=ASK, tools=TOOLS)
    messages = answer_calls(ASK, first.choices[0].message,
                            {"get_weather": "Sunny", "get_time": "noon"})
    second = proxy.client.chat.completions.create(model="sonnet", messages=messages, tools=TOOLS)
    assert second.choices[0].message.content == "Answer: Sunny\nnoon"
    assert second.choices[0].finish_reason == "stop"
    assert proxy.live.spawned == 1  # the same process, waiting on its held calls
    state = proxy.conversations.conversation_state()
    assert state["hits"] == 1 and sum(state["misses"].values()) == 0
    last = proxy.upstream()[-1]["messages"]
    uses = [b for b in last[-2]["content"] if b["type"] == "tool_use"]
    results = [b for b in last[-1]["content"] if b["type"] == "tool_result"]
    assert [u["id"] for u in uses] == [r["tool_use_id"] for r in results]
    assert [u["id"] for u in uses] == [c.id for c in first.choices[0].message.tool_calls]


def test_results_resume_a_session_when_nothing_was_kept(tool_proxy):
    proxy = tool_proxy(Scenario(tool_use=weather(), after_tool_text="It is {tool_result}."),
                       keep=0)
    first = proxy.client.chat.completions.create(model="sonnet", messages=ASK, tools=TOOLS)
    messages = answer_calls(ASK, first.choices[0].message, {"get_weather": "sunny"})
    second = proxy.client.chat.completions.create(model="sonnet", messages=messages, tools=TOOLS)
    assert second.choices[0].message.content == "It is sunny."
    last = proxy.upstream()[-1]["messages"]
    assert last[-2]["role"] == "assistant" and last[-2]["content"][-1]["type"] == "tool_use"
    (result,) = last[-1]["content"]
    assert result["type"] == "tool_result" and result["content"] == "sunny"
    assert not any("interrupted" in json.dumps(m) for m in last)  # no CLI-made results


def test_calls_left_unanswered_past_the_hold_end_their_process_and_resume_later(tool_proxy):
    proxy = tool_proxy(Scenario(tool_use=weather(), after_tool_text="It is {tool_result}."),
                       tool_call_timeout=0.2)
    first = proxy.client.chat.completions.create(model="sonnet", messages=ASK, tools=TOOLS)
    (process,) = proxy.live.live_processes()
    time.sleep(0.3)
    proxy.conversations.keeper.sweep()
    assert not process.alive  # the hold is over: the process and its room are released
    assert proxy.conversations.conversation_state()["evictions"]["tool_call_timeout"] == 1
    messages = answer_calls(ASK, first.choices[0].message, {"get_weather": "foggy"})
    second = proxy.client.chat.completions.create(model="sonnet", messages=messages, tools=TOOLS)
    assert second.choices[0].message.content == "It is foggy."
    assert proxy.live.spawned == 2


def test_a_long_tool_name_is_aliased_upstream_and_mapped_back(tool_proxy):
    from proxy.tools.spec import alias_for
    alias = "mcp__c__" + alias_for(LONG_NAME)
    assert len(alias) == 64
    proxy = tool_proxy(Scenario(tool_use=ToolUse(alias, {})))
    result = proxy.client.chat.completions.create(model="sonnet", messages=ASK, tools=[LONG])
    assert result.choices[0].message.tool_calls[0].function.name == LONG_NAME
    assert [t["name"] for t in proxy.upstream()[0]["tools"]] == [alias]


def test_a_call_of_a_tool_not_offered_never_reaches_the_client(tool_proxy):
    proxy = tool_proxy(Scenario(tool_use=ToolUse("mcp__c__rm_rf", {"path": "/"}),
                                after_tool_text="That tool does not exist."))
    result = proxy.client.chat.completions.create(model="sonnet", messages=ASK, tools=TOOLS)
    assert result.choices[0].finish_reason == "stop"
    assert result.choices[0].message.tool_calls is None
    assert result.choices[0].message.content == "That tool does not exist."
    (_, second) = proxy.upstream()
    (refused,) = second["messages"][-1]["content"]
    assert refused["is_error"] and "No such tool available" in json.dumps(refused["content"])


def test_tool_choice_none_offers_nothing(tool_proxy):
    proxy = tool_proxy(Scenario(reply_text="No tools needed."))
    result = proxy.client.chat.completions.create(model="sonnet", messages=ASK, tools=TOOLS,
                                                  tool_choice="none")
    assert result.choices[0].message.content == "No tools needed."
    assert proxy.upstream()[0]["tools"] == []


def test_tool_choice_required_makes_a_prose_answer_a_call(tool_proxy):
    proxy = tool_proxy(Scenario(reply_text="I think it is sunny.",
                                tool_use=weather(), tool_use_when="[tool-choice-enforce]"))
    chunks = list(proxy.client.chat.completions.create(
        model="sonnet", messages=ASK, tools=TOOLS, tool_choice="required", stream=True))
    deltas = [c.choices[0].delta for c in chunks if c.choices]
    assert "".join(d.content or "" for d in deltas) == ""  # the prose never reaches the client
    assert [d.tool_calls[0].function.name for d in deltas if d.tool_calls and
            d.tool_calls[0].id] == ["get_weather"]
    assert chunks[-1].choices[0].finish_reason == "tool_calls"
    bodies = proxy.upstream()
    assert len(bodies) == 2 and "[tool-choice-enforce]" in json.dumps(bodies[1]["messages"][-1])
    result = proxy.client.chat.completions.create(model="sonnet", messages=ASK, tools=TOOLS,
                                                  tool_choice="required")
    # Both model calls are the answer's cost: the prose that was corrected too.
    assert result.usage.completion_tokens == 2 * Scenario().output_tokens


def test_tool_choice_required_that_stays_unmet_is_an_error_not_prose(tool_proxy):
    proxy = tool_proxy(Scenario(reply_text="I will not call anything."))
    with pytest.raises(openai.APIStatusError) as caught:
        proxy.client.chat.completions.create(model="sonnet", messages=ASK, tools=TOOLS,
                                             tool_choice="required")
    assert caught.value.status_code == 502
    assert caught.value.body["code"] == "tool_choice_not_honoured"
    assert len(proxy.upstream()) == 2  # one correction, then the honest error


def test_a_named_tool_choice_refuses_a_call_of_another_tool(tool_proxy):
    proxy = tool_proxy(Scenario(tool_use=ToolUse("mcp__c__get_time", {}),
                                after_tool_text="unused"))
    with pytest.raises(openai.APIStatusError) as caught:
        proxy.client.chat.completions.create(
            model="sonnet", messages=ASK, tools=TOOLS,
            tool_choice={"type": "function", "function": {"name": "get_weather"}})
    # The stand-in, told its get_time call was refused, answers prose: named stays unmet.
    assert caught.value.body["code"] == "tool_choice_not_honoured"
    refused = proxy.upstream()[1]["messages"][-1]["content"][0]
    assert refused["is_error"] and "mcp__c__get_weather" in json.dumps(refused["content"])


def test_strict_arguments_that_break_the_schema_never_reach_the_client(tool_proxy):
    strict = {"type": "function", "function": {**WEATHER["function"], "strict": True}}
    proxy = tool_proxy(Scenario(tool_use=ToolUse("mcp__c__get_weather", {"town": "Paris"}),
                                after_tool_text="Sorry, I could not check."))
    result = proxy.client.chat.completions.create(model="sonnet", messages=ASK, tools=[strict])
    assert result.choices[0].message.tool_calls is None
    assert result.choices[0].message.content == "Sorry, I could not check."
    refused = proxy.upstream()[1]["messages"][-1]["content"][0]
    assert refused["is_error"] and "schema" in json.dumps(refused["content"])


def test_parallel_tool_calls_false_returns_one_call_and_keeps_nothing(tool_proxy):
    proxy = tool_proxy(Scenario(tool_uses=(weather(), ToolUse("mcp__c__get_time", {}))))
    result = proxy.client.chat.completions.create(model="sonnet", messages=ASK, tools=TOOLS,
                                                  parallel_tool_calls=False)
    assert [c.function.name for c in result.choices[0].message.tool_calls] == ["get_weather"]
    assert proxy.conversations.conversation_state()["kept"] == 0


def test_legacy_functions_answer_with_function_call(tool_proxy):
    proxy = tool_proxy(Scenario(tool_use=weather(), after_tool_text="It is {tool_result}."))
    functions = [WEATHER["function"]]
    first = proxy.client.chat.completions.create(model="sonnet", messages=ASK,
                                                 functions=functions)
    choice = first.choices[0]
    assert choice.finish_reason == "function_call" and choice.message.tool_calls is None
    assert (choice.message.function_call.name,
            json.loads(choice.message.function_call.arguments)) == ("get_weather",
                                                                   {"city": "Paris"})
    messages = ASK + [choice.message.model_dump(exclude_none=True),
                      {"role": "function", "name": "get_weather", "content": "rainy"}]
    second = proxy.client.chat.completions.create(model="sonnet", messages=messages,
                                                  functions=functions)
    assert second.choices[0].message.content == "It is rainy."


@pytest.mark.parametrize("tools, param, code", [
    # The contract holds the API's name rule, so its validator answers as OpenAI does.
    ([{"type": "function", "function": {"name": "bad name"}}], "tools[0].function.name",
     "invalid_value"),
    ([WEATHER, WEATHER], "tools[1].function.name", "duplicate_tool_name"),
    ([{"type": "function", "function": {"name": "f", "parameters": {"type": "string"}}}],
     "tools[0].function.parameters", "invalid_function_parameters"),
    ([{"type": "function", "function": {"name": "f", "parameters": {"type": "object",
                                                                    "properties": 5}}}],
     "tools[0].function.parameters", "invalid_function_parameters"),
])
def test_tools_the_api_would_refuse_are_a_400_naming_the_tool(tool_proxy, tools, param, code):
    proxy = tool_proxy(Scenario())
    with pytest.raises(openai.BadRequestError) as caught:
        proxy.client.chat.completions.create(model="sonnet", messages=ASK, tools=tools)
    assert (caught.value.body["param"], caught.value.body["code"]) == (param, code)
    assert proxy.upstream() == []


def test_a_named_choice_of_an_unknown_tool_is_a_400(tool_proxy):
    proxy = tool_proxy(Scenario())
    with pytest.raises(openai.BadRequestError) as caught:
        proxy.client.chat.completions.create(
            model="sonnet", messages=ASK, tools=TOOLS,
            tool_choice={"type": "function", "function": {"name": "nope"}})
    assert caught.value.body["param"] == "tool_choice"


def test_a_resumed_tool_loop_sends_the_models_own_thinking_before_its_calls(tool_proxy):
    # The API wants a tool loop's last assistant turn as the model wrote it, thinking first;
    # a client never has the signed thinking, so the proxy keeps it for the resume.
    proxy = tool_proxy(Scenario(thinking="I should look it up.", tool_use=weather(),
                                after_tool_text="It is {tool_result}."), keep=0)
    first = proxy.client.chat.completions.create(model="sonnet", messages=ASK, tools=TOOLS)
    messages = answer_calls(ASK, first.choices[0].message, {"get_weather": "dry"})
    second = proxy.client.chat.completions.create(model="sonnet", messages=messages, tools=TOOLS)
    assert second.choices[0].message.content == "It is dry."
    made, resumed = proxy.upstream()
    sent = [b for b in resumed["messages"][-2]["content"] if b["type"] == "thinking"]
    (thinking,) = [b for b in made_blocks(proxy, 0) if b["type"] == "thinking"]
    assert sent == [thinking]  # exactly as received, signature and all, before the call
    assert resumed["messages"][-2]["content"][0]["type"] == "thinking"


def made_blocks(proxy, index):
    """The blocks of the stand-in's answer to upstream call `index` (what the model wrote)."""
    from proxy.standin import responder
    body = proxy.upstream()[index]
    return [b for b in proxy.answers[index]] if hasattr(proxy, "answers") else \
        _answer_blocks(proxy, body, index)


def _answer_blocks(proxy, body, index):
    from proxy.standin import responder, wire
    scenario = proxy.scenario_object
    answer = responder.answer(scenario, proxy.scenario, index, body)
    return [wire._full(b) for b in answer.message.content]


def test_ids_a_client_stripped_of_their_underscore_still_reach_the_waiting_call(tool_proxy):
    # OpenClaw sends tool call ids back with every character but letters and digits removed.
    proxy = tool_proxy(Scenario(tool_use=weather(), after_tool_text="It is {tool_result}."))
    first = proxy.client.chat.completions.create(model="sonnet", messages=ASK, tools=TOOLS)
    message = first.choices[0].message.model_dump(exclude_none=True)
    (call,) = message["tool_calls"]
    stripped = "".join(c for c in call["id"] if c.isalnum())
    assert stripped != call["id"]
    call["id"] = stripped
    messages = ASK + [message, {"role": "tool", "tool_call_id": stripped, "content": "calm"}]
    second = proxy.client.chat.completions.create(model="sonnet", messages=messages, tools=TOOLS)
    assert second.choices[0].message.content == "It is calm."
    assert proxy.live.spawned == 1 and proxy.conversations.conversation_state()["hits"] == 1
