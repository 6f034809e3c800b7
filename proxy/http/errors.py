"""Every error the server returns, in OpenAI's shape: `{"error": {message, type, param, code}}`.

Covers the proxy's own errors, Falcon's (unknown route, wrong method, ...) and anything
unexpected, which becomes a 500 in the same shape (and a traceback in the log), never
Falcon's default HTML or a dropped connection.
"""

from __future__ import annotations

import json
import logging

import falcon

from proxy.errors import ProxyError

log = logging.getLogger("claude_max_api")

_FALCON_CODES = {404: "not_found", 405: "method_not_allowed", 413: "request_too_large",
                 415: "unsupported_media_type", 431: "headers_too_large"}


def error_json(error: ProxyError) -> bytes:
    return json.dumps(error.body(), ensure_ascii=False).encode("utf-8")


def _serialize(req: falcon.Request, resp: falcon.Response, exc: falcon.HTTPError) -> None:
    status = exc.status_code
    if status == 404:
        message = f"Invalid URL ({req.method} {req.path})"
    elif status == 405:
        message = f"Method {req.method} is not allowed on {req.path}."
    else:
        message = exc.title + (f": {exc.description}" if exc.description else "")
    error = ProxyError(status, message, code=_FALCON_CODES.get(status))
    resp.content_type = falcon.MEDIA_JSON
    resp.data = error_json(error)


def apply_error(resp: falcon.Response, error: ProxyError) -> None:
    resp.status = error.status_line
    resp.content_type = falcon.MEDIA_JSON
    resp.data = error_json(error)
    for name, value in error.response_headers().items():
        resp.set_header(name, value)


def _handle_proxy_error(req: falcon.Request, resp: falcon.Response, exc: ProxyError,
                        params: dict) -> None:
    apply_error(resp, exc)
    req.context.error_code = exc.code


def _handle_unexpected(req: falcon.Request, resp: falcon.Response, exc: Exception,
                       params: dict) -> None:
    log.exception("unexpected error in %s %s", req.method, req.path)
    apply_error(resp, ProxyError(500, f"Internal error ({type(exc).__name__}); see the server log.",
                                 code="internal_error"))
    req.context.error_code = "internal_error"


def install(app: falcon.App) -> None:
    app.set_error_serializer(_serialize)
    app.add_error_handler(Exception, _handle_unexpected)
    app.add_error_handler(ProxyError, _handle_proxy_error)
