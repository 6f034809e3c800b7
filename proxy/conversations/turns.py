"""A native conversation turn: a role and its Messages API content blocks.

Blocks are kept as canonical JSON text (sorted keys, no spaces, non-ASCII as is), so a turn is
hashable, compares exactly, fingerprints cheaply and is stored in cassettes like any other text
of an invocation.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass, field
from typing import Any, Iterable, Sequence


def canonical(value: Any) -> str:
    return json.dumps(value, separators=(",", ":"), sort_keys=True, ensure_ascii=False)


@dataclass(frozen=True)
class Turn:
    role: str                 # "user" or "assistant"
    blocks: tuple[str, ...]   # content blocks, each canonical JSON
    # The API message an assistant turn came from ((key, value) pairs: its id and model), for
    # the session file only: the CLI sends a turn's thinking blocks on only when its message
    # has them (measured with 2.1.332). Not part of what the turn is.
    message: tuple[tuple[str, str], ...] = field(default=(), compare=False)
    # The model's own thinking blocks (JSON, signed, keys as the API sent them), which the
    # session file puts before the turn's blocks. Not part of what the turn is either: a client
    # never sends them as content, so a conversation is the same with or without them (the
    # kept process that holds it is found by the same fingerprint).
    thinking: tuple[str, ...] = field(default=(), compare=False)

    @classmethod
    def of(cls, role: str, content: Iterable[dict[str, Any]]) -> "Turn":
        return cls(role, tuple(canonical(block) for block in content))

    def content(self) -> list[dict[str, Any]]:
        return [json.loads(block) for block in self.blocks]

    @property
    def size(self) -> int:
        return sum(len(block) for block in self.blocks)


def as_sent(block: Any) -> str:
    """A block as JSON text in the order of its keys as received: for blocks that go back to the
    API exactly as it sent them (thinking), where the canonical form would sort the keys."""
    return json.dumps(block, separators=(",", ":"), ensure_ascii=False)


def fingerprint(turns: Sequence[Turn]) -> str:
    """A digest of a conversation's turns, in order (role and exact content)."""
    digest = hashlib.sha256()
    for turn in turns:
        digest.update(turn.role.encode() + b"\0")
        for block in turn.blocks:
            digest.update(block.encode("utf-8", "surrogatepass") + b"\0")
        digest.update(b"\1")
    return digest.hexdigest()


def cli_order(value: Any) -> Any:
    """A content block with `type` first, as the CLI writes (and sends) its own blocks: the
    canonical form sorts keys, and the upstream request should be the CLI's byte for byte."""
    if isinstance(value, dict):
        ordered = {"type": value["type"]} if "type" in value else {}
        ordered.update((k, cli_order(v)) for k, v in value.items() if k != "type")
        return ordered
    if isinstance(value, list):
        return [cli_order(v) for v in value]
    return value
