"""A strict little client for the stand-in: POST a Messages request, parse the SSE answer.

Strict on purpose: every frame must be exactly `event: NAME\\ndata: JSON\\n\\n`, so the tests
check the framing the real API (and the CLI's SDK) uses, not just the payloads.
"""

from __future__ import annotations

import http.client
import json
import time
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urlsplit


@dataclass
class Response:
    status: int
    headers: dict[str, str]  # lower-case names
    events: list[tuple[str, dict[str, Any]]] = field(default_factory=list)  # (event name, data)
    times: list[float] = field(default_factory=list)  # seconds from sending to each event
    json: Any = None  # the body of a non-SSE answer
    truncated: bool = False  # the connection ended before the end of the chunked body
    raw: bytes = b""

    @property
    def names(self) -> list[str]:
        return [name for name, _ in self.events]

    def data(self, name: str) -> list[dict[str, Any]]:
        return [d for n, d in self.events if n == name]

    def deltas(self, kind: str) -> list[str]:
        """The pieces of every content_block_delta of one delta type, e.g. "text_delta"."""
        key = {"text_delta": "text", "thinking_delta": "thinking", "input_json_delta": "partial_json",
               "signature_delta": "signature"}[kind]
        return [d["delta"][key] for d in self.data("content_block_delta") if d["delta"]["type"] == kind]


def messages_body(text: str | list[dict[str, Any]] = "hi", *, model: str = "claude-sonnet-5-5",
                  stream: bool = True, messages: list[Any] | None = None) -> dict[str, Any]:
    return {
        "model": model,
        "max_tokens": 1024,
        "stream": stream,
        "messages": messages if messages is not None else [{"role": "user", "content": text}],
    }


def post(url: str, body: dict[str, Any] | bytes, *, headers: dict[str, str] | None = None,
         timeout: float = 10.0, path: str = "/v1/messages?beta=true") -> Response:
    """POST to `url` (a base URL, possibly with a /scenario/<name> prefix) and read the answer."""
    parts = urlsplit(url)
    conn = http.client.HTTPConnection(parts.hostname or "127.0.0.1", parts.port, timeout=timeout)
    payload = body if isinstance(body, bytes) else json.dumps(body).encode()
    sent = time.monotonic()
    try:
        conn.request("POST", parts.path.rstrip("/") + path, payload,
                     {"content-type": "application/json", "x-api-key": "sk-test", **(headers or {})})
        resp = conn.getresponse()
        out = Response(resp.status, {k.lower(): v for k, v in resp.getheaders()})
        if not out.headers.get("content-type", "").startswith("text/event-stream"):
            out.raw = resp.read()
            out.json = json.loads(out.raw) if out.raw else None
            return out
        _read_events(resp, out, sent)
        return out
    finally:
        conn.close()


def _read_events(resp: http.client.HTTPResponse, out: Response, sent: float) -> None:
    frame: list[bytes] = []
    while True:
        try:
            line = resp.readline()
        except http.client.IncompleteRead as exc:
            out.raw += exc.partial
            out.truncated = True
            break
        if not line:
            # http.client reports a chunked body cut short as EOF too; only after the
            # terminating zero-size chunk has it reset chunk_left to None.
            out.truncated = resp.chunk_left is not None
            break
        out.raw += line
        if line == b"\n":
            out.events.append(_parse_frame(frame))
            out.times.append(time.monotonic() - sent)
            frame = []
        else:
            frame.append(line)
    if frame:
        out.truncated = True


def _parse_frame(lines: list[bytes]) -> tuple[str, dict[str, Any]]:
    if len(lines) != 2 or not lines[0].startswith(b"event: ") or not lines[1].startswith(b"data: "):
        raise ValueError(f"malformed SSE frame: {lines!r}")
    name = lines[0][len(b"event: "):].rstrip(b"\n").decode()
    data = json.loads(lines[1][len(b"data: "):])
    if data.get("type") != name:
        raise ValueError(f"event name {name!r} differs from data type {data.get('type')!r}")
    return name, data
