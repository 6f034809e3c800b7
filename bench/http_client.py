"""A small HTTP/1.1 client over raw sockets that timestamps what it receives.

Made for measuring: it notes when the headers, the first content delta and the end of the body
arrive, decodes chunked bodies incrementally, and can keep a connection alive for throughput
runs. It speaks only what the benchmarks need (POST JSON, GET; Content-Length or chunked).
"""

from __future__ import annotations

import json
import socket
import time
from dataclasses import dataclass, field
from urllib.parse import urlsplit


@dataclass
class Response:
    status: int = 0
    headers: dict[str, str] = field(default_factory=dict)
    body: bytes = b""
    sent_at: float = 0.0
    headers_at: float | None = None
    first_token_at: float | None = None
    done_at: float = 0.0
    pieces: list[tuple[float, str]] = field(default_factory=list)  # (received at, content)

    @property
    def first_token(self) -> float | None:
        return None if self.first_token_at is None else self.first_token_at - self.sent_at

    @property
    def total(self) -> float:
        return self.done_at - self.sent_at

    @property
    def content(self) -> str:
        return "".join(piece for _, piece in self.pieces)


class Connection:
    def __init__(self, base_url: str, timeout: float = 120.0) -> None:
        parts = urlsplit(base_url)
        self.host, self.port = parts.hostname or "127.0.0.1", parts.port or 80
        self.timeout = timeout
        self.sock: socket.socket | None = None
        self._buffer = b""

    def _connect(self) -> socket.socket:
        if self.sock is None:
            self.sock = socket.create_connection((self.host, self.port), timeout=self.timeout)
            self.sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            self._buffer = b""
        return self.sock

    def close(self) -> None:
        if self.sock is not None:
            self.sock.close()
            self.sock = None

    def post_json(self, path: str, payload: dict, *, parse_sse: bool = False,
                  keep_alive: bool = True) -> Response:
        body = json.dumps(payload).encode()
        head = (f"POST {path} HTTP/1.1\r\nHost: {self.host}:{self.port}\r\n"
                f"Content-Type: application/json\r\nAuthorization: Bearer bench\r\n"
                f"Content-Length: {len(body)}\r\n"
                f"Connection: {'keep-alive' if keep_alive else 'close'}\r\n\r\n").encode()
        return self._exchange(head + body, parse_sse, keep_alive)

    def get(self, path: str) -> Response:
        head = f"GET {path} HTTP/1.1\r\nHost: {self.host}:{self.port}\r\n\r\n".encode()
        return self._exchange(head, False, True)

    # -- internals ---------------------------------------------------------------------
    def _recv(self) -> bytes:
        data = self.sock.recv(262144)  # type: ignore[union-attr]
        if not data:
            raise ConnectionError("connection closed mid-response")
        return data

    def _exchange(self, request: bytes, parse_sse: bool, keep_alive: bool) -> Response:
        sock = self._connect()
        response = Response(sent_at=time.monotonic())
        try:
            sock.sendall(request)
            while b"\r\n\r\n" not in self._buffer:
                self._buffer += self._recv()
            response.headers_at = time.monotonic()
            head, self._buffer = self._buffer.split(b"\r\n\r\n", 1)
            lines = head.decode("latin-1").split("\r\n")
            response.status = int(lines[0].split()[1])
            for line in lines[1:]:
                name, _, value = line.partition(":")
                response.headers[name.strip().lower()] = value.strip()
            events = _SSEParser(response) if parse_sse else None
            if response.headers.get("transfer-encoding", "").lower() == "chunked":
                self._read_chunked(response, events)
            elif "content-length" in response.headers:
                size = int(response.headers["content-length"])
                while len(self._buffer) < size:
                    self._buffer += self._recv()
                response.body, self._buffer = self._buffer[:size], self._buffer[size:]
                if events:
                    events.feed(response.body, time.monotonic())
            else:
                while True:
                    try:
                        self._buffer += self._recv()
                    except ConnectionError:
                        break
                response.body, self._buffer = self._buffer, b""
                keep_alive = False
            response.done_at = time.monotonic()
        except BaseException:
            self.close()
            raise
        if not keep_alive or response.headers.get("connection", "").lower() == "close":
            self.close()
        return response

    def _read_chunked(self, response: Response, events: "_SSEParser | None") -> None:
        parts = []
        while True:
            while b"\r\n" not in self._buffer:
                self._buffer += self._recv()
            size_line, rest = self._buffer.split(b"\r\n", 1)
            size = int(size_line.split(b";")[0], 16)
            while len(rest) < size + 2:
                rest += self._recv()
            chunk, self._buffer = rest[:size], rest[size + 2:]
            if size == 0:
                break
            parts.append(chunk)
            if events:
                events.feed(chunk, time.monotonic())
        response.body = b"".join(parts)


class _SSEParser:
    """Splits SSE events as bytes arrive; notes every content delta with its arrival time."""

    def __init__(self, response: Response) -> None:
        self.response = response
        self.pending = b""

    def feed(self, data: bytes, at: float) -> None:
        self.pending += data
        while b"\n\n" in self.pending:
            event, self.pending = self.pending.split(b"\n\n", 1)
            for line in event.split(b"\n"):
                if not line.startswith(b"data:"):
                    continue
                payload = line[5:].strip()
                if payload == b"[DONE]":
                    continue
                try:
                    choices = json.loads(payload).get("choices") or []
                except ValueError:
                    continue
                for choice in choices:
                    text = (choice.get("delta") or {}).get("content")
                    if text:
                        if self.response.first_token_at is None:
                            self.response.first_token_at = at
                        self.response.pieces.append((at, text))
