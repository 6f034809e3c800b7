"""Helpers for lifecycle and load tests: processes seen through /proc, raw-socket HTTP clients.

Processes are found by walking /proc for a parent pid, so a test can record the CLI children
of a server before acting on it and then check exactly those pids.
"""

from __future__ import annotations

import json
import os
import socket
import time
from pathlib import Path
from typing import Callable, Iterable
from urllib.parse import urlsplit


# -- processes ----------------------------------------------------------------------------
def _stat(pid: int) -> tuple[str, int] | None:
    """(state, ppid) of a process, or None if it is gone."""
    try:
        text = Path(f"/proc/{pid}/stat").read_text()
    except (FileNotFoundError, ProcessLookupError, PermissionError):
        return None
    fields = text[text.rfind(")") + 2:].split()
    return fields[0], int(fields[1])


def children_of(pid: int) -> set[int]:
    out = set()
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            stat = _stat(int(entry))
            if stat and stat[1] == pid and stat[0] != "Z":
                out.add(int(entry))
    return out


def is_claude(pid: int) -> bool:
    try:
        exe = os.readlink(f"/proc/{pid}/exe")
    except OSError:
        return False
    return "claude" in os.path.basename(exe)


def claude_children(pid: int) -> set[int]:
    return {child for child in children_of(pid) if is_claude(child)}


def alive(pid: int) -> bool:
    stat = _stat(pid)
    return stat is not None and stat[0] != "Z"


def wait_until(predicate: Callable[[], bool], timeout: float, interval: float = 0.05) -> bool:
    deadline = time.monotonic() + timeout
    while True:
        if predicate():
            return True
        if time.monotonic() >= deadline:
            return False
        time.sleep(interval)


def all_dead(pids: Iterable[int]) -> bool:
    return not any(alive(pid) for pid in pids)


def request_dirs(work_root_path: Path) -> list[Path]:
    return sorted(work_root_path.glob("req-*")) if work_root_path.exists() else []


# -- HTTP over raw sockets ----------------------------------------------------------------
def chat_body(prompt: str = "hi", *, stream: bool = False, model: str = "sonnet",
              **extra: object) -> dict:
    return {"model": model, "messages": [{"role": "user", "content": prompt}],
            "stream": stream, **extra}


class RawClient:
    """A client that can walk away at any moment: one request on one socket."""

    def __init__(self, base_url: str, body: dict, path: str = "/v1/chat/completions",
                 timeout: float = 60.0) -> None:
        parts = urlsplit(base_url)
        self.sock = socket.create_connection((parts.hostname, parts.port), timeout=timeout)
        payload = json.dumps(body).encode()
        head = (f"POST {path} HTTP/1.1\r\nHost: {parts.hostname}:{parts.port}\r\n"
                f"Content-Type: application/json\r\nContent-Length: {len(payload)}\r\n"
                f"Connection: close\r\n\r\n").encode()
        self.sock.sendall(head + payload)
        self.received = b""

    def read_until(self, marker: bytes, timeout: float = 30.0) -> bool:
        """Reads until `marker` was received (True) or the connection ended / time ran out."""
        deadline = time.monotonic() + timeout
        while marker not in self.received:
            left = deadline - time.monotonic()
            if left <= 0:
                return False
            self.sock.settimeout(left)
            try:
                data = self.sock.recv(65536)
            except socket.timeout:
                return False
            if not data:
                return False
            self.received += data
        return True

    def read_all(self, timeout: float = 60.0) -> bytes:
        deadline = time.monotonic() + timeout
        while True:
            left = deadline - time.monotonic()
            if left <= 0:
                raise TimeoutError(f"response not complete after {timeout} s: {self.received[-200:]!r}")
            self.sock.settimeout(left)
            data = self.sock.recv(65536)
            if not data:
                return self.received
            self.received += data

    @property
    def status(self) -> int | None:
        if b"\r\n" not in self.received:
            return None
        return int(self.received.split(b"\r\n", 1)[0].split()[1])

    def close(self) -> None:
        try:
            self.sock.close()
        except OSError:
            pass


def sse_payloads(raw: bytes) -> list[str]:
    """The `data:` payloads of an SSE body (chunked framing tolerated: lines are scanned)."""
    out = []
    for line in raw.split(b"\n"):
        line = line.strip(b"\r")
        if line.startswith(b"data: "):
            out.append(line[6:].decode())
    return out


def dechunk(body: bytes) -> bytes:
    """Decodes an HTTP/1.1 chunked body."""
    out, rest = b"", body
    while rest:
        size_line, _, rest = rest.partition(b"\r\n")
        size = int(size_line.split(b";")[0] or b"0", 16)
        if size == 0:
            break
        out, rest = out + rest[:size], rest[size + 2:]
    return out


def split_response(raw: bytes) -> tuple[int, dict[str, str], bytes]:
    head, _, body = raw.partition(b"\r\n\r\n")
    lines = head.decode("latin-1").split("\r\n")
    headers = {}
    for line in lines[1:]:
        name, _, value = line.partition(":")
        headers[name.strip().lower()] = value.strip()
    if headers.get("transfer-encoding") == "chunked":
        body = dechunk(body)
    return int(lines[0].split()[1]), headers, body
