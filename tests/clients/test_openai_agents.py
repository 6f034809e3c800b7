"""openai-agents (the OpenAI Agents SDK): an `Agent` with a function tool runs its loop against
the live server, streamed and not, through both of the SDK's OpenAI models:
`OpenAIChatCompletionsModel` (chat completions) and its default, `OpenAIResponsesModel`
(the Responses API, POST /v1/responses).
"""

from __future__ import annotations

import asyncio
import json

import pytest

from tests.clients.conftest import API_KEY, MODEL, WEATHER, SentRequests, need_module, \
    tool_results, upstream_tool_names

pytestmark = [pytest.mark.live, pytest.mark.clients]


@pytest.fixture(scope="module")
def oa():
    need_module("agents")
    import agents
    from openai import AsyncOpenAI

    agents.set_tracing_disabled(True)   # no export of traces to OpenAI
    ran: list[str] = []

    @agents.function_tool
    def get_weather(city: str) -> str:
        """Get the current weather of a city."""
        ran.append(city)
        return WEATHER

    class OA:
        calls = ran
        sdk = agents

        @staticmethod
        def agent(tier, responses=False, sent: SentRequests | None = None):
            # a client per run: an async client belongs to the event loop that uses it
            http = None if sent is None else sent.async_client()
            client = AsyncOpenAI(base_url=tier.base_url, api_key=API_KEY, max_retries=0,
                                 timeout=60, http_client=http)
            model_class = agents.OpenAIResponsesModel if responses else \
                agents.OpenAIChatCompletionsModel
            model = model_class(model=MODEL, openai_client=client)
            # usage on streams only when asked, for a server that is not OpenAI's
            return agents.Agent(name="weather", instructions="Be brief.", tools=[get_weather],
                                model=model,
                                model_settings=agents.ModelSettings(include_usage=True))
    return OA


def test_agent_with_a_function_tool(tier, oa):
    mark = tier.mark()
    oa.calls.clear()
    result = oa.sdk.Runner.run_sync(oa.agent(tier), "What is the weather in Paris?")
    assert result.final_output == f"It is {WEATHER} in Paris."
    assert oa.calls == ["Paris"]
    assert [type(i).__name__ for i in result.new_items] == [
        "MessageOutputItem", "ToolCallItem", "ToolCallOutputItem", "MessageOutputItem"]
    upstream = tier.since(mark, "weather")
    assert len(upstream) == 2 and tool_results(upstream[1]) == [WEATHER]
    assert all(upstream_tool_names(r) == ["mcp__c__get_weather"] for r in upstream)
    usage = result.context_wrapper.usage
    assert usage.requests == 2
    assert (usage.input_tokens, usage.output_tokens) == tier.usage_since(mark)


def test_agent_with_a_function_tool_streamed(tier, oa):
    mark = tier.mark()
    oa.calls.clear()

    async def run():
        streamed = oa.sdk.Runner.run_streamed(oa.agent(tier),
                                              "What is the weather in Paris? (streamed)")
        deltas, items = [], []
        async for event in streamed.stream_events():
            if event.type == "raw_response_event" and \
                    getattr(event.data, "type", "") == "response.output_text.delta":
                deltas.append(event.data.delta)
            elif event.type == "run_item_stream_event":
                items.append(event.name)
        return streamed, deltas, items

    streamed, deltas, items = asyncio.run(run())
    assert streamed.final_output == f"It is {WEATHER} in Paris."
    assert "".join(deltas) == f"Let me check.It is {WEATHER} in Paris."
    assert len(deltas) > 3, "the answers come as streams"
    assert oa.calls == ["Paris"]
    assert "tool_called" in items and "tool_output" in items
    assert tool_results(tier.since(mark, "weather")[-1]) == [WEATHER]
    usage = streamed.context_wrapper.usage
    assert (usage.input_tokens, usage.output_tokens) == tier.usage_since(mark)


def test_default_model_is_the_responses_model(oa):
    from agents.models.openai_provider import OpenAIProvider

    assert isinstance(OpenAIProvider(api_key="unused").get_model(MODEL),
                      oa.sdk.OpenAIResponsesModel)


def responses_made(sent: SentRequests) -> list[dict]:
    """What the SDK sent: two Responses calls, the second with the first's call and its
    result as input items (it re-sends the history; no previous_response_id)."""
    assert sent.paths() == ["/v1/responses", "/v1/responses"]
    first, second = sent.bodies()
    assert [t["name"] for t in first["tools"]] == ["get_weather"]
    assert "previous_response_id" not in second
    (call,) = [i for i in second["input"] if i.get("type") == "function_call"]
    assert (call["name"], call["call_id"][:6]) == ("get_weather", "toolu_")
    (result,) = [i for i in second["input"] if i.get("type") == "function_call_output"]
    assert (result["call_id"], result["output"]) == (call["call_id"], WEATHER)
    return [first, second]


def the_weather_loop(tier, mark: int) -> None:
    """Upstream: the model was offered the tool, called it, and got the tool's result."""
    upstream = tier.since(mark, "weather")
    assert len(upstream) == 2 and len(tier.since(mark)) == 2
    assert all(upstream_tool_names(r) == ["mcp__c__get_weather"] for r in upstream)
    assert tool_results(upstream[1]) == [WEATHER]
    # the agent's instructions are the system prompt Claude got
    assert any(b.get("text") == "Be brief." for b in upstream[0].body["system"])


def test_default_responses_model(tier, oa):
    """The SDK's default model: the whole loop over /v1/responses."""
    mark, sent = tier.mark(), SentRequests()
    continued = tier.conversations()["continued"]
    oa.calls.clear()
    result = oa.sdk.Runner.run_sync(oa.agent(tier, responses=True, sent=sent),
                                    "What is the weather in Paris? (Responses)")
    assert result.final_output == f"It is {WEATHER} in Paris."
    assert oa.calls == ["Paris"]
    assert [type(i).__name__ for i in result.new_items] == [
        "MessageOutputItem", "ToolCallItem", "ToolCallOutputItem", "MessageOutputItem"]
    (call,) = [i.raw_item for i in result.new_items if type(i).__name__ == "ToolCallItem"]
    assert (call.type, call.name, json.loads(call.arguments)) == \
        ("function_call", "get_weather", {"city": "Paris"})
    assert [r.output[-1].type for r in result.raw_responses] == ["function_call", "message"]
    responses_made(sent)
    the_weather_loop(tier, mark)
    # the result went to the CLI process that held the call: no new process, no session resumed
    assert tier.conversations()["continued"] == continued + 1, json.dumps(tier.conversations())
    usage = result.context_wrapper.usage
    assert usage.requests == 2
    assert (usage.input_tokens, usage.output_tokens) == tier.usage_since(mark)


def test_default_responses_model_streamed(tier, oa):
    mark, sent = tier.mark(), SentRequests()
    oa.calls.clear()

    async def run():
        streamed = oa.sdk.Runner.run_streamed(oa.agent(tier, responses=True, sent=sent),
                                              "What is the weather in Paris? (Responses, streamed)")
        deltas, kinds, items = [], [], []
        async for event in streamed.stream_events():
            if event.type == "raw_response_event":
                kinds.append(event.data.type)
                if event.data.type == "response.output_text.delta":
                    deltas.append(event.data.delta)
            elif event.type == "run_item_stream_event":
                items.append(event.name)
        return streamed, deltas, kinds, items

    streamed, deltas, kinds, items = asyncio.run(run())
    assert streamed.final_output == f"It is {WEATHER} in Paris."
    assert "".join(deltas) == f"Let me check.It is {WEATHER} in Paris."
    assert len(deltas) > 3, "the answers come as streams"
    assert "response.function_call_arguments.delta" in kinds
    assert kinds.count("response.created") == kinds.count("response.completed") == 2
    assert oa.calls == ["Paris"]
    assert items == ["message_output_created", "tool_called", "tool_output",
                     "message_output_created"]
    assert all(body["stream"] is True for body in responses_made(sent))
    the_weather_loop(tier, mark)
    usage = streamed.context_wrapper.usage
    assert usage.requests == 2
    assert (usage.input_tokens, usage.output_tokens) == tier.usage_since(mark)
