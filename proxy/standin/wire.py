"""The Anthropic Messages API wire format: content blocks to SSE events, errors to envelopes.

Pure functions, no I/O: `server.py` writes what these build. Event shapes follow the real API
(and what CLI 2.1.332 was seen to accept): message_start carries the input/cache usage with
`output_tokens: 1`, each block is content_block_start / deltas / content_block_stop, one `ping`
follows the first block start, and message_delta carries stop_reason, stop_sequence and the final
`usage.output_tokens` (plus the cumulative input and cache counts when prompt caching is modelled).
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

Event = tuple[str, dict[str, Any]]  # (SSE event name, JSON data)

ERROR_TYPES = {
    400: "invalid_request_error",
    401: "authentication_error",
    403: "permission_error",
    404: "not_found_error",
    413: "request_too_large",
    429: "rate_limit_error",
    500: "api_error",
    529: "overloaded_error",
}
ERROR_MESSAGES = {
    "invalid_request_error": "Invalid request (stand-in).",
    "authentication_error": "invalid x-api-key",
    "permission_error": "Your API key does not have permission to use the specified resource.",
    "not_found_error": "Not found.",
    "request_too_large": "Request exceeds the maximum allowed number of bytes.",
    "rate_limit_error": "Number of requests has exceeded your rate limit (stand-in).",
    "api_error": "Internal server error",
    "overloaded_error": "Overloaded",
}


@dataclass(frozen=True)
class TextBlock:
    text: str


@dataclass(frozen=True)
class ThinkingBlock:
    thinking: str
    signature: str


@dataclass(frozen=True)
class ToolUseBlock:
    id: str
    name: str
    input: dict[str, Any]


Block = TextBlock | ThinkingBlock | ToolUseBlock


@dataclass(frozen=True)
class Usage:
    input_tokens: int
    cache_creation_input_tokens: int
    cache_read_input_tokens: int
    output_tokens: int
    # From the prompt-cache model: (ephemeral_5m, ephemeral_1h) written tokens. Then the usage
    # also carries `cache_creation`, and message_delta repeats the (cumulative) input counts, as
    # the real API's do. None keeps the fixed-usage shape the recorded fixtures hold.
    cache_creation: tuple[int, int] | None = None
    # usage.output_tokens_details.thinking_tokens at the end of the message; None: not reported.
    thinking_tokens: int | None = None

    def start(self) -> dict[str, Any]:
        """The usage of message_start: output is not known yet, the API reports 1."""
        return {**self._input(), "output_tokens": 1}

    def delta(self) -> dict[str, Any]:
        """The usage of message_delta."""
        if self.cache_creation is None:
            return {"output_tokens": self.output_tokens, **self._details()}
        return {**self._input(), "output_tokens": self.output_tokens, **self._details()}

    def final(self) -> dict[str, Any]:
        """The usage of a whole message (the non-streaming body; what RecordedRequest keeps)."""
        return {**self._input(), "output_tokens": self.output_tokens, **self._details()}

    def _details(self) -> dict[str, Any]:
        if self.thinking_tokens is None:
            return {}
        return {"output_tokens_details": {"thinking_tokens": self.thinking_tokens}}

    def _input(self) -> dict[str, Any]:
        out: dict[str, Any] = {
            "input_tokens": self.input_tokens,
            "cache_creation_input_tokens": self.cache_creation_input_tokens,
            "cache_read_input_tokens": self.cache_read_input_tokens,
        }
        if self.cache_creation is not None:
            out["cache_creation"] = {"ephemeral_5m_input_tokens": self.cache_creation[0],
                                     "ephemeral_1h_input_tokens": self.cache_creation[1]}
        return out


@dataclass(frozen=True)
class Message:
    id: str
    model: str
    content: tuple[Block, ...]
    stop_reason: str
    stop_sequence: str | None
    usage: Usage


def sse_frame(event: str, data: dict[str, Any]) -> bytes:
    """`event: NAME\\ndata: JSON\\n\\n`, the framing the API and the SDK use (compact JSON, one line)."""
    payload = json.dumps(data, ensure_ascii=False, separators=(",", ":"))
    return f"event: {event}\ndata: {payload}\n\n".encode()


def chunks(text: str, size: int) -> list[str]:
    return [text[i : i + size] for i in range(0, len(text), size)]


def stream_events(message: Message, split: int) -> list[Event]:
    """The full SSE event sequence for a message, each delta at most `split` characters."""
    events: list[Event] = [
        (
            "message_start",
            {
                "type": "message_start",
                "message": {
                    "id": message.id,
                    "type": "message",
                    "role": "assistant",
                    "model": message.model,
                    "content": [],
                    "stop_reason": None,
                    "stop_sequence": None,
                    "usage": message.usage.start(),
                },
            },
        )
    ]
    for index, block in enumerate(message.content):
        events.append(("content_block_start", {"type": "content_block_start", "index": index, "content_block": _empty(block)}))
        if index == 0:
            events.append(("ping", {"type": "ping"}))
        for delta in _deltas(block, split):
            events.append(("content_block_delta", {"type": "content_block_delta", "index": index, "delta": delta}))
        events.append(("content_block_stop", {"type": "content_block_stop", "index": index}))
    events.append(
        (
            "message_delta",
            {
                "type": "message_delta",
                "delta": {"stop_reason": message.stop_reason, "stop_sequence": message.stop_sequence},
                "usage": message.usage.delta(),
            },
        )
    )
    events.append(("message_stop", {"type": "message_stop"}))
    return events


def message_json(message: Message) -> dict[str, Any]:
    """The non-streaming response body."""
    return {
        "id": message.id,
        "type": "message",
        "role": "assistant",
        "model": message.model,
        "content": [_full(block) for block in message.content],
        "stop_reason": message.stop_reason,
        "stop_sequence": message.stop_sequence,
        "usage": message.usage.final(),
    }


def error_envelope(status: int, error_type: str | None = None, message: str | None = None) -> dict[str, Any]:
    """`{"type":"error","error":{"type":..., "message":...}}` with the API's type for the status."""
    kind = error_type or ERROR_TYPES.get(status) or ("api_error" if status >= 500 else "invalid_request_error")
    return {"type": "error", "error": {"type": kind, "message": message or ERROR_MESSAGES.get(kind, kind)}}


def _empty(block: Block) -> dict[str, Any]:
    if isinstance(block, TextBlock):
        return {"type": "text", "text": ""}
    if isinstance(block, ThinkingBlock):
        return {"type": "thinking", "thinking": "", "signature": ""}
    return {"type": "tool_use", "id": block.id, "name": block.name, "input": {}}


def _full(block: Block) -> dict[str, Any]:
    if isinstance(block, TextBlock):
        return {"type": "text", "text": block.text}
    if isinstance(block, ThinkingBlock):
        return {"type": "thinking", "thinking": block.thinking, "signature": block.signature}
    return {"type": "tool_use", "id": block.id, "name": block.name, "input": block.input}


def _deltas(block: Block, split: int) -> list[dict[str, Any]]:
    if isinstance(block, TextBlock):
        return [{"type": "text_delta", "text": part} for part in chunks(block.text, split)]
    if isinstance(block, ThinkingBlock):
        parts: list[dict[str, Any]] = [{"type": "thinking_delta", "thinking": p} for p in chunks(block.thinking, split)]
        return parts + [{"type": "signature_delta", "signature": block.signature}]
    # The API streams tool input as fragments of its JSON text.
    text = json.dumps(block.input, ensure_ascii=False)
    return [{"type": "input_json_delta", "partial_json": p} for p in chunks(text, split)]
