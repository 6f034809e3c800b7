"""`StandInUpstream`: a loopback HTTP server that plays the Anthropic Messages API for the real CLI.

    with StandInUpstream(Scenario(reply_text="hi")) as up:
        env["ANTHROPIC_BASE_URL"] = up.base_url                 # the default scenario
        env["ANTHROPIC_BASE_URL"] = up.base_url_for("tool")     # .../scenario/tool
        ...
        assert up.requests[0].body["tools"] == []

Scenario selection, first match wins:
1. the URL path prefix `/scenario/<name>/` (the CLI keeps the base URL's path, so each CLI run can
   get its own behaviour from one server; an unknown name is a 404);
2. a registered scenario whose `when_prompt_contains` occurs in the request's user text;
3. the scenario named "default".

One thread per connection (the CLI keeps connections alive), so many streams run concurrently.

Prompt caching is modelled when asked for (`StandInUpstream(prompt_caching=True)` or
`Scenario.prompt_caching`): the instance keeps the cache (`cache.py`), `reset()` clears it, each
`RecordedRequest.usage` says what was reported and `usage_totals()` sums it.
"""

from __future__ import annotations

import copy
import dataclasses
import hashlib
import json
import logging
import re
import select
import socket
import sys
import threading
import time
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any, Callable, Mapping
from urllib.parse import quote, unquote, urlsplit

from . import cache, responder, wire
from .scenario import Scenario

log = logging.getLogger(__name__)

DEFAULT = "default"
_NAME = re.compile(r"^[A-Za-z0-9_.-]+$")
_SCENARIO_PATH = re.compile(r"^/scenario/([^/]+)(/.*)$")
_REDACTED_HEADERS = {"x-api-key", "authorization", "proxy-authorization", "cookie"}
_MESSAGES_PATH = "/v1/messages"


@dataclass
class RecordedRequest:
    """One request as the stand-in saw it. Updated while the answer streams; read copies."""

    method: str
    path: str  # as received, query included (the CLI sends `/v1/messages?beta=true`)
    headers: dict[str, str]  # lower-case names; credentials replaced by "<redacted>"
    body: Any  # the parsed JSON body, or None
    scenario: str | None = None  # the scenario that answered
    call_index: int | None = None  # its 0-based index among that scenario's calls
    status: int | None = None  # the HTTP status sent; None while hanging / if never answered
    events_sent: int = 0  # SSE events written
    client_aborted: bool = False  # the client went away before the answer was complete
    received_at: float = 0.0  # time.monotonic() when the body had been read
    usage: dict[str, Any] | None = None  # the usage the stand-in reported for its message, if any


@dataclass(frozen=True)
class UsageTotals:
    """Usage summed over the messages the stand-in answered (see `StandInUpstream.usage_totals`)."""

    requests: int = 0
    input_tokens: int = 0  # the API's input_tokens: after the last breakpoint
    cache_creation_input_tokens: int = 0
    cache_read_input_tokens: int = 0
    output_tokens: int = 0

    @property
    def uncached_input_tokens(self) -> int:
        """Input not read from the cache: after the last breakpoint, plus what was written."""
        return self.input_tokens + self.cache_creation_input_tokens


class _Server(ThreadingHTTPServer):
    daemon_threads = False  # server_close() joins every connection thread: nothing keeps serving
    block_on_close = True
    request_queue_size = 128  # many CLI runs connect at once

    def __init__(self, port: int, upstream: "StandInUpstream") -> None:
        self.upstream = upstream
        self.connections: set[socket.socket] = set()
        self.connections_lock = threading.Lock()
        super().__init__(("127.0.0.1", port), _Handler)

    def handle_error(self, request: Any, client_address: Any) -> None:
        # A client that hangs up mid-answer is normal here (aborts, timeouts, our own close()).
        exc = sys.exc_info()[1]
        if isinstance(exc, (ConnectionError, TimeoutError)) or self.upstream.closing:
            return
        log.exception("stand-in upstream: error while serving %s", client_address)


class _ClientGone(Exception):
    """The answer cannot go on: the client closed the connection, or the server is closing."""

    def __init__(self, by_client: bool = True) -> None:
        super().__init__("client gone" if by_client else "server closing")
        self.by_client = by_client


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"  # keep-alive and chunked SSE, as the real API
    server_version = "claude-max-api-standin"
    sys_version = ""
    server: _Server

    def setup(self) -> None:
        super().setup()
        with self.server.connections_lock:
            self.server.connections.add(self.connection)

    def finish(self) -> None:
        with self.server.connections_lock:
            self.server.connections.discard(self.connection)
        try:
            super().finish()
        except OSError:
            pass

    def log_message(self, format: str, *args: Any) -> None:  # noqa: A002 - stdlib signature
        log.debug("stand-in upstream: " + format, *args)

    def do_POST(self) -> None:
        self.server.upstream._serve(self)

    do_GET = do_PUT = do_DELETE = do_PATCH = do_POST


class StandInUpstream:
    """A stand-in Anthropic Messages API on 127.0.0.1, served from a background thread."""

    def __init__(
        self,
        default: Scenario | None = None,
        *,
        scenarios: Mapping[str, Scenario] | None = None,
        port: int = 0,
        prompt_caching: bool = False,
        clock: Callable[[], float] = time.monotonic,
        min_cacheable_tokens: int | Callable[[str], int] | None = None,
    ) -> None:
        """`prompt_caching=True` models prompt caching for every scenario (a scenario can also opt
        in alone with `Scenario.prompt_caching`). `clock` (seconds) drives cache expiry;
        `min_cacheable_tokens` overrides the documented per-model minimums (docs/standin.md)."""
        self._lock = threading.Lock()
        self.prompt_caching = prompt_caching
        self.prompt_cache = cache.PromptCache(clock=clock, min_tokens=min_cacheable_tokens)
        self._scenarios: dict[str, Scenario] = {DEFAULT: default or Scenario()}
        self._counters: dict[str, responder.CallCounter] = {}
        self._requests: list[RecordedRequest] = []
        self._arrived = threading.Condition(self._lock)
        self._stop = threading.Event()  # ends delays, stalls and hangs when closing
        for name, scenario in (scenarios or {}).items():
            self.add_scenario(name, scenario)
        self._server = _Server(port, self)
        self.port: int = self._server.server_address[1]
        self.base_url: str = f"http://127.0.0.1:{self.port}"
        self._thread = threading.Thread(
            target=self._server.serve_forever, kwargs={"poll_interval": 0.05}, name="standin-upstream", daemon=True
        )
        self._thread.start()
        self._closed = False

    # --- configuration --------------------------------------------------------------------------

    def add_scenario(self, name: str, scenario: Scenario) -> None:
        """Register (or replace) a named scenario; the name "default" replaces the default."""
        if not _NAME.match(name):
            raise ValueError(f"scenario names are [A-Za-z0-9_.-]+, not {name!r}")
        with self._lock:
            self._scenarios[name] = scenario

    def base_url_for(self, name: str) -> str:
        """The ANTHROPIC_BASE_URL that selects scenario `name`."""
        if name not in self._scenarios:
            raise KeyError(f"no scenario named {name!r}")
        return f"{self.base_url}/scenario/{quote(name)}"

    def reset(self) -> None:
        """Forget the request log, every scenario's call counters (ids start over) and the cache."""
        with self._lock:
            self._requests.clear()
            self._counters.clear()
        self.prompt_cache.clear()

    # --- observation ------------------------------------------------------------------------------

    @property
    def requests(self) -> list[RecordedRequest]:
        """Copies of every request received so far, in arrival order."""
        with self._lock:
            return [dataclasses.replace(r, headers=dict(r.headers), usage=copy.deepcopy(r.usage))
                    for r in self._requests]

    def requests_for(self, name: str) -> list[RecordedRequest]:
        return [r for r in self.requests if r.scenario == name]

    def usage_totals(self, name: str | None = None) -> UsageTotals:
        """The usage reported for every answered message (of scenario `name`, if given), summed."""
        reported = [r.usage for r in self.requests if r.usage is not None and (name is None or r.scenario == name)]
        return UsageTotals(len(reported), *(sum(u[key] for u in reported) for key in (
            "input_tokens", "cache_creation_input_tokens", "cache_read_input_tokens", "output_tokens")))

    def wait_for_requests(self, count: int, timeout: float = 10.0) -> list[RecordedRequest]:
        """Block until at least `count` requests have arrived; TimeoutError otherwise."""
        deadline = time.monotonic() + timeout
        with self._arrived:
            while len(self._requests) < count:
                left = deadline - time.monotonic()
                if left <= 0:
                    raise TimeoutError(f"{len(self._requests)} of {count} requests arrived in {timeout}s")
                self._arrived.wait(left)
        return self.requests

    # --- lifecycle ----------------------------------------------------------------------------------

    @property
    def closing(self) -> bool:
        return self._stop.is_set()

    def close(self) -> None:
        """Stop serving now: ends hangs and delays, drops open connections, joins every thread."""
        if self._closed:
            return
        self._closed = True
        self._stop.set()
        self._server.shutdown()  # the accept loop
        with self._server.connections_lock:
            open_connections = list(self._server.connections)
        for conn in open_connections:  # idle keep-alive readers block in recv() until this
            try:
                conn.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass
        self._server.server_close()  # closes the listener and joins the connection threads
        self._thread.join()

    def __enter__(self) -> "StandInUpstream":
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # --- serving (called on connection threads) --------------------------------------------------

    def _serve(self, h: _Handler) -> None:
        url = urlsplit(h.path)
        path, name = url.path, None
        match = _SCENARIO_PATH.match(path)
        if match:
            name, path = unquote(match.group(1)), match.group(2)
        raw = self._read_body(h)
        try:
            body = json.loads(raw) if raw else None
        except ValueError:
            body = None
        headers = {k.lower(): ("<redacted>" if k.lower() in _REDACTED_HEADERS else v) for k, v in h.headers.items()}
        record = RecordedRequest(h.command, h.path, headers, body, received_at=time.monotonic())
        with self._arrived:
            self._requests.append(record)
            self._arrived.notify_all()
        try:
            self._route(h, record, path, name, body)
        except _ClientGone as gone:
            with self._lock:
                record.client_aborted = gone.by_client
            h.close_connection = True
        except Exception:  # a stand-in bug: say so to the client and in the log, keep serving
            log.exception("stand-in upstream: failed to answer %s %s", h.command, h.path)
            h.close_connection = True
            if record.status is None:
                try:
                    self._send_json(h, record, 500, wire.error_envelope(500, message="stand-in upstream bug (see its log)"))
                except _ClientGone:
                    pass

    def _route(self, h: _Handler, record: RecordedRequest, path: str, name: str | None, body: Any) -> None:
        if h.command != "POST" or path.rstrip("/") != _MESSAGES_PATH:
            self._send_json(h, record, 404, wire.error_envelope(404, message=f"Not found: {h.command} {path}"))
            return
        if not isinstance(body, dict):
            self._send_json(h, record, 400, wire.error_envelope(400, message="The body must be a JSON object."))
            return
        with self._lock:
            name = name if name is not None else self._match_rule(body)
            scenario = self._scenarios.get(name)
            if scenario is not None:
                counter = self._counters.setdefault(name, responder.CallCounter())
                index = counter.calls
                counter.calls += 1
                fails = responder.should_fail(scenario, str(body.get("model", "")), counter.failures)
                counter.failures += fails
                record.scenario, record.call_index = name, index
        if scenario is None:
            self._send_json(h, record, 404, wire.error_envelope(404, message=f"Unknown stand-in scenario {name!r}."))
            return

        caching = self.prompt_caching or scenario.prompt_caching
        refused = responder.invalid_request(body) or (cache.refusal(body) if caching else None)
        if refused is not None:
            self._send_json(h, record, 400, wire.error_envelope(400, message=refused))
            return
        if scenario.first_byte_delay:
            self._pause(h, scenario.first_byte_delay)
        if scenario.hang:
            self._stall(h)
        if fails:
            fail = responder.failure(scenario, responder.stable_id("req_standin_", name, index))
            self._send_json(h, record, fail.status, fail.body, fail.headers)
            return
        # The cache is read and written when the answer begins, as the API does; a failed call
        # touches it not at all.
        cache_usage = self.prompt_cache.use(body, _account(h)) if caching else None
        reply = responder.answer(scenario, name, index, body, cache_usage)
        with self._lock:
            record.usage = reply.message.usage.final()
        if body.get("stream"):
            self._stream(h, record, scenario, wire.stream_events(reply.message, scenario.split), reply.request_id)
        else:
            self._send_json(h, record, 200, wire.message_json(reply.message),
                            {"request-id": reply.request_id, **scenario.answer_headers})

    def _stream(self, h: _Handler, record: RecordedRequest, scenario: Scenario, events: list[wire.Event], request_id: str) -> None:
        h.send_response(200)
        h.send_header("Content-Type", "text/event-stream; charset=utf-8")
        h.send_header("Cache-Control", "no-cache")
        h.send_header("Transfer-Encoding", "chunked")
        h.send_header("request-id", request_id)
        for key, value in scenario.answer_headers.items():
            h.send_header(key, value)
        h.end_headers()
        with self._lock:
            record.status = 200
        for sent, event in enumerate(events):
            if sent == scenario.hang_after_events:
                self._stall(h)
            if sent == scenario.abort_after_events:
                # Close without the chunked terminator: the client sees a truncated body.
                h.close_connection = True
                try:
                    h.connection.shutdown(socket.SHUT_RDWR)
                except OSError:
                    pass
                return
            if sent == scenario.error_event_after:
                self._write_chunk(h, wire.sse_frame("error", wire.error_envelope(529)))
                self._count_event(record)
                break
            if sent and scenario.chunk_delay:
                self._pause(h, scenario.chunk_delay)
            self._write_chunk(h, wire.sse_frame(*event))
            self._count_event(record)
        self._write_chunk(h, b"")  # the chunked terminator

    def _count_event(self, record: RecordedRequest) -> None:
        with self._lock:
            record.events_sent += 1

    def _match_rule(self, body: dict[str, Any]) -> str:
        text = "\n".join(responder.user_texts(body.get("messages") or []))
        for name, scenario in self._scenarios.items():
            if scenario.when_prompt_contains and scenario.when_prompt_contains in text:
                return name
        return DEFAULT

    # --- I/O helpers ------------------------------------------------------------------------------

    @staticmethod
    def _read_body(h: _Handler) -> bytes:
        length = int(h.headers.get("Content-Length") or 0)
        if length:
            return h.rfile.read(length)
        if "chunked" in (h.headers.get("Transfer-Encoding") or "").lower():
            parts: list[bytes] = []
            while True:
                size = int(h.rfile.readline().split(b";")[0].strip() or b"0", 16)
                if size == 0:
                    h.rfile.readline()
                    return b"".join(parts)
                parts.append(h.rfile.read(size))
                h.rfile.readline()
        return b""

    def _send_json(self, h: _Handler, record: RecordedRequest, status: int, body: Any, headers: Mapping[str, str] | None = None) -> None:
        payload = json.dumps(body).encode()
        try:
            h.send_response(status)
            h.send_header("Content-Type", "application/json")
            h.send_header("Content-Length", str(len(payload)))
            for key, value in (headers or {}).items():
                h.send_header(key, value)
            h.end_headers()
            h.wfile.write(payload)
        except OSError as exc:
            raise _ClientGone from exc
        with self._lock:
            record.status = status

    def _write_chunk(self, h: _Handler, data: bytes) -> None:
        try:
            h.wfile.write(b"%x\r\n%s\r\n" % (len(data), data))
        except OSError as exc:
            raise _ClientGone from exc

    def _pause(self, h: _Handler, seconds: float) -> None:
        """Sleep, but end early (as a client abort) if the client leaves or the server closes."""
        deadline = time.monotonic() + seconds
        while (left := deadline - time.monotonic()) > 0:
            if self._client_left(h):
                raise _ClientGone
            if self._stop.wait(min(left, 0.05)):
                raise _ClientGone(by_client=False)

    def _stall(self, h: _Handler) -> None:
        """Answer nothing more, until the client leaves or the server closes."""
        while not self._stop.wait(0.05):
            if self._client_left(h):
                raise _ClientGone
        raise _ClientGone(by_client=False)

    @staticmethod
    def _client_left(h: _Handler) -> bool:
        try:
            readable, _, _ = select.select([h.connection], [], [], 0)
            # Readable with nothing to read is EOF: the client closed its side.
            return bool(readable) and h.connection.recv(1, socket.MSG_PEEK) == b""
        except OSError:
            return True


def _account(h: _Handler) -> str:
    """Whose cache a request uses: a digest of its credential (caches are not shared between keys)."""
    credential = h.headers.get("x-api-key") or h.headers.get("authorization") or ""
    return hashlib.sha256(credential.encode()).hexdigest()
