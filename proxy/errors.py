"""The proxy's one error type, shaped like OpenAI's error object.

Raised anywhere below the HTTP layer (rendering, the CLI backend, runners); the HTTP layer
turns it into a response (`{"error": {...}}` with the status) or, mid-stream, an SSE event.
"""

from __future__ import annotations

from typing import Any

_REASONS = {
    400: "Bad Request", 401: "Unauthorized", 403: "Forbidden", 404: "Not Found",
    405: "Method Not Allowed", 408: "Request Timeout", 413: "Payload Too Large",
    415: "Unsupported Media Type", 429: "Too Many Requests", 431: "Request Header Fields Too Large",
    500: "Internal Server Error", 502: "Bad Gateway", 503: "Service Unavailable",
    504: "Gateway Timeout",
}


class ProxyError(Exception):
    """An OpenAI-style error: HTTP status plus `{message, type, param, code}`."""

    def __init__(self, status: int, message: str, *, type: str | None = None,
                 param: str | None = None, code: str | None = None,
                 retry_after: float | None = None, headers: dict[str, str] | None = None) -> None:
        super().__init__(message)
        self.status = status
        self.message = message
        self.type = type or ("invalid_request_error" if status < 500 else "server_error")
        self.param = param
        self.code = code
        self.retry_after = retry_after
        self.headers = dict(headers or {})

    @property
    def status_line(self) -> str:
        return f"{self.status} {_REASONS.get(self.status, 'Error')}"

    def body(self) -> dict[str, Any]:
        return {"error": {"message": self.message, "type": self.type,
                          "param": self.param, "code": self.code}}

    def response_headers(self) -> dict[str, str]:
        headers = dict(self.headers)
        if self.retry_after is not None:
            headers["Retry-After"] = str(max(1, int(round(self.retry_after))))
        return headers

    def __repr__(self) -> str:
        return f"ProxyError({self.status}, {self.code!r}, {self.message!r})"


def param_path(*parts: str | int) -> str:
    """OpenAI's `param` notation for a field inside the request: `messages[0].content[1]`
    (the form its schema-validation errors use; proxy/contract/validation.py uses it too)."""
    out = ""
    for part in parts:
        out += f"[{part}]" if isinstance(part, int) else (f".{part}" if out else part)
    return out
