"""A bare HTTP client for refusal tests: exact headers (Host included), nothing added."""

from __future__ import annotations

import http.client
import json
import socket
from dataclasses import dataclass
from typing import Any, Mapping
from urllib.parse import urlsplit


@dataclass
class Reply:
    status: int
    headers: http.client.HTTPMessage
    body: bytes

    def json(self) -> Any:
        return json.loads(self.body)

    def header(self, name: str) -> str | None:
        return self.headers.get(name)


def call(url: str, method: str = "GET", path: str = "/", *, headers: Mapping[str, str] | None = None,
         body: bytes | None = None, timeout: float = 60.0) -> Reply:
    """One request over a fresh connection. A `Host` in headers replaces the default one."""
    parts = urlsplit(url)
    conn = http.client.HTTPConnection(parts.hostname, parts.port, timeout=timeout)
    headers = dict(headers or {})
    try:
        conn.putrequest(method, path, skip_host="Host" in headers, skip_accept_encoding=True)
        for name, value in headers.items():
            conn.putheader(name, value)
        if body is not None:
            if not any(k.lower() == "content-type" for k in headers):
                conn.putheader("Content-Type", "application/json")
            conn.putheader("Content-Length", str(len(body)))
        conn.endheaders(body)
        response = conn.getresponse()
        return Reply(response.status, response.headers, response.read())
    finally:
        conn.close()


def raw(url: str, data: bytes, timeout: float = 30.0) -> bytes:
    """Sends raw bytes and returns everything the server answers before closing."""
    parts = urlsplit(url)
    with socket.create_connection((parts.hostname, parts.port), timeout=timeout) as sock:
        sock.sendall(data)
        chunks = []
        while True:
            try:
                chunk = sock.recv(65536)
            except (ConnectionResetError, socket.timeout):
                break
            if not chunk:
                break
            chunks.append(chunk)
    return b"".join(chunks)


def chat_body(text: str = "hello", **extra: Any) -> bytes:
    return json.dumps({"model": "sonnet", "messages": [{"role": "user", "content": text}],
                       **extra}).encode()
