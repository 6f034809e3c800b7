"""LangChain (langchain-openai's ChatOpenAI) runs whole tool loops against the live server:
`bind_tools`, invoke, run the tool, send the ToolMessage, get the answer; streaming too; and
parallel calls. Its `with_structured_output(method="function_calling")` is a forced call."""

from __future__ import annotations

import pytest

from tests.clients.conftest import API_KEY, MODEL, WEATHER, need_module, tool_results, \
    upstream_tool_names

pytestmark = [pytest.mark.live, pytest.mark.clients]


@pytest.fixture(scope="module")
def lc():
    need_module("langchain_openai")
    from langchain_core.messages import HumanMessage, ToolMessage
    from langchain_core.tools import tool
    from langchain_openai import ChatOpenAI

    ran: list[str] = []

    @tool
    def get_weather(city: str) -> str:
        """Get the current weather of a city."""
        ran.append(city)
        return WEATHER

    class LC:
        Human, Tool = HumanMessage, ToolMessage
        weather = get_weather
        calls = ran

        @staticmethod
        def chat(tier, **kw):
            return ChatOpenAI(model=MODEL, base_url=tier.base_url, api_key=API_KEY,
                              max_retries=0, timeout=60, **kw)
    return LC


def _answer_calls(lc, messages, ai):
    messages.append(ai)
    for call in ai.tool_calls:
        messages.append(lc.Tool(lc.weather.invoke(call["args"]), tool_call_id=call["id"]))


def test_bind_tools_loop(tier, lc):
    mark = tier.mark()
    continued = tier.conversations()["continued"]
    model = lc.chat(tier).bind_tools([lc.weather])
    messages = [lc.Human("What is the weather in Paris?")]

    ai = model.invoke(messages)
    assert ai.response_metadata["finish_reason"] == "tool_calls"
    assert ai.content == "Let me check."
    assert [(c["name"], c["args"]) for c in ai.tool_calls] == [("get_weather", {"city": "Paris"})]
    assert ai.tool_calls[0]["id"].startswith("toolu_")
    assert not ai.invalid_tool_calls

    _answer_calls(lc, messages, ai)
    final = model.invoke(messages)
    assert final.content == f"It is {WEATHER} in Paris."
    assert final.response_metadata["finish_reason"] == "stop"
    assert not final.tool_calls

    # the results answered the calls the CLI process held: no new process, no re-sent history
    assert tier.conversations()["continued"] == continued + 1
    upstream = tier.since(mark, "weather")
    assert len(upstream) == 2
    assert all(upstream_tool_names(r) == ["mcp__c__get_weather"] for r in upstream)
    schema = upstream[0].body["tools"][0]["input_schema"]
    assert schema["properties"]["city"]["type"] == "string" and schema["required"] == ["city"]
    assert tool_results(upstream[1]) == [WEATHER]
    # what LangChain counts is what the upstream billed, call by call
    used = [ai.usage_metadata, final.usage_metadata]
    assert (sum(u["input_tokens"] for u in used), sum(u["output_tokens"] for u in used)) == \
        tier.usage_since(mark)


def test_bind_tools_loop_streaming(tier, lc):
    mark = tier.mark()
    model = lc.chat(tier, stream_usage=True).bind_tools([lc.weather])
    messages = [lc.Human("What is the weather in Paris? (streamed)")]

    ai = None
    pieces = 0
    for chunk in model.stream(messages):
        ai = chunk if ai is None else ai + chunk
        pieces += 1
    assert pieces > 3, "the answer must come as a stream, not at once"
    assert ai.response_metadata["finish_reason"] == "tool_calls"
    assert ai.content == "Let me check."
    assert [(c["name"], c["args"]) for c in ai.tool_calls] == [("get_weather", {"city": "Paris"})]
    assert not ai.invalid_tool_calls

    _answer_calls(lc, messages, ai)
    text = ""
    final = None
    for chunk in model.stream(messages):
        text += chunk.content
        final = chunk if final is None else final + chunk
    assert text == f"It is {WEATHER} in Paris."
    assert final.response_metadata["finish_reason"] == "stop"
    assert tool_results(tier.since(mark, "weather")[-1]) == [WEATHER]
    used = [ai.usage_metadata, final.usage_metadata]
    assert (sum(u["input_tokens"] for u in used), sum(u["output_tokens"] for u in used)) == \
        tier.usage_since(mark)


@pytest.mark.parametrize("stream", [False, True], ids=["invoke", "stream"])
def test_parallel_calls(tier, lc, stream):
    mark = tier.mark()
    model = lc.chat(tier).bind_tools([lc.weather])
    messages = [lc.Human("Compare the weather of Paris and Tokyo.")]
    if stream:
        ai = None
        for chunk in model.stream(messages):
            ai = chunk if ai is None else ai + chunk
    else:
        ai = model.invoke(messages)
    assert [c["args"]["city"] for c in ai.tool_calls] == ["Paris", "Tokyo"]
    assert len({c["id"] for c in ai.tool_calls}) == 2
    _answer_calls(lc, messages, ai)
    final = model.invoke(messages)
    assert final.content == f"Paris and Tokyo: {WEATHER}\n{WEATHER}"
    assert tool_results(tier.since(mark, "parallel")[-1]) == [WEATHER, WEATHER]


def test_structured_output_by_function_calling(tier, lc):
    """`with_structured_output(method="function_calling")` forces a call of the schema's tool
    (tool_choice names it); the model answers in prose first and the proxy steers it."""
    from pydantic import BaseModel

    class UserInfo(BaseModel):
        name: str
        age: int

    mark = tier.mark()
    extract = lc.chat(tier).with_structured_output(UserInfo, method="function_calling")
    assert extract.invoke("Steer: Grace Hopper was 85.") == UserInfo(name="Grace Hopper", age=85)
    upstream = tier.since(mark, "extract-steered")
    assert len(upstream) == 2, "one prose answer, one steered call"
    assert upstream_tool_names(upstream[0]) == ["mcp__c__UserInfo"]
