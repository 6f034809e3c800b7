"""What a cassette must not carry, removed or normalised when it is written; and a leak scan.

Two goals: no secret and nothing of the recording machine ends up in the repository, and two
recordings of the same behaviour are byte-identical (so a re-recording's diff shows only real
changes). Stdout lines stay valid JSON of the same shape (strings stay strings, numbers stay
numbers), so the replayed proxy parses them like live output.

* ids (session ids, uuids, message, tool-use and request ids, thinking signatures, device
  and account ids) become placeholders numbered by first appearance: `<SESSION_ID_1>`,
  `<UUID_3>`, `<MESSAGE_ID_1>`; the same id always gets the same placeholder in a cassette.
* paths of the run (its working directory, TMPDIR, request directory, HOME and the slug the
  CLI derives from the working directory) become `<CWD>`, `<TMPDIR>`, `<REQUEST_DIR>`,
  `<HOME>`, `<CWD_SLUG>`; any other path under /tmp, /home, /Users, /root becomes `<PATH>`;
  `cc-socks/<pid>.sock` loses its pid.
* `host:port` in texts becomes `127.0.0.1:<PORT>` (`<HOST>:<PORT>` for other addresses);
  ISO timestamps become `<TIMESTAMP>`; durations and time-to-first-token become 0;
  `retry_delay_ms` is rounded down to whole seconds (the proxy's Retry-After comes from it,
  and the CLI adds random jitter to it); `pid` becomes 0.
* API keys (`sk-ant-...`), OAuth and bearer tokens, JWTs and e-mail addresses become
  `<API_KEY>`, `<TOKEN>`, `<EMAIL>`.

`scan(text)` finds what should have been redacted; the recorder refuses to write a cassette
with findings, and a test runs it over every file in fixtures/.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from typing import Any, Mapping

from proxy.cassettes.serializer import compact_json

_UUID = r"[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}"
_EMAIL = r"[A-Za-z0-9._%+-]+@[A-Za-z0-9-]+(?:\.[A-Za-z0-9-]+)*\.[A-Za-z]{2,}"
_TIMESTAMP = r"\b\d{4}-\d{2}-\d{2}[T ]\d{2}:\d{2}:\d{2}(?:\.\d+)?(?:Z|[+-]\d{2}:?\d{2})?"
_MACHINE_PATH = r"(?:/tmp|/var/folders|/private/var|/private/tmp|/home/[^/\s\"'<>]+|" \
                r"/Users/[^/\s\"'<>]+|/root)(?=/|\b)(?:/[^\s\"'<>)\]]*)?"

# The opaque part of an API id (`msg_01XFDUDYJgAACzvnptvVoYEL`): long, with a digit, so names
# such as the capability `msg_lifecycle_v1` are left alone.
_OPAQUE = r"(?=[A-Za-z_]*[0-9])[A-Za-z0-9_]{16,}"
# Numbered placeholders: (kind, pattern), applied to every string in this order.
_ID_PATTERNS: tuple[tuple[str, re.Pattern[str]], ...] = (
    ("UUID", re.compile(_UUID)),
    ("MESSAGE_ID", re.compile(r"\bmsg_" + _OPAQUE)),
    ("TOOL_USE_ID", re.compile(r"\b(?:srv)?toolu_" + _OPAQUE)),
    ("REQUEST_ID", re.compile(r"\breq_" + _OPAQUE)),
)
# Fixed placeholders for secrets.
_SECRET_PATTERNS: tuple[tuple[re.Pattern[str], str], ...] = (
    (re.compile(r"\bsk-ant-[A-Za-z0-9_\-]{4,}"), "<API_KEY>"),
    (re.compile(r"\bsk-[A-Za-z0-9_\-]{20,}"), "<API_KEY>"),
    (re.compile(r"(?i)\b(bearer)\s+[A-Za-z0-9._~+/=\-]{8,}"), r"\1 <TOKEN>"),
    (re.compile(r"\beyJ[A-Za-z0-9_\-]{8,}\.[A-Za-z0-9_\-]{8,}(?:\.[A-Za-z0-9_\-]*)?"), "<TOKEN>"),
    (re.compile(_EMAIL), "<EMAIL>"),
)
_HOST_PORT = re.compile(r"\b(127\.0\.0\.1|localhost|0\.0\.0\.0|\[::1\]|(?:\d{1,3}\.){3}\d{1,3})"
                        r":\d{1,5}\b")
_SOCKET = re.compile(r"cc-socks/\d+\.sock")

# Keys whose values vary per run.
_DURATION_KEYS = frozenset({"duration_ms", "duration_api_ms", "ttft_ms", "ttft_stream_ms",
                            "time_to_request_ms", "first_content_frame_ms",
                            "thinking_duration_ms"})
_ID_KEYS = {"session_id": "SESSION_ID", "signature": "SIGNATURE", "device_id": "ACCOUNT_ID",
            "account_uuid": "ACCOUNT_ID", "accountUuid": "ACCOUNT_ID", "account_id": "ACCOUNT_ID",
            "organization_uuid": "ACCOUNT_ID", "organizationUuid": "ACCOUNT_ID",
            "organization_id": "ACCOUNT_ID", "user_id": "ACCOUNT_ID", "userID": "ACCOUNT_ID",
            "machineID": "ACCOUNT_ID"}
_EMAIL_KEYS = frozenset({"email", "emailAddress", "email_address"})


def path_slug(path: str) -> str:
    """The project slug the CLI makes from a working directory (`/a/b_c` -> `-a-b-c`)."""
    return re.sub(r"[^A-Za-z0-9]", "-", path)


class Redactor:
    """Redacts the content of one cassette. `paths` maps literal paths to their tokens
    (`{"/tmp/x/req-1/cwd": "<CWD>"}`); each path's slug is replaced too (`<CWD_SLUG>`)."""

    def __init__(self, paths: Mapping[str, str] | None = None) -> None:
        literal: dict[str, str] = {}
        for path, token in (paths or {}).items():
            path = path.rstrip("/")
            if len(path) < 2:
                continue
            literal[path] = token
            literal[path_slug(path)] = token[:-1] + "_SLUG>" if token.endswith(">") else token
        # Longest first, so a request dir's cwd wins over the request dir itself.
        self._literal = sorted(literal.items(), key=lambda kv: -len(kv[0]))
        self._ids: dict[str, str] = {}
        self._counts: dict[str, int] = {}

    # -- public ---------------------------------------------------------------------------
    def stdout_line(self, line: str) -> str:
        """A stdout line: a JSON object is redacted value by value and re-serialised in the
        CLI's compact form; anything else is redacted as text."""
        if line.startswith("{"):
            try:
                value = json.loads(line)
            except ValueError:
                value = None
            if isinstance(value, dict):
                return compact_json(self.value(value))
        return self.text(line)

    def value(self, value: Any, key: str | None = None) -> Any:
        if isinstance(value, dict):
            return {k: self.value(v, k) for k, v in value.items()}
        if isinstance(value, list):
            return [self.value(v, key) for v in value]
        if isinstance(value, bool) or value is None:
            return value
        if isinstance(value, (int, float)):
            return self._number(key, value)
        if isinstance(value, str):
            if key in _ID_KEYS and value:
                return self._placeholder(_ID_KEYS[key], value)
            if key in _EMAIL_KEYS and value:
                return "<EMAIL>"
            if key == "timestamp":
                return "<TIMESTAMP>"
            return self.text(value)
        return value

    def text(self, text: str) -> str:
        for path, token in self._literal:
            if path in text:
                text = text.replace(path, token)
        for pattern, replacement in _SECRET_PATTERNS:
            text = pattern.sub(replacement, text)
        for kind, pattern in _ID_PATTERNS:
            text = pattern.sub(lambda m, kind=kind: self._placeholder(kind, m.group()), text)
        text = re.sub(_TIMESTAMP, "<TIMESTAMP>", text)
        text = _HOST_PORT.sub(_host_port, text)
        text = _SOCKET.sub("cc-socks/<PID>.sock", text)
        text = re.sub(_MACHINE_PATH, "<PATH>", text)
        return text

    # -- helpers --------------------------------------------------------------------------
    def _number(self, key: str | None, value: int | float) -> int | float:
        if key in _DURATION_KEYS:
            return 0
        if key == "retry_delay_ms":
            return int(value // 1000 * 1000)
        if key == "pid":
            return 0
        return value

    def _placeholder(self, kind: str, value: str) -> str:
        if value.startswith("<") and value.endswith(">"):
            return value  # already a placeholder
        found = self._ids.get(value)
        if found is None:
            self._counts[kind] = self._counts.get(kind, 0) + 1
            found = self._ids[value] = f"<{kind}_{self._counts[kind]}>"
        return found


def _host_port(match: re.Match[str]) -> str:
    host = match.group(1)
    loopback = host in ("127.0.0.1", "localhost", "[::1]", "0.0.0.0")
    return f"{host if loopback else '<HOST>'}:<PORT>"


# -- the leak scan ------------------------------------------------------------------------

@dataclass(frozen=True)
class Leak:
    kind: str
    line: int      # 1-based line number in the scanned text
    excerpt: str

    def __str__(self) -> str:
        return f"line {self.line}: {self.kind}: {self.excerpt!r}"


LEAK_PATTERNS: tuple[tuple[str, re.Pattern[str]], ...] = (
    ("Anthropic API key or OAuth token", re.compile(r"sk-ant-[A-Za-z0-9_\-]{4,}")),
    ("API key", re.compile(r"\bsk-[A-Za-z0-9_\-]{20,}")),
    ("bearer token", re.compile(r"(?i)\bbearer\s+(?!<)[A-Za-z0-9._~+/=\-]{8,}")),
    ("JWT", re.compile(r"\beyJ[A-Za-z0-9_\-]{8,}\.[A-Za-z0-9_\-]{8,}")),
    ("GitHub token", re.compile(r"\bgh[pousr]_[A-Za-z0-9]{20,}")),
    ("AWS access key", re.compile(r"\bAKIA[0-9A-Z]{16}\b")),
    ("private key", re.compile(r"-----BEGIN [A-Z ]*PRIVATE KEY-----")),
    ("e-mail address", re.compile(_EMAIL)),
    ("path of the recording machine", re.compile(r"(?<![\w<>.-])(?:/tmp/|/var/folders/|"
                                                 r"/private/var/|/home/|/Users/|/root/)")),
    ("Windows user path", re.compile(r"(?i)\b[A-Z]:\\\\?Users\\\\?")),
    ("uuid", re.compile(_UUID)),
    ("host:port", re.compile(r"\b(?:127\.0\.0\.1|localhost|0\.0\.0\.0|(?:\d{1,3}\.){3}\d{1,3})"
                             r":\d{2,5}\b")),
    ("socket path with a pid", re.compile(r"cc-socks/\d+\.sock")),
    ("timestamp", re.compile(_TIMESTAMP)),
)


def scan(text: str, extra: Mapping[str, str] | None = None) -> list[Leak]:
    """Everything in `text` that looks like a secret or a trace of the recording machine.
    `extra` adds literal strings to look for (this machine's HOME, host name...)."""
    leaks = []
    for number, line in enumerate(text.splitlines(), 1):
        for kind, pattern in LEAK_PATTERNS:
            for match in pattern.finditer(line):
                leaks.append(Leak(kind, number, _excerpt(line, match.start(), match.end())))
        for kind, literal in (extra or {}).items():
            at = line.find(literal) if literal else -1
            if at >= 0:
                leaks.append(Leak(kind, number, _excerpt(line, at, at + len(literal))))
    return leaks


def _excerpt(line: str, start: int, end: int) -> str:
    return line[max(0, start - 20):min(len(line), end + 20)]


# What says that a run's output was not normalised (its ids, addresses, times). In a cassette's
# `invocation` section, which is the client's own text kept verbatim for matching, such things
# are what the client wrote, and allowed; secrets, e-mail addresses and paths never are.
TRACE_KINDS = frozenset({"uuid", "host:port", "socket path with a pid", "timestamp"})


def cassette_leaks(text: str, extra: Mapping[str, str] | None = None) -> list[Leak]:
    """scan() for a cassette file (serializer.dumps): secrets, e-mail addresses and machine
    paths anywhere; the traces of a run (TRACE_KINDS) outside its `invocation` section."""
    leaks = scan(text, extra)
    lines = text.splitlines()
    start = next((i for i, line in enumerate(lines, 1)
                  if line.startswith('  "invocation": {')), None)
    end = next((i for i, line in enumerate(lines, 1)
                if start is not None and i > start and line.startswith('  "stdout": ')), None)
    if start is None or end is None:
        return leaks
    return [leak for leak in leaks if not (leak.kind in TRACE_KINDS and start <= leak.line < end)]
