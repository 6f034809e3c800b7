"""POST /v1/chat/completions: validated request in, chat.completion or SSE chunks out.

The HTTP status stays honest for streams: the response is held until the upstream has begun
answering (or failed), so an early failure is a real 4xx/5xx; a failure after that becomes an
SSE error event followed by a clean end of the stream. If the upstream stays silent for
`commit_after` seconds the stream is committed anyway so heartbeats can keep the client alive.
"""

from __future__ import annotations

import time
from itertools import chain
from typing import Any, Callable, Iterator

import falcon

from proxy.chat.completion import (Call, ChunkFactory, CompletionIdentity, StopScanner,
                                   completion_object)
from proxy.claude.events import (Activity, Failed, Finished, ReasoningDelta, Refusal,
                                 Revision, Started, TextDelta, ToolCallArguments, ToolCallEnd,
                                 ToolCallStart)
from proxy.claude.run import CLIRun, ClientGone, Idle
from proxy.contract.validation import RequestValidator
from proxy.errors import ProxyError
from proxy.http import sse
from proxy.http.body import read_json
from proxy.service import ChatRequest, ChatService


# The CLI re-asked after a broken upstream stream and got a different answer than the part
# already streamed; sent text cannot be withdrawn, so the stream ends with this error.
INTERRUPTED = ProxyError(502, "The upstream stream broke mid-answer and Claude's new answer does "
                              "not continue the text already sent; retry the request.",
                         code="upstream_stream_interrupted")


def _disconnect_probe(req: falcon.Request) -> Callable[[], bool]:
    probe = req.env.get("waitress.client_disconnected")
    return probe if callable(probe) else (lambda: False)


class ChatCompletions:
    def __init__(self, service: ChatService, validator: RequestValidator, *, max_body_bytes: int,
                 heartbeat_interval: float = 15.0) -> None:
        self.service = service
        self.validator = validator
        self.max_body_bytes = max_body_bytes
        self.heartbeat_interval = heartbeat_interval

    def on_post(self, req: falcon.Request, resp: falcon.Response) -> None:
        body = read_json(req, self.max_body_bytes)
        issue = self.validator.validate("CreateChatCompletionRequest", body)
        if issue is not None:
            raise ProxyError(400, issue.message, param=issue.param,
                             code=getattr(issue, "code", None) or "invalid_request")
        chat = self.service.prepare(body, owner=getattr(req.context, "api_key_name", None) or "")
        req.context.model = body["model"]
        req.context.prompt = chat.prompt  # for the request log's opt-in content logging
        identity = CompletionIdentity.new(body["model"])
        try:
            run = self.service.start(chat, _disconnect_probe(req))
        except ClientGone:
            return self._client_gone(req, resp)
        req.context.run = run
        try:
            if chat.stream:
                stream = ChatStream(run, chat, identity, self.heartbeat_interval)
                stream.prime()
                resp.status = falcon.HTTP_200
                resp.content_type = sse.CONTENT_TYPE
                resp.set_headers(sse.HEADERS)
                resp.stream = stream
                req.context.stream = stream
            else:
                resp.media = self._complete(run, chat, identity, req)
        except ClientGone:
            run.close()
            return self._client_gone(req, resp)
        except BaseException:
            run.close()
            raise

    @staticmethod
    def _client_gone(req: falcon.Request, resp: falcon.Response) -> None:
        # Nobody reads this answer; it exists for the request log.
        req.context.error_code = "client_disconnected"
        resp.status = "499 Client Closed Request"
        resp.media = ProxyError(499, "The client closed the request.",
                                code="client_disconnected").body()

    @staticmethod
    def _complete(run: CLIRun, chat: ChatRequest, identity: CompletionIdentity,
                  req: falcon.Request) -> dict[str, Any]:
        raw = ""                      # the answer as the CLI gives it
        scanner = StopScanner(chat.stops)
        kept = ""                     # what the stop sequences leave of it
        finished: Finished | None = None
        calls: list[Call] = []
        refusal: str | None = None
        reasoning = ""                # the thinking, for a client that asked to see it
        for event in run.events():
            if isinstance(event, Refusal):
                refusal = event.text
            elif isinstance(event, ToolCallStart):
                calls.append(Call(event.id, event.name, event.kind))
            elif isinstance(event, ToolCallArguments):
                calls[event.index].arguments += event.json
            elif isinstance(event, ToolCallEnd):
                calls[event.index].arguments = event.arguments
            elif isinstance(event, TextDelta):
                raw += event.text
                kept += scanner.feed(event.text)
            elif isinstance(event, ReasoningDelta):
                reasoning += event.text
            elif isinstance(event, Revision):  # a buffered answer can take the CLI's retry
                raw = raw[:len(raw) - event.drop] + event.text
                scanner = StopScanner(chat.stops)
                kept = scanner.feed(raw)
            elif isinstance(event, Finished):
                kept += scanner.flush()
                finished = event
            elif isinstance(event, Failed):
                raise event.error
            if scanner.stopped:
                finished = Finished("stop", run.translator.partial_usage(kept), "stop_sequence",
                                    cut_short=True)
                break
        run.close()
        if finished is None:  # pragma: no cover - events() always ends in Finished or Failed
            raise ProxyError(502, "The CLI run ended without an outcome.", code="claude_cli_crashed")
        finish_reason = finished.finish_reason
        if finish_reason == "tool_calls" and chat.tools.legacy:
            finish_reason = "function_call"
        req.context.usage = finished.usage
        req.context.finish_reason = finish_reason
        if chat.tools.legacy or not chat.tools.parallel:
            calls = calls[:1]  # one call an answer, as the client asked (README: tools)
        return completion_object(identity, kept, finish_reason, finished.usage,
                                 calls if finished.finish_reason == "tool_calls" else (),
                                 legacy=chat.tools.legacy, refusal=refusal,
                                 reasoning=reasoning if chat.reasoning.show else None)


class ChatStream:
    """The WSGI body of one streamed completion. waitress calls close() in every case (end,
    error, client gone), which ends the CLI run even if iteration never started."""

    def __init__(self, run: CLIRun, chat: ChatRequest, identity: CompletionIdentity,
                 heartbeat_interval: float, commit_after: float | None = None) -> None:
        self.run = run
        self.chat = chat
        self.factory = ChunkFactory(identity, chat.include_usage)
        self.heartbeat_interval = heartbeat_interval
        self.commit_after = heartbeat_interval if commit_after is None else commit_after
        self.scanner = StopScanner(chat.stops)
        self._events = run.events()
        self._primed: list[Any] = []
        self._body: Iterator[bytes] | None = None
        self.finished: Finished | None = None
        self.error: ProxyError | None = None
        self.chunks_sent = 0
        self.text: list[str] = []  # the content sent so far (usage estimate, opt-in logging)
        self.on_close: Callable[["ChatStream"], None] | None = None
        self._closed = False

    def prime(self) -> None:
        """Waits until the answer has begun; raises the run's error if it failed before that."""
        waited_since = time.monotonic()
        for event in self._events:
            if isinstance(event, Failed):
                raise event.error
            if isinstance(event, (Started, TextDelta, Finished, ToolCallStart, Refusal)):
                self._primed.append(event)
                return
            if isinstance(event, Idle) and time.monotonic() - waited_since >= self.commit_after:
                return

    def __iter__(self) -> Iterator[bytes]:
        if self._body is None:
            self._body = self._generate()
        return self._body

    def _generate(self) -> Iterator[bytes]:
        try:
            yield from self._chunks()
        except ClientGone:
            self.error = ProxyError(499, "The client closed the request.",
                                    code="client_disconnected")

    def _chunks(self) -> Iterator[bytes]:
        text = self.text
        last_write = time.monotonic()
        yield sse.event(self.factory.role())
        calls: dict[int, Call] = {}
        for event in chain(self._primed, self._events):
            if isinstance(event, (ToolCallStart, ToolCallArguments, ToolCallEnd)):
                chunk = self._tool_chunk(event, calls)
                if chunk is not None:
                    self.chunks_sent += 1
                    last_write = time.monotonic()
                    yield sse.event(chunk)
            elif isinstance(event, TextDelta):
                piece = self.scanner.feed(event.text)
                if piece:
                    text.append(piece)
                    self.chunks_sent += 1
                    last_write = time.monotonic()
                    yield sse.event(self.factory.content(piece))
                if self.scanner.stopped:
                    self.run.close()
                    yield from self._finish(Finished(
                        "stop", self.run.translator.partial_usage("".join(text)),
                        "stop_sequence", cut_short=True))
                    return
            elif isinstance(event, ReasoningDelta) and self.chat.reasoning.show:
                self.chunks_sent += 1
                last_write = time.monotonic()
                yield sse.event(self.factory.reasoning(event.text))
            elif isinstance(event, Finished):
                tail = self.scanner.flush()
                if tail:
                    text.append(tail)
                    self.chunks_sent += 1
                    yield sse.event(self.factory.content(tail))
                yield from self._finish(event)
                return
            elif isinstance(event, Refusal):
                self.chunks_sent += 1
                last_write = time.monotonic()
                yield sse.event(self.factory.refusal(event.text))
            elif isinstance(event, (Failed, Revision)):
                self.error = event.error if isinstance(event, Failed) else \
                    (event.error or INTERRUPTED)
                yield sse.event(self.error.body())
                yield sse.DONE
                return
            elif isinstance(event, (Idle, Activity)):
                if time.monotonic() - last_write >= self.heartbeat_interval:
                    last_write = time.monotonic()
                    yield sse.HEARTBEAT

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

    def close(self) -> None:
        if self._closed:
            return
        self._closed = True
        try:
            if self._body is not None:
                self._body.close()
            self._events.close()
        finally:
            self.run.close()
            if self.on_close is not None:
                self.on_close(self)
