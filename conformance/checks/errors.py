"""Bad requests get the right status and OpenAI's error envelope
(`{"error": {"message", "type", "param", "code"}}`), never a 5xx, HTML or a dropped connection."""

from __future__ import annotations

from conformance.checks.base import Context, check, error_envelope, excerpt, fail, skip

check = check("errors")

_INVALID_REQUESTS = ("errors.malformed_json", "errors.missing_messages", "errors.empty_messages",
                     "errors.bad_role", "errors.wrong_type")


@check("errors.malformed_json", level="must",
       title="A body that is not valid JSON gets 400 in the error envelope",
       protects="ErrorResponse; SDKs raise BadRequestError with the server's message")
def malformed_json(ctx: Context) -> None:
    error_envelope(ctx.exchange("errors.malformed_json"), (400,))


@check("errors.content_type", level="should",
       title="A JSON body sent as text/plain is refused with 400 or 415 in the error envelope",
       protects="a local server must not act on 'simple' cross-origin requests: browsers send "
                "text/plain POSTs from any web page without a CORS preflight")
def content_type(ctx: Context) -> None:
    ex = ctx.exchange("errors.content_type")
    if ex.status == 200:
        fail("a text/plain body was processed as a chat completion")
    error_envelope(ex, (400, 415))


@check("errors.missing_messages", level="must",
       title="A request without messages gets 400 in the error envelope",
       protects="messages is required in CreateChatCompletionRequest")
def missing_messages(ctx: Context) -> None:
    error_envelope(ctx.exchange("errors.missing_messages"), (400,))


@check("errors.param_named", level="should",
       title="The 400 for a missing messages field names it: param is 'messages'",
       protects="Error.param; clients and users find the faulty field from it")
def param_named(ctx: Context) -> None:
    error = error_envelope(ctx.exchange("errors.missing_messages"), (400,))
    if error.get("param") != "messages":
        fail(f"param is {error.get('param')!r}, not 'messages'")


@check("errors.empty_messages", level="must",
       title="messages: [] gets 400 in the error envelope",
       protects="messages has minItems 1")
def empty_messages(ctx: Context) -> None:
    error_envelope(ctx.exchange("errors.empty_messages"), (400,))


@check("errors.bad_role", level="must",
       title="A message with an unknown role gets 400 in the error envelope",
       protects="ChatCompletionRequestMessage is a oneOf over known roles")
def bad_role(ctx: Context) -> None:
    error_envelope(ctx.exchange("errors.bad_role"), (400,))


@check("errors.wrong_type", level="must",
       title="messages given as a string instead of an array gets 400 in the error envelope",
       protects="request schema types; a 500 here means the server trusted unvalidated input")
def wrong_type(ctx: Context) -> None:
    error_envelope(ctx.exchange("errors.wrong_type"), (400,))


@check("errors.invalid_request_type", level="should",
       title="400 errors have type invalid_request_error",
       protects="Error.type values OpenAI uses; clients branch on it")
def invalid_request_type(ctx: Context) -> str:
    judged = 0
    for probe in _INVALID_REQUESTS:
        ex = ctx.exchange(probe)
        if ex.status != 400:
            continue   # the status is the business of the probe's own check
        error = error_envelope(ex, (400,))
        judged += 1
        if error.get("type") != "invalid_request_error":
            fail(f"{probe}: type is {error.get('type')!r}, not 'invalid_request_error'")
    if not judged:
        skip("none of the invalid requests was answered with 400")
    return f"{judged} errors"


@check("errors.unknown_model.status", level="must",
       title="An unknown model gets 404 in the error envelope",
       protects="OpenAI answers 404 for a model that does not exist; SDKs raise NotFoundError "
                "and routers fall back on it")
def unknown_model_status(ctx: Context) -> None:
    ex = ctx.exchange("errors.unknown_model")
    if ex.status == 200:
        fail("an unknown model was answered with 200 (served by some other model?)")
    error_envelope(ex, (404,))


@check("errors.unknown_model.code", level="should",
       title="The unknown-model error has code model_not_found",
       protects="Error.code 'model_not_found', which clients match on")
def unknown_model_code(ctx: Context) -> None:
    ex = ctx.exchange("errors.unknown_model")
    if ex.status == 200:
        fail("an unknown model was answered with 200")
    error = error_envelope(ex, low=400, high=499)
    if error.get("code") != "model_not_found":
        fail(f"code is {error.get('code')!r}, not 'model_not_found'")


@check("errors.unknown_model.stream", level="must",
       title="With stream: true an unknown model still gets a real HTTP 4xx error, not a 200 "
             "event stream",
       protects="SDKs check the status before reading the stream; a 200 with an error event "
                "hides the failure")
def unknown_model_stream(ctx: Context) -> None:
    ex = ctx.exchange("errors.unknown_model_stream")
    if ex.status == 200:
        fail(f"answered 200 {ex.content_type}: {excerpt(ex)}")
    error_envelope(ex, low=400, high=499)


@check("errors.oversized_body", level="must",
       title="A very large body (16 MiB by default) gets 413 or 400 in the error envelope, not "
             "a crash or a dropped connection",
       protects="413 Payload Too Large / context_length_exceeded; servers must bound what "
                "they read")
def oversized_body(ctx: Context) -> None:
    error_envelope(ctx.exchange("errors.oversized"), (400, 413))


@check("errors.unknown_route", level="should",
       title="An unknown path gets 404 in the error envelope",
       protects="clients probing optional endpoints (e.g. /v1/responses) need a clean 404")
def unknown_route(ctx: Context) -> None:
    error_envelope(ctx.exchange("errors.unknown_route"), (404,))


@check("errors.wrong_method", level="should",
       title="GET on /chat/completions gets 404 or 405 in the error envelope",
       protects="method errors in the same envelope as every other error")
def wrong_method(ctx: Context) -> None:
    error_envelope(ctx.exchange("errors.wrong_method"), (404, 405))
