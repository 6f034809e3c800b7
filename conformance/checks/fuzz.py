"""Checks over the fuzz phase (conformance/fuzz.py): requests schemathesis generated from this
project's OpenAPI document, valid and invalid, sent to the target."""

from __future__ import annotations

from conformance.checks.base import Context, check, excerpt, fail, skip
from conformance.exchange import Exchange
from conformance.fuzz import FuzzCase
from conformance.schemas import official_errors
from proxy.contract.validation import sse_data_kind

check = check("fuzz")

_SUCCESS_SCHEMA = {"listModels": "ListModelsResponse", "retrieveModel": "Model",
                   "createChatCompletion": "CreateChatCompletionResponse"}


def _show(case: FuzzCase, ex: Exchange) -> str:
    body = (case.request.body or b"")[:160]
    answer = f"transport error: {ex.error}" if ex.error else f"{ex.status}: {excerpt(ex, 160)}"
    return f"{case.probe} {case.request.method} {case.request.path} {body!r} -> {answer}"


def _report(bad: list[str], total: int) -> None:
    if bad:
        fail(f"{len(bad)} of {total} cases: " + " | ".join(bad[:3]))


@check("fuzz.no_server_errors", level="must",
       title="No generated request, valid or invalid, gets a 5xx or a dropped connection",
       protects="robustness: a server error on client input is a bug, whatever the input")
def no_server_errors(ctx: Context) -> str:
    run = ctx.fuzz()
    answered = list(run.answered())
    if not answered:
        skip("no fuzz cases were generated")
    bad = [_show(c, ex) for c, ex in answered if ex.error or (ex.status or 0) >= 500]
    _report(bad, len(answered))
    return f"{len(answered)} cases"


def _success_problems(case: FuzzCase, ex: Exchange) -> list[str]:
    if ex.media_type == "text/event-stream" and case.operation == "createChatCompletion":
        parsed = ex.stream
        problems = list(parsed.problems[:2])
        if not parsed.data or parsed.data[-1] != "[DONE]":
            problems.append("the stream does not end with [DONE]")
        for data in parsed.data:
            try:
                kind = sse_data_kind(data)
            except ValueError:
                problems.append(f"event data is not JSON: {data[:80]!r}")
                continue
            if kind:
                problems += official_errors(*kind, "lenient", 2)
        return problems
    if ex.media_type != "application/json":
        return [f"Content-Type {ex.content_type or 'missing'}"]
    try:
        body = ex.json
    except ValueError:
        return ["the body is not JSON"]
    return official_errors(_SUCCESS_SCHEMA[case.operation], body, "lenient", 2)


@check("fuzz.response_schema", level="must",
       title="Every 2xx answer to a generated request validates against the official schema "
             "(JSON bodies and every SSE chunk)",
       protects="response schemas hold for all accepted inputs, not just the happy path")
def response_schema(ctx: Context) -> str:
    run = ctx.fuzz()
    ok = [(c, ex) for c, ex in run.answered() if ex.status is not None and 200 <= ex.status < 300]
    if not ok:
        skip("no generated request was answered with 2xx")
    bad = []
    for case, ex in ok:
        problems = _success_problems(case, ex)
        if problems:
            bad.append(f"{case.probe}: {'; '.join(problems[:2])}")
    _report(bad, len(ok))
    return f"{len(ok)} successful answers"


@check("fuzz.error_envelope", level="must",
       title="Every 4xx/5xx answer to a generated request is JSON in the OpenAI error envelope",
       protects="ErrorResponse for every error, including ones from the framework or validator")
def error_envelope(ctx: Context) -> str:
    run = ctx.fuzz()
    errors = [(c, ex) for c, ex in run.answered() if ex.status is not None and ex.status >= 400]
    if not errors:
        skip("no generated request was answered with an error")
    bad = []
    for case, ex in errors:
        if ex.media_type != "application/json":
            bad.append(_show(case, ex))
            continue
        try:
            problems = official_errors("ErrorResponse", ex.json, "strict", 2)
        except ValueError:
            problems = ["not JSON"]
        if problems:
            bad.append(f"{case.probe}: {ex.status} {'; '.join(problems)}: {excerpt(ex, 120)}")
    _report(bad, len(errors))
    return f"{len(errors)} error answers"


@check("fuzz.rejects_invalid", level="should",
       title="Requests that violate the schema are rejected with 4xx",
       protects="request validation: accepting an invalid request means guessing what the "
                "client meant")
def rejects_invalid(ctx: Context) -> str:
    run = ctx.fuzz()
    negative = [(c, ex) for c, ex in run.answered() if c.mode == "negative" and ex.status]
    if not negative:
        skip("no invalid requests were generated")
    bad = [_show(c, ex) for c, ex in negative if not 400 <= ex.status < 500]
    _report(bad, len(negative))
    return f"{len(negative)} invalid requests"
