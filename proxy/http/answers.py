"""What every endpoint that answers with CLI runs shares: reading and validating the body,
collecting a run's answer, and streaming runs as server-sent events.

The HTTP status stays honest for streams: the response is held until the upstream has begun
answering (or failed), so an early failure is a real 4xx/5xx; a failure after that becomes an
SSE error event followed by a clean end of the stream. If the upstream stays silent for
`commit_after` seconds the stream is committed anyway so heartbeats can keep the client alive.
`RunStream` holds that machinery; chat (proxy/http/resources/chat.py) and legacy completions
(proxy/http/resources/completions.py) only say how an answer's pieces become chunks.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from itertools import chain
from typing import Any, Callable, Generator, Iterator, Sequence

import falcon

from proxy.chat.completion import Call, StopScanner
from proxy.claude.events import (Activity, Failed, Finished, ReasoningDelta, Refusal, Revision,
                                 Started, TextDelta, ToolCallArguments, ToolCallEnd,
                                 ToolCallStart)
from proxy.claude.run import CLIRun, ClientGone, Idle
from proxy.contract.validation import RequestValidator
from proxy.backend import ChatRequest, ChatService
from proxy.errors import ProxyError
from proxy.http import sse
from proxy.http.body import read_json

# The CLI re-asked after a broken upstream stream and got a different answer than the part
# already streamed; sent text cannot be withdrawn, so the stream ends with this error.
INTERRUPTED = ProxyError(502, "The upstream stream broke mid-answer and Claude's new answer does "
                              "not continue the text already sent; retry the request.",
                         code="upstream_stream_interrupted")


def validated_body(req: falcon.Request, validator: RequestValidator, schema: str,
                   max_body_bytes: int) -> dict[str, Any]:
    """The JSON body, valid against the contract's `schema`; else a 4xx in OpenAI's envelope."""
    body = read_json(req, max_body_bytes)
    issue = validator.validate(schema, body)
    if issue is not None:
        raise ProxyError(400, issue.message, param=issue.param,
                         code=getattr(issue, "code", None) or "invalid_request")
    return body


def disconnect_probe(req: falcon.Request) -> Callable[[], bool]:
    probe = req.env.get("waitress.client_disconnected")
    return probe if callable(probe) else (lambda: False)


def client_gone(req: falcon.Request, resp: falcon.Response) -> None:
    # Nobody reads this answer; it exists for the request log.
    req.context.error_code = "client_disconnected"
    resp.status = "499 Client Closed Request"
    resp.media = ProxyError(499, "The client closed the request.",
                            code="client_disconnected").body()


class CLIEndpoint:
    """A resource whose answer is CLI runs: the first run is started here, and its answer
    becomes the streamed body or the JSON the subclass makes of it."""

    def __init__(self, service: ChatService, validator: RequestValidator, *, max_body_bytes: int,
                 heartbeat_interval: float = 15.0) -> None:
        self.service = service
        self.validator = validator
        self.max_body_bytes = max_body_bytes
        self.heartbeat_interval = heartbeat_interval

    def _answer(self, req: falcon.Request, resp: falcon.Response, first: ChatRequest,
                stream: bool, streamed: Callable[[CLIRun], "RunStream"],
                whole: Callable[[CLIRun], dict[str, Any]]) -> None:
        try:
            run = self.service.start(first, disconnect_probe(req))
        except ClientGone:
            return client_gone(req, resp)
        req.context.run = run  # the first run: first-token time in the log and metrics
        try:
            if stream:
                body = streamed(run)
                body.prime()
                resp.status = falcon.HTTP_200
                resp.content_type = sse.CONTENT_TYPE
                resp.set_headers(sse.HEADERS)
                resp.stream = body
                req.context.stream = body
            else:
                resp.media = whole(run)
        except ClientGone:
            run.close()
            return client_gone(req, resp)
        except BaseException:
            run.close()
            raise
        return None


@dataclass
class Collected:
    """A run's whole answer: the text the stop sequences leave, how it ended, its calls."""
    text: str
    finished: Finished
    calls: list[Call] = field(default_factory=list)
    refusal: str | None = None
    reasoning: str = ""   # the thinking, for a client that asked to see it


def collect(run: CLIRun, stops: Sequence[str]) -> Collected:
    """Reads a run to its end (or to a stop sequence); raises the run's error."""
    raw = ""                      # the answer as the CLI gives it
    scanner = StopScanner(stops)
    kept = ""                     # what the stop sequences leave of it
    finished: Finished | None = None
    calls: list[Call] = []
    refusal: str | None = None
    reasoning = ""
    for event in run.events():
        if isinstance(event, Refusal):
            refusal = event.text
        elif isinstance(event, ReasoningDelta):
            reasoning += event.text
        elif isinstance(event, ToolCallStart):
            calls.append(Call(event.id, event.name, event.kind))
        elif isinstance(event, ToolCallArguments):
            calls[event.index].arguments += event.json
        elif isinstance(event, ToolCallEnd):
            calls[event.index].arguments = event.arguments
        elif isinstance(event, TextDelta):
            raw += event.text
            kept += scanner.feed(event.text)
        elif isinstance(event, Revision):  # a buffered answer can take the CLI's retry
            raw = raw[:len(raw) - event.drop] + event.text
            scanner = StopScanner(stops)
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
    return Collected(kept, finished, calls, refusal, reasoning)


class StreamedRun:
    """What the WSGI body of every streamed answer shares: the status held until the answer
    begins (`prime`), the body made on first iteration, the client leaving, and `close()`,
    which waitress calls in every case (end, error, client gone) and which ends the CLI run
    even if iteration never started. Subclasses write `_frames()` (the body),
    `_client_gone()` and, if they keep state of their own, `_run_closed()`."""

    def __init__(self, run: CLIRun, heartbeat_interval: float,
                 commit_after: float | None = None) -> None:
        self.run = run
        self.heartbeat_interval = heartbeat_interval
        self.commit_after = heartbeat_interval if commit_after is None else commit_after
        self._events = run.events()
        self._primed: list[Any] = []
        self._body: Iterator[bytes] | None = None
        self.on_close: Callable[[Any], None] | None = None
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
            yield from self._frames()
        except ClientGone:
            self._client_gone()

    def _frames(self) -> Iterator[bytes]:
        raise NotImplementedError

    def _client_gone(self) -> None:
        raise NotImplementedError

    def _first_run_events(self) -> Iterator[Any]:
        """The first run's events, those prime() already read first."""
        return chain(self._primed, self._events)

    def _run_closed(self) -> None:
        """After the run is closed, before the request log hears of the end."""

    def close(self) -> None:
        if self._closed:
            return
        self._closed = True
        try:
            if self._body is not None:
                self._body.close()
            self._events.close()
        finally:
            try:
                self.run.close()
            finally:
                try:
                    self._run_closed()
                finally:
                    if self.on_close is not None:
                        self.on_close(self)


class RunStream(StreamedRun):
    """The body of a streamed answer in chunks (chat, legacy completions).

    Subclasses write `_chunks()` (the whole body) from `_run_text()` (one run's text, with
    stop sequences, heartbeats and failures handled) and say how a text piece becomes a chunk
    (`_text_chunk`) and what other events send (`_other_chunk`). The request log reads
    `finished`, `error` and `text`, and fills `on_close`."""

    def __init__(self, run: CLIRun, stops: Sequence[str], heartbeat_interval: float,
                 commit_after: float | None = None) -> None:
        super().__init__(run, heartbeat_interval, commit_after)
        self.stops = tuple(stops)
        self._last_write = time.monotonic()
        self.finished: Finished | None = None
        self.error: ProxyError | None = None
        self.chunks_sent = 0
        self.text: list[str] = []  # the content sent so far (usage estimate, opt-in logging)

    def _frames(self) -> Iterator[bytes]:
        self._last_write = time.monotonic()
        yield from self._chunks()

    def _client_gone(self) -> None:
        self.error = ProxyError(499, "The client closed the request.", code="client_disconnected")

    def _chunks(self) -> Iterator[bytes]:
        raise NotImplementedError

    def _text_chunk(self, piece: str) -> dict[str, Any]:
        raise NotImplementedError

    def _other_chunk(self, event: Any) -> dict[str, Any] | None:
        return None

    def _reasoning_chunk(self, text: str) -> dict[str, Any] | None:
        """The chunk for shown thinking; None where the client did not ask to see it."""
        return None

    def _send(self, chunk: dict[str, Any]) -> bytes:
        self.chunks_sent += 1
        self._last_write = time.monotonic()
        return sse.event(chunk)

    def _fail(self, error: ProxyError) -> Iterator[bytes]:
        """The stream's end after a failure: one error event, then [DONE]."""
        self.error = error
        yield sse.event(error.body())
        yield sse.DONE

    def _run_text(self, run: CLIRun, events: Iterator[Any]
                  ) -> Generator[bytes, None, Finished | None]:
        """Streams one run's answer; returns how it finished, or None when it failed (the
        error event and [DONE] have then been sent)."""
        scanner = StopScanner(self.stops)
        sent: list[str] = []
        for event in events:
            if isinstance(event, TextDelta):
                piece = scanner.feed(event.text)
                if piece:
                    sent.append(piece)
                    self.text.append(piece)
                    yield self._send(self._text_chunk(piece))
                if scanner.stopped:
                    run.close()
                    return Finished("stop", run.translator.partial_usage("".join(sent)),
                                    "stop_sequence", cut_short=True)
            elif isinstance(event, Finished):
                tail = scanner.flush()
                if tail:
                    sent.append(tail)
                    self.text.append(tail)
                    yield self._send(self._text_chunk(tail))
                return event
            elif isinstance(event, (Failed, Revision)):
                yield from self._fail(event.error if isinstance(event, Failed)
                                      else (event.error or INTERRUPTED))
                return None
            elif isinstance(event, ReasoningDelta) and self._reasoning_chunk(event.text):
                yield self._send(self._reasoning_chunk(event.text))
            elif isinstance(event, (Idle, Activity)):
                if time.monotonic() - self._last_write >= self.heartbeat_interval:
                    self._last_write = time.monotonic()
                    yield sse.HEARTBEAT
            else:
                chunk = self._other_chunk(event)
                if chunk is not None:
                    yield self._send(chunk)
        return None  # pragma: no cover - events() always ends in Finished or Failed
