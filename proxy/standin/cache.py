"""A model of Anthropic's prompt caching, so the stand-in can report cache usage like the real API.

The rules, from https://platform.claude.com/docs/en/build-with-claude/prompt-caching (docs/standin.md
says which parts are documented and which are this model's own choices):

* The cacheable prompt is the request's blocks in the order tools, system, messages.
* A `cache_control` breakpoint (on a tool definition, a system block or a message content block;
  or, as the top-level `cache_control` of automatic caching, on the last block) writes an entry for
  the prefix up to and including that block, unless the prefix is below the model's minimum
  cacheable length.
* A read takes the longest live entry that ends on a block boundary at a breakpoint or at most
  `LOOKBACK_BLOCKS` boundaries before one.
* Entries are per account (the request's credential) and per model, and live for their TTL
  (5 minutes, or 1 hour with `ttl: "1h"`) after they were last written or read.

Usage then reads: `cache_read_input_tokens` = the prefix read, `cache_creation_input_tokens` = what
was written beyond it (up to the last breakpoint that qualifies), `input_tokens` = the rest.

There is no tokenizer here: `estimate_tokens` gives a deterministic stand-in count.
"""

from __future__ import annotations

import hashlib
import json
import threading
import time
from collections import OrderedDict
from dataclasses import dataclass
from typing import Any, Callable, Mapping

LOOKBACK_BLOCKS = 20  # boundaries checked before each breakpoint (documented lookback)
MAX_BREAKPOINTS = 4  # the API refuses more cache_control blocks in one request
TTL_SECONDS = {"5m": 300.0, "1h": 3600.0}
BILLING_HEADER = "x-anthropic-billing-header:"

# Documented minimum cacheable prompt lengths, by model-id prefix. Families the documentation the
# project read does not list (among them the 5.x models CLI 2.1.332 asks for) get DEFAULT_MINIMUM.
DOCUMENTED_MINIMUMS: tuple[tuple[str, int], ...] = (
    ("claude-opus-4-6", 4096),
    ("claude-opus-4-5", 4096),
    ("claude-haiku-4-5", 4096),
    ("claude-3-5-haiku", 2048),
    ("claude-3-haiku", 2048),
)
DEFAULT_MINIMUM = 1024  # documented for Claude Sonnet 4.5/4.6, Opus 4/4.1, Sonnet 4 and 3.7
MAX_ENTRIES = 10_000  # bound on live entries; the least recently used go first


def minimum_for(model: str) -> int:
    for prefix, tokens in DOCUMENTED_MINIMUMS:
        if model.startswith(prefix):
            return tokens
    return DEFAULT_MINIMUM


def canonical_json(value: Any) -> str:
    return json.dumps(value, sort_keys=True, separators=(",", ":"), ensure_ascii=False)


def estimate_tokens(block: Mapping[str, Any]) -> int:
    """About 4 characters a token, counted on the block's canonical JSON (cache_control left out)."""
    return max(1, (len(canonical_json(_without_cache_control(block))) + 3) // 4)


@dataclass(frozen=True)
class PromptBlock:
    """One block of the cacheable prompt, as the cache sees it."""

    where: str  # "tools[0]", "system[2]", "messages[3].user[0]"
    key: str  # canonical JSON of position and content: equal keys render the same prompt
    tokens: int
    ttl: str | None  # "5m" / "1h" on a breakpoint, None otherwise


@dataclass(frozen=True)
class CacheUsage:
    input_tokens: int
    cache_creation_input_tokens: int
    cache_read_input_tokens: int
    ephemeral_5m_input_tokens: int = 0
    ephemeral_1h_input_tokens: int = 0

    @property
    def total_input_tokens(self) -> int:
        return self.input_tokens + self.cache_creation_input_tokens + self.cache_read_input_tokens


def prompt_blocks(body: Mapping[str, Any]) -> list[PromptBlock]:
    """The request's prompt as blocks, in cache order: tools, system, messages.

    A string `system` or message `content` is one text block, as the API reads it. System blocks
    holding the CLI's `x-anthropic-billing-header` are left out: the header changes with the first
    user message, and the real API's cache evidently ignores it (see docs/standin.md).
    A top-level `cache_control` (automatic caching) puts a breakpoint on the last block.
    """
    found: list[tuple[str, Mapping[str, Any]]] = []
    for i, tool in enumerate(_as_list(body.get("tools"))):
        if isinstance(tool, Mapping):
            found.append((f"tools[{i}]", tool))
    system = body.get("system")
    for i, block in enumerate([{"type": "text", "text": system}] if isinstance(system, str) else _as_list(system)):
        if isinstance(block, Mapping) and not str(block.get("text", "")).startswith(BILLING_HEADER):
            found.append((f"system[{i}]", block))
    for m, message in enumerate(_as_list(body.get("messages"))):
        if not isinstance(message, Mapping):
            continue
        content = message.get("content")
        blocks = [{"type": "text", "text": content}] if isinstance(content, str) else _as_list(content)
        role = message.get("role")
        for i, block in enumerate(blocks):
            if isinstance(block, Mapping):
                found.append((f"messages[{m}].{role}[{i}]", block))

    out = []
    automatic = _ttl(body.get("cache_control"))
    for n, (where, block) in enumerate(found):
        ttl = _ttl(block.get("cache_control"))
        if ttl is None and automatic is not None and n == len(found) - 1:
            ttl = automatic
        # The position (section, message index and role) is part of the key: the same text in
        # another message or role is another prompt.
        key = canonical_json([where.rsplit("[", 1)[0], _without_cache_control(block)])
        out.append(PromptBlock(where, key, estimate_tokens(block), ttl))
    return out


def refusal(body: Mapping[str, Any]) -> str | None:
    """The 400 message the API gives for cache_control it refuses, or None."""
    marked = _all_marked(body)
    for cache_control in marked:
        if not isinstance(cache_control, Mapping) or cache_control.get("type") != "ephemeral":
            return "cache_control: only {\"type\": \"ephemeral\"} is supported"
        if cache_control.get("ttl", "5m") not in TTL_SECONDS:
            return "cache_control.ttl: Input should be '5m' or '1h'"
    if len(marked) > MAX_BREAKPOINTS:
        return f"A maximum of {MAX_BREAKPOINTS} blocks with cache_control may be provided. Found {len(marked)}."
    return None


@dataclass
class _Entry:
    expires_at: float
    ttl: float


class PromptCache:
    """The cache state of one stand-in upstream. Thread-safe; `clock` is injectable for tests."""

    def __init__(
        self,
        *,
        clock: Callable[[], float] = time.monotonic,
        min_tokens: int | Callable[[str], int] | None = None,
        lookback: int = LOOKBACK_BLOCKS,
        max_entries: int = MAX_ENTRIES,
    ) -> None:
        self._clock = clock
        if min_tokens is None:
            self._minimum: Callable[[str], int] = minimum_for
        elif isinstance(min_tokens, int):
            self._minimum = lambda _model, n=min_tokens: n
        else:
            self._minimum = min_tokens
        self._lookback = lookback
        self._max_entries = max_entries
        self._entries: OrderedDict[tuple[str, str, str], _Entry] = OrderedDict()
        self._lock = threading.Lock()

    def __len__(self) -> int:
        with self._lock:
            self._purge(self._clock())
            return len(self._entries)

    def clear(self) -> None:
        with self._lock:
            self._entries.clear()

    def use(self, body: Mapping[str, Any], account: str = "") -> CacheUsage:
        """Read and write the cache for one request; what its usage reports."""
        return self.use_blocks(prompt_blocks(body), str(body.get("model", "")), account)

    def use_blocks(self, blocks: list[PromptBlock], model: str, account: str = "") -> CacheUsage:
        prefix_ids, ends = _prefixes(blocks)
        total = ends[-1] if ends else 0
        breakpoints = [i for i, b in enumerate(blocks) if b.ttl is not None]
        with self._lock:
            now = self._clock()
            self._purge(now)
            read_end = -1
            for bp in breakpoints:
                for j in range(bp, max(-1, bp - self._lookback - 1), -1):
                    if j <= read_end:
                        break
                    if (account, model, prefix_ids[j]) in self._entries:
                        read_end = j
                        break
            if read_end >= 0:
                self._touch((account, model, prefix_ids[read_end]), now, None)

            minimum = self._minimum(model)
            covered = read_end
            written = {"5m": 0, "1h": 0}
            for bp in breakpoints:
                if ends[bp] < minimum:
                    continue
                ttl = blocks[bp].ttl
                assert ttl is not None
                if bp > covered:
                    written[ttl] += ends[bp] - (ends[covered] if covered >= 0 else 0)
                    covered = bp
                self._touch((account, model, prefix_ids[bp]), now, TTL_SECONDS[ttl])
        cached = ends[covered] if covered >= 0 else 0
        read = ends[read_end] if read_end >= 0 else 0
        return CacheUsage(
            input_tokens=total - cached,
            cache_creation_input_tokens=written["5m"] + written["1h"],
            cache_read_input_tokens=read,
            ephemeral_5m_input_tokens=written["5m"],
            ephemeral_1h_input_tokens=written["1h"],
        )

    # --- internals (under the lock) ---------------------------------------------------------------

    def _touch(self, key: tuple[str, str, str], now: float, ttl: float | None) -> None:
        """Write or refresh an entry; a read (ttl None) refreshes it for its own TTL."""
        entry = self._entries.get(key)
        if entry is None:
            assert ttl is not None
            entry = self._entries[key] = _Entry(now + ttl, ttl)
        else:
            entry.ttl = max(entry.ttl, ttl or 0.0)
            entry.expires_at = max(entry.expires_at, now + entry.ttl)
        self._entries.move_to_end(key)
        while len(self._entries) > self._max_entries:
            self._entries.popitem(last=False)

    def _purge(self, now: float) -> None:
        for key in [k for k, e in self._entries.items() if e.expires_at <= now]:
            del self._entries[key]


def _prefixes(blocks: list[PromptBlock]) -> tuple[list[str], list[int]]:
    """For each block, an id of the prefix ending with it and that prefix's token count."""
    ids, ends = [], []
    digest, total = hashlib.sha256(), 0
    for block in blocks:
        digest.update(block.key.encode())
        digest.update(b"\0")
        total += block.tokens
        ids.append(digest.copy().hexdigest())
        ends.append(total)
    return ids, ends


def _all_marked(body: Mapping[str, Any]) -> list[Any]:
    marked = []
    if body.get("cache_control") is not None:
        marked.append(body["cache_control"])
    system = body.get("system")
    groups = [_as_list(body.get("tools")), system if isinstance(system, list) else []]
    for message in _as_list(body.get("messages")):
        if isinstance(message, Mapping) and isinstance(message.get("content"), list):
            groups.append(message["content"])
    for group in groups:
        for block in group:
            if isinstance(block, Mapping) and block.get("cache_control") is not None:
                marked.append(block["cache_control"])
    return marked


def _ttl(cache_control: Any) -> str | None:
    if not isinstance(cache_control, Mapping) or cache_control.get("type") != "ephemeral":
        return None
    ttl = cache_control.get("ttl", "5m")
    return ttl if ttl in TTL_SECONDS else None


def _without_cache_control(block: Mapping[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in block.items() if k != "cache_control"}


def _as_list(value: Any) -> list[Any]:
    return value if isinstance(value, list) else []
