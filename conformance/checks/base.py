"""What a check is, what it can ask for (the `Context`), and the helpers checks share.

A check is a function decorated with `@check(...)`: it returns nothing (or a short note) when
the server conforms, and raises `CheckFailed` (via `fail()`) or `CheckSkipped` (via `skip()`)
otherwise. Checks never send requests themselves: they ask the context for a probe's
exchange, so an exchange several checks judge is sent once and recorded once.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Callable, NoReturn

from conformance.exchange import Exchange
from conformance.probes import PROBES, stop_word

if TYPE_CHECKING:
    from conformance.client import Client
    from conformance.fuzz import FuzzRun
    from conformance.target import Target

LEVELS = ("must", "should")
AREAS = {
    "models": "Model list and retrieve",
    "completion": "The chat.completion object",
    "streaming": "Streaming (SSE framing and chunks)",
    "parameters": "Request parameters",
    "content": "Content parts, roles and unicode",
    "reasoning": "Reasoning: reasoning_effort, reasoning_content, reasoning tokens",
    "errors": "Errors and the OpenAI error envelope",
    "headers": "Headers and authentication",
    "legacy": "Legacy completions (POST /completions)",
    "tools": "Tool calling (tools, tool_choice, results)",
    "structured": "Structured outputs (response_format)",
    "responses": "The Responses API (/responses)",
    "fuzz": "Fuzzing from the OpenAPI document (schemathesis)",
}


class CheckFailed(Exception):
    pass


class CheckSkipped(Exception):
    pass


class CheckCannotRun(Exception):
    """The check cannot run at all (e.g. no model to ask for): an error, never a pass or skip."""


def fail(message: str) -> NoReturn:
    raise CheckFailed(message)


def skip(reason: str) -> NoReturn:
    raise CheckSkipped(reason)


@dataclass(frozen=True)
class Check:
    id: str
    area: str
    level: str
    title: str          # one line: what is checked
    protects: str       # the spec clause or the client behaviour it protects
    run: Callable[["Context"], str | None] = field(compare=False, repr=False)

    def __call__(self, ctx: "Context") -> str | None:
        return self.run(ctx)

    def describe(self) -> dict[str, str]:
        return {"id": self.id, "area": self.area, "level": self.level, "title": self.title,
                "protects": self.protects}


def check(area: str) -> Callable[..., Callable[[Callable[["Context"], str | None]], Check]]:
    """`check = check("models")` in an area module, then `@check("models.list.shape", ...)`."""
    if area not in AREAS:
        raise ValueError(f"unknown area {area!r}")

    def define(check_id: str, *, level: str, title: str, protects: str
               ) -> Callable[[Callable[["Context"], str | None]], Check]:
        if level not in LEVELS:
            raise ValueError(f"{check_id}: level must be one of {LEVELS}")

        def wrap(fn: Callable[["Context"], str | None]) -> Check:
            return Check(check_id, area, level, title, protects, fn)
        return wrap
    return define


# ---------------------------------------------------------------------------- context


@dataclass
class RunOptions:
    oversized_bytes: int = 16 * 1024 * 1024
    fuzz_examples: int = 20          # per generation mode and operation; 0 turns fuzzing off
    timeout: float = 120.0


class Context:
    """Everything a check may use: the target, the model and the probes' exchanges."""

    def __init__(self, target: "Target", client: "Client", options: RunOptions,
                 fuzz_replay: list[dict[str, Any]] | None = None,
                 fuzz_replay_requests: dict[str, Any] | None = None) -> None:
        self.target = target
        self.client = client
        self.options = options
        self.model: str | None = target.model
        self.fuzz_replay = fuzz_replay                        # recorded fuzz cases, if replaying
        self.fuzz_replay_requests = fuzz_replay_requests or {}  # their requests, by probe
        self._exchanges: dict[str, Exchange] = {}
        self._fuzz: "FuzzRun | None" = None
        self.used: list[str] = []

    def exchange(self, probe: str) -> Exchange:
        if probe not in self.used:
            self.used.append(probe)
        found = self._exchanges.get(probe)
        if found is None:
            if probe != "models.list" and self.model is None:
                raise CheckCannotRun("no model to test: pass --model (GET /models listed none)")
            found = self.client.send(PROBES[probe](self))
            self._exchanges[probe] = found
        return found

    def exchanges(self) -> dict[str, Exchange]:
        return dict(self._exchanges)

    def stop_word(self) -> str:
        """A stop sequence the model will produce: taken from its answer to the count probe."""
        ex = self.exchange("chat.count")
        if ex.status != 200:
            skip(f"the counting prompt failed ({_status(ex)}), so no stop sequence can be chosen")
        try:
            text = content_of(ex.json)
        except (ValueError, LookupError, TypeError):
            skip("the answer to the counting prompt has no message content")
        word = stop_word(text)
        if word is None:
            skip(f"the model's answer to the counting prompt is too short to pick a stop "
                 f"sequence from: {text!r}")
        return word

    @property
    def fuzz_run(self) -> "FuzzRun | None":
        """The fuzz phase's cases, if it ran."""
        return self._fuzz

    def fuzz(self) -> "FuzzRun":
        if self._fuzz is None:
            from conformance.fuzz import run_fuzz
            if self.model is None:
                raise CheckCannotRun("no model to test: pass --model (GET /models listed none)")
            self._fuzz = run_fuzz(self)
        return self._fuzz


# ---------------------------------------------------------------------------- helpers


def _status(ex: Exchange) -> str:
    return f"transport error: {ex.error}" if ex.error else f"HTTP {ex.status}"


def excerpt(ex: Exchange, limit: int = 300) -> str:
    text = ex.text.strip()
    return text if len(text) <= limit else text[:limit] + "..."


def require(ex: Exchange, status: int = 200, media_type: str | None = "application/json"
            ) -> Exchange:
    """The exchange answered `status` with `media_type`, else the check fails."""
    probe = ex.request.probe
    if ex.error:
        fail(f"{probe}: transport error: {ex.error}")
    if ex.status != status:
        fail(f"{probe}: expected HTTP {status}, got {ex.status}: {excerpt(ex)}")
    if media_type and ex.media_type != media_type:
        fail(f"{probe}: expected Content-Type {media_type}, got "
             f"{ex.content_type or 'none'}")
    return ex


def json_object(ex: Exchange) -> dict[str, Any]:
    try:
        value = ex.json
    except ValueError as exc:
        fail(f"{ex.request.probe}: the body is not JSON ({exc}): {excerpt(ex)}")
    if not isinstance(value, dict):
        fail(f"{ex.request.probe}: the body is JSON but not an object: {excerpt(ex)}")
    return value


def completion(ctx: Context, probe: str) -> dict[str, Any]:
    """The chat.completion object a probe got (the check fails if there is none)."""
    return json_object(require(ctx.exchange(probe)))


def content_of(obj: dict[str, Any], index: int = 0) -> str:
    content = obj["choices"][index]["message"]["content"]
    if not isinstance(content, str):
        raise TypeError("content is not a string")
    return content


def finish_reasons(obj: dict[str, Any]) -> list[Any]:
    return [c.get("finish_reason") for c in obj.get("choices") or [] if isinstance(c, dict)]


@dataclass
class Stream:
    exchange: Exchange
    payloads: list[str]             # every event's data, [DONE] included
    chunks: list[dict[str, Any]]    # the JSON objects, in order (error objects included)

    @property
    def done_index(self) -> int | None:
        return self.payloads.index("[DONE]") if "[DONE]" in self.payloads else None

    def text(self, index: int = 0) -> str:
        parts = []
        for chunk in self.chunks:
            for choice in chunk.get("choices") or []:
                if isinstance(choice, dict) and choice.get("index", 0) == index:
                    content = (choice.get("delta") or {}).get("content")
                    if isinstance(content, str):
                        parts.append(content)
        return "".join(parts)

    def choice_chunks(self) -> list[dict[str, Any]]:
        return [c for c in self.chunks if c.get("choices")]


def stream(ctx: Context, probe: str) -> Stream:
    """The parsed SSE stream a probe got: HTTP 200, `text/event-stream`, JSON chunks."""
    ex = require(ctx.exchange(probe), 200, "text/event-stream")
    payloads = ex.stream.data
    chunks = []
    for number, data in enumerate(payloads):
        if data == "[DONE]":
            continue
        try:
            value = json.loads(data)
        except ValueError:
            fail(f"{probe}: event {number} is neither JSON nor [DONE]: {data[:200]!r}")
        if not isinstance(value, dict):
            fail(f"{probe}: event {number} is JSON but not an object: {data[:200]!r}")
        chunks.append(value)
    if not chunks:
        fail(f"{probe}: the stream has no JSON chunks: {excerpt(ex)}")
    return Stream(ex, payloads, chunks)


def error_envelope(ex: Exchange, statuses: tuple[int, ...] | None = None,
                   low: int = 400, high: int = 499) -> dict[str, Any]:
    """The answer is an error with a status in `statuses` (or low..high), as JSON in OpenAI's
    envelope: `{"error": {"message", "type", "param", "code"}}` with all four keys."""
    from conformance.schemas import SchemasUnavailable, official_errors

    probe = ex.request.probe
    if ex.error:
        fail(f"{probe}: transport error instead of an error response: {ex.error}")
    wanted = statuses or ()
    if (statuses and ex.status not in statuses) or (
            not statuses and not low <= (ex.status or 0) <= high):
        expected = " or ".join(map(str, wanted)) if wanted else f"{low}-{high}"
        fail(f"{probe}: expected HTTP {expected}, got {ex.status}: {excerpt(ex)}")
    if ex.media_type != "application/json":
        fail(f"{probe}: the error is {ex.content_type or 'untyped'}, not application/json: "
             f"{excerpt(ex)}")
    body = json_object(ex)
    try:
        problems = official_errors("ErrorResponse", body, "strict")
    except SchemasUnavailable:
        problems = [] if isinstance(body.get("error"), dict) else ["error: not an object"]
    if problems:
        fail(f"{probe}: not the OpenAI error envelope ({'; '.join(problems)}): {excerpt(ex)}")
    error = body["error"]
    if not str(error.get("message") or "").strip():
        fail(f"{probe}: error.message is empty")
    return error
