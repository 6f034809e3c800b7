"""Sample wire objects shared by the contract tests (official shapes, as OpenAI sends them)."""

from __future__ import annotations

import copy
from typing import Any

USER = {"role": "user", "content": "Say hello."}


def request(**fields: Any) -> dict[str, Any]:
    body = {"model": "sonnet", "messages": [dict(USER)]}
    body.update(fields)
    return body


COMPLETION: dict[str, Any] = {
    "id": "chatcmpl-123",
    "object": "chat.completion",
    "created": 1_760_000_000,
    "model": "sonnet",
    "choices": [{
        "index": 0,
        "message": {"role": "assistant", "content": "Hello!", "refusal": None, "annotations": []},
        "logprobs": None,
        "finish_reason": "stop",
    }],
    "usage": {
        "prompt_tokens": 9, "completion_tokens": 3, "total_tokens": 12,
        "prompt_tokens_details": {"cached_tokens": 0, "audio_tokens": 0},
        "completion_tokens_details": {"reasoning_tokens": 0, "audio_tokens": 0,
                                      "accepted_prediction_tokens": 0,
                                      "rejected_prediction_tokens": 0},
    },
    "service_tier": "default",
    "system_fingerprint": "fp_1",
}

TOOL_COMPLETION: dict[str, Any] = {
    **COMPLETION,
    "choices": [{
        "index": 0,
        "message": {"role": "assistant", "content": None, "refusal": None, "tool_calls": [
            {"id": "call_1", "type": "function",
             "function": {"name": "get_weather", "arguments": "{\"city\": \"Paris\"}"}}]},
        "logprobs": None,
        "finish_reason": "tool_calls",
    }],
}

FIRST_CHUNK: dict[str, Any] = {
    "id": "chatcmpl-123", "object": "chat.completion.chunk", "created": 1_760_000_000,
    "model": "sonnet",
    "choices": [{"index": 0, "delta": {"role": "assistant", "content": "", "refusal": None},
                 "logprobs": None, "finish_reason": None}],
    "usage": None,
}
TOOL_CHUNK: dict[str, Any] = {
    **FIRST_CHUNK,
    "choices": [{"index": 0, "delta": {"tool_calls": [
        {"index": 0, "id": "call_1", "type": "function",
         "function": {"name": "get_weather", "arguments": ""}}]},
        "finish_reason": None}],
}
LAST_CHUNK: dict[str, Any] = {
    **FIRST_CHUNK, "choices": [{"index": 0, "delta": {}, "finish_reason": "stop"}],
}
USAGE_CHUNK: dict[str, Any] = {
    **FIRST_CHUNK, "choices": [],
    "usage": {"prompt_tokens": 9, "completion_tokens": 3, "total_tokens": 12},
}

MODELS: dict[str, Any] = {"object": "list", "data": [
    {"id": "sonnet", "object": "model", "created": 1_747_958_400, "owned_by": "anthropic"},
    {"id": "opus", "object": "model", "created": 1_747_958_400, "owned_by": "anthropic"},
]}

ERROR: dict[str, Any] = {"error": {"message": "The model `x` does not exist.",
                                   "type": "invalid_request_error", "param": "model",
                                   "code": "model_not_found"}}


def changed(obj: dict[str, Any], path: tuple, value: Any = ..., *, delete: bool = False) -> dict:
    """A deep copy of `obj` with the value at `path` replaced (or deleted)."""
    out = copy.deepcopy(obj)
    node = out
    for step in path[:-1]:
        node = node[step]
    if delete:
        del node[path[-1]]
    else:
        node[path[-1]] = value
    return out
