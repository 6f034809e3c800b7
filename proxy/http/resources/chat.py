"""POST /v1/chat/completions: validated request in, chat.completion or SSE chunks out.

The held status, heartbeats and errors before and after the first event are shared with the
other endpoints that run the CLI (proxy/http/answers.py); this module says what a chat answer
looks like: a role chunk first, text and tool call deltas, one finish chunk, the usage chunk.
"""

from __future__ import annotations

from typing import Any, Iterator

import falcon

from proxy.chat.completion import Call, ChunkFactory, CompletionIdentity, completion_object
from proxy.claude.events import Finished, Refusal, ToolCallArguments, ToolCallEnd, ToolCallStart
from proxy.claude.run import CLIRun
from proxy.http import sse
from proxy.http.answers import INTERRUPTED, CLIEndpoint, RunStream, collect, validated_body
from proxy.backend import ChatRequest

__all__ = ["ChatCompletions", "ChatStream", "INTERRUPTED"]


class ChatCompletions(CLIEndpoint):
    def on_post(self, req: falcon.Request, resp: falcon.Response) -> None:
        body = validated_body(req, self.validator, "CreateChatCompletionRequest",
                              self.max_body_bytes)
        chat = self.service.prepare(body, owner=getattr(req.context, "api_key_name", None) or "")
        req.context.model = body["model"]
        req.context.prompt = chat.prompt  # for the request log's opt-in content logging
        identity = CompletionIdentity.new(body["model"])
        self._answer(req, resp, chat, chat.stream,
                     lambda run: ChatStream(run, chat, identity, self.heartbeat_interval),
                     lambda run: self._complete(run, chat, identity, req))

    @staticmethod
    def _complete(run: CLIRun, chat: ChatRequest, identity: CompletionIdentity,
                  req: falcon.Request) -> dict[str, Any]:
        answer = collect(run, chat.stops)
        finished = answer.finished
        finish_reason = finished.finish_reason
        if finish_reason == "tool_calls" and chat.tools.legacy:
            finish_reason = "function_call"
        req.context.usage = finished.usage
        req.context.finish_reason = finish_reason
        calls = answer.calls
        if chat.tools.legacy or not chat.tools.parallel:
            calls = calls[:1]  # one call an answer, as the client asked (README: tools)
        return completion_object(identity, answer.text, finish_reason, finished.usage,
                                 calls if finished.finish_reason == "tool_calls" else (),
                                 legacy=chat.tools.legacy, refusal=answer.refusal,
                                 reasoning=answer.reasoning if chat.reasoning.show else None)


class ChatStream(RunStream):
    """The body of one streamed chat completion: one run."""

    def __init__(self, run: CLIRun, chat: ChatRequest, identity: CompletionIdentity,
                 heartbeat_interval: float, commit_after: float | None = None) -> None:
        super().__init__(run, chat.stops, heartbeat_interval, commit_after)
        self.chat = chat
        self.factory = ChunkFactory(identity, chat.include_usage)
        self._calls: dict[int, Call] = {}

    def _chunks(self) -> Iterator[bytes]:
        yield sse.event(self.factory.role())
        finished = yield from self._run_text(self.run, self._first_run_events())
        if finished is not None:
            yield from self._finish(finished)

    def _text_chunk(self, piece: str) -> dict[str, Any]:
        return self.factory.content(piece)

    def _reasoning_chunk(self, text: str) -> dict[str, Any] | None:
        return self.factory.reasoning(text) if self.chat.reasoning.show else None

    def _other_chunk(self, event: Any) -> dict[str, Any] | None:
        if isinstance(event, Refusal):
            return self.factory.refusal(event.text)
        if isinstance(event, (ToolCallStart, ToolCallArguments, ToolCallEnd)):
            return self._tool_chunk(event, self._calls)
        return None

    def _tool_chunk(self, event: Any, calls: dict[int, Call]) -> dict[str, Any] | None:
        """The chunk for a tool event, as OpenAI streams calls: the first delta of a call has
        its index, id, type and name, then come its argument fragments. Legacy `functions`
        get `delta.function_call` (one call: OpenAI's legacy answer has no more); a custom
        tool's input is one string, sent whole at the end of the call."""
        legacy = self.chat.tools.legacy
        if (legacy or not self.chat.tools.parallel) and event.index != 0:
            return None  # one call an answer, as the client asked (README: tools)
        if isinstance(event, ToolCallStart):
            calls[event.index] = Call(event.id, event.name, event.kind)
            if legacy:
                return self.factory.function_call({"name": event.name, "arguments": ""})
            if event.kind == "custom":
                return None
            return self.factory.tool_call(event.index, {
                "id": event.id, "type": "function",
                "function": {"name": event.name, "arguments": ""}})
        call = calls.get(event.index)
        if call is None:
            return None
        if isinstance(event, ToolCallArguments):
            call.arguments += event.json
            if call.kind == "custom":
                return None
            return self.factory.function_call({"arguments": event.json}) if legacy else \
                self.factory.tool_arguments(event.index, event.json)
        call.arguments = event.arguments
        if call.kind == "custom" and not legacy:
            return self.factory.tool_call(event.index, {
                "id": call.id, "type": "custom",
                "custom": {"name": call.name, "input": call.custom_input()}})
        return None

    def _finish(self, finished: Finished) -> Iterator[bytes]:
        self.finished = finished
        if finished.finish_reason == "tool_calls" and self.chat.tools.legacy:
            finished = Finished("function_call", finished.usage, finished.stop_reason,
                                finished.cut_short)
            self.finished = finished
        yield sse.event(self.factory.finish(finished.finish_reason))
        if self.chat.include_usage:
            yield sse.event(self.factory.usage(finished.usage))
        yield sse.DONE
