"""POST /v1/completions (legacy): a prompt or a list of prompts in, a text_completion or SSE
text completion chunks out.

Each prompt is one CLI run (proxy/chat/text_completion.py); the runs take turns, each with its
own concurrency slot, the next one started when the previous one has ended. Everything about
statuses and streams is chat's (proxy/http/answers.py): the stream is held until the first
run's answer has begun, so a failure before that is a real HTTP status; a failure after it
(including a later prompt's run that cannot start) is an SSE error event, then `[DONE]`.
"""

from __future__ import annotations

from typing import Any, Callable, Iterator

import falcon

from proxy.chat.completion import CompletionIdentity
from proxy.chat.text_completion import (Choice, TextChunks, new_identity, text_completion_object,
                                        total_usage)
from proxy.claude.events import Finished
from proxy.claude.run import CLIRun
from proxy.errors import ProxyError
from proxy.http import sse
from proxy.http.answers import (CLIEndpoint, RunStream, collect, disconnect_probe,
                                validated_body)
from proxy.backend import CompletionRequest


def _finish_reasons(reasons: list[str]) -> str:
    """One value for the request log: the reason, or each choice's when they differ."""
    return reasons[0] if len(set(reasons)) == 1 else ",".join(reasons)


class Completions(CLIEndpoint):
    def on_post(self, req: falcon.Request, resp: falcon.Response) -> None:
        body = validated_body(req, self.validator, "CreateCompletionRequest",
                              self.max_body_bytes)
        request = self.service.prepare_completion(
            body, owner=getattr(req.context, "api_key_name", None) or "")
        req.context.model = body["model"]
        req.context.prompt = request.prompt  # for the request log's opt-in content logging
        identity = new_identity(body["model"])
        probe = disconnect_probe(req)
        self._answer(req, resp, request.chats[0], request.stream,
                     lambda run: CompletionStream(run, request, identity, self.heartbeat_interval,
                                                  start=lambda chat: self.service.start(chat,
                                                                                        probe)),
                     lambda run: self._complete(run, request, identity, req, probe))

    def _complete(self, run: CLIRun, request: CompletionRequest, identity: CompletionIdentity,
                  req: falcon.Request, probe: Callable[[], bool]) -> dict[str, Any]:
        choices: list[Choice] = []
        usages = []
        for index, chat in enumerate(request.chats):
            if index:  # the previous run has ended and freed its slot
                run = self.service.start(chat, probe)
            answer = collect(run, chat.stops)
            echo = request.prompts[index] if request.echo else ""
            choices.append(Choice(echo + answer.text, answer.finished.finish_reason))
            usages.append(answer.finished.usage)
        usage = total_usage(usages)
        req.context.usage = usage
        req.context.finish_reason = _finish_reasons([c.finish_reason for c in choices])
        return text_completion_object(identity, choices, usage)


class CompletionStream(RunStream):
    """The body of one streamed text completion: the prompts' runs, one after another."""

    def __init__(self, run: CLIRun, request: CompletionRequest, identity: CompletionIdentity,
                 heartbeat_interval: float, *, start: Callable[[Any], CLIRun],
                 commit_after: float | None = None) -> None:
        super().__init__(run, request.chats[0].stops, heartbeat_interval, commit_after)
        self.request = request
        self.chunks = TextChunks(identity)
        self._start = start
        self._index = 0

    def _chunks(self) -> Iterator[bytes]:
        reasons: list[str] = []
        usages = []
        for index, chat in enumerate(self.request.chats):
            self._index = index
            if index:
                try:
                    self._next_run(chat)
                except ProxyError as exc:  # e.g. no slot in time: the stream has begun
                    yield from self._fail(exc)
                    return
                events: Iterator[Any] = self._events
            else:
                events = self._first_run_events()
            if self.request.echo and self.request.prompts[index]:
                yield self._send(self.chunks.text(index, self.request.prompts[index]))
            finished = yield from self._run_text(self.run, events)
            if finished is None:
                return
            reasons.append(finished.finish_reason)
            usages.append(finished.usage)
            yield self._send(self.chunks.finish(index, finished.finish_reason))
        usage = total_usage(usages)
        self.finished = Finished(_finish_reasons(reasons), usage)
        if self.request.include_usage:
            yield sse.event(self.chunks.usage(usage))
        yield sse.DONE

    def _next_run(self, chat: Any) -> None:
        """Ends the run that has answered (freeing its slot) and starts the next prompt's."""
        self._events.close()
        self.run.close()
        self.run = self._start(chat)
        self._events = self.run.events()

    def _text_chunk(self, piece: str) -> dict[str, Any]:
        return self.chunks.text(self._index, piece)
