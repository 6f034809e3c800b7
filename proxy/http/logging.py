"""One log line per request: id, method, path, status, model, timings, tokens. Never content
(prompt and completion text only with `log_content`, an explicit opt-in).

A streamed response is logged when its body ends (waitress closes it), so the line has the
real duration, outcome and usage rather than the moment the headers left. The same fields feed
the metrics (`observe`), so the log and /metrics always agree.
"""

from __future__ import annotations

import json
import logging
import re
import secrets
import sys
import time
from typing import Any, Callable, TextIO

import falcon

log = logging.getLogger("claude_max_api.access")

_REQUEST_ID = re.compile(r"^[A-Za-z0-9._:-]{1,128}$")


Observer = Callable[[falcon.Request, dict[str, Any]], None]


class RequestLog:
    def __init__(self, log_format: str = "text", *, log_content: bool = False,
                 observe: Observer | None = None) -> None:
        self.json = log_format == "json"
        self.log_content = log_content
        self.observe = observe

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
        key = getattr(ctx, "api_key_name", None)
        if key:  # the key's name; the key itself is never logged
            out["key"] = key
        model = getattr(ctx, "model", None)
        if model:
            out["model"] = model
        run = getattr(ctx, "run", None)
        fallback = getattr(getattr(run, "translator", None), "fallback", None)
        if fallback:  # the response keeps the requested name; the log says who answered
            out["fallback_model"] = fallback.get("fallback_model")
        if run is not None and run.first_output_at is not None:
            out["first_output_ms"] = round((run.first_output_at - started) * 1000, 1)
        if run is not None and getattr(run, "first_text_at", None) is not None:
            out["first_token_ms"] = round((run.first_text_at - started) * 1000, 1)
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
            out["cached_tokens"] = getattr(usage, "cache_read_input_tokens", 0)
            out["completion_tokens"] = usage.output_tokens
        if error:
            out["error"] = error
        if self.log_content:
            out.update(_content(req, resp, stream))
        return out

    def write(self, req: falcon.Request, resp: falcon.Response, stream: Any) -> None:
        fields = self.fields(req, resp, stream)
        if self.json:
            message = json.dumps(fields, separators=(",", ":"))
        else:
            message = " ".join(f"{k}={_text_value(v)}" for k, v in fields.items())
        log.info(message, extra={"fields": fields})
        if self.observe is not None:
            try:
                self.observe(req, fields)
            except Exception:  # metrics must never break a response
                log.exception("recording metrics failed")


# Printable ASCII but space, `"` and `=`: such a value can neither split the line nor fake a field.
_PLAIN = re.compile(r'[!#-<>-~]+')


def _text_value(value: Any) -> str:
    # Anything else is quoted (a path may hold %0A, spaces; ASCII escapes rule out U+2028 too).
    text = str(value)
    if isinstance(value, str) and not _PLAIN.fullmatch(text):
        return json.dumps(text)
    return text


def _content(req: falcon.Request, resp: falcon.Response, stream: Any) -> dict[str, Any]:
    """Prompt and completion text, for `log_content` only."""
    out: dict[str, Any] = {}
    prompt = getattr(req.context, "prompt", None)
    if prompt is not None:
        if prompt.system:
            out["system_prompt"] = prompt.system
        out["prompt"] = "\n\n".join(prompt.blocks)
    if stream is not None:
        text = getattr(stream, "text", None)
        if text is not None:
            out["completion"] = "".join(text)
    elif isinstance(resp.media, dict) and resp.media.get("object") == "chat.completion":
        choices = resp.media.get("choices") or [{}]
        out["completion"] = (choices[0].get("message") or {}).get("content")
    elif isinstance(resp.media, dict) and resp.media.get("object") == "text_completion":
        out["completion"] = "\n\n".join(c.get("text") or "" for c in resp.media["choices"])
    elif isinstance(resp.media, dict) and resp.media.get("object") == "response" \
            and req.method == "POST":  # the Responses API: the text of its message items
        out["completion"] = "".join(
            part.get("text", "") for item in resp.media.get("output") or []
            if item.get("type") == "message" for part in item.get("content") or [])
    return out


class JSONFormatter(logging.Formatter):
    """One JSON object per line: ts, level, logger and either a request's fields or message."""

    def format(self, record: logging.LogRecord) -> str:
        out: dict[str, Any] = {
            "ts": time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(record.created))
                  + f".{int(record.msecs):03d}Z",
            "level": record.levelname.lower(), "logger": record.name}
        fields = getattr(record, "fields", None)
        if isinstance(fields, dict):
            out.update(fields)
        else:
            out["message"] = record.getMessage()
        if record.exc_info:
            out["exception"] = self.formatException(record.exc_info)
        return json.dumps(out, default=str)


def configure_logging(log_format: str = "text", stream: TextIO | None = None) -> None:
    """Sets the root handler's format: JSON lines for `json`, else `time level logger message`."""
    root = logging.getLogger()
    if not root.handlers:
        root.addHandler(logging.StreamHandler(stream or sys.stderr))
    formatter = JSONFormatter() if log_format == "json" else \
        logging.Formatter("%(asctime)s %(levelname)s %(name)s %(message)s")
    for handler in root.handlers:
        handler.setFormatter(formatter)
    root.setLevel(min(root.level or logging.INFO, logging.INFO))
