"""Every catalogue entry, replayed through the real server and read with the official SDK,
streamed and not: status, error code, Retry-After, content, finish_reason and usage."""

from __future__ import annotations

import json
import time

import openai
import pytest

from proxy.contract.validation import ResponseValidator
from tests.replay.conftest import CATALOGUE
from tests.replay.expectations import (ECHO, EXPECTED, Answer, BrokenStream, Calls, Declined,
                                      Refused)

NAMES = list(json.loads(CATALOGUE.read_text(encoding="utf-8"))["entries"])


def test_every_catalogue_entry_has_an_expectation(catalogue):
    assert set(EXPECTED) == set(catalogue.entries)


def _echo(request: dict) -> str:
    content = request["messages"][-1]["content"]
    return content if isinstance(content, str) else "\n".join(p["text"] for p in content)


def _calls_of(chunks) -> list[tuple[str, dict]]:
    """The streamed tool calls: the first delta of each index names it, the rest are argument
    fragments (the stream rules check the shape; this reads what a client would build)."""
    calls: dict[int, list] = {}
    for chunk in chunks:
        for delta in (chunk.choices[0].delta.tool_calls or []) if chunk.choices else []:
            call = calls.setdefault(delta.index, [delta.function.name, ""])
            call[1] += delta.function.arguments or ""
    return [(name, json.loads(arguments)) for _, (name, arguments) in sorted(calls.items())]


def _stream(client, request: dict):
    chunks, text = [], []
    stream = client.chat.completions.create(**request, stream=True,
                                            stream_options={"include_usage": True})
    try:
        for chunk in stream:
            chunks.append(chunk)
            if chunk.choices and chunk.choices[0].delta.content:
                text.append(chunk.choices[0].delta.content)
    except openai.APIError as exc:  # an error event after the stream began
        return chunks, "".join(text), exc
    return chunks, "".join(text), None


@pytest.mark.parametrize("stream", [False, True], ids=["whole", "stream"])
@pytest.mark.parametrize("name", NAMES)
def test_entry(name, stream, catalogue, client):
    request = catalogue.entries[name].request
    expected = EXPECTED[name]
    validator = ResponseValidator()

    if isinstance(expected, Refused) or (isinstance(expected, BrokenStream) and not stream):
        with pytest.raises(openai.APIStatusError) as caught:
            if stream:
                _stream(client, request)
            else:
                client.chat.completions.create(**request)
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
        chunks, text, error = _stream(client, request)
        assert text == expected.partial
        assert isinstance(error, openai.APIError) and error.code == expected.code
        assert all(c.choices[0].finish_reason is None for c in chunks if c.choices)
        return

    if isinstance(expected, (Calls, Declined)):
        return _judge_tool_answer(client, request, expected, stream, validator)

    assert isinstance(expected, Answer)
    content = _echo(request) if expected.content is ECHO else expected.content
    prompt_tokens, completion_tokens = expected.usage
    if stream:
        chunks, text, error = _stream(client, request)
        assert error is None
        assert text == content
        finishes = [c.choices[0].finish_reason for c in chunks
                    if c.choices and c.choices[0].finish_reason]
        assert finishes == [expected.finish_reason]
        assert chunks[-1].choices == [] and chunks[-1].usage is not None
        usage = chunks[-1].usage
        assert {c.id for c in chunks} == {chunks[0].id}
        assert all(c.model == request["model"] for c in chunks)
    else:
        response = client.chat.completions.with_raw_response.create(**request)
        assert validator.errors("CreateChatCompletionResponse", response.http_response.json()) == []
        completion = response.parse()
        assert completion.choices[0].message.content == content
        assert completion.choices[0].message.role == "assistant"
        assert completion.choices[0].finish_reason == expected.finish_reason
        assert completion.model == request["model"]
        usage = completion.usage
    assert (usage.prompt_tokens, usage.completion_tokens) == (prompt_tokens, completion_tokens)
    assert usage.total_tokens == prompt_tokens + completion_tokens


def _judge_tool_answer(client, request, expected, stream, validator) -> None:
    """Tool calls (the client's names, arguments parsed) or a refusal, streamed and not."""
    if stream:
        chunks, text, error = _stream(client, request)
        assert error is None
        calls = _calls_of(chunks)
        refusal = "".join(c.choices[0].delta.refusal or "" for c in chunks if c.choices)
        finishes = [c.choices[0].finish_reason for c in chunks
                    if c.choices and c.choices[0].finish_reason]
        usage = chunks[-1].usage
    else:
        response = client.chat.completions.with_raw_response.create(**request)
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
    assert (usage.prompt_tokens, usage.completion_tokens) == expected.usage
