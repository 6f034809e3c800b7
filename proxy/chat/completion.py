"""Serialises completions in OpenAI's wire format: the `chat.completion` object and the chunks.

Streaming and non-streaming are built from the same text pieces by the same `StopScanner`, so
the streamed deltas joined are, by construction, the non-streamed content.
"""

from __future__ import annotations

import secrets
import time
from dataclasses import dataclass
from typing import Any, Sequence

from proxy.claude.events import Usage


def new_completion_id() -> str:
    return "chatcmpl-" + secrets.token_urlsafe(21).replace("-", "a").replace("_", "b")


def usage_object(usage: Usage) -> dict[str, Any]:
    return {
        "prompt_tokens": usage.prompt_tokens,
        "completion_tokens": usage.output_tokens,
        "total_tokens": usage.prompt_tokens + usage.output_tokens,
        "prompt_tokens_details": {"cached_tokens": usage.cache_read_input_tokens,
                                  "audio_tokens": 0},
        "completion_tokens_details": {"reasoning_tokens": usage.reasoning_tokens,
                                      "audio_tokens": 0,
                                      "accepted_prediction_tokens": 0,
                                      "rejected_prediction_tokens": 0},
    }


class StopScanner:
    """Applies OpenAI `stop` sequences to text that arrives in pieces.

    Text that might be the start of a stop sequence is held back until the next piece decides;
    at a match, everything from the match on is dropped and the scanner reports a stop.
    """

    def __init__(self, stops: Sequence[str] = ()) -> None:
        self.stops = [s for s in stops if s]
        self.stopped = False
        self._held = ""

    def feed(self, text: str) -> str:
        if self.stopped:
            return ""
        if not self.stops:
            return text
        buffer = self._held + text
        cut = min((i for i in (buffer.find(s) for s in self.stops) if i >= 0), default=-1)
        if cut >= 0:
            self.stopped = True
            self._held = ""
            return buffer[:cut]
        keep = 0
        for stop in self.stops:
            for n in range(min(len(stop) - 1, len(buffer)), 0, -1):
                if buffer.endswith(stop[:n]):
                    keep = max(keep, n)
                    break
        self._held = buffer[len(buffer) - keep:] if keep else ""
        return buffer[:len(buffer) - keep] if keep else buffer

    def flush(self) -> str:
        held, self._held = self._held, ""
        return "" if self.stopped else held


@dataclass
class CompletionIdentity:
    """What every chunk of one completion shares."""
    id: str
    created: int
    model: str

    @classmethod
    def new(cls, model: str) -> "CompletionIdentity":
        return cls(new_completion_id(), int(time.time()), model)


class ChunkFactory:
    def __init__(self, identity: CompletionIdentity, include_usage: bool) -> None:
        self.identity = identity
        self.include_usage = include_usage

    def _chunk(self, choices: list[dict[str, Any]], usage: Any = None) -> dict[str, Any]:
        chunk: dict[str, Any] = {"id": self.identity.id, "object": "chat.completion.chunk",
                                 "created": self.identity.created, "model": self.identity.model,
                                 "choices": choices}
        if self.include_usage:
            chunk["usage"] = usage  # null on every chunk but the last one, as OpenAI does
        return chunk

    @staticmethod
    def _choice(delta: dict[str, Any], finish_reason: str | None = None) -> dict[str, Any]:
        return {"index": 0, "delta": delta, "logprobs": None, "finish_reason": finish_reason}

    def role(self) -> dict[str, Any]:
        return self._chunk([self._choice({"role": "assistant", "content": "", "refusal": None})])

    def content(self, text: str) -> dict[str, Any]:
        return self._chunk([self._choice({"content": text})])

    def tool_call(self, index: int, call: dict[str, Any]) -> dict[str, Any]:
        """A call's first delta: index, id, type and name (and, for a custom tool, its input)."""
        return self._chunk([self._choice({"tool_calls": [{"index": index, **call}]})])

    def tool_arguments(self, index: int, piece: str) -> dict[str, Any]:
        return self._chunk([self._choice({"tool_calls": [
            {"index": index, "function": {"arguments": piece}}]})])

    def function_call(self, delta: dict[str, Any]) -> dict[str, Any]:
        """Legacy `functions`: the one call, as `delta.function_call`."""
        return self._chunk([self._choice({"function_call": delta})])

    def refusal(self, text: str) -> dict[str, Any]:
        return self._chunk([self._choice({"refusal": text})])

    def reasoning(self, text: str) -> dict[str, Any]:
        """Thinking, for a client that asked (`reasoning_content`, as vLLM and DeepSeek send it)."""
        return self._chunk([self._choice({"reasoning_content": text})])

    def finish(self, finish_reason: str) -> dict[str, Any]:
        return self._chunk([self._choice({}, finish_reason)])

    def usage(self, usage: Usage) -> dict[str, Any]:
        return self._chunk([], usage_object(usage))


def tool_call_object(call: "Call") -> dict[str, Any]:
    """A call as `message.tool_calls[]` has it."""
    if call.kind == "custom":
        return {"id": call.id, "type": "custom",
                "custom": {"name": call.name, "input": call.custom_input()}}
    return {"id": call.id, "type": "function",
            "function": {"name": call.name, "arguments": call.arguments or "{}"}}


@dataclass
class Call:
    """A tool call of the answer, as it arrives."""
    id: str
    name: str
    kind: str = "function"
    arguments: str = ""

    def custom_input(self) -> str:
        import json
        try:
            value = json.loads(self.arguments or "{}")
        except ValueError:
            return self.arguments
        return value.get("input", "") if isinstance(value, dict) else self.arguments


def completion_object(identity: CompletionIdentity, text: str, finish_reason: str,
                      usage: Usage, calls: Sequence[Call] = (),
                      legacy: bool = False, refusal: str | None = None,
                      reasoning: str | None = None) -> dict[str, Any]:
    """`reasoning`: the thinking for a client that asked to see it ("" when there was none,
    given as null); None when it did not ask, and then the message has no such field."""
    message: dict[str, Any] = {"role": "assistant", "content": text, "refusal": None,
                               "annotations": []}
    if reasoning is not None:
        message["reasoning_content"] = reasoning or None
    if refusal is not None:  # the model declined the requested format
        message["content"], message["refusal"] = None, refusal
    if calls:
        message["content"] = text or None
        if legacy:
            message["function_call"] = {"name": calls[0].name,
                                        "arguments": calls[0].arguments or "{}"}
        else:
            message["tool_calls"] = [tool_call_object(c) for c in calls]
    return {
        "id": identity.id,
        "object": "chat.completion",
        "created": identity.created,
        "model": identity.model,
        "choices": [{
            "index": 0,
            "message": message,
            "logprobs": None,
            "finish_reason": finish_reason,
        }],
        "usage": usage_object(usage),
    }
