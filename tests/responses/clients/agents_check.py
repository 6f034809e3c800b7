"""Drives a claude-max-api server with the openai-agents SDK, its default (Responses) model and
one function tool, plain and streamed; prints what happened as one JSON object
(tests/responses/test_clients.py checks it).

    BASE_URL=http://127.0.0.1:3456/v1 API_KEY=... python agents_check.py
"""

import asyncio
import json
import os

from openai import AsyncOpenAI

from agents import (Agent, Runner, function_tool, set_default_openai_client,
                    set_tracing_disabled)

calls: list[str] = []


@function_tool
def get_weather(city: str) -> str:
    """The weather of a city, now."""
    calls.append(city)
    return f"sunny in {city}"


async def main() -> None:
    client = AsyncOpenAI(base_url=os.environ["BASE_URL"], api_key=os.environ["API_KEY"],
                         max_retries=0, timeout=90)
    set_default_openai_client(client, use_for_tracing=False)
    set_tracing_disabled(True)
    agent = Agent(name="Weather", instructions="Answer with the tool's words.",
                  tools=[get_weather], model="sonnet")
    out: dict = {"model_class": type(agent.model).__name__ if not isinstance(agent.model, str)
                 else None}
    result = await Runner.run(agent, "What is the weather in Paris?")
    out["plain"] = {"final": result.final_output, "calls": list(calls),
                    "items": [item.type for item in result.new_items],
                    "responses": len(result.raw_responses),
                    "model": type(result._last_agent.model).__name__
                    if not isinstance(result._last_agent.model, str) else "default"}
    calls.clear()
    streamed = Runner.run_streamed(agent, "And in Rome?")
    events = []
    async for event in streamed.stream_events():
        events.append(event.type)
    out["streamed"] = {"final": streamed.final_output, "calls": list(calls),
                       "events": sorted(set(events))}
    from agents.models.openai_provider import OpenAIProvider
    out["default_model_class"] = type(OpenAIProvider().get_model("sonnet")).__name__
    print(json.dumps(out))


asyncio.run(main())
