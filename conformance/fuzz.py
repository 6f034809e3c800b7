"""The fuzz phase: schemathesis generates requests from this project's OpenAPI document
(valid ones and deliberately invalid ones), the suite sends them to the target like any other
probe, and the fuzz checks judge the answers.

Only the OpenAI operations are fuzzed (list and retrieve models, chat completions); the
document's own operations (/health, /metrics) are this project's, not OpenAI's. Valid cases are
pinned to the target's model (otherwise nearly all are a 404) and to at most 16 output tokens
and n <= 2, so fuzzing a real model stays cheap. Generation is derandomized; a recording holds
the generated requests (cassette) and what each was for (metadata), so `--from-cassettes`
replays exactly the requests that were sent, whatever the schemathesis version.
"""

from __future__ import annotations

import copy
import functools
import json
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Iterator

from conformance.exchange import Exchange, Request

if TYPE_CHECKING:
    from conformance.checks.base import Context

OPERATIONS = ("listModels", "retrieveModel", "createChatCompletion")
MAX_FUZZ_TOKENS = 16
MAX_FUZZ_N = 2
API_PREFIX = "/v1"


@dataclass
class FuzzCase:
    probe: str
    operation: str
    mode: str            # "positive" (valid for the document) or "negative"
    request: Request
    exchange: Exchange | None = None

    def to_meta(self) -> dict[str, Any]:
        # The request itself is in the cassette; the metadata only says what it was for.
        return {"probe": self.probe, "operation": self.operation, "mode": self.mode}

    @classmethod
    def from_meta(cls, data: dict[str, Any], request: Request) -> "FuzzCase":
        return cls(data["probe"], data["operation"], data["mode"], request)


@dataclass
class FuzzRun:
    cases: list[FuzzCase]
    notes: list[str]

    def answered(self) -> Iterator[tuple[FuzzCase, Exchange]]:
        for case in self.cases:
            if case.exchange is not None:
                yield case, case.exchange


def run_fuzz(ctx: "Context") -> FuzzRun:
    if ctx.options.fuzz_examples <= 0:
        from conformance.checks.base import skip
        skip("fuzzing is turned off (--fuzz-examples 0)")
    if ctx.fuzz_replay is not None:
        cases, notes = [FuzzCase.from_meta(d, ctx.fuzz_replay_requests[d["probe"]])
                        for d in ctx.fuzz_replay
                        if d["probe"] in ctx.fuzz_replay_requests], ["replayed"]
    else:
        cases, notes = generate(ctx.model or "", ctx.options.fuzz_examples)
    for case in cases:
        case.exchange = ctx.client.send(case.request)
    return FuzzRun(cases, notes)


def generate(model: str, examples: int) -> tuple[list[FuzzCase], list[str]]:
    """Cases for every fuzzed operation, `examples` per generation mode, pinned to `model`."""
    from proxy.contract.validation import RequestValidator

    drawn, notes = _drawn(examples)
    validator = RequestValidator()
    cases: list[FuzzCase] = []
    seen: set[tuple[str, bytes | None]] = set()
    for raw in drawn:
        case = _request(raw, model, validator)
        key = (case.request.path, case.request.body)
        if key in seen:
            continue
        seen.add(key)
        case.probe = f"fuzz.{case.operation}.{case.mode}.{len(seen)}"
        case.request = Request(case.probe, case.request.method, case.request.path,
                               case.request.body, case.request.content_type)
        cases.append(case)
    return cases, list(notes)


@dataclass(frozen=True)
class _Drawn:
    operation: str
    mode: str
    method: str
    path: str
    body: Any            # a JSON value, bytes, or None
    media_type: str | None


@functools.lru_cache(maxsize=4)
def _drawn(examples: int) -> tuple[tuple[_Drawn, ...], tuple[str, ...]]:
    """What schemathesis generates (derandomized, so the same every time); cached because it
    takes seconds and does not depend on the target."""
    import schemathesis
    from hypothesis import HealthCheck, Phase, given, settings
    from schemathesis import GenerationMode

    from proxy.contract.document import load_document

    _quiet_hypothesis_home()
    schema = schemathesis.openapi.from_dict(load_document())
    drawn: list[_Drawn] = []
    notes: list[str] = []
    for result in schema.get_all_operations():
        operation = result.ok()
        operation_id = operation.definition.raw.get("operationId")
        if operation_id not in OPERATIONS:
            continue
        for mode in (GenerationMode.POSITIVE, GenerationMode.NEGATIVE):
            found: list[Any] = []
            count = 1 if operation_id == "listModels" and mode == GenerationMode.POSITIVE \
                else examples

            @settings(max_examples=count, derandomize=True, database=None, deadline=None,
                      phases=[Phase.generate], suppress_health_check=list(HealthCheck))
            @given(operation.as_strategy(generation_mode=mode))
            def collect(case: Any) -> None:
                found.append(case)

            try:
                collect()
            except Exception as exc:  # e.g. an operation with nothing to negate
                notes.append(f"{operation_id} {mode.value}: no cases ({type(exc).__name__})")
                continue
            for case in found:
                if any(str(v) == "" for v in (case.path_parameters or {}).values()):
                    continue   # /models/ is another route, not an unknown model
                path = case.formatted_path   # parameters already percent-encoded
                if not path.startswith(API_PREFIX + "/"):
                    continue
                body = case.body if operation_id == "createChatCompletion" else None
                drawn.append(_Drawn(operation_id, mode.value, case.method.upper(),
                                    path[len(API_PREFIX):], body, case.media_type))
    return tuple(drawn), tuple(notes)


def _quiet_hypothesis_home() -> None:
    """Hypothesis caches data in ./.hypothesis; keep it out of the user's working directory."""
    import os
    import tempfile

    from hypothesis.configuration import set_hypothesis_home_dir

    base = os.environ.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"), ".cache")
    home = os.path.join(base, "claude-max-api", "hypothesis")
    try:
        os.makedirs(home, exist_ok=True)
    except OSError:
        home = os.path.join(tempfile.gettempdir(), "claude-max-api-hypothesis")
    set_hypothesis_home_dir(home)


def _request(raw: _Drawn, model: str, validator: Any) -> FuzzCase:
    mode = raw.mode
    body: bytes | None = None
    content_type = None
    if raw.body is not None:
        payload = copy.deepcopy(raw.body)
        if isinstance(payload, dict):
            payload = _pin(payload, model, mode)
        content_type = raw.media_type or "application/json"
        if isinstance(payload, (bytes, bytearray)):
            body = bytes(payload)
        else:
            body = json.dumps(payload, ensure_ascii=True).encode()
        if mode == "negative" and isinstance(payload, dict) \
                and validator.validate("CreateChatCompletionRequest", payload) is None:
            mode = "positive"   # the negation did not survive pinning or serialization
    request = Request("fuzz", raw.method, raw.path, body, content_type)
    return FuzzCase("fuzz", raw.operation, mode, request)


def _pin(body: dict[str, Any], model: str, mode: str) -> dict[str, Any]:
    if isinstance(body.get("model"), str):
        body["model"] = model
    if mode == "positive":
        for key in ("max_tokens", "max_completion_tokens"):
            value = body.get(key)
            if isinstance(value, int) and not isinstance(value, bool):
                body[key] = min(value, MAX_FUZZ_TOKENS)
        if not isinstance(body.get("max_tokens"), int) \
                and not isinstance(body.get("max_completion_tokens"), int):
            body["max_tokens"] = MAX_FUZZ_TOKENS
        if isinstance(body.get("n"), int) and not isinstance(body.get("n"), bool):
            body["n"] = min(body["n"], MAX_FUZZ_N)
    return body
