"""POST /v1/completions end to end with real parts: the official openai SDK's
`client.completions.create` -> waitress -> the proxy -> the real pinned `claude` CLI -> the
project's stand-in for the Anthropic API, which also shows what the CLI sent upstream: the
raw prompt as the one user turn, without Claude Code's system prompt, with the token limit."""

from __future__ import annotations


import openai
import pytest

from proxy.standin.scenario import Scenario
from tests.support.stream_rules import check_text_stream

pytestmark = pytest.mark.live


def user_text(body: dict) -> str:
    """The one user turn (the CLI adds its environment note after it, as its own message)."""
    assert [m["role"] for m in body["messages"]].count("user") == 1
    content = body["messages"][0]["content"]
    return content if isinstance(content, str) else \
        "".join(b["text"] for b in content if b.get("type") == "text")


def system_text(body: dict) -> str:
    return "\n".join(block["text"] for block in body.get("system") or [])


def test_a_prompt_reaches_claude_as_the_raw_user_turn(live_proxy_for):
    proxy = live_proxy_for(Scenario(reply_text="a test.", input_tokens=12, output_tokens=4))
    result = proxy.client.completions.create(model="sonnet", prompt="Say this is a test")
    assert [(c.index, c.text, c.finish_reason) for c in result.choices] == \
        [(0, "a test.", "stop")]
    assert result.object == "text_completion" and result.model == "sonnet"
    assert (result.usage.prompt_tokens, result.usage.completion_tokens) == (12, 4)
    sent = proxy.upstream()[0]
    assert user_text(sent) == "Say this is a test"
    assert sent["max_tokens"] == 16                    # OpenAI's default for this endpoint
    assert sent["tools"] == []
    # No thinking budget above the 16 tokens (the API would refuse it; 5.x think adaptively).
    assert "budget_tokens" not in (sent.get("thinking") or {})
    assert "Claude Code" not in system_text(sent) and len(system_text(sent)) < 1000


def test_streaming_with_usage(live_proxy_for):
    proxy = live_proxy_for(Scenario(reply_text="The quick brown fox jumps.", split=4,
                               input_tokens=20, output_tokens=7))
    chunks = list(proxy.client.completions.create(
        model="claude-sonnet-4", prompt="Go", max_tokens=100, stream=True,
        stream_options={"include_usage": True}))
    texts = [c.choices[0].text for c in chunks if c.choices and c.choices[0].text]
    assert len(texts) > 3 and "".join(texts) == "The quick brown fox jumps."
    assert [c.choices[0].finish_reason for c in chunks if c.choices
            and c.choices[0].finish_reason] == ["stop"]
    assert chunks[-1].choices == [] and chunks[-1].usage.total_tokens == 27
    assert len({(c.id, c.created, c.model) for c in chunks}) == 1
    assert proxy.upstream()[0]["max_tokens"] == 100


def test_a_list_of_prompts_runs_the_cli_once_each(live_proxy_for):
    proxy = live_proxy_for(Scenario(reply_text="Re: {echo}", input_tokens=10, output_tokens=3),
                      max_concurrent=1)
    result = proxy.client.completions.create(model="sonnet", prompt=["alpha", "beta", "gamma"])
    assert [(c.index, c.text) for c in result.choices] == \
        [(0, "Re: alpha"), (1, "Re: beta"), (2, "Re: gamma")]
    assert (result.usage.prompt_tokens, result.usage.completion_tokens) == (30, 9)
    assert sorted(user_text(b) for b in proxy.upstream()) == ["alpha", "beta", "gamma"]

    chunks = list(proxy.client.completions.create(model="sonnet", prompt=["one", "two"],
                                                  stream=True))
    by_index: dict[int, str] = {}
    for chunk in chunks:
        for choice in chunk.choices:
            by_index[choice.index] = by_index.get(choice.index, "") + choice.text
    assert by_index == {0: "Re: one", 1: "Re: two"}


def test_stop_and_echo(live_proxy_for):
    proxy = live_proxy_for(Scenario(reply_text="one two three STOP four five", split=3))
    result = proxy.client.completions.create(model="sonnet", prompt="Count: ", stop=["STOP"],
                                             echo=True)
    assert result.choices[0].text == "Count: one two three "
    assert result.choices[0].finish_reason == "stop"
    streamed = list(proxy.client.completions.create(model="sonnet", prompt="Count: ",
                                                    stop="STOP", echo=True, stream=True))
    assert streamed[0].choices[0].text == "Count: "
    assert "".join(c.choices[0].text for c in streamed) == "Count: one two three "


@pytest.mark.parametrize("stream", [False, True], ids=["whole", "stream"])
def test_max_tokens_is_finish_reason_length(live_proxy_for, stream):
    proxy = live_proxy_for(Scenario(reply_text="Rome was founded in", stop_reason="max_tokens",
                               output_tokens=5))
    if stream:
        chunks = list(proxy.client.completions.create(model="sonnet", prompt="Rome?",
                                                      max_tokens=5, stream=True))
        reasons = [c.choices[0].finish_reason for c in chunks if c.choices[0].finish_reason]
        text = "".join(c.choices[0].text for c in chunks)
    else:
        result = proxy.client.completions.create(model="sonnet", prompt="Rome?", max_tokens=5)
        reasons, text = [result.choices[0].finish_reason], result.choices[0].text
    assert reasons == ["length"] and text == "Rome was founded in"
    assert proxy.upstream()[0]["max_tokens"] == 5


def test_failures_before_and_after_the_first_chunk(live_proxy_for):
    overloaded = live_proxy_for(Scenario(fail_status=529))
    with pytest.raises(openai.InternalServerError) as caught:
        overloaded.client.completions.create(model="sonnet", prompt="x", stream=True)
    assert caught.value.status_code == 503
    assert caught.value.body["code"] == "upstream_overloaded"

    broken = live_proxy_for(Scenario(reply_text="Once upon a time there was", split=5,
                                abort_after_events=5))
    import httpx
    response = httpx.post(broken.base_url + "/completions", timeout=60, json={
        "model": "sonnet", "prompt": "x", "stream": True})
    assert response.status_code == 200
    report = check_text_stream(response.content, include_usage=False, prompts=1)
    # The CLI may recover by asking again; either the answer completes, or the stream ends
    # with an error event after the text it had: never a broken stream.
    report.assert_ok()
    assert report.error is not None or report.finish_reasons == {0: "stop"}
