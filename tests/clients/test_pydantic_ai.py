"""A pydantic-ai Agent with a tool runs its whole loop against the live server, streaming and
not, through both of pydantic-ai's OpenAI models with an `OpenAIProvider` pointed at our base
URL: `OpenAIChatModel` (chat completions, `"openai-chat:..."`) and `OpenAIResponsesModel` (the
Responses API, which pydantic-ai 2.x picks for `"openai:..."`). Its default structured output
(a `final_result` tool call) works too.
"""

from __future__ import annotations

import asyncio
import json

import pytest

from tests.clients.conftest import API_KEY, MODEL, WEATHER, SentRequests, need_module, \
    tool_results, upstream_tool_names

pytestmark = [pytest.mark.live, pytest.mark.clients]


@pytest.fixture(scope="module")
def pai():
    need_module("pydantic_ai")
    from pydantic_ai import Agent
    from pydantic_ai.models.openai import OpenAIChatModel, OpenAIResponsesModel
    from pydantic_ai.providers.openai import OpenAIProvider

    class PAI:
        ran: list[str] = []

        @classmethod
        def agent(cls, tier, responses=False, sent: SentRequests | None = None, **kw):
            # a provider per agent: its async client belongs to the event loop that uses it
            provider = OpenAIProvider(base_url=tier.base_url, api_key=API_KEY,
                                      http_client=None if sent is None else sent.async_client())
            model_class = OpenAIResponsesModel if responses else OpenAIChatModel
            return Agent(model_class(MODEL, provider=provider), instructions="Be brief.",
                         retries=0, **kw)

        @classmethod
        def weather_agent(cls, tier, responses=False, sent: SentRequests | None = None):
            agent = cls.agent(tier, responses, sent)

            @agent.tool_plain
            def get_weather(city: str) -> str:
                """Get the current weather of a city."""
                cls.ran.append(city)
                return WEATHER
            return agent
    return PAI


def test_agent_with_a_tool(tier, pai):
    mark = tier.mark()
    pai.ran.clear()
    result = pai.weather_agent(tier).run_sync("What is the weather in Paris?")
    assert result.output == f"It is {WEATHER} in Paris."
    assert pai.ran == ["Paris"]
    kinds = [[type(p).__name__ for p in m.parts] for m in result.all_messages()]
    assert kinds == [["UserPromptPart"], ["TextPart", "ToolCallPart"], ["ToolReturnPart"],
                     ["TextPart"]]
    upstream = tier.since(mark, "weather")
    assert len(upstream) == 2 and tool_results(upstream[1]) == [WEATHER]
    assert all(upstream_tool_names(r) == ["mcp__c__get_weather"] for r in upstream)
    # the instructions are the system prompt Claude got
    assert any(b.get("text") == "Be brief." for b in upstream[0].body["system"])
    usage = result.usage
    assert usage.requests == 2 and usage.tool_calls == 1
    assert (usage.input_tokens, usage.output_tokens) == tier.usage_since(mark)


def _streamed_weather_loop(tier, pai, prompt: str, **agent_options):
    """Runs the weather agent with `run_stream_events`; checks what both APIs must give (the
    tool ran once, its call and result as events, the answers streamed) and returns the
    result."""
    from pydantic_ai import AgentRunResultEvent, FunctionToolCallEvent, FunctionToolResultEvent, \
        PartDeltaEvent

    pai.ran.clear()

    async def run():
        seen, result = [], None
        async with pai.weather_agent(tier, **agent_options).run_stream_events(prompt) as events:
            async for event in events:
                seen.append(event)
                if isinstance(event, AgentRunResultEvent):
                    result = event.result
        return seen, result

    seen, result = asyncio.run(run())
    assert result.output == f"It is {WEATHER} in Paris."
    assert pai.ran == ["Paris"]
    calls = [e for e in seen if isinstance(e, FunctionToolCallEvent)]
    assert [(c.part.tool_name, c.part.args_as_dict()) for c in calls] == \
        [("get_weather", {"city": "Paris"})]
    assert [e.part.content for e in seen if isinstance(e, FunctionToolResultEvent)] == [WEATHER]
    assert sum(isinstance(e, PartDeltaEvent) for e in seen) > 3, "answers come as streams"
    return result


def test_agent_with_a_tool_streaming(tier, pai):
    """`run_stream_events` streams every model request of the loop and runs the tool."""
    mark = tier.mark()
    result = _streamed_weather_loop(tier, pai, "What is the weather in Paris? (streamed)")
    assert (result.usage.input_tokens, result.usage.output_tokens) == tier.usage_since(mark)


def test_output_type_by_tool(tier, pai):
    """pydantic-ai's default structured output is a call of its `final_result` tool
    (tool_choice "required" when text is not an allowed output)."""
    from pydantic import BaseModel

    class UserInfo(BaseModel):
        name: str
        age: int

    mark = tier.mark()
    result = pai.agent(tier, output_type=UserInfo).run_sync(
        "Final result: Katherine Johnson was 101.")
    assert result.output == UserInfo(name="Katherine Johnson", age=101)
    (upstream,) = tier.since(mark, "extract-final-result")
    assert upstream_tool_names(upstream) == ["mcp__c__final_result"]


def test_openai_model_string_means_the_responses_api(pai):
    from pydantic_ai.models import infer_model
    from pydantic_ai.models.openai import OpenAIResponsesModel

    assert isinstance(infer_model("openai:gpt-4o", lambda name: pai_provider()),
                      OpenAIResponsesModel)


def pai_provider():
    from pydantic_ai.providers.openai import OpenAIProvider
    return OpenAIProvider(base_url="http://127.0.0.1:9/v1", api_key="unused")


def responses_made(sent: SentRequests, stream: bool) -> None:
    """What pydantic-ai sent: two Responses calls, the second re-sending the history with the
    call and its result as input items."""
    assert sent.paths() == ["/v1/responses", "/v1/responses"]
    first, second = sent.bodies()
    assert (first["stream"], second["stream"]) == (stream, stream)
    assert first["instructions"] == "Be brief."
    assert [t["name"] for t in first["tools"]] == ["get_weather"]
    assert [i.get("type") for i in second["input"]][-2:] == ["function_call",
                                                             "function_call_output"]
    assert second["input"][-1]["output"] == WEATHER


def test_responses_model_with_a_tool(tier, pai):
    """The tool loop of test_agent_with_a_tool, over /v1/responses."""
    mark, sent = tier.mark(), SentRequests()
    continued = tier.conversations()["continued"]
    pai.ran.clear()
    result = pai.weather_agent(tier, responses=True, sent=sent).run_sync(
        "What is the weather in Paris? (Responses)")
    assert result.output == f"It is {WEATHER} in Paris."
    assert pai.ran == ["Paris"]
    kinds = [[type(p).__name__ for p in m.parts] for m in result.all_messages()]
    assert kinds == [["UserPromptPart"], ["TextPart", "ToolCallPart"], ["ToolReturnPart"],
                     ["TextPart"]]
    call = result.all_messages()[1].parts[1]
    assert (call.tool_name, call.args_as_dict()) == ("get_weather", {"city": "Paris"})
    assert call.tool_call_id.startswith("toolu_")
    assert [m.provider_response_id[:5] for m in result.all_messages()[1::2]] == ["resp_"] * 2
    responses_made(sent, stream=False)
    upstream = tier.since(mark, "weather")
    assert len(upstream) == 2 and len(tier.since(mark)) == 2
    assert tool_results(upstream[1]) == [WEATHER]
    assert all(upstream_tool_names(r) == ["mcp__c__get_weather"] for r in upstream)
    assert any(b.get("text") == "Be brief." for b in upstream[0].body["system"])
    # the re-sent history is the kept process's: the result went to the process that waited
    assert tier.conversations()["continued"] == continued + 1, json.dumps(tier.conversations())
    usage = result.usage
    assert usage.requests == 2 and usage.tool_calls == 1
    assert (usage.input_tokens, usage.output_tokens) == tier.usage_since(mark)


def test_responses_model_with_a_tool_streaming(tier, pai):
    mark, sent = tier.mark(), SentRequests()
    result = _streamed_weather_loop(tier, pai,
                                    "What is the weather in Paris? (Responses, streamed)",
                                    responses=True, sent=sent)
    responses_made(sent, stream=True)
    assert tool_results(tier.since(mark, "weather")[-1]) == [WEATHER]
    assert (result.usage.input_tokens, result.usage.output_tokens) == tier.usage_since(mark)
