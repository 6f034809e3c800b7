"""The chat backend's events -> a Responses response object, its output items and its stream.

One `ResponseWriter` serves both forms: a stream sends every event it returns, a plain request
ignores them and sends the final object, so the two always carry the same output.

The event sequence, for an answer with text and then two calls:

    response.created, response.in_progress                 (status in_progress, output [])
    response.output_item.added        message (in_progress)
    response.content_part.added       output_text ""
    response.output_text.delta ...
    response.output_text.done, response.content_part.done, response.output_item.done
    response.output_item.added        function_call (in_progress, arguments "")
    response.function_call_arguments.delta ...
    response.function_call_arguments.done, response.output_item.done
    (the second call likewise)
    response.completed | response.incomplete | response.failed   (the whole response object)

Every event has `type` and `sequence_number` (from 0, one stream's own); nothing else is ever
sent. A call's `call_id` is Claude's `toolu_...` id, so the client's next request names it as
the kept CLI process holds it. `max_output_tokens` exhausted is `response.incomplete` with
`incomplete_details.reason` `max_output_tokens`; a failure after the first event is
`response.failed`, its `error.code` one of the spec's (`server_error`, `rate_limit_exceeded`,
an image code) and the proxy's own code in the message.

Reasoning (proxy/responses/reasoning.py), before the message and calls of its API message:

    response.output_item.added        reasoning (in_progress, summary [])
    response.reasoning_summary_part.added    summary_text ""        (shown: reasoning.summary)
    response.reasoning_summary_text.delta ...
    response.reasoning_summary_text.done, response.reasoning_summary_part.done
    response.output_item.done         reasoning (completed; encrypted_content when included)

One item per thinking block, done when the block is whole (its signature came), so that
`encrypted_content` can carry it. Without `reasoning.summary` nothing is shown; with
`include: ["reasoning.encrypted_content"]` alone the item has `summary: []`. Neither asked: no
reasoning item. A block cut short (a failure, a limit) closes `incomplete`, without
encrypted_content (it has no signature).
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from typing import Any, Callable

from proxy.claude.events import (Failed, Finished, ReasoningDelta, Refusal, Revision, TextDelta,
                                 ThinkingBlock, ToolCallArguments, ToolCallEnd, ToolCallStart,
                                 Usage)
from proxy.errors import ProxyError
from proxy.responses.items import new_id
from proxy.responses.reasoning import Settings
from proxy.responses.tools import ToolNames

# Seals a thinking block (and its API message's id and model) into encrypted_content; None
# when the block is too large to seal.
Sealer = Callable[[dict[str, Any], tuple[tuple[str, str], ...]], "str | None"]

# The proxy's error codes -> the spec's ResponseErrorCode (a closed enum).
_ERROR_CODES = {
    "rate_limit_exceeded": "rate_limit_exceeded", "usage_limit_reached": "rate_limit_exceeded",
    "insufficient_quota": "rate_limit_exceeded",
    "invalid_image_url": "invalid_image_url", "invalid_image_format": "invalid_image_format",
}

INTERRUPTED = ProxyError(502, "The upstream stream broke mid-answer and Claude's new answer does "
                              "not continue the text already sent; retry the request.",
                         code="upstream_stream_interrupted")


def usage_object(usage: Usage) -> dict[str, Any]:
    return {
        "input_tokens": usage.prompt_tokens,
        "input_tokens_details": {"cached_tokens": usage.cache_read_input_tokens,
                                 "cache_write_tokens": usage.cache_creation_input_tokens},
        "output_tokens": usage.output_tokens,
        "output_tokens_details": {"reasoning_tokens": usage.reasoning_tokens},
        "total_tokens": usage.prompt_tokens + usage.output_tokens,
    }


def error_object(error: ProxyError) -> dict[str, Any]:
    code = _ERROR_CODES.get(error.code or "", "server_error")
    return {"code": code, "message": f"{error.message} ({error.code})" if error.code else
            error.message}


@dataclass
class ResponseState:
    """One response: what it echoes of the request, and what it has produced so far."""
    id: str
    model: str
    echo: dict[str, Any]                   # the request fields the object repeats
    created_at: int = field(default_factory=lambda: int(time.time()))
    status: str = "in_progress"
    output: list[dict[str, Any]] = field(default_factory=list)
    usage: Usage | None = None
    error: dict[str, Any] | None = None
    incomplete: str | None = None          # incomplete_details.reason
    completed_at: int | None = None

    def object(self) -> dict[str, Any]:
        """The response object, as the spec's `Response` has it."""
        out: dict[str, Any] = {
            "id": self.id, "object": "response", "created_at": self.created_at,
            "status": self.status, "completed_at": self.completed_at,
            "error": self.error,
            "incomplete_details": {"reason": self.incomplete} if self.incomplete else None,
            "model": self.model, "output": [dict(item) for item in self.output],
        }
        out.update(self.echo)
        if self.usage is not None:
            out["usage"] = usage_object(self.usage)
        return out


class ResponseWriter:
    """Feeds on the chat backend's events; returns the stream events each one means."""

    def __init__(self, state: ResponseState, names: ToolNames, *, one_call: bool = False,
                 streaming: bool = True, reasoning: Settings = Settings(),
                 seal: Sealer | None = None) -> None:
        self.state = state
        self.names = names
        self.one_call = one_call        # parallel_tool_calls false: the first call only
        self.streaming = streaming      # a stream cannot withdraw text (a Revision fails it)
        self.reasoning = reasoning      # what the request asked of the thinking
        self.seal = seal if reasoning.sealed else None
        self._thought: int | None = None          # output index of the open reasoning item
        self._sequence = 0
        self._message: int | None = None          # output index of the open message item
        self._part_kind: str | None = None        # its open content part: output_text | refusal
        self._calls: dict[int, int] = {}          # chat call index -> output index
        self.finished: Finished | None = None
        self.error: ProxyError | None = None
        self.text: list[str] = []                 # every text delta (logging)

    # -- the stream ---------------------------------------------------------------------------
    def _event(self, kind: str, **fields: Any) -> dict[str, Any]:
        event = {"type": kind, **fields, "sequence_number": self._sequence}
        self._sequence += 1
        return event

    def begin(self) -> list[dict[str, Any]]:
        snapshot = self.state.object()
        return [self._event("response.created", response=snapshot),
                self._event("response.in_progress", response=snapshot)]

    @property
    def done(self) -> bool:
        return self.state.status != "in_progress"

    def feed(self, event: Any) -> list[dict[str, Any]]:
        if self.done:
            return []
        if isinstance(event, TextDelta):
            return self._text(event.text)
        if isinstance(event, Refusal):
            return self._refusal(event.text)
        if isinstance(event, ToolCallStart):
            return self._call_start(event)
        if isinstance(event, ToolCallArguments):
            return self._call_arguments(event)
        if isinstance(event, ToolCallEnd):
            return self._call_end(event)
        if isinstance(event, ReasoningDelta):
            return self._reasoning(event) if self.reasoning.show else []
        if isinstance(event, ThinkingBlock):
            return self._thinking_done(event)
        if isinstance(event, Revision):
            if self.streaming:
                return self.fail(event.error or INTERRUPTED)
            self._revise(event)
            return []
        if isinstance(event, Finished):
            return self.finish(event)
        if isinstance(event, Failed):
            return self.fail(event.error)
        return []

    def finish(self, finished: Finished) -> list[dict[str, Any]]:
        self.finished = finished
        reason = {"length": "max_output_tokens", "content_filter": "content_filter"}.get(
            finished.finish_reason)
        events = self._close_all("incomplete" if reason else "completed")
        state = self.state
        state.usage = finished.usage
        state.completed_at = int(time.time())
        if reason:
            state.status, state.incomplete = "incomplete", reason
            return events + [self._event("response.incomplete", response=state.object())]
        state.status = "completed"
        return events + [self._event("response.completed", response=state.object())]

    def fail(self, error: ProxyError) -> list[dict[str, Any]]:
        self.error = error
        events = self._close_all("incomplete")
        self.state.status = "failed"
        self.state.error = error_object(error)
        return events + [self._event("response.failed", response=self.state.object())]

    def cancel(self) -> None:
        """The client left: the response ends here (nothing is sent any more)."""
        if not self.done:
            self._close_all("incomplete")
            self.state.status = "cancelled"

    # -- items ------------------------------------------------------------------------------
    def _open_message(self) -> list[dict[str, Any]]:
        if self._message is not None:
            return []
        events = self._close_reasoning("completed")  # never open: the block ends first
        item = {"id": new_id("msg"), "type": "message", "status": "in_progress",
                "content": [], "role": "assistant"}
        self.state.output.append(item)
        self._message = len(self.state.output) - 1
        return events + [self._event("response.output_item.added", output_index=self._message,
                                     item=_copy(item))]

    def _open_part(self, kind: str) -> list[dict[str, Any]]:
        events = self._open_message()
        if self._part_kind == kind:
            return events
        events += self._close_part()
        item = self.state.output[self._message]
        part = {"type": "output_text", "text": "", "annotations": [], "logprobs": []} \
            if kind == "output_text" else {"type": "refusal", "refusal": ""}
        item["content"].append(part)
        self._part_kind = kind
        return events + [self._event("response.content_part.added", item_id=item["id"],
                                     output_index=self._message,
                                     content_index=len(item["content"]) - 1, part=dict(part))]

    def _text(self, text: str) -> list[dict[str, Any]]:
        if not text:
            return []
        events = self._open_part("output_text")
        item = self.state.output[self._message]
        item["content"][-1]["text"] += text
        self.text.append(text)
        return events + [self._event("response.output_text.delta", item_id=item["id"],
                                     output_index=self._message,
                                     content_index=len(item["content"]) - 1, delta=text,
                                     logprobs=[])]

    def _refusal(self, text: str) -> list[dict[str, Any]]:
        events = self._open_part("refusal")
        item = self.state.output[self._message]
        item["content"][-1]["refusal"] += text
        return events + [self._event("response.refusal.delta", item_id=item["id"],
                                     output_index=self._message,
                                     content_index=len(item["content"]) - 1, delta=text)]

    def _close_part(self) -> list[dict[str, Any]]:
        if self._part_kind is None:
            return []
        item = self.state.output[self._message]
        index = len(item["content"]) - 1
        part = item["content"][-1]
        self._part_kind = None
        common = {"item_id": item["id"], "output_index": self._message, "content_index": index}
        if part["type"] == "output_text":
            done = self._event("response.output_text.done", **common, text=part["text"],
                               logprobs=[])
        else:
            done = self._event("response.refusal.done", **common, refusal=part["refusal"])
        return [done, self._event("response.content_part.done", **common, part=dict(part))]

    def _close_message(self, status: str) -> list[dict[str, Any]]:
        if self._message is None:
            return []
        events = self._close_part()
        item = self.state.output[self._message]
        item["status"] = status
        index, self._message = self._message, None
        return events + [self._event("response.output_item.done", output_index=index,
                                     item=_copy(item))]

    def _call_start(self, event: ToolCallStart) -> list[dict[str, Any]]:
        if self.one_call and event.index != 0:
            return []
        events = self._close_reasoning("completed") + self._close_message("completed")
        namespace, name = self.names.client(event.name)
        if event.kind == "custom":
            item: dict[str, Any] = {"id": new_id("ctc"), "type": "custom_tool_call",
                                    "call_id": event.id, "name": name, "input": ""}
        else:
            item = {"id": new_id("fc"), "type": "function_call", "status": "in_progress",
                    "call_id": event.id, "name": name, "arguments": ""}
        if namespace is not None:
            item["namespace"] = namespace
        self.state.output.append(item)
        self._calls[event.index] = len(self.state.output) - 1
        return events + [self._event("response.output_item.added",
                                     output_index=self._calls[event.index], item=_copy(item))]

    def _call_arguments(self, event: ToolCallArguments) -> list[dict[str, Any]]:
        index = self._calls.get(event.index)
        if index is None:
            return []
        item = self.state.output[index]
        if item["type"] == "custom_tool_call":
            return []  # a custom tool's input is sent whole at the end (it arrives as JSON)
        item["arguments"] += event.json
        return [self._event("response.function_call_arguments.delta", item_id=item["id"],
                            output_index=index, delta=event.json)]

    def _call_end(self, event: ToolCallEnd) -> list[dict[str, Any]]:
        index = self._calls.pop(event.index, None)
        if index is None:
            return []
        item = self.state.output[index]
        if item["type"] == "custom_tool_call":
            from proxy.chat.completion import Call
            item["input"] = Call("", "", "custom", event.arguments).custom_input()
            events = []
            if item["input"]:
                events.append(self._event("response.custom_tool_call_input.delta",
                                          item_id=item["id"], output_index=index,
                                          delta=item["input"]))
            return events + [
                self._event("response.custom_tool_call_input.done", item_id=item["id"],
                            output_index=index, input=item["input"]),
                self._event("response.output_item.done", output_index=index, item=_copy(item))]
        item["arguments"] = event.arguments or "{}"
        item["status"] = "completed"
        return [self._event("response.function_call_arguments.done", item_id=item["id"],
                            name=item["name"], output_index=index, arguments=item["arguments"]),
                self._event("response.output_item.done", output_index=index, item=_copy(item))]

    # -- reasoning ----------------------------------------------------------------------------
    def _open_reasoning(self) -> list[dict[str, Any]]:
        # Thinking begins an API message's answer; after text (a later model call of the same
        # turn) it is a new item, and so is the text after it.
        events = self._close_message("completed")
        item = {"id": new_id("rs"), "type": "reasoning", "summary": [], "status": "in_progress"}
        self.state.output.append(item)
        self._thought = len(self.state.output) - 1
        return events + [self._event("response.output_item.added", output_index=self._thought,
                                     item=_copy(item))]

    def _reasoning(self, event: ReasoningDelta) -> list[dict[str, Any]]:
        text = event.text
        events: list[dict[str, Any]] = []
        if self._thought is None:
            events += self._open_reasoning()
            text = text[len(event.separator):]   # the blank line joined it to an earlier item
        item = self.state.output[self._thought]
        common = {"item_id": item["id"], "output_index": self._thought}
        if not item["summary"]:
            item["summary"].append({"type": "summary_text", "text": ""})
            events.append(self._event("response.reasoning_summary_part.added", **common,
                                      summary_index=0,
                                      part={"type": "summary_text", "text": ""}))
        if not text:
            return events
        item["summary"][-1]["text"] += text
        return events + [self._event("response.reasoning_summary_text.delta", **common,
                                     summary_index=len(item["summary"]) - 1, delta=text)]

    def _thinking_done(self, event: ThinkingBlock) -> list[dict[str, Any]]:
        """A thinking block is whole: its item is done (and sealed, when asked)."""
        events: list[dict[str, Any]] = []
        if self._thought is None:
            if self.seal is None:
                return []   # nothing shown, nothing to carry: no item
            events += self._open_reasoning()
        item = self.state.output[self._thought]
        token = self.seal(event.block, event.message) if self.seal is not None else None
        if token is not None:
            item["encrypted_content"] = token
        return events + self._close_reasoning("completed")

    def _close_reasoning(self, status: str) -> list[dict[str, Any]]:
        if self._thought is None:
            return []
        index, self._thought = self._thought, None
        item = self.state.output[index]
        events = []
        if item["summary"]:
            common = {"item_id": item["id"], "output_index": index,
                      "summary_index": len(item["summary"]) - 1}
            part = dict(item["summary"][-1])
            cut = {"status": "incomplete"} if status != "completed" else {}
            events += [self._event("response.reasoning_summary_text.done", **common,
                                   text=part["text"]),
                       self._event("response.reasoning_summary_part.done", **common, **cut,
                                   part=part)]
        item["status"] = status
        return events + [self._event("response.output_item.done", output_index=index,
                                     item=_copy(item))]

    def _close_all(self, status: str) -> list[dict[str, Any]]:
        events = self._close_reasoning(status) + self._close_message(status)
        for index in list(self._calls.values()):   # calls cut short (a failure, a limit)
            item = self.state.output[index]
            if item["type"] == "function_call":
                item["status"] = "incomplete"
            events.append(self._event("response.output_item.done", output_index=index,
                                      item=_copy(item)))
        self._calls.clear()
        return events

    def _revise(self, revision: Revision) -> None:
        """A buffered answer takes the CLI's retry: drop the withdrawn text, add the new."""
        drop = revision.drop
        for item in reversed(self.state.output):
            if item["type"] != "message" or drop <= 0:
                continue
            for part in reversed(item["content"]):
                if part["type"] == "output_text" and drop > 0:
                    cut = min(drop, len(part["text"]))
                    part["text"] = part["text"][:len(part["text"]) - cut]
                    drop -= cut
        self._text(revision.text)


def _copy(item: dict[str, Any]) -> dict[str, Any]:
    copied = dict(item)
    for key in ("content", "summary"):
        if key in copied:
            copied[key] = [dict(part) for part in copied[key]]
    return copied
