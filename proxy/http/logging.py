"""One log line per request: id, method, path, status, model, timings, tokens. Never content.

A streamed response is logged when its body ends (waitress closes it), so the line has the
real duration, outcome and usage rather than the moment the headers left.
"""

from __future__ import annotations

import json
import logging
import re
import secrets
import time
from typing import Any

import falcon

log = logging.getLogger("claude_max_api.access")

_REQUEST_ID = re.compile(r"^[A-Za-z0-9._:-]{1,128}$")


class RequestLog:
    def __init__(self, log_format: str = "text") -> None:
        self.json = log_format == "json"

    def process_request(self, req: falcon.Request, resp: falcon.Response) -> None:
        req.context.started = time.monotonic()
        incoming = req.get_header("X-Request-Id") or ""
        req.context.request_id = incoming if _REQUEST_ID.match(incoming) else \
            "req_" + secrets.token_hex(12)

    def process_response(self, req: falcon.Request, resp: falcon.Response, resource: Any,
                         req_succeeded: bool) -> None:
        request_id = getattr(req.context, "request_id", None)
        if request_id:
            resp.set_header("X-Request-Id", request_id)
        stream = getattr(req.context, "stream", None)
        if stream is not None and resp.stream is stream:
            stream.on_close = lambda s: self.write(req, resp, s)
        else:
            self.write(req, resp, None)

    def fields(self, req: falcon.Request, resp: falcon.Response, stream: Any) -> dict[str, Any]:
        ctx = req.context
        started = getattr(ctx, "started", time.monotonic())
        out: dict[str, Any] = {
            "request_id": getattr(ctx, "request_id", None),
            "method": req.method, "path": req.path,
            "status": int(str(resp.status).split()[0]) if resp.status else 200,
            "duration_ms": round((time.monotonic() - started) * 1000, 1),
        }
        model = getattr(ctx, "model", None)
        if model:
            out["model"] = model
        run = getattr(ctx, "run", None)
        if run is not None and run.first_output_at is not None:
            out["first_output_ms"] = round((run.first_output_at - started) * 1000, 1)
        usage = getattr(ctx, "usage", None)
        finish = getattr(ctx, "finish_reason", None)
        error = getattr(ctx, "error_code", None)
        if stream is not None:
            out["stream"] = True
            if stream.finished is not None:
                usage, finish = stream.finished.usage, stream.finished.finish_reason
            if stream.error is not None:
                error = stream.error.code
        if finish:
            out["finish_reason"] = finish
        if usage is not None:
            out["prompt_tokens"] = usage.prompt_tokens
            out["completion_tokens"] = usage.output_tokens
        if error:
            out["error"] = error
        return out

    def write(self, req: falcon.Request, resp: falcon.Response, stream: Any) -> None:
        fields = self.fields(req, resp, stream)
        if self.json:
            log.info(json.dumps(fields, separators=(",", ":")))
        else:
            log.info(" ".join(f"{k}={v}" for k, v in fields.items()))
