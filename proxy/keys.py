"""Client API keys with names, and optional per-key limits.

A key is given as `name=secret` or as a bare `secret` (`--api-key`, CLAUDE_MAX_API_KEY, one per
line in `--api-key-file`). The name is what logs and /metrics show; the secret is never shown.
`name=` is recognised only when the name is 1-64 of `[A-Za-z0-9_.-]` and something other than
`=` follows it, so a bare base64 key with `=` padding stays a bare key. Bare keys are named `key-1`,
`key-2`, ... in the order given (flags, variable, file).

Limits: `--key-rpm N` and `--key-concurrent N` apply to every key; `--key-limit
NAME:rpm=N,concurrent=M` sets one key's (0 means no limit).
"""

from __future__ import annotations

import re
from dataclasses import dataclass, replace
from typing import Iterable

_NAME = re.compile(r"^[A-Za-z0-9_.-]{1,64}$")
_LIMIT_FIELDS = {"rpm": "requests_per_minute", "concurrent": "concurrent"}


@dataclass(frozen=True)
class ApiKey:
    name: str
    secret: str

    def __repr__(self) -> str:  # never the secret, not even in a traceback
        return f"ApiKey({self.name!r})"


@dataclass(frozen=True)
class KeyLimit:
    requests_per_minute: int = 0   # 0: no limit
    concurrent: int = 0            # 0: no limit

    @property
    def any(self) -> bool:
        return self.requests_per_minute > 0 or self.concurrent > 0


def _rejoin(specs: Iterable[str]) -> list[str]:
    """CLAUDE_MAX_API_KEY_LIMITS is split at commas like every list variable, which also cuts
    `alice:rpm=5,concurrent=1` in two: a piece without `NAME:` continues the one before."""
    out: list[str] = []
    for spec in specs:
        if out and ":" not in spec and "=" in spec:
            out[-1] += "," + spec
        else:
            out.append(spec)
    return out


def split_key(entry: str) -> tuple[str | None, str]:
    """`name=secret` -> (name, secret); anything else -> (None, entry)."""
    entry = entry.strip()
    name, sep, secret = entry.partition("=")
    name, secret = name.strip(), secret.strip()
    if sep and _NAME.match(name) and secret.strip("="):  # `abc==` is base64 padding
        return name, secret
    return None, entry


def named_keys(entries: Iterable[str]) -> list[ApiKey]:
    """The keys with their names. The same key given twice counts once (the sources add up,
    and a bare repeat of a named key takes its name); ValueError for a name used for two keys,
    or one key given two names (its usage could not be told apart)."""
    parsed = [split_key(e) for e in entries if e.strip()]
    named: dict[str, str] = {}          # secret -> name
    for name, secret in parsed:
        if name is None:
            continue
        if named.get(secret, name) != name:
            raise ValueError(f"the API keys named {named[secret]!r} and {name!r} are the same "
                             f"key; give each key one name")
        named[secret] = name
    keys: list[ApiKey] = []
    seen: set[str] = set()
    unnamed = 0
    for name, secret in parsed:
        if secret in seen:
            continue
        seen.add(secret)
        if name is None:
            name = named.get(secret)
        if name is None:
            unnamed += 1
            name = f"key-{unnamed}"
        if any(k.name == name for k in keys):
            raise ValueError(f"two different API keys are named {name!r}; names must be unique")
        keys.append(ApiKey(name, secret))
    return keys


def masked(entry: str) -> str:
    """How `config` shows a key: its name if it has one, never the secret."""
    name, _ = split_key(entry)
    return f"{name}=***" if name else "***"


def parse_limit(spec: str) -> tuple[str, dict[str, int]]:
    """`NAME:rpm=N,concurrent=M` -> (NAME, the KeyLimit fields it sets); ValueError says what
    is wrong."""
    name, sep, fields = spec.partition(":")
    name = name.strip()
    if not sep or not _NAME.match(name):
        raise ValueError(f"key-limit {spec!r}: expected NAME:rpm=N,concurrent=M")
    values: dict[str, int] = {}
    for part in fields.split(","):
        key, eq, raw = part.strip().partition("=")
        if not eq or key.strip() not in _LIMIT_FIELDS:
            raise ValueError(f"key-limit {spec!r}: {part.strip()!r} is not rpm=N or concurrent=N")
        try:
            number = int(raw.strip())
        except ValueError:
            raise ValueError(f"key-limit {spec!r}: {raw.strip()!r} is not a whole number") from None
        if number < 0:
            raise ValueError(f"key-limit {spec!r}: limits are 0 (none) or more")
        values[_LIMIT_FIELDS[key.strip()]] = number
    return name, values


def key_limits(names: Iterable[str], requests_per_minute: int = 0, concurrent: int = 0,
               overrides: Iterable[str] = ()) -> dict[str, KeyLimit]:
    """Each key's limits: the defaults, then `--key-limit` entries (which must name a key)."""
    if requests_per_minute < 0 or concurrent < 0:
        raise ValueError("key-rpm and key-concurrent are 0 (no limit) or more")
    names = list(names)
    overrides = _rejoin(overrides)
    if not names and (requests_per_minute or concurrent or overrides):
        raise ValueError("per-key limits (key-rpm, key-concurrent, key-limit) need API keys "
                         "(--api-key NAME=KEY or --api-key-file)")
    limits = {name: KeyLimit(requests_per_minute, concurrent) for name in names}
    for spec in overrides:
        name, values = parse_limit(spec)
        if name not in limits:
            raise ValueError(f"key-limit names {name!r}, which is not a configured API key "
                             f"(names: {', '.join(names) or 'none'})")
        limits[name] = replace(limits[name], **values)
    return limits
