"""Response validation: our schemas, the official ones, SSE data, and schemathesis on SSE."""

from __future__ import annotations

import json

import pytest
import requests
import schemathesis
from schemathesis.core.failures import FailureGroup
from schemathesis.core.transport import Response

from proxy.contract.official import official_validator
from proxy.contract.validation import validate_response, validate_sse_data
from tests.contract.samples import (
    COMPLETION, ERROR, FIRST_CHUNK, LAST_CHUNK, MODELS, TOOL_CHUNK, TOOL_COMPLETION,
    USAGE_CHUNK, changed,
)

VALID = [
    ("CreateChatCompletionResponse", COMPLETION),
    ("CreateChatCompletionResponse", TOOL_COMPLETION),
    ("CreateChatCompletionResponse", changed(COMPLETION, ("usage",), delete=True)),
    ("CreateChatCompletionStreamResponse", FIRST_CHUNK),
    ("CreateChatCompletionStreamResponse", TOOL_CHUNK),
    ("CreateChatCompletionStreamResponse", LAST_CHUNK),
    ("CreateChatCompletionStreamResponse", USAGE_CHUNK),
    ("ListModelsResponse", MODELS),
    ("ListModelsResponse", {"object": "list", "data": []}),
    ("Model", MODELS["data"][0]),
    ("Model", {**MODELS["data"][0], "context_window": 200_000}),  # extra metadata is allowed
    ("ErrorResponse", ERROR),
    ("ErrorResponse", {"error": {"message": "m", "type": "server_error", "param": None, "code": None}}),
]

# (schema, object, a path the errors must mention)
INVALID = [
    ("CreateChatCompletionResponse", changed(COMPLETION, ("object",), "chat.completion.chunk"), "object"),
    ("CreateChatCompletionResponse", changed(COMPLETION, ("created",), "2025-01-01"), "created"),
    ("CreateChatCompletionResponse", changed(COMPLETION, ("choices", 0, "finish_reason"), None),
     "choices[0].finish_reason"),
    ("CreateChatCompletionResponse", changed(COMPLETION, ("choices", 0, "finish_reason"), "done"),
     "choices[0].finish_reason"),
    ("CreateChatCompletionResponse", changed(COMPLETION, ("choices", 0, "message", "refusal"),
                                             delete=True), "choices[0].message"),
    ("CreateChatCompletionResponse", changed(COMPLETION, ("choices", 0, "logprobs"), delete=True),
     "choices[0]"),
    ("CreateChatCompletionResponse", changed(COMPLETION, ("choices", 0, "message", "role"), "user"),
     "choices[0].message.role"),
    ("CreateChatCompletionResponse", changed(COMPLETION, ("usage", "total_tokens"), delete=True), "usage"),
    ("CreateChatCompletionResponse", changed(TOOL_COMPLETION, (
        "choices", 0, "message", "tool_calls", 0, "function", "arguments"), {"city": "Paris"}),
     "choices[0].message.tool_calls[0]"),
    ("CreateChatCompletionStreamResponse", changed(FIRST_CHUNK, ("object",), "chat.completion"), "object"),
    ("CreateChatCompletionStreamResponse", changed(LAST_CHUNK, ("choices", 0, "finish_reason"), "done"),
     "choices[0].finish_reason"),
    ("CreateChatCompletionStreamResponse", changed(FIRST_CHUNK, ("choices", 0, "delta"), delete=True),
     "choices[0]"),
    ("CreateChatCompletionStreamResponse", changed(TOOL_CHUNK, (
        "choices", 0, "delta", "tool_calls", 0, "index"), delete=True), "choices[0].delta.tool_calls[0]"),
    ("CreateChatCompletionStreamResponse", changed(USAGE_CHUNK, ("usage",), {"prompt_tokens": 1}), "usage"),
    ("ListModelsResponse", {"data": []}, "<root>"),
    ("ListModelsResponse", changed(MODELS, ("data", 1, "created"), delete=True), "data[1]"),
    ("Model", {**MODELS["data"][0], "object": "models"}, "object"),
    ("ErrorResponse", {"error": {"message": "m", "type": "server_error"}}, "error"),
    ("ErrorResponse", {"message": "m"}, "<root>"),
]


@pytest.mark.parametrize("schema, obj", VALID)
def test_valid_responses_pass_ours_and_the_official_schema(schema, obj):
    assert validate_response(schema, obj) == []
    assert [e.message for e in official_validator(schema, "strict").iter_errors(obj)] == []


@pytest.mark.parametrize("schema, obj, where", INVALID)
def test_invalid_responses_fail_ours_and_the_official_schema(schema, obj, where):
    errors = validate_response(schema, obj)
    assert errors and any(e.startswith(where) for e in errors), errors
    assert all(len(e) < 400 for e in errors)
    assert not official_validator(schema, "strict").is_valid(obj)


def test_lenient_profile_accepts_what_real_servers_omit():
    bare = changed(changed(COMPLETION, ("choices", 0, "message", "refusal"), delete=True),
                   ("choices", 0, "logprobs"), delete=True)
    assert not official_validator("CreateChatCompletionResponse", "strict").is_valid(bare)
    assert official_validator("CreateChatCompletionResponse", "lenient").is_valid(bare)
    assert validate_response("CreateChatCompletionResponse", bare)  # our server sends them as null


def test_official_nullable_is_honoured():
    # finish_reason: null is `nullable: true` in the official spec; without the rewrite a
    # 2020-12 validator rejects every intermediate chunk.
    assert official_validator("CreateChatCompletionStreamResponse").is_valid(FIRST_CHUNK)
    assert not official_validator("CreateChatCompletionStreamResponse").is_valid(
        changed(FIRST_CHUNK, ("choices", 0, "finish_reason"), "done"))


# ---------------------------------------------------------------------------- SSE data


@pytest.mark.parametrize("data", [
    "[DONE]",
    json.dumps(FIRST_CHUNK),
    json.dumps(TOOL_CHUNK),
    json.dumps(LAST_CHUNK),
    json.dumps(USAGE_CHUNK),
    json.dumps(ERROR),  # a failure after the stream started
])
def test_sse_data_accepted(data):
    assert validate_sse_data(data) == []


@pytest.mark.parametrize("data, words", [
    ("[done]", "neither [DONE] nor JSON"),
    ("DONE", "neither [DONE] nor JSON"),
    ("", "neither [DONE] nor JSON"),
    ("{\"id\": ", "neither [DONE] nor JSON"),
    (json.dumps(changed(LAST_CHUNK, ("choices", 0, "finish_reason"), "done")), "choices[0].finish_reason"),
    (json.dumps(COMPLETION), "object"),
    (json.dumps({"error": {"message": "m"}}), "error"),
    (json.dumps([FIRST_CHUNK]), "<root>"),
])
def test_sse_data_rejected(data, words):
    errors = validate_sse_data(data)
    assert errors and any(words in e for e in errors), errors


# ---------------------------------------------------------------------------- schemathesis


@pytest.fixture(scope="module")
def chat_operation(doc):
    return schemathesis.openapi.from_dict(doc)["/v1/chat/completions"]["POST"]


def _response(body: bytes, content_type: str) -> Response:
    request = requests.Request("POST", "http://127.0.0.1:3456/v1/chat/completions", json={}).prepare()
    return Response(200, {"content-type": [content_type]}, body, request, 0.01, True)


def _stream(*payloads: object) -> bytes:
    return b"".join(
        b"data: " + (p if isinstance(p, str) else json.dumps(p)).encode() + b"\n\n" for p in payloads)


@pytest.mark.parametrize("body", [
    _stream(FIRST_CHUNK, TOOL_CHUNK, LAST_CHUNK, USAGE_CHUNK, "[DONE]"),
    b": keep-alive\n\n" + _stream(FIRST_CHUNK) + b": keep-alive\n\n" + _stream(LAST_CHUNK, "[DONE]"),
    _stream(FIRST_CHUNK, ERROR),
])
def test_schemathesis_accepts_a_correct_stream(chat_operation, body):
    chat_operation.validate_response(_response(body, "text/event-stream"))


@pytest.mark.parametrize("body", [
    _stream(FIRST_CHUNK, changed(LAST_CHUNK, ("choices", 0, "finish_reason"), "done"), "[DONE]"),
    _stream(changed(FIRST_CHUNK, ("object",), "chat.completion"), "[DONE]"),
    _stream(FIRST_CHUNK, "not json", "[DONE]"),
    _stream(FIRST_CHUNK, {"error": {"message": "no type, param or code"}}),
])
def test_schemathesis_checks_each_sse_event(chat_operation, body):
    with pytest.raises((AssertionError, FailureGroup)) as caught:
        chat_operation.validate_response(_response(body, "text/event-stream"))
    assert "SSE event violates schema" in str(caught.value)


def test_schemathesis_checks_the_json_completion(chat_operation):
    chat_operation.validate_response(_response(json.dumps(COMPLETION).encode(), "application/json"))
    # The official spec's discriminators have no mapping, so schemathesis expects the schema
    # names ("ChatCompletionMessageToolCall") as `type` values and fails every tool call; our
    # document declares none.
    chat_operation.validate_response(_response(json.dumps(TOOL_COMPLETION).encode(), "application/json"))
    with pytest.raises((AssertionError, FailureGroup)):
        chat_operation.validate_response(_response(
            json.dumps(changed(COMPLETION, ("object",), "x")).encode(), "application/json"))


def test_errors_point_into_the_branch_that_was_meant():
    assert validate_response("CreateChatCompletionStreamResponse", changed(
        USAGE_CHUNK, ("usage",), {"prompt_tokens": 1})) == [
        "usage: 'completion_tokens' is a required property"]
    assert validate_response("CreateChatCompletionResponse", changed(
        TOOL_COMPLETION, ("choices", 0, "message", "tool_calls", 0, "type"), "fn")) == [
        "choices[0].message.tool_calls[0].type: 'fn' is not one of ['function', 'custom']"]


READY = {"status": "ready", "mode": "live",
         "cli": {"found": True, "path": "/usr/bin/claude", "version": "2.1.332", "logged_in": None},
         "pool": {"active": 1, "limit": 4}, "queue": {"waiting": 0, "limit": 16, "rejected": 0}}


@pytest.mark.parametrize("schema, obj, ok", [
    ("HealthResponse", {"status": "ok"}, True),
    ("HealthResponse", {"status": "ok", "version": "0.1.0", "concurrency": {"active": 0}}, True),
    ("HealthResponse", {"status": "up"}, False),
    ("HealthResponse", {}, False),
    ("ReadinessResponse", READY, True),
    ("ReadinessResponse", {**READY, "status": "not_ready", "reason": "not logged in",
                           "cli": {"found": True, "logged_in": False}}, True),
    ("ReadinessResponse", {**READY, "status": "maybe"}, False),
    ("ReadinessResponse", {**READY, "cli": {"found": "yes"}}, False),
    ("ReadinessResponse", {**READY, "pool": {"active": -1}}, False),
])
def test_operational_responses(schema, obj, ok):
    assert (validate_response(schema, obj) == []) is ok
