"""One request the suite sends and what came back: raw bytes, so checks judge what is on the wire."""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from functools import cached_property
from typing import Any

from conformance import sse

PROBE_HEADER = "X-Conformance-Probe"
JSON = "application/json"


@dataclass(frozen=True)
class Request:
    """A request relative to the target's base URL (`/chat/completions`, not `/v1/...`)."""
    probe: str                        # a stable name: cassettes are matched on it
    method: str
    path: str
    body: bytes | None = None
    content_type: str | None = None
    headers: tuple[tuple[str, str], ...] = ()
    auth: str = "target"              # "target": the target's key; "none"; or "wrong"

    @classmethod
    def json(cls, probe: str, path: str, payload: Any, method: str = "POST", **kw: Any) -> "Request":
        # ensure_ascii: escapes keep any string JSON allows (lone surrogates included) sendable.
        body = json.dumps(payload, ensure_ascii=True, separators=(",", ":")).encode()
        return cls(probe, method, path, body, JSON, **kw)

    def as_content_type(self, content_type: str) -> "Request":
        """The same body, labelled with another Content-Type."""
        return Request(self.probe, self.method, self.path, self.body, content_type, self.headers,
                       self.auth)

    @cached_property
    def payload(self) -> Any:
        """The JSON body as sent, or None."""
        try:
            return json.loads(self.body) if self.body else None
        except ValueError:
            return None


@dataclass
class Exchange:
    request: Request
    status: int | None = None
    reason: str = ""
    headers: dict[str, str] = field(default_factory=dict)   # lower-case names
    body: bytes = b""
    error: str | None = None          # a transport error: refused, reset, timed out, ...
    elapsed: float = 0.0

    @property
    def ok(self) -> bool:
        return self.error is None and self.status is not None

    @property
    def content_type(self) -> str:
        return self.headers.get("content-type", "")

    @property
    def media_type(self) -> str:
        return self.content_type.split(";")[0].strip().lower()

    @cached_property
    def text(self) -> str:
        return self.body.decode("utf-8", errors="replace")

    @cached_property
    def json(self) -> Any:
        """The body as JSON; raises ValueError when it is not JSON."""
        return json.loads(self.body)

    @cached_property
    def stream(self) -> sse.ParsedStream:
        return sse.parse(self.body)

    def summary(self, limit: int = 400) -> str:
        """One line for reports: the request and the first bytes of the answer."""
        head = f"{self.request.method} {self.request.path} [{self.request.probe}]"
        if self.error:
            return f"{head} -> transport error: {self.error}"
        text = self.text
        shown = text if len(text) <= limit else text[:limit] + f"... ({len(self.body)} bytes)"
        return f"{head} -> {self.status} {self.content_type or '(no content-type)'}: {shown}"

    def describe(self) -> dict[str, Any]:
        return {"probe": self.request.probe, "method": self.request.method,
                "path": self.request.path, "status": self.status,
                "content_type": self.content_type or None, "error": self.error,
                "excerpt": self.text[:600] if self.body else ""}
