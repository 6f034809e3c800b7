"""Reasoning end to end: the official openai SDK -> waitress -> the proxy -> the real CLI -> the
stand-in, whose model thinks. What the upstream request carries for each reasoning_effort, and
what the client sees with and without asking to see the thinking, streamed and not."""

from __future__ import annotations

import json

import httpx
import pytest

from proxy.conversations.keeper import Keeper
from proxy.conversations.runner import ConversationRunner
from proxy.standin.scenario import Scenario

pytestmark = pytest.mark.live

THINKS = Scenario(thinking="Seventeen times three: 30 + 21 = 51.", thinking_updates="Multiplying.",
                  thinking_tokens=11, reply_text="17 * 3 = 51.", output_tokens=20, split=7)
QUESTION = [{"role": "user", "content": "What is 17 * 3?"}]


@pytest.fixture
def proxy_for(live_proxy_for):
    def start(scenario: Scenario = THINKS, *, keep: bool = False, **settings):
        wrap = (lambda runner: ConversationRunner(runner, Keeper(max_processes=2, watch=False))) \
            if keep else None
        return live_proxy_for(scenario, runner_wrapper=wrap, **settings)
    return start


def raw_post(proxy, body: dict) -> httpx.Response:
    return httpx.post(proxy.base_url + "/chat/completions", json=body, timeout=60)


def sse_chunks(response: httpx.Response) -> list[dict]:
    return [json.loads(line[6:]) for line in response.text.splitlines()
            if line.startswith("data: {")]


@pytest.mark.parametrize("effort, output_config, thinking", [
    (None, {"effort": "medium"}, {"type": "adaptive", "display": "updates"}),
    ("none", {"effort": "low"}, {"type": "adaptive", "display": "updates"}),  # 5.x: stays on
    ("minimal", {"effort": "low"}, {"type": "adaptive", "display": "updates"}),
    ("low", {"effort": "low"}, {"type": "adaptive", "display": "updates"}),
    ("medium", {"effort": "medium"}, {"type": "adaptive", "display": "updates"}),
    ("high", {"effort": "high"}, {"type": "adaptive", "display": "updates"}),
    ("xhigh", {"effort": "xhigh"}, {"type": "adaptive", "display": "updates"}),
    ("max", {"effort": "max"}, {"type": "adaptive", "display": "updates"}),
])
def test_each_reasoning_effort_reaches_the_upstream_request(proxy_for, effort, output_config,
                                                            thinking):
    proxy = proxy_for()
    extra = {} if effort is None else {"reasoning_effort": effort}
    result = proxy.client.chat.completions.create(model="sonnet", messages=QUESTION, **extra)
    assert result.choices[0].message.content == "17 * 3 = 51."
    (body,) = proxy.upstream()
    assert (body["output_config"], body["thinking"]) == (output_config, thinking)
    # Not asked to show it: no reasoning_content, but the thinking tokens are counted.
    assert "reasoning_content" not in result.choices[0].message.model_extra
    assert result.usage.completion_tokens_details.reasoning_tokens == 11


@pytest.mark.parametrize("model, effort, output_config, thinking", [
    ("claude-sonnet-4-5", "none", None, {"type": "disabled"}),
    ("claude-sonnet-4-5", "high", None,
     {"type": "enabled", "budget_tokens": 31999, "display": "summarized"}),
])
def test_a_budgeted_model_ignores_effort_and_none_turns_thinking_off(proxy_for, model, effort,
                                                                     output_config, thinking):
    proxy = proxy_for()
    result = proxy.client.chat.completions.create(
        model=model, messages=QUESTION, reasoning_effort=effort,
        extra_body={"include_reasoning": True})
    (body,) = proxy.upstream()
    assert (body.get("output_config"), body["thinking"]) == (output_config, thinking)
    message = result.choices[0].message
    if thinking["type"] == "disabled":
        assert message.model_extra["reasoning_content"] is None  # asked, but there was none
        assert result.usage.completion_tokens_details.reasoning_tokens == 0
    else:
        assert message.model_extra["reasoning_content"] == THINKS.thinking


def test_without_the_ask_the_client_sees_no_thinking_streamed_or_not(proxy_for):
    proxy = proxy_for()
    plain = raw_post(proxy, {"model": "sonnet", "messages": QUESTION})
    assert plain.status_code == 200
    assert set(plain.json()["choices"][0]["message"]) == {"role", "content", "refusal",
                                                          "annotations"}
    streamed = raw_post(proxy, {"model": "sonnet", "messages": QUESTION, "stream": True})
    chunks = sse_chunks(streamed)
    assert all("reasoning_content" not in c["delta"] for chunk in chunks
               for c in chunk["choices"])
    assert "Multiplying" not in streamed.text and "Seventeen" not in streamed.text
    # The upstream request is the one the CLI sends by default (its `updates` display), which
    # did stream thinking text: the proxy kept it to itself.
    assert [b["thinking"] for b in proxy.upstream()] == [{"type": "adaptive", "display": "updates"}] * 2


def test_asked_the_thinking_streams_as_reasoning_content_before_the_content(proxy_for):
    proxy = proxy_for()
    stream = proxy.client.chat.completions.create(
        model="sonnet", messages=QUESTION, stream=True, stream_options={"include_usage": True},
        extra_body={"include_reasoning": True})
    kinds, reasoning, content, usage = [], "", "", None
    for chunk in stream:
        if chunk.usage is not None:
            usage = chunk.usage
        for choice in chunk.choices:
            piece = (choice.delta.model_extra or {}).get("reasoning_content")
            if piece:
                reasoning += piece
                kinds.append("reasoning")
            if choice.delta.content:
                content += choice.delta.content
                kinds.append("content")
    assert reasoning == THINKS.thinking and content == THINKS.reply_text
    assert kinds.count("reasoning") > 1                       # streamed, not in one piece
    assert kinds == sorted(kinds, key=lambda k: k == "content")  # all thinking first
    assert usage.completion_tokens_details.reasoning_tokens == 11
    assert usage.completion_tokens == 20
    (body,) = proxy.upstream()
    assert body["thinking"] == {"type": "adaptive", "display": "summarized"}


def test_asked_the_thinking_is_message_reasoning_content(proxy_for):
    proxy = proxy_for()
    result = proxy.client.chat.completions.create(
        model="sonnet", messages=QUESTION, reasoning_effort="high",
        extra_body={"include_reasoning": True})
    message = result.choices[0].message
    assert message.model_extra["reasoning_content"] == THINKS.thinking
    assert message.content == THINKS.reply_text
    (body,) = proxy.upstream()
    assert body["thinking"] == {"type": "adaptive", "display": "summarized"}
    assert body["output_config"] == {"effort": "high"}


def test_the_server_default_shows_it_unless_a_request_says_no(proxy_for):
    proxy = proxy_for(include_reasoning=True)
    shown = proxy.client.chat.completions.create(model="sonnet", messages=QUESTION)
    assert shown.choices[0].message.model_extra["reasoning_content"] == THINKS.thinking
    hidden = raw_post(proxy, {"model": "sonnet", "messages": QUESTION,
                              "include_reasoning": False})
    assert "reasoning_content" not in hidden.json()["choices"][0]["message"]
    assert [b["thinking"].get("display") for b in proxy.upstream()] == ["summarized", "updates"]


def test_a_stop_sequence_cuts_the_content_not_the_thinking(proxy_for):
    proxy = proxy_for()
    result = proxy.client.chat.completions.create(
        model="sonnet", messages=QUESTION, stop=["="], extra_body={"include_reasoning": True})
    message = result.choices[0].message
    assert message.content == "17 * 3 "
    assert message.model_extra["reasoning_content"] == THINKS.thinking


def test_a_kept_conversation_continues_only_with_the_same_reasoning_settings(proxy_for):
    proxy = proxy_for(Scenario(thinking="Hm.", reply_text="Reply to: {echo}"), keep=True)
    messages = [{"role": "user", "content": "first"}]

    def turn(user: str, **kw) -> None:
        answer = proxy.client.chat.completions.create(model="sonnet", messages=messages, **kw)
        messages.append({"role": "assistant", "content": answer.choices[0].message.content})
        messages.append({"role": "user", "content": user})

    turn("second", reasoning_effort="high")
    turn("third", reasoning_effort="high")          # the same settings: continued
    turn("fourth", reasoning_effort="low")          # another effort: a new process
    turn("fifth", reasoning_effort="low", extra_body={"include_reasoning": True})
    state = proxy.runner.conversation_state()
    assert (state["continued"], state["started"]) == (1, 3), state
    efforts = [(b["output_config"]["effort"], b["thinking"]["display"]) for b in proxy.upstream()]
    assert efforts == [("high", "updates"), ("high", "updates"), ("low", "updates"),
                       ("low", "summarized")]
