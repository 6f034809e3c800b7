"""Reasoning in the Responses API end to end: the official Python SDK -> waitress -> the proxy ->
the real CLI -> the stand-in, whose model thinks. What the client sees for each setting,
streamed and not, and what the upstream request carries when a stateless client gives the
thinking back as encrypted_content (every answer is judged by the official-spec tee too)."""

from __future__ import annotations

import pytest

from proxy.standin.scenario import Scenario, ToolUse

pytestmark = pytest.mark.live

THINKS = Scenario(thinking="Seventeen times three: 30 + 21 = 51.", thinking_updates="Multiplying.",
                  thinking_tokens=11, reply_text="17 * 3 = 51.", output_tokens=20, split=7)
WEATHER = {"type": "function", "name": "get_weather",
           "parameters": {"type": "object", "properties": {"city": {"type": "string"}},
                          "required": ["city"]}, "strict": False}
CALLS = Scenario(thinking="The user wants the weather: call get_weather.",
                 tool_use=ToolUse("mcp__c__get_weather", {"city": "Paris"}),
                 after_tool_text="It is {tool_result}.")
SEALED = ["reasoning.encrypted_content"]


def thinking_of(message: dict) -> list[dict]:
    return [b for b in message["content"] if isinstance(b, dict) and b["type"] == "thinking"]


def test_a_summary_is_a_reasoning_item_streamed_and_not(live):
    proxy = live(THINKS)
    plain = proxy.client.responses.create(model="sonnet", input="What is 17 * 3?",
                                          reasoning={"summary": "auto"})
    with proxy.client.responses.stream(model="sonnet", input="What is 17 * 3?",
                                       reasoning={"summary": "auto"}) as stream:
        kinds = [e.type for e in stream]
        streamed = stream.get_final_response()
    for result in (plain, streamed):
        reasoning, message = result.output
        assert [s.text for s in reasoning.summary] == [THINKS.thinking]
        assert result.output_text == "17 * 3 = 51."
        assert result.usage.output_tokens_details.reasoning_tokens == 11
    assert kinds.count("response.reasoning_summary_text.delta") > 1   # streamed in pieces
    last_summary = max(i for i, k in enumerate(kinds) if k.startswith("response.reasoning"))
    assert last_summary < kinds.index("response.output_text.delta")
    assert [b["thinking"] for b in proxy.upstream()] == \
        [{"type": "adaptive", "display": "summarized"}] * 2


def test_without_a_summary_nothing_is_shown_and_the_cli_runs_as_before(live):
    proxy = live(THINKS)
    result = proxy.client.responses.create(model="sonnet", input="What is 17 * 3?",
                                           reasoning={"effort": "low"})
    assert [i.type for i in result.output] == ["message"]
    (body,) = proxy.upstream()
    assert body["thinking"] == {"type": "adaptive", "display": "updates"}
    assert body["output_config"] == {"effort": "low"}
    assert result.usage.output_tokens_details.reasoning_tokens == 11


def _loop(proxy, *, include):
    """A stateless tool loop as Codex sends it; returns the upstream body of the second turn."""
    history = [{"role": "user", "content": "Weather in Paris?"}]
    first = proxy.client.responses.create(model="sonnet", input=history, tools=[WEATHER],
                                          store=False, include=include,
                                          reasoning={"summary": "auto"})
    assert [i.type for i in first.output] == ["reasoning", "function_call"]
    history += [i.model_dump(exclude_none=True) for i in first.output]
    history.append({"type": "function_call_output", "call_id": first.output[1].call_id,
                    "output": "sunny"})
    with proxy.client.responses.stream(model="sonnet", input=history, tools=[WEATHER],
                                       store=False, include=include,
                                       reasoning={"summary": "auto"}) as stream:
        second = stream.get_final_response()
    assert second.output_text == "It is sunny."
    made, resumed = proxy.upstream()
    return first, made, resumed


def test_encrypted_content_gives_a_resumed_tool_loop_its_signed_thinking(live):
    # keep=0: no kept process and no server memory of the turn; only the client's item can
    # put the thinking back, and the API wants it before the calls.
    proxy = live(CALLS, keep=0)
    first, made, resumed = _loop(proxy, include=SEALED)
    assert first.output[0].encrypted_content and proxy.live.spawned == 2
    call_turn = resumed["messages"][-2]
    assert [b["type"] for b in call_turn["content"]] == ["thinking", "tool_use"]
    (sent,) = thinking_of(call_turn)
    assert sent["thinking"] == CALLS.thinking
    assert sent["signature"].startswith("sig_standin_")     # the stand-in's own, unchanged
    assert list(sent) == ["type", "thinking", "signature"]  # as the API sent it


def test_without_encrypted_content_the_resumed_loop_has_no_thinking(live):
    proxy = live(CALLS, keep=0)
    _, _, resumed = _loop(proxy, include=None)
    assert thinking_of(resumed["messages"][-2]) == []


def test_a_resumed_stateless_conversation_is_the_one_a_kept_process_sends(live):
    """Claude Code's own session sends every earlier answer's thinking; with encrypted_content
    a stateless client resumed on a new process sends the same conversation upstream."""
    scenario = Scenario(thinking="Hm.", reply_text="Reply to: {echo}")
    sent = {}
    for keep in (4, 0):
        proxy = live(scenario, keep=keep)
        items = [{"role": "user", "content": "first"}]
        for text in ("second", "third"):
            result = proxy.client.responses.create(model="sonnet", input=items, store=False,
                                                   include=SEALED)
            items += [o.model_dump(exclude_none=True) for o in result.output]
            items.append({"role": "user", "content": text})
        proxy.client.responses.create(model="sonnet", input=items, store=False, include=SEALED)
        sent[keep] = _comparable(proxy.upstream())
        assert proxy.live.spawned == (1 if keep else 3)
    assert sent[0] == sent[4]
    last = sent[0][-1]
    assert [len(thinking_of(m)) for m in last if m["role"] == "assistant"] == [1, 1]


def _comparable(bodies: list[dict]) -> list[list[dict]]:
    """The messages of each request, without the CLI's environment note (it names each
    server's own working directory) and with each signature named by its order of first
    appearance (each stand-in scenario signs with its own name)."""
    names: dict[str, str] = {}
    out = []
    for body in bodies:
        messages = []
        for message in body["messages"]:
            if message["role"] == "system":
                continue
            content = [{**b, "signature": names.setdefault(b["signature"], f"sig-{len(names)}")}
                       if isinstance(b, dict) and "signature" in b else b
                       for b in message["content"]] if isinstance(message["content"], list) \
                else message["content"]
            messages.append({**message, "content": content})
        out.append(messages)
    return out


def test_a_restarted_server_ignores_the_old_items(standin, live_runner_for):
    from tests.responses.conftest import running_live

    with running_live(standin, live_runner_for, CALLS, "reasoning-before-restart",
                      keep=0) as before:
        first = before.client.responses.create(
            model="sonnet", input="Weather in Paris?", tools=[WEATHER], store=False,
            include=SEALED)
    history = [{"role": "user", "content": "Weather in Paris?"},
               *[i.model_dump(exclude_none=True) for i in first.output],
               {"type": "function_call_output", "call_id": first.output[1].call_id,
                "output": "sunny"}]
    with running_live(standin, live_runner_for, CALLS, "reasoning-after-restart",
                      keep=0) as after:
        second = after.client.responses.create(model="sonnet", input=history, tools=[WEATHER],
                                               store=False, include=SEALED)
        assert second.output_text == "It is sunny."
        (resumed,) = after.upstream()
    assert thinking_of(resumed["messages"][-2]) == []   # ignored, and the loop goes on


def test_after_an_eviction_the_resumed_turn_reads_the_cache_only_with_the_thinking(
        standin, live_runner_for):
    """A kept process sends its earlier answers with their thinking, and the prompt cache holds
    that. When the process is gone (here: evicted by another conversation, keep=1), the resumed
    request matches that cache only if it carries the same thinking: with encrypted_content it
    reads what the kept process wrote; without, it writes the conversation again."""
    from tests.responses.conftest import running_live

    scenario = Scenario(thinking="Let me think about this carefully. " * 20,
                        reply_text="Reply to: {echo} " + "words " * 50, prompt_caching=True)
    usage = {}
    for include in (None, SEALED):
        name = f"evicted-{bool(include)}"
        with running_live(standin, live_runner_for, scenario, name, keep=1,
                          api_key=f"sk-ant-{name:>12}") as proxy:
            conversations = {n: [{"role": "user", "content": f"{n}: " + "context " * 300}]
                             for n in "AB"}
            for n in "AABA":     # B's first turn evicts A's process; A's last turn resumes
                items = conversations[n]
                result = proxy.client.responses.create(model="sonnet", input=items,
                                                       store=False, include=include)
                items += [o.model_dump(exclude_none=True) for o in result.output]
                items.append({"role": "user", "content": "next"})
            assert proxy.live.spawned == 3
            usage[bool(include)] = [(r.usage["cache_creation_input_tokens"],
                                     r.usage["cache_read_input_tokens"])
                                    for r in proxy.requests() if r.usage]
    written_by_kept = usage[True][1][0]
    assert usage[True][3][1] == written_by_kept > 0      # read back whole
    assert usage[False][3][1] == 0                       # the cache broke at the first answer
    print(f"resumed turn (cache write, cache read): with encrypted_content {usage[True][3]}, "
          f"without {usage[False][3]}")
