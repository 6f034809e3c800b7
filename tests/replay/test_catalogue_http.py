"""Every catalogue entry, replayed through the real server and read with the official SDK,
streamed and not: status, error code, Retry-After, content, finish_reason and usage.

A stream is read twice: through the SDK, and as raw bytes, which must follow the stream rules
(tests/support/stream_rules.py) and end with `data: [DONE]` (the SDK does not say whether it
saw one). Streams are asked with and without `stream_options.include_usage`: the usage chunk
comes only when asked."""

from __future__ import annotations

import json
import time

import openai
import pytest

from proxy.contract.validation import ResponseValidator
from tests.replay.conftest import CATALOGUE
from tests.replay.expectations import (
    ECHO, EXPECTED, Answer, BrokenStream, Calls, Declined, Refused,
)
from tests.support.stream_rules import StreamReport, check_stream

NAMES = list(json.loads(CATALOGUE.read_text(encoding="utf-8"))["entries"])


def test_every_catalogue_entry_has_an_expectation(catalogue):
    assert set(EXPECTED) == set(catalogue.entries)


def _echo(request: dict) -> str:
    content = request["messages"][-1]["content"]
    return content if isinstance(content, str) else "\n".join(p["text"] for p in content)


def _sdk(request: dict) -> dict:
    """The request as SDK arguments: extensions (include_reasoning) go in extra_body."""
    known = {k: v for k, v in request.items() if k != "include_reasoning"}
    if "include_reasoning" in request:
        known["extra_body"] = {"include_reasoning": request["include_reasoning"]}
    return known


def _calls_of(chunks) -> list[tuple[str, dict]]:
    """The streamed tool calls: the first delta of each index names it, the rest are argument
    fragments (the stream rules check the shape; this reads what a client would build)."""
    calls: dict[int, list] = {}
    for chunk in chunks:
        for delta in (chunk.choices[0].delta.tool_calls or []) if chunk.choices else []:
            call = calls.setdefault(delta.index, [delta.function.name, ""])
            call[1] += delta.function.arguments or ""
    return [(name, json.loads(arguments)) for _, (name, arguments) in sorted(calls.items())]


def _stream_args(request: dict, include_usage: bool) -> dict:
    extra = {"stream_options": {"include_usage": True}} if include_usage else {}
    return {**_sdk(request), "stream": True, **extra}


def _raw_stream(client, request: dict, include_usage: bool) -> StreamReport:
    """The stream's bytes, checked against the stream rules; they end with [DONE]."""
    with client.chat.completions.with_streaming_response.create(
            **_stream_args(request, include_usage)) as response:
        assert response.headers["content-type"].startswith("text/event-stream")
        raw = b"".join(response.iter_bytes())
    assert raw.endswith(b"\n\ndata: [DONE]\n\n"), raw[-200:]
    return check_stream(raw, include_usage=include_usage).assert_ok()


def _stream(client, request: dict, include_usage: bool = True, reasoning: list | None = None):
    chunks, text = [], []
    stream = client.chat.completions.create(**_stream_args(request, include_usage))
    try:
        for chunk in stream:
            chunks.append(chunk)
            if chunk.choices and chunk.choices[0].delta.content:
                text.append(chunk.choices[0].delta.content)
            if reasoning is not None and chunk.choices \
                    and "reasoning_content" in (chunk.choices[0].delta.model_extra or {}):
                reasoning.append(chunk.choices[0].delta.model_extra["reasoning_content"])
    except openai.APIError as exc:  # an error event after the stream began
        return chunks, "".join(text), exc
    return chunks, "".join(text), None


@pytest.mark.parametrize("mode", ["whole", "stream", "stream_usage"])
@pytest.mark.parametrize("name", NAMES)
def test_entry(name, mode, catalogue, client):
    request = catalogue.entries[name].request
    expected = EXPECTED[name]
    validator = ResponseValidator()
    stream, include_usage = mode != "whole", mode == "stream_usage"

    if isinstance(expected, Refused) or (isinstance(expected, BrokenStream) and not stream):
        with pytest.raises(openai.APIStatusError) as caught:
            if stream:
                _stream(client, request, include_usage)
            else:
                client.chat.completions.create(**_sdk(request))
        error = caught.value
        assert error.status_code == expected.status, error.message
        assert error.code == expected.code
        assert validator.errors("ErrorResponse", error.response.json()) == []
        if isinstance(expected, Refused):
            assert error.type == expected.type
            retry_after = error.response.headers.get("retry-after")
            if isinstance(expected.retry_after, int):  # an epoch: seconds until then
                assert abs(int(retry_after) - (expected.retry_after - time.time())) < 5
            else:
                assert retry_after == expected.retry_after
        return

    if isinstance(expected, BrokenStream):
        chunks, text, error = _stream(client, request, include_usage)
        assert text == expected.partial
        assert isinstance(error, openai.APIError) and error.code == expected.code
        assert all(c.choices[0].finish_reason is None for c in chunks if c.choices)
        raw = _raw_stream(client, request, include_usage)
        assert raw.text == expected.partial and raw.error["code"] == expected.code
        assert raw.usage is None
        return

    if isinstance(expected, (Calls, Declined)):
        return _judge_tool_answer(client, request, expected, stream, include_usage, validator)

    assert isinstance(expected, Answer)
    content = _echo(request) if expected.content is ECHO else expected.content
    prompt_tokens, completion_tokens = expected.usage
    if stream:
        pieces: list = []
        chunks, text, error = _stream(client, request, include_usage, pieces)
        assert error is None
        # Streamed thinking is a run of deltas, never null ones; none at all when not asked.
        assert "".join(pieces) == (expected.reasoning or "") and None not in pieces
        assert text == content
        finishes = [c.choices[0].finish_reason for c in chunks
                    if c.choices and c.choices[0].finish_reason]
        assert finishes == [expected.finish_reason]
        assert {c.id for c in chunks} == {chunks[0].id}
        assert all(c.model == request["model"] for c in chunks)
        raw = _raw_stream(client, request, include_usage)
        assert raw.text == content and raw.finish_reason == expected.finish_reason
        if not include_usage:
            assert all(c.choices and c.usage is None for c in chunks)
            assert raw.usage is None
            return  # the token counts are checked in the other two modes
        assert chunks[-1].choices == [] and chunks[-1].usage is not None
        usage = chunks[-1].usage
        assert (raw.usage["prompt_tokens"], raw.usage["completion_tokens"]) == expected.usage
    else:
        response = client.chat.completions.with_raw_response.create(**_sdk(request))
        assert validator.errors("CreateChatCompletionResponse", response.http_response.json()) == []
        completion = response.parse()
        message = response.http_response.json()["choices"][0]["message"]
        if expected.reasoning is None:
            assert "reasoning_content" not in message
        else:
            assert message["reasoning_content"] == (expected.reasoning or None)
        assert completion.choices[0].message.content == content
        assert completion.choices[0].message.role == "assistant"
        assert completion.choices[0].finish_reason == expected.finish_reason
        assert completion.model == request["model"]
        usage = completion.usage
    assert (usage.prompt_tokens, usage.completion_tokens) == (prompt_tokens, completion_tokens)
    assert usage.completion_tokens_details.reasoning_tokens == expected.reasoning_tokens
    assert usage.total_tokens == prompt_tokens + completion_tokens


CONVERSATIONS = [name for name, entry in json.loads(CATALOGUE.read_text(encoding="utf-8"))
                 ["entries"].items() if "turns" in entry]


@pytest.mark.parametrize("name", CONVERSATIONS)
def test_every_turn_of_a_conversation_replays_the_answer_the_next_turn_carries(
        name, catalogue, client):
    """Each turn is its own cassette; what a turn answered is what the client sent back as the
    assistant's message in the next turn (the history a continued process holds)."""
    entry = catalogue.entries[name]
    replayed = []
    for _, request in entry.requests:
        answer = client.chat.completions.create(**request).choices[0].message.content
        replayed.append(answer)
    for i, turn in enumerate(entry.turns[1:], 1):
        if turn.process == "continued":
            assert turn.request["messages"][-2] == {"role": "assistant",
                                                    "content": replayed[i - 1]}
    assert replayed[-1] == EXPECTED[name].content


def _judge_tool_answer(client, request, expected, stream, include_usage, validator) -> None:
    """Tool calls (the client's names, arguments parsed) or a refusal, streamed and not."""
    if stream:
        chunks, text, error = _stream(client, request, include_usage)
        assert error is None
        _raw_stream(client, request, include_usage)  # the stream rules, tool calls included
        calls = _calls_of(chunks)
        refusal = "".join(c.choices[0].delta.refusal or "" for c in chunks if c.choices)
        finishes = [c.choices[0].finish_reason for c in chunks
                    if c.choices and c.choices[0].finish_reason]
        usage = chunks[-1].usage if include_usage else None
    else:
        response = client.chat.completions.with_raw_response.create(**_sdk(request))
        assert validator.errors("CreateChatCompletionResponse",
                                response.http_response.json()) == []
        message = response.parse().choices[0].message
        text = message.content or ""
        calls = [(c.function.name, json.loads(c.function.arguments))
                 for c in message.tool_calls or []]
        assert len({c.id for c in message.tool_calls or []}) == len(calls)
        refusal = message.refusal or ""
        finishes = [response.parse().choices[0].finish_reason]
        usage = response.parse().usage
    if isinstance(expected, Calls):
        assert (text, calls) == (expected.content or "", list(expected.calls))
        assert refusal == ""
    else:
        assert (text, calls, refusal) == ("", [], expected.refusal)
    assert finishes == [expected.finish_reason]
    if usage is not None:
        assert (usage.prompt_tokens, usage.completion_tokens) == expected.usage
