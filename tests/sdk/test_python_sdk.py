"""The official `openai` Python SDK, sync and async, drives the real waitress server in replay
mode and parses everything: completions, streams (raw and through the SDK's stream helper),
raw responses, models, and every error status as the SDK's matching exception class.

(Every answer is also checked against the official schemas by the fidelity plugin.)
"""

from __future__ import annotations

import asyncio

import openai
import pytest
from openai import AsyncOpenAI, OpenAI

from tests.replay.expectations import EXPECTED, Answer, Refused
from tests.sdk.conftest import API_KEY, MAX_BODY

PLAIN = {"model": "claude-sonnet-4", "messages": [{"role": "user", "content": "What is 2 + 2?"}]}


def sdk(server, key: str = API_KEY) -> OpenAI:
    return OpenAI(base_url=server.base_url, api_key=key, max_retries=0, timeout=60)


def async_sdk(server, key: str = API_KEY) -> AsyncOpenAI:
    return AsyncOpenAI(base_url=server.base_url, api_key=key, max_retries=0, timeout=60)


# ---------------------------------------------------------------------------- sync


def test_completion(replay_server):
    with sdk(replay_server) as client:
        completion = client.chat.completions.create(**PLAIN)
    assert isinstance(completion, openai.types.chat.ChatCompletion)
    choice = completion.choices[0]
    assert (choice.message.role, choice.message.content) == ("assistant", "2 + 2 = 4.")
    assert choice.message.refusal is None and choice.logprobs is None
    assert choice.finish_reason == "stop"
    assert completion.model == "claude-sonnet-4" and completion.object == "chat.completion"
    assert (completion.usage.prompt_tokens, completion.usage.completion_tokens,
            completion.usage.total_tokens) == (21, 9, 30)
    assert completion.usage.prompt_tokens_details.cached_tokens == 0


def test_stream(replay_server):
    with sdk(replay_server) as client:
        chunks = list(client.chat.completions.create(
            **PLAIN, stream=True, stream_options={"include_usage": True}))
    assert all(isinstance(c, openai.types.chat.ChatCompletionChunk) for c in chunks)
    assert chunks[0].choices[0].delta.role == "assistant"
    assert "".join(c.choices[0].delta.content or "" for c in chunks if c.choices) == "2 + 2 = 4."
    assert [c.choices[0].finish_reason for c in chunks if c.choices and
            c.choices[0].finish_reason] == ["stop"]
    assert chunks[-1].choices == [] and chunks[-1].usage.total_tokens == 30
    assert len({(c.id, c.created, c.model) for c in chunks}) == 1


def test_stream_helper_accumulates_the_same_completion(replay_server):
    """The SDK's own stream helper rebuilds the message from the deltas, strictly."""
    with sdk(replay_server) as client:
        with client.chat.completions.stream(**PLAIN, stream_options={"include_usage": True}) \
                as stream:
            kinds = [event.type for event in stream]
            final = stream.get_final_completion()
    assert "content.delta" in kinds and "content.done" in kinds
    assert final.choices[0].message.content == "2 + 2 = 4."
    assert final.choices[0].finish_reason == "stop"
    assert final.usage.total_tokens == 30


def test_raw_response(replay_server):
    with sdk(replay_server) as client:
        raw = client.chat.completions.with_raw_response.create(**PLAIN)
        completion = raw.parse()
        assert raw.status_code == 200
        assert raw.headers["content-type"].startswith("application/json")
        assert completion.choices[0].message.content == "2 + 2 = 4."
        raw_stream = client.chat.completions.with_raw_response.create(**PLAIN, stream=True)
        assert raw_stream.headers["content-type"].startswith("text/event-stream")
        assert raw_stream.headers["cache-control"] == "no-cache"
        text = "".join(c.choices[0].delta.content or "" for c in raw_stream.parse() if c.choices)
        assert text == "2 + 2 = 4."
        raw_models = client.models.with_raw_response.list()
        assert raw_models.status_code == 200 and raw_models.parse().data


def test_streaming_response_reads_lines(replay_server):
    with sdk(replay_server) as client:
        with client.chat.completions.with_streaming_response.create(**PLAIN, stream=True) as rsp:
            lines = [line for line in rsp.iter_lines() if line]
    assert lines[-1] == "data: [DONE]" and all(line.startswith("data: ") for line in lines)


def test_models(replay_server, catalogue):
    with sdk(replay_server) as client:
        models = client.models.list()
        ids = [m.id for m in models]
        assert {e.request["model"] for e in catalogue.entries.values()} <= set(ids)
        assert all(m.object == "model" and m.owned_by and m.created > 0 for m in models)
        for model_id in ids:
            model = client.models.retrieve(model_id)
            assert (model.id, model.object) == (model_id, "model")


# prompt_1mb is over this server's small body limit (set low so a 413 is cheap to provoke);
# tests/replay serves it.
@pytest.mark.parametrize("name", [n for n, e in EXPECTED.items()
                                  if isinstance(e, Answer) and n != "prompt_1mb"])
def test_every_recorded_answer_parses(replay_server, catalogue, name):
    request = dict(catalogue.entries[name].request)
    if "include_reasoning" in request:  # an extension: the SDK sends it through extra_body
        request["extra_body"] = {"include_reasoning": request.pop("include_reasoning")}
    with sdk(replay_server) as client:
        completion = client.chat.completions.create(**request)
        chunks = list(client.chat.completions.create(
            **request, stream=True, stream_options={"include_usage": True}))
    streamed = "".join(c.choices[0].delta.content or "" for c in chunks if c.choices)
    assert streamed == completion.choices[0].message.content
    assert chunks[-1].usage == completion.usage


# ---------------------------------------------------------------------------- async


def test_async_completion_stream_and_models(replay_server):
    async def run():
        async with async_sdk(replay_server) as client:
            completion = await client.chat.completions.create(**PLAIN)
            stream = await client.chat.completions.create(
                **PLAIN, stream=True, stream_options={"include_usage": True})
            chunks = [chunk async for chunk in stream]
            raw = await client.chat.completions.with_raw_response.create(**PLAIN)
            models = [m.id async for m in client.models.list()]
            model = await client.models.retrieve("sonnet")
            with pytest.raises(openai.NotFoundError):
                await client.models.retrieve("gpt-4o")
            return completion, chunks, raw.status_code, raw.parse(), models, model

    completion, chunks, status, parsed, models, model = asyncio.run(run())
    assert completion.choices[0].message.content == "2 + 2 = 4."
    assert "".join(c.choices[0].delta.content or "" for c in chunks if c.choices) == "2 + 2 = 4."
    assert chunks[-1].usage.total_tokens == completion.usage.total_tokens == 30
    assert status == 200 and parsed.choices[0].message.content == "2 + 2 = 4."
    assert "claude-sonnet-4" in models and model.id == "sonnet"


def test_async_concurrent_streams(replay_server, catalogue):
    names = ["plain_question", "long_output", "unicode_emoji_cjk", "thinking"]

    async def one(client, name):
        stream = await client.chat.completions.create(**catalogue.entries[name].request,
                                                      stream=True)
        return "".join([c.choices[0].delta.content or "" async for c in stream if c.choices])

    async def run():
        async with async_sdk(replay_server) as client:
            return await asyncio.gather(*(one(client, n) for n in names))

    texts = asyncio.run(run())
    assert texts[0] == "2 + 2 = 4." and texts[3] == "17 * 3 = 51."
    assert texts[1] == "The quick brown fox jumps over the lazy dog. " * 400
    assert texts[2] == catalogue.entries["unicode_emoji_cjk"].request["messages"][-1]["content"]


# ---------------------------------------------------------------------------- errors


def _refusal(name: str) -> tuple[int, str]:
    expected = EXPECTED[name]
    assert isinstance(expected, Refused)
    return expected.status, expected.code


def _call(server, request: dict, *, stream: bool = False, key: str = API_KEY, **extra):
    with sdk(server, key) as client:
        if stream:
            return list(client.chat.completions.create(**request, stream=True, **extra))
        return client.chat.completions.create(**request, **extra)


ERRORS = {
    # name: (exception class, status, code, how)
    "bad_request": (openai.BadRequestError, 400, "empty_array",
                    lambda s, **kw: _call(s, {**PLAIN, "messages": []}, **kw)),
    "unauthorized": (openai.AuthenticationError, 401, "invalid_api_key",
                     lambda s, **kw: _call(s, PLAIN, key="sk-wrong", **kw)),
    "model_not_found": (openai.NotFoundError, 404, "model_not_found",
                        lambda s, **kw: _call(s, {**PLAIN, "model": "gpt-4o"}, **kw)),
    "too_large": (openai.APIStatusError, 413, "request_too_large",
                  lambda s, **kw: _call(s, {**PLAIN, "messages": [
                      {"role": "user", "content": "x" * (MAX_BODY + 1)}]}, **kw)),
    "not_json": (openai.APIStatusError, 415, "unsupported_media_type",
                 lambda s, **kw: _call(s, PLAIN, extra_headers={"Content-Type": "text/plain"},
                                       **kw)),
}
RECORDED_ERRORS = {
    "rate_limited": (openai.RateLimitError, "upstream_429_retry_after"),
    "prompt_too_long": (openai.BadRequestError, "upstream_400_prompt_too_long"),
    "bad_gateway": (openai.InternalServerError, "upstream_500"),
    "overloaded": (openai.InternalServerError, "upstream_529"),
    "not_logged_in": (openai.InternalServerError, "not_logged_in"),
}


def _check_error(error: openai.APIStatusError, cls: type, status: int, code: str) -> None:
    assert type(error) is cls, f"{type(error).__name__}, expected {cls.__name__}"
    assert error.status_code == status
    assert error.code == code
    assert isinstance(error.message, str) and error.type
    assert error.response.headers["content-type"].startswith("application/json")


@pytest.mark.parametrize("stream", [False, True], ids=["whole", "stream"])
@pytest.mark.parametrize("case", sorted(ERRORS))
def test_request_errors_raise_the_matching_class(replay_server, case, stream):
    cls, status, code, call = ERRORS[case]
    with pytest.raises(openai.APIStatusError) as caught:
        call(replay_server, stream=stream)
    _check_error(caught.value, cls, status, code)
    if status == 401:
        assert caught.value.response.headers["www-authenticate"].startswith("Bearer")


@pytest.mark.parametrize("stream", [False, True], ids=["whole", "stream"])
@pytest.mark.parametrize("case", sorted(RECORDED_ERRORS))
def test_recorded_failures_raise_the_matching_class(replay_server, catalogue, case, stream):
    cls, name = RECORDED_ERRORS[case]
    status, code = _refusal(name)
    with pytest.raises(openai.APIStatusError) as caught:
        _call(replay_server, catalogue.entries[name].request, stream=stream)
    _check_error(caught.value, cls, status, code)
    expected = EXPECTED[name]
    if expected.retry_after is not None:
        assert caught.value.response.headers["retry-after"] == expected.retry_after


def test_models_errors(replay_server):
    with sdk(replay_server) as client, pytest.raises(openai.NotFoundError) as caught:
        client.models.retrieve("no-such-model")
    _check_error(caught.value, openai.NotFoundError, 404, "model_not_found")
    with sdk(replay_server, "sk-wrong") as client, pytest.raises(openai.AuthenticationError):
        client.models.list()


@pytest.mark.parametrize("stream", [False, True], ids=["whole", "stream"])
def test_internal_error_is_500(unsafe_cli_server, stream):
    with pytest.raises(openai.InternalServerError) as caught:
        _call(unsafe_cli_server, PLAIN, stream=stream)
    _check_error(caught.value, openai.InternalServerError, 500, "unsafe_cli")


def test_timeout_is_504(slow_server):
    with pytest.raises(openai.InternalServerError) as caught:
        _call(slow_server, PLAIN)
    _check_error(caught.value, openai.InternalServerError, 504, "timeout")


def test_error_after_the_stream_began_raises_in_the_iteration(replay_server, catalogue):
    """A failure after the first chunk arrives as an SSE error event: the SDK raises APIError
    while iterating, after the text that was sent."""
    request = catalogue.entries["killed_mid_stream"].request
    received = []
    with sdk(replay_server) as client, pytest.raises(openai.APIError) as caught:
        for chunk in client.chat.completions.create(**request, stream=True):
            received.append(chunk)
    assert "".join(c.choices[0].delta.content or "" for c in received if c.choices) == \
        "Once upon "
    assert caught.value.code == "claude_cli_crashed"
