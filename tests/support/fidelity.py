"""Fidelity to the official OpenAI spec, for every response the test suite's servers send.

`official_problems()` says what is wrong with one answer against the official schemas in the
strict profile (`refusal` and `logprobs` required, as the official SDKs expect), closed: a
property the official spec does not name is an error, except the document's declared
extensions (`x-extension`, e.g. `reasoning_content`). Per SSE event for streams, and, for a
complete stream, against the stream rules (stream_rules.py); a whole completion also against
the tool-call rules the schemas cannot say (arguments that are a JSON object's text, distinct
ids, finish_reason `tool_calls` exactly with calls, no content beside a refusal:
`completion_problems`).

`TeeApp` is a WSGI middleware that keeps a copy of every request and response of the app it
wraps; the pytest plugin at the bottom wraps the app of every in-process test server (the
`create_app` that `proxy.server.create_server` calls, so `running_proxy` and anything else
built on `create_server`) and fails the test whose traffic broke a rule, at its teardown. A
server shared by several tests (module-scoped) is judged per test, by the answers each test
caused. Servers started as separate processes are not seen.

An answer still open when its test ends (after a grace of `OPEN_GRACE` seconds) is a failure
too, not judged as far as it went and forgotten; so is a 2xx of an OpenAI operation with an
empty body.
A test that must produce off-spec answers on purpose opts out with
`@pytest.mark.official_spec_exempt("why")`.
"""

from __future__ import annotations

import functools
import json
import re
import threading
import time
from dataclasses import dataclass, field
from typing import Any, Callable, Iterable, Iterator

import pytest

from conformance.responses_stream import check_responses_stream
from conformance.sse import parse
from proxy.contract.comparison import extensions
from proxy.contract.document import load_document
from proxy.contract.official import closed_validator
from proxy.contract.validation import sse_data_kind
from tests.support.stream_rules import (check_stream, check_text_stream, completion_problems,
                                        include_usage_of, prompts_of)

PROFILE = "strict"
MAX_KEPT = 16 * 1024 * 1024      # bytes kept per body; more is judged as far as it was kept
OPEN_GRACE = 15.0                 # seconds an answer still open at the end of its test gets
_SHOWN = 4                        # problems shown per schema and answer


# ---------------------------------------------------------------------------- the judgement


@functools.lru_cache(maxsize=1)
def _extensions() -> dict[str, dict[str, Any]]:
    """The document's extension properties, without their annotations."""
    return {name: {prop: {k: v for k, v in schema.items()
                          if not k.startswith("x-") and k != "description"}
                   for prop, schema in props.items()}
            for name, props in extensions(load_document()).items()}


def _schema_errors(name: str, instance: Any, where: str, stream_chunk: bool = False
                   ) -> list[str]:
    errors = sorted(closed_validator(name, _extensions(), PROFILE, stream_chunk=stream_chunk)
                    .iter_errors(instance),
                    key=lambda e: list(map(str, e.absolute_path)))
    return [f"{where}: official {name}: {'/'.join(map(str, e.absolute_path)) or '<root>'}: "
            f"{e.message[:200]}" for e in errors[:_SHOWN]]


@functools.lru_cache(maxsize=1)
def _documented_responses() -> list[tuple[str, re.Pattern[str], dict[str, Any]]]:
    """(method, path pattern, responses) of every operation of the project's document."""
    out = []
    for path, item in load_document()["paths"].items():
        pattern = re.compile("^" + re.sub(r"\\\{[^/]+?\\\}", "[^/]+", re.escape(path)) + "/?$")
        for method, operation in item.items():
            if isinstance(operation, dict) and "responses" in operation:
                out.append((method.upper(), pattern, operation["responses"]))
    return out


def _is_error_answer(method: str, path: str, status: int) -> bool:
    """Whether the document answers this status with an error object (undocumented routes and
    statuses do); `/health/ready` answers 503 with its own readiness object, for instance."""
    for documented_method, pattern, responses in _documented_responses():
        if documented_method == method and pattern.match(path):
            response = responses.get(str(status))
            if response is None:
                return True
            ref = json.dumps(response)
            return "#/components/responses/" in ref or "ErrorResponse" in ref
    return True


def _success_schema(method: str, path: str) -> str | None:
    path = path.rstrip("/")
    if method == "POST" and path == "/v1/chat/completions":
        return "CreateChatCompletionResponse"
    if method == "POST" and path == "/v1/completions":
        return "CreateCompletionResponse"
    if method == "GET" and path == "/v1/models":
        return "ListModelsResponse"
    if method == "GET" and path.startswith("/v1/models/"):
        return "Model"
    # the Responses API (issue 13); DELETE's 200 has no official schema
    if method == "POST" and path == "/v1/responses":
        return "Response"
    if method == "GET" and path.startswith("/v1/responses/"):
        return "ResponseItemList" if path.endswith("/input_items") else "Response"
    return None  # the project's own operations (/health, /metrics, ...) are not OpenAI's


def official_problems(method: str, path: str, status: int, content_type: str, body: bytes, *,
                      request_body: Any = None, complete: bool = True) -> list[str]:
    """Everything wrong with one answer, judged by the official spec ([] when it conforms).

    `complete=False` for a body the client did not read to its end (it left): only the
    events that arrived whole are judged.
    """
    media = content_type.split(";")[0].strip().lower()
    where = f"{method} {path} -> {status}"
    if not body:
        # Nothing to judge, unless an OpenAI operation answered success with nothing at all
        # (a client reading it gets no completion, no model list, no [DONE]).
        if complete and 200 <= status < 300 and method != "HEAD" \
                and _success_schema(method, path) is not None:
            return [f"{where}: an empty body"]
        return []
    if status >= 400 and not _is_error_answer(method, path, status):
        return []  # one of the project's own answers; schemathesis validates those
    if status >= 400:
        if media != "application/json":
            return [f"{where}: an error answered as {media or 'no content type'}, not JSON"]
        try:
            payload = json.loads(body)
        except ValueError:
            return [f"{where}: the error body is not JSON: {body[:80]!r}"]
        return _schema_errors("ErrorResponse", payload, where)
    schema = _success_schema(method, path)
    if schema is None or status >= 300:
        return []
    if schema == "CreateChatCompletionResponse" and media == "text/event-stream":
        return _stream_problems(body, where, request_body, complete)
    if schema == "CreateCompletionResponse" and media == "text/event-stream":
        return _text_stream_problems(body, where, request_body, complete)
    if schema == "Response" and media == "text/event-stream":
        return _responses_stream_problems(body, where, complete)
    if media != "application/json":
        return [f"{where}: answered as {media or 'no content type'}, not application/json"]
    try:
        payload = json.loads(body)
    except ValueError:
        return [f"{where}: the body is not JSON: {body[:80]!r}"]
    problems = _schema_errors(schema, payload, where)
    if schema == "CreateChatCompletionResponse":
        problems += [f"{where}: {p}" for p in completion_problems(payload)]
    if schema in ("CreateChatCompletionResponse", "CreateCompletionResponse", "Response") \
            and isinstance(request_body, dict) and request_body.get("stream"):
        problems.append(f"{where}: `stream: true` was answered with JSON, not a stream")
    return problems


def _stream_problems(body: bytes, where: str, request_body: Any, complete: bool) -> list[str]:
    problems: list[str] = []
    parsed = parse(body)
    for number, data in enumerate(parsed.data):
        try:
            kind = sse_data_kind(data)
        except ValueError:
            problems.append(f"{where}: event {number} is neither JSON nor [DONE]: {data[:80]!r}")
            continue
        if kind:
            problems += _schema_errors(*kind, f"{where} event {number}")
    if complete:
        usage = include_usage_of(request_body) if isinstance(request_body, dict) else None
        report = check_stream(body, include_usage=usage)
        problems += [f"{where}: {p}" for p in report.problems]
    return problems


def _text_stream_problems(body: bytes, where: str, request_body: Any, complete: bool
                          ) -> list[str]:
    """A legacy text completion stream: each chunk against the official
    CreateCompletionResponse (with `finish_reason: null` allowed, as OpenAI streams it), the
    whole against the text stream rules."""
    problems: list[str] = []
    for number, data in enumerate(parse(body).data):
        if data == "[DONE]":
            continue
        try:
            payload = json.loads(data)
        except ValueError:
            problems.append(f"{where}: event {number} is neither JSON nor [DONE]: {data[:80]!r}")
            continue
        if isinstance(payload, dict) and "error" in payload:
            problems += _schema_errors("ErrorResponse", payload, f"{where} event {number}")
        else:
            problems += _schema_errors("CreateCompletionResponse", payload,
                                       f"{where} event {number}", stream_chunk=True)
    if complete:
        usage = include_usage_of(request_body) if isinstance(request_body, dict) else None
        report = check_text_stream(body, include_usage=usage, prompts=prompts_of(request_body))
        problems += [f"{where}: {p}" for p in report.problems]
    return problems


def _responses_stream_problems(body: bytes, where: str, complete: bool) -> list[str]:
    """Each event against the official ResponseStreamEvent; a whole stream against the
    Responses stream rules (conformance/responses_stream.py)."""
    problems: list[str] = []
    report = check_responses_stream(body)
    for number, event in enumerate(report.events):
        problems += _schema_errors("ResponseStreamEvent", event, f"{where} event {number}")
    if complete:
        problems += [f"{where}: {p}" for p in report.problems]
    return problems


# ---------------------------------------------------------------------------- the tee


@dataclass
class Exchange:
    """One request the app answered, as far as it went."""

    method: str
    path: str
    started: float
    request_body: bytearray = field(default_factory=bytearray)
    status: int = 0
    content_type: str = ""
    body: bytearray = field(default_factory=bytearray)
    exhausted: bool = False        # the app's body was read to its end
    client_gone: bool = False      # the client had left when the body was closed
    done: threading.Event = field(default_factory=threading.Event)

    def open_problem(self) -> str | None:
        """Why this exchange cannot be judged whole: it was still open when the test ended (a
        stream nobody finished or closed), judged only by the events that had arrived."""
        if self.done.is_set():
            return None
        return (f"{self.method} {self.path} -> {self.status or 'no status yet'}: still open when "
                f"the test ended ({len(self.body)} bytes sent); a test must read or close every "
                f"answer it starts, so that the whole answer is judged")

    def problems(self) -> list[str]:
        request: Any = None
        if self.request_body and len(self.request_body) < MAX_KEPT:
            try:
                request = json.loads(bytes(self.request_body))
            except ValueError:
                pass
        complete = self.done.is_set() and self.exhausted and not self.client_gone \
            and len(self.body) < MAX_KEPT
        return official_problems(self.method, self.path, self.status, self.content_type,
                                 bytes(self.body[:MAX_KEPT]), request_body=request,
                                 complete=complete)


class Recorder:
    """Every exchange of the wrapped apps, drained by the test that caused them."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._exchanges: list[Exchange] = []

    def add(self, exchange: Exchange) -> None:
        with self._lock:
            self._exchanges.append(exchange)

    def drain(self, settle: float = 2.0) -> list[Exchange]:
        """Takes every exchange so far, after giving those in flight `settle` seconds to end
        (a client can have its last byte before the server has closed the body)."""
        deadline = time.monotonic() + settle
        with self._lock:
            taken, self._exchanges = self._exchanges, []
        for exchange in taken:
            exchange.done.wait(max(0.0, deadline - time.monotonic()))
        return taken


class _RecordingInput:
    """`wsgi.input` that keeps a copy of what the app reads."""

    def __init__(self, stream: Any, copy: bytearray) -> None:
        self._stream = stream
        self._copy = copy

    def _keep(self, data: bytes) -> bytes:
        if len(self._copy) < MAX_KEPT:
            self._copy += data[:MAX_KEPT - len(self._copy)]
        return data

    def read(self, *args: Any) -> bytes:
        return self._keep(self._stream.read(*args))

    def readline(self, *args: Any) -> bytes:
        return self._keep(self._stream.readline(*args))

    def readlines(self, *args: Any) -> list[bytes]:
        return [self._keep(line) for line in self._stream.readlines(*args)]

    def __iter__(self) -> Iterator[bytes]:
        return (self._keep(line) for line in self._stream)

    def __getattr__(self, name: str) -> Any:
        return getattr(self._stream, name)


class _TeeBody:
    """The app's response body, passed through chunk by chunk and copied."""

    def __init__(self, body: Iterable[bytes], exchange: Exchange,
                 client_gone: Callable[[], bool]) -> None:
        self._body = body
        self._exchange = exchange
        self._client_gone = client_gone

    def __iter__(self) -> Iterator[bytes]:
        kept = self._exchange.body
        for chunk in self._body:
            if len(kept) < MAX_KEPT:
                kept += chunk[:MAX_KEPT - len(kept)]
            yield chunk
        self._exchange.exhausted = True

    def close(self) -> None:
        try:
            close = getattr(self._body, "close", None)
            if close is not None:
                close()
        finally:
            try:
                self._exchange.client_gone = bool(self._client_gone())
            finally:
                self._exchange.done.set()


class TeeApp:
    """WSGI middleware: the wrapped app, with every exchange given to `recorder`. Other
    attributes (the app's `parts`) are the wrapped app's."""

    def __init__(self, app: Any, recorder: Recorder) -> None:
        self.app = app
        self.recorder = recorder

    def __getattr__(self, name: str) -> Any:
        return getattr(self.app, name)

    def __call__(self, environ: dict, start_response: Callable) -> Iterable[bytes]:
        exchange = Exchange(environ.get("REQUEST_METHOD", ""), environ.get("PATH_INFO", ""),
                            time.monotonic())
        self.recorder.add(exchange)
        if environ.get("wsgi.input") is not None:
            environ["wsgi.input"] = _RecordingInput(environ["wsgi.input"], exchange.request_body)

        def recording_start_response(status: str, headers: list, exc_info: Any = None) -> Any:
            exchange.status = int(status.split()[0])
            exchange.content_type = next((v for k, v in headers if k.lower() == "content-type"),
                                         "")
            return start_response(status, headers, exc_info) if exc_info is not None \
                else start_response(status, headers)

        probe = environ.get("waitress.client_disconnected")
        gone = probe if callable(probe) else (lambda: False)
        try:
            body = self.app(environ, recording_start_response)
        except BaseException:
            exchange.done.set()
            raise
        return _TeeBody(body, exchange, gone)


# ---------------------------------------------------------------------------- pytest plugin


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line("markers", "official_spec_exempt(reason): this test's servers may "
                                       "answer off the official spec on purpose")


def judge(exchanges: list[Exchange], grace: float = OPEN_GRACE) -> list[str]:
    """Every problem of these exchanges. One still open gets `grace` seconds more to end (a
    loaded machine can be slow to close a body whose last byte was read); then it is judged
    whole, or reported as still open."""
    deadline = time.monotonic() + grace
    for exchange in exchanges:
        exchange.done.wait(max(0.0, deadline - time.monotonic()))
    problems = [p for exchange in exchanges for p in exchange.problems()]
    return problems + [p for p in map(Exchange.open_problem, exchanges) if p is not None]


@pytest.fixture(scope="session")
def official_spec_recorder() -> Iterator[Recorder]:
    """Wraps every app `proxy.server.create_server` builds for the whole session."""
    import proxy.server

    recorder = Recorder()
    original = proxy.server.create_app

    def create_recorded_app(*args: Any, **kwargs: Any) -> TeeApp:
        return TeeApp(original(*args, **kwargs), recorder)

    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(proxy.server, "create_app", create_recorded_app)
        yield recorder


@pytest.fixture(autouse=True)
def official_spec_fidelity(request: pytest.FixtureRequest,
                           official_spec_recorder: Recorder) -> Iterator[None]:
    """Fails the test whose servers answered anything the official spec does not allow
    (answers to a shared fixture's own requests count for the first test that uses it)."""
    yield
    exchanges = official_spec_recorder.drain()
    if request.node.get_closest_marker("official_spec_exempt"):
        return
    problems = judge(exchanges)
    if problems:
        shown = "\n  ".join(problems[:20])
        more = f"\n  ... and {len(problems) - 20} more" if len(problems) > 20 else ""
        pytest.fail(f"{len(problems)} answer(s) off the official OpenAI spec "
                    f"({PROFILE} profile) or the stream rules:\n  {shown}{more}", pytrace=False)
