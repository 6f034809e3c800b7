"""Response headers and authentication."""

from __future__ import annotations

from conformance.checks.base import Context, check, error_envelope, fail, require, skip

check = check("headers")


@check("headers.json_content_type", level="must",
       title="JSON answers (model list, completion, error) say Content-Type: application/json",
       protects="SDKs parse by content type; text/html or text/plain bodies surface as "
                "opaque errors")
def json_content_type(ctx: Context) -> None:
    for probe in ("models.list", "chat.basic", "errors.missing_messages"):
        ex = ctx.exchange(probe)
        if ex.error:
            fail(f"{probe}: transport error: {ex.error}")
        if ex.media_type != "application/json":
            fail(f"{probe}: Content-Type is {ex.content_type or 'missing'!r}")


@check("headers.sse_no_cache", level="should",
       title="Event streams are sent with Cache-Control: no-cache (or no-store)",
       protects="SSE through proxies and CDNs: a cached or buffered stream arrives all at once")
def sse_no_cache(ctx: Context) -> None:
    ex = require(ctx.exchange("chat.stream"), 200, "text/event-stream")
    value = ex.headers.get("cache-control", "").lower()
    if "no-cache" not in value and "no-store" not in value:
        fail(f"Cache-Control is {value or 'missing'!r}")


@check("headers.request_id", level="should",
       title="Completions carry an x-request-id header",
       protects="OpenAI's x-request-id; the openai SDK exposes it as _request_id for support "
                "and log correlation")
def request_id(ctx: Context) -> None:
    ex = require(ctx.exchange("chat.basic"))
    if not ex.headers.get("x-request-id"):
        fail("no x-request-id header")


def _auth(ctx: Context, probe: str) -> None:
    if not ctx.target.api_key:
        skip("the target was given no API key, so whether it enforces one is not tested")
    ex = ctx.exchange(probe)
    if ex.status == 200:
        fail("the request was served without a valid API key")
    error_envelope(ex, (401,))


@check("headers.auth.missing_key", level="must",
       title="A server configured with a key answers 401 in the error envelope to a request "
             "without one",
       protects="AuthenticationError (401); SDKs tell a bad key from other failures by it")
def auth_missing(ctx: Context) -> None:
    _auth(ctx, "auth.missing_key")


@check("headers.auth.wrong_key", level="must",
       title="A wrong key gets 401 in the error envelope",
       protects="AuthenticationError (401)")
def auth_wrong(ctx: Context) -> None:
    _auth(ctx, "auth.wrong_key")
