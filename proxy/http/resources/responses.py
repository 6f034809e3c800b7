"""The Responses API: POST /v1/responses, and GET / DELETE / input_items of stored responses.

A response is served like a chat completion (proxy/http/resources/chat.py): a stream's status
is held until the upstream has begun answering, so a failure before the first event is a real
HTTP error; after it, the stream ends with `response.failed`. Heartbeats are SSE comments. The
record is stored before the id is sent and its final state before the terminal event
(proxy/responses/store.py).
"""

from __future__ import annotations

import logging
import time
from typing import Any, Iterator

import falcon

from proxy.claude.events import Activity, Failed, ReasoningDelta, ThinkingBlock
from proxy.claude.run import CLIRun, ClientGone, Idle
from proxy.contract.validation import RequestValidator
from proxy.errors import ProxyError
from proxy.http import sse
from proxy.http.body import read_json
from proxy.http.answers import StreamedRun
from proxy.http.answers import disconnect_probe as _disconnect_probe
from proxy.responses.items import tolerated
from proxy.responses.service import PreparedResponse, ResponsesService, not_found

log = logging.getLogger("claude_max_api.responses")

NOT_OFFERED_HEADER = "x-claude-tools-not-offered"
# Activity that may become output (a reasoning item), which the writer decides on.
_ITEMS = (ReasoningDelta, ThinkingBlock)


def _event(payload: dict[str, Any]) -> bytes:
    """One Responses event, framed as OpenAI frames them: `event: <type>` and its data."""
    return b"event: " + payload["type"].encode() + b"\n" + sse.event(payload)


class Responses:
    def __init__(self, service: ResponsesService, validator: RequestValidator, *,
                 max_body_bytes: int, heartbeat_interval: float = 15.0) -> None:
        self.service = service
        self.validator = validator
        self.max_body_bytes = max_body_bytes
        self.heartbeat_interval = heartbeat_interval

    # -- POST /v1/responses ---------------------------------------------------------------
    def on_post(self, req: falcon.Request, resp: falcon.Response) -> None:
        body = tolerated(read_json(req, self.max_body_bytes))
        issue = self.validator.validate("CreateResponse", body)
        if issue is not None:
            raise ProxyError(400, issue.message, param=issue.param,
                             code=getattr(issue, "code", None) or "invalid_request")
        owner = getattr(req.context, "api_key_name", None) or ""
        prepared = self.service.prepare(body, owner=owner)
        req.context.model = body["model"]
        req.context.prompt = prepared.chat.prompt  # for the opt-in content logging
        not_offered = prepared.translation.tools.not_offered
        if not_offered:
            resp.set_header(NOT_OFFERED_HEADER, ",".join(not_offered))
            log.info("responses: hosted tools not offered to the model: %s",
                     ", ".join(not_offered))
        try:
            run = self.service.start(prepared, _disconnect_probe(req))
        except ClientGone:
            return self._client_gone(req, resp)
        req.context.run = run
        try:
            if prepared.stream:
                stream = ResponseStream(run, prepared, self.service, self.heartbeat_interval)
                stream.prime()
                self.service.save(prepared)  # before `response.created` carries the id
                resp.status = falcon.HTTP_200
                resp.content_type = sse.CONTENT_TYPE
                resp.set_headers(sse.HEADERS)
                resp.stream = stream
                req.context.stream = stream
            else:
                resp.media = self._complete(run, prepared, req)
        except ClientGone:
            run.close()
            return self._client_gone(req, resp)
        except BaseException:
            run.close()
            raise

    @staticmethod
    def _client_gone(req: falcon.Request, resp: falcon.Response) -> None:
        req.context.error_code = "client_disconnected"
        resp.status = "499 Client Closed Request"
        resp.media = ProxyError(499, "The client closed the request.",
                                code="client_disconnected").body()

    def _complete(self, run: CLIRun, prepared: PreparedResponse,
                  req: falcon.Request) -> dict[str, Any]:
        writer = self.service.writer(prepared, streaming=False)
        for event in run.events():
            if isinstance(event, Failed):
                raise event.error  # nothing was sent: the HTTP status says it
            writer.feed(event)
            if writer.done:
                break
        run.close()
        if writer.finished is None:  # pragma: no cover - events() ends in Finished or Failed
            raise ProxyError(502, "The CLI run ended without an outcome.", code="claude_cli_crashed")
        req.context.usage = writer.finished.usage
        req.context.finish_reason = writer.finished.finish_reason
        self.service.save(prepared)  # before the body carries the id
        return prepared.state.object()

    # -- stored responses -----------------------------------------------------------------
    def _stored(self, req: falcon.Request, response_id: str):
        record = self.service.store.get(response_id,
                                        getattr(req.context, "api_key_name", None) or "")
        if record is None:
            raise not_found(response_id)
        return record

    def on_get(self, req: falcon.Request, resp: falcon.Response, response_id: str) -> None:
        if req.get_param_as_bool("stream", default=False):
            raise ProxyError(400, "Streaming a stored response again is not supported; GET it "
                                  "without `stream`.", param="stream",
                             code="unsupported_parameter")
        resp.media = self._stored(req, response_id).response_object()

    def on_delete(self, req: falcon.Request, resp: falcon.Response, response_id: str) -> None:
        owner = getattr(req.context, "api_key_name", None) or ""
        if not self.service.store.delete(response_id, owner):
            raise not_found(response_id)
        resp.media = {"id": response_id, "object": "response", "deleted": True}

    def on_get_input_items(self, req: falcon.Request, resp: falcon.Response,
                           response_id: str) -> None:
        limit = _query_int(req, "limit", 20, 1, 100)
        order = req.get_param("order") or "desc"
        if order not in ("asc", "desc"):
            raise ProxyError(400, f"Invalid value: '{order}'. Supported values are: 'asc' and "
                                  f"'desc'.", param="order", code="invalid_value")
        record = self._stored(req, response_id)
        items = [resource_item(i) for i in _json_items(record.input_items)]
        if order == "desc":
            items.reverse()
        after = req.get_param("after")
        if after is not None:
            ids = [i.get("id") for i in items]
            if after not in ids:
                raise ProxyError(400, f"No input item with id '{after}' in response "
                                      f"'{response_id}'.", param="after", code="invalid_value")
            items = items[ids.index(after) + 1:]
        page = items[:limit]
        resp.media = {"object": "list", "data": page, "has_more": len(items) > limit,
                      "first_id": page[0]["id"] if page else "",
                      "last_id": page[-1]["id"] if page else ""}


def _json_items(texts) -> Iterator[dict[str, Any]]:
    import json
    for text in texts:
        yield json.loads(text)


def resource_item(item: dict[str, Any]) -> dict[str, Any]:
    """A stored item as `input_items` lists it (the spec's item resources have a status)."""
    if item.get("type") in ("custom_tool_call", "custom_tool_call_output") \
            and "status" not in item:
        return {**item, "status": "completed"}
    return item


def _query_int(req: falcon.Request, name: str, default: int, low: int, high: int) -> int:
    raw = req.get_param(name)
    if raw is None:
        return default
    try:
        value = int(raw)
    except ValueError:
        raise ProxyError(400, f"Invalid type for '{name}': expected an integer, but got a "
                              f"string instead.", param=name, code="invalid_type") from None
    if not low <= value <= high:
        raise ProxyError(400, f"Invalid '{name}': expected a value from {low} to {high}, but got "
                              f"{value} instead.", param=name, code="invalid_value")
    return value


class ResponseStream(StreamedRun):
    """The body of one streamed response: the writer's events (proxy/responses/output.py),
    the stored response saved as it ends, or as cancelled when the client leaves."""

    def __init__(self, run: CLIRun, prepared: PreparedResponse, service: ResponsesService,
                 heartbeat_interval: float, commit_after: float | None = None) -> None:
        super().__init__(run, heartbeat_interval, commit_after)
        self.prepared = prepared
        self.service = service
        self.writer = service.writer(prepared, streaming=True)

    # what the request log reads of a stream
    @property
    def finished(self):
        return self.writer.finished

    @property
    def error(self) -> ProxyError | None:
        return self.writer.error

    @property
    def text(self) -> list[str]:
        return self.writer.text

    def _client_gone(self) -> None:
        self.writer.error = ProxyError(499, "The client closed the request.",
                                       code="client_disconnected")

    def _frames(self) -> Iterator[bytes]:
        writer = self.writer
        last_write = time.monotonic()
        for payload in writer.begin():
            yield _event(payload)
        for event in self._first_run_events():
            if isinstance(event, (Idle, Activity)) and not isinstance(event, _ITEMS):
                if time.monotonic() - last_write >= self.heartbeat_interval:
                    last_write = time.monotonic()
                    yield sse.HEARTBEAT
                continue
            payloads = writer.feed(event)
            if not payloads and isinstance(event, _ITEMS) and \
                    time.monotonic() - last_write >= self.heartbeat_interval:
                last_write = time.monotonic()   # thinking nobody sees is still activity
                yield sse.HEARTBEAT
            if writer.done:
                self.service.save(self.prepared)  # the final state, before the client has it
            for payload in payloads:
                last_write = time.monotonic()
                yield _event(payload)
            if writer.done:
                return

    def _run_closed(self) -> None:
        if not self.writer.done:  # the client left mid-stream
            self.writer.cancel()
            self.service.save(self.prepared)
