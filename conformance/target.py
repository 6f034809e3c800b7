"""The server under test: where it is, which model to ask for, and what it is known not to do.

A target comes from `--base-url URL` (with the shared `--model`/`--api-key`) or from a
`--server` spec: `name=URL,model=M,key=K,version=V,skip=PATTERN:REASON;PATTERN:REASON`.
A key may be given as `env:NAME` so it never appears on a command line or in a CI log.
"""

from __future__ import annotations

import os
import re
from dataclasses import dataclass, field
from fnmatch import fnmatchcase
from urllib.parse import urlsplit

_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]*$")


@dataclass(frozen=True)
class KnownLimitation:
    """Checks (a glob over check ids) that cannot be made meaningful on this server, and why."""
    pattern: str
    reason: str

    def covers(self, check_id: str) -> bool:
        return fnmatchcase(check_id, self.pattern)


@dataclass
class Target:
    name: str
    base_url: str                    # the OpenAI base URL, e.g. http://127.0.0.1:3456/v1
    model: str | None = None         # None: the first model GET /models lists
    api_key: str | None = None
    version: str | None = None       # what the user says the server is, for the report
    limitations: list[KnownLimitation] = field(default_factory=list)

    def __post_init__(self) -> None:
        self.base_url = self.base_url.rstrip("/")
        parts = urlsplit(self.base_url)
        if parts.scheme not in ("http", "https") or not parts.netloc:
            raise ValueError(f"base URL must be an http(s) URL, not {self.base_url!r}")
        if not _NAME.match(self.name):
            raise ValueError(f"server name must be letters, digits, '.', '_' or '-', "
                             f"not {self.name!r}")

    def limitation_for(self, check_id: str) -> KnownLimitation | None:
        return next((lim for lim in self.limitations if lim.covers(check_id)), None)

    def describe(self) -> dict:
        """What the report shows about the target (never the key)."""
        return {"name": self.name, "base_url": self.base_url, "model": self.model,
                "version": self.version, "authenticated": bool(self.api_key),
                "limitations": [{"pattern": lim.pattern, "reason": lim.reason}
                                for lim in self.limitations]}


def default_name(base_url: str) -> str:
    parts = urlsplit(base_url)
    return re.sub(r"[^A-Za-z0-9_.-]", "-", parts.netloc or base_url).strip("-") or "server"


def resolve_key(value: str | None) -> str | None:
    """`env:NAME` reads the variable (an error if it is unset); anything else is the key."""
    if value is None or value == "":
        return None
    if value.startswith("env:"):
        name = value[4:]
        if name not in os.environ:
            raise ValueError(f"the API key variable {name} is not set")
        return os.environ[name]
    return value


def parse_limitations(text: str) -> list[KnownLimitation]:
    """`params.max_tokens.*:mock ignores max_tokens;params.stop.*:mock ignores stop`."""
    found = []
    for item in filter(None, (part.strip() for part in text.split(";"))):
        pattern, _, reason = item.partition(":")
        found.append(KnownLimitation(pattern.strip(), reason.strip() or "declared by the user"))
    return found


def parse_server_spec(spec: str) -> Target:
    """`name=URL,model=M,key=K,version=V,skip=...` (a bare URL is accepted too)."""
    head, _, rest = spec.partition(",")
    name, eq, url = head.partition("=")
    if not eq:
        name, url = "", head
    fields: dict[str, str] = {}
    if rest:
        # skip= may contain commas in its reasons: it is always the last field.
        pre, sep, skip = rest.partition("skip=")
        if sep:
            fields["skip"] = skip
        for item in filter(None, (p.strip() for p in pre.split(","))):
            key, eq2, value = item.partition("=")
            if not eq2:
                raise ValueError(f"--server field {item!r} is not key=value")
            if key not in ("model", "key", "version"):
                raise ValueError(f"unknown --server field {key!r} (model, key, version, skip)")
            fields[key] = value
    url = url.strip()
    return Target(name=name.strip() or default_name(url), base_url=url,
                  model=fields.get("model") or None, api_key=resolve_key(fields.get("key")),
                  version=fields.get("version") or None,
                  limitations=parse_limitations(fields.get("skip", "")))
