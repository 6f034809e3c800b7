"""The Responses API end to end with the real CLI against the stand-in, driven by the official
Python SDK: tool loops on the waiting CLI process (stored and stateless), a resumed session
when nothing was kept, structured output, endings, and the cost of a 10-turn
`previous_response_id` chain against the same chat over chat completions."""

from __future__ import annotations

import json

import openai
import pytest
from pydantic import BaseModel

from proxy.standin.scenario import Scenario, ToolUse

pytestmark = pytest.mark.live

WEATHER = {"type": "function", "name": "get_weather", "description": "The weather of a city.",
           "parameters": {"type": "object", "properties": {"city": {"type": "string"}},
                          "required": ["city"], "additionalProperties": False},
           "strict": False}
CALLS = Scenario(tool_use=ToolUse("mcp__c__get_weather", {"city": "Paris"}, "Let me check."),
                 after_tool_text="It is {tool_result}.")


def outputs(response, results):
    return [{"type": "function_call_output", "call_id": item.call_id,
             "output": results[item.name]} for item in response.output
            if item.type == "function_call"]


def test_a_tool_loop_continues_the_waiting_process(live):
    proxy = live(CALLS)
    first = proxy.client.responses.create(model="sonnet", input="Weather in Paris?",
                                          tools=[WEATHER])
    assert [o.type for o in first.output] == ["message", "function_call"]
    call = first.output[1]
    assert call.call_id.startswith("toolu_") and json.loads(call.arguments) == {"city": "Paris"}
    second = proxy.client.responses.create(model="sonnet", previous_response_id=first.id,
                                           tools=[WEATHER],
                                           input=outputs(first, {"get_weather": "sunny"}))
    assert second.output_text == "It is sunny." and second.status == "completed"
    assert proxy.live.spawned == 1   # the same process: its held call got the result
    state = proxy.conversations.conversation_state()
    assert state["hits"] == 1 and sum(state["misses"].values()) == 0
    last = proxy.upstream()[-1]["messages"]
    (result,) = [b for b in last[-1]["content"] if b["type"] == "tool_result"]
    assert result["tool_use_id"] == call.call_id


def test_a_stateless_streamed_loop_resending_everything_continues_it_too(live):
    """Codex CLI's way: store false, the whole history each turn, streamed."""
    proxy = live(CALLS)
    history = [{"role": "developer", "content": "You are terse."},
               {"role": "user", "content": "Weather in Paris?"}]
    with proxy.client.responses.stream(model="sonnet", input=history, tools=[WEATHER],
                                       store=False, prompt_cache_key="session-1") as stream:
        first = stream.get_final_response()
    done_items = [item.model_dump(exclude_none=True) for item in first.output]
    history += done_items + outputs(first, {"get_weather": "rainy"})
    with proxy.client.responses.stream(model="sonnet", input=history, tools=[WEATHER],
                                       store=False, prompt_cache_key="session-1") as stream:
        deltas = "".join(e.delta for e in stream if e.type == "response.output_text.delta")
        second = stream.get_final_response()
    assert deltas == second.output_text == "It is rainy."
    assert proxy.live.spawned == 1
    with pytest.raises(openai.NotFoundError):
        proxy.client.responses.retrieve(first.id)


def test_without_a_kept_process_the_follow_up_resumes_a_session(live):
    proxy = live(CALLS, keep=0)
    first = proxy.client.responses.create(model="sonnet", input="Weather in Paris?",
                                          tools=[WEATHER])
    second = proxy.client.responses.create(model="sonnet", previous_response_id=first.id,
                                           tools=[WEATHER],
                                           input=outputs(first, {"get_weather": "sunny"}))
    assert second.output_text == "It is sunny." and proxy.live.spawned == 2
    last = proxy.upstream()[-1]["messages"]
    assert last[-2]["role"] == "assistant" and last[-2]["content"][-1]["type"] == "tool_use"
    (result,) = last[-1]["content"]
    assert (result["type"], result["content"]) == ("tool_result", "sunny")


def test_structured_output_through_text_format(live):
    class Person(BaseModel):
        name: str
        age: int

    proxy = live(Scenario(tool_use=ToolUse("StructuredOutput", {"name": "Bob", "age": 3}),
                          split=5))
    parsed = proxy.client.responses.parse(model="sonnet", input="Bob is three.",
                                          text_format=Person)
    assert parsed.output_parsed == Person(name="Bob", age=3)
    with proxy.client.responses.stream(model="sonnet", input="Bob is three.",
                                       text_format=Person) as stream:
        assert stream.get_final_response().output_parsed == Person(name="Bob", age=3)


def test_max_output_tokens_ends_in_response_incomplete(live):
    proxy = live(Scenario(reply_text="A long story that stops", stop_reason="max_tokens"))
    with proxy.client.responses.stream(model="sonnet", input="Tell a story.",
                                       max_output_tokens=16) as stream:
        events = [e.type for e in stream]
    assert events[-1] == "response.incomplete"
    result = proxy.client.responses.create(model="sonnet", input="Tell a story.",
                                           max_output_tokens=16)
    assert (result.status, result.incomplete_details.reason) == ("incomplete",
                                                                 "max_output_tokens")


def test_an_upstream_failure_before_the_answer_is_the_http_status(live):
    proxy = live(Scenario(fail_status=529))
    with pytest.raises(openai.APIStatusError) as caught:
        with proxy.client.responses.stream(model="sonnet", input="Hi") as stream:
            list(stream)
    assert caught.value.status_code == 503 and caught.value.body["code"] == "upstream_overloaded"


# ---------------------------------------------------------------------------- cost

INSTRUCTIONS = "You answer questions about numbers. " + " ".join(
    f"Rule {i}: be precise about the number {i} and its neighbours." for i in range(120))
TURNS = [f"Turn {i}: what is special about {i * 7}?" for i in range(10)]


def _upstream_usage(proxy) -> list[tuple[int, int, int]]:
    return [(r.usage["input_tokens"], r.usage["cache_creation_input_tokens"],
             r.usage["cache_read_input_tokens"]) for r in proxy.requests() if r.usage]


def test_a_previous_response_id_chain_costs_what_the_chat_costs(standin, live_runner_for):
    """10 turns three ways, each against its own account on the stand-in (its own prompt
    cache): chat completions (the history re-sent, a live conversation), Responses with
    previous_response_id, and Responses stateless as Codex sends it (store false, the
    items re-sent). Every turn's token counts are equal, upstream and as the client sees
    them; every way continues one CLI process."""
    from tests.responses.conftest import running_live

    scenario = Scenario(reply_text="About that: {echo}", prompt_caching=True)
    results = {}
    for way in ("chat", "chain", "stateless"):
        with running_live(standin, live_runner_for, scenario, f"cost-{way}",
                          api_key=f"sk-ant-cost-{way:>9}") as proxy:
            seen = []
            if way == "chat":
                messages = [{"role": "system", "content": INSTRUCTIONS}]
                for text in TURNS:
                    messages.append({"role": "user", "content": text})
                    answer = proxy.client.chat.completions.create(model="sonnet",
                                                                  messages=messages)
                    messages.append({"role": "assistant",
                                     "content": answer.choices[0].message.content})
                    seen.append((answer.usage.prompt_tokens,
                                 answer.usage.prompt_tokens_details.cached_tokens))
            elif way == "chain":
                previous = None
                for text in TURNS:
                    answer = proxy.client.responses.create(
                        model="sonnet", instructions=INSTRUCTIONS, input=text,
                        previous_response_id=previous)
                    previous = answer.id
                    seen.append((answer.usage.input_tokens,
                                 answer.usage.input_tokens_details.cached_tokens))
            else:
                items: list = []
                for text in TURNS:
                    items.append({"role": "user", "content": text})
                    with proxy.client.responses.stream(
                            model="sonnet", instructions=INSTRUCTIONS, input=items,
                            store=False, prompt_cache_key="codex-session") as stream:
                        answer = stream.get_final_response()
                    items += [o.model_dump(exclude_none=True) for o in answer.output]
                    seen.append((answer.usage.input_tokens,
                                 answer.usage.input_tokens_details.cached_tokens))
            upstream = _upstream_usage(proxy)
            results[way] = (seen, upstream, proxy.live.spawned)
    chat, chain, stateless = results["chat"], results["chain"], results["stateless"]
    assert chat[2] == chain[2] == stateless[2] == 1
    assert len(chat[1]) == 10 and sum(r[2] for r in chat[1]) > 0   # the cache was read
    assert chain[1] == chat[1] and stateless[1] == chat[1]        # every turn, upstream
    assert chain[0] == chat[0] and stateless[0] == chat[0]        # and as the client sees it
    uncached = {way: sum(i + w for i, w, _ in r[1]) for way, r in results.items()}
    assert uncached["chain"] == uncached["stateless"] == uncached["chat"]
    print(f"uncached input tokens over 10 turns: {uncached}; per turn (input, cache write, "
          f"cache read), the same each way: {chat[1]}")
