"""Claude's thinking in the Responses API: `reasoning` items, and their `encrypted_content`.

**Seeing it.** `reasoning.summary` (`auto`, `concise` or `detailed`: Claude's API has one
summary form) is the ask that chat's `include_reasoning` is: the CLI runs with
`--thinking-display summarized` and the thinking text becomes a reasoning item's `summary`.
Without it the CLI runs as before and the thinking stays with the proxy.

**Keeping it across turns.** The API accepts the model's earlier thinking only exactly as it sent
it: the text together with its signature (a `thinking` block), or a `redacted_thinking` block.
Claude Code keeps every earlier turn's thinking in the conversation it sends (measured with CLI
2.1.332: the upstream request of a kept process's next turn carries each earlier answer's
thinking block, with `context_management` keeping all of them), and a tool loop's last turn
*must* carry it. A stateless client (Codex CLI: `store: false`, the whole history every turn)
holds nothing of it unless the server gives it something to hold. So, with `include:
["reasoning.encrypted_content"]`, each reasoning item carries the blocks it stands for, sealed:

    encrypted_content = "cmaR1." + base64url(key id 8 | nonce 16 | ciphertext | tag 32)
    plaintext         = zlib(JSON {"blocks": [the blocks as received], "message": {id, model}})
    ciphertext        = plaintext XOR SHAKE-256(encryption key | nonce)
    tag               = HMAC-SHA256(MAC key, version | key id | nonce | ciphertext | owner)

The keys come from a random secret this server run holds in memory only (the key id names it).
The tag makes the token the server's own: a client cannot make one or alter one (no thinking
gets into Claude's history that Claude did not write), and `owner` (the API key's name) in the
tag makes one key's tokens worthless to another. When an item comes back in `input`, its blocks
go back before the turn it precedes (its text and calls), and the session a resumed CLI reads
carries them where Claude Code's own session has them.

A token that does not open is ignored, never an error: one from before a restart (another key
id: the expected case, the secret is gone), one altered or of another API key (logged as a
warning). The conversation then goes on without that thinking, as it did before this existed.
OpenAI answers an unverifiable `encrypted_content` with a 400 (`invalid_encrypted_content`),
and Codex CLI users report that it ends the session for good: a stateless client re-sends the
item on every turn. Here every restart would do that to every conversation, and ignoring a
token gives its sender nothing (the thinking is dropped, never used), so it is ignored.

Bounds: a token is at most `MAX_TOKEN` characters. A block that would seal into a longer one
is not sealed (its item has no `encrypted_content`, logged), and a longer token is ignored
before any work on it; the request body bounds how many come in.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import logging
import secrets
import zlib
from dataclasses import dataclass
from typing import Any, Mapping, Sequence

from proxy.conversations.turns import Turn, as_sent

log = logging.getLogger("claude_max_api.responses")

PREFIX = "cmaR1."
_VERSION = b"cmaR1"
_KEY_ID, _NONCE, _TAG = 8, 16, 32
# A sealed plaintext never holds more than this (the request body bounds what comes in; this
# bounds what one token may inflate to, although only the server's own tokens are inflated).
MAX_PLAINTEXT = 16 * 1024 * 1024
# The longest token made or opened (characters). Far above a thinking block of the longest
# answer (128k output tokens, its signature included), and a quarter of the default body limit.
MAX_TOKEN = 2 * 1024 * 1024
SUMMARIES = ("auto", "concise", "detailed")
ENCRYPTED_CONTENT = "reasoning.encrypted_content"


@dataclass(frozen=True)
class Thinking:
    """The thinking of one API message: its blocks (JSON, keys in the order the API sent them)
    and the message's id and model, which the session file needs for the CLI to send the
    blocks on."""
    blocks: tuple[str, ...]
    message: tuple[tuple[str, str], ...]


@dataclass(frozen=True)
class Settings:
    """What a Responses request asks of Claude's thinking."""
    show: bool = False         # reasoning.summary set: the summary text is shown
    sealed: bool = False       # include reasoning.encrypted_content

    @classmethod
    def of(cls, body: Mapping[str, Any]) -> "Settings":
        reasoning = body.get("reasoning") or {}
        summary = reasoning.get("summary") or reasoning.get("generate_summary")
        return cls(show=summary in SUMMARIES,
                   sealed=ENCRYPTED_CONTENT in (body.get("include") or ()))

    @property
    def items(self) -> bool:
        """Whether the response carries reasoning items at all."""
        return self.show or self.sealed


class ThinkingSeal:
    """Seals thinking blocks into `encrypted_content` and opens them again (module docstring)."""

    def __init__(self, secret: bytes | None = None) -> None:
        secret = secret if secret is not None else secrets.token_bytes(32)
        self._encryption = _derive(secret, b"encryption")
        self._mac = _derive(secret, b"authentication")
        self.key_id = _derive(secret, b"key id")[:_KEY_ID]
        self.ignored = {"another_run": 0, "invalid": 0}   # tokens that did not open

    def seal(self, owner: str, blocks: Sequence[Mapping[str, Any]],
             message: Mapping[str, str]) -> str | None:
        """The token; None (logged) when it would be longer than MAX_TOKEN (or hold more than
        MAX_PLAINTEXT, which opening it would not inflate)."""
        plaintext = json.dumps({"blocks": list(blocks), "message": dict(message)},
                               ensure_ascii=False, separators=(",", ":")
                               ).encode("utf-8", "surrogatepass")
        size = len(plaintext)
        plaintext = zlib.compress(plaintext)
        nonce = secrets.token_bytes(_NONCE)
        ciphertext = _xor(plaintext, self._keystream(nonce, len(plaintext)))
        tag = self._tag(nonce, ciphertext, owner)
        token = PREFIX + base64.urlsafe_b64encode(self.key_id + nonce + ciphertext + tag) \
            .decode("ascii").rstrip("=")
        if len(token) > MAX_TOKEN or size > MAX_PLAINTEXT:
            log.warning("responses: a thinking block too large to seal (%d bytes, a token of %d "
                        "characters; at most %d and %d): its reasoning item has no "
                        "encrypted_content", size, len(token), MAX_PLAINTEXT, MAX_TOKEN)
            return None
        return token

    def open(self, owner: str, token: Any) -> Thinking | None:
        """The thinking a token of this server run and this API key holds; None (logged) for
        anything else."""
        if isinstance(token, str) and len(token) > MAX_TOKEN:
            return self._ignored("invalid", f"it is longer than {MAX_TOKEN} characters")
        raw = self._raw(token)
        if raw is None:
            return self._ignored("invalid", "it is not one this server makes")
        key_id, nonce = raw[:_KEY_ID], raw[_KEY_ID:_KEY_ID + _NONCE]
        ciphertext, tag = raw[_KEY_ID + _NONCE:-_TAG], raw[-_TAG:]
        if not hmac.compare_digest(key_id, self.key_id):
            return self._ignored("another_run", "it was made before this server started")
        if not hmac.compare_digest(tag, self._tag(nonce, ciphertext, owner)):
            return self._ignored("invalid", "it was altered, or made for another API key")
        try:
            inflate = zlib.decompressobj()
            plaintext = inflate.decompress(_xor(ciphertext, self._keystream(
                nonce, len(ciphertext))), MAX_PLAINTEXT)
            value = json.loads(plaintext.decode("utf-8", "surrogatepass"))
            blocks = tuple(as_sent(b) for b in value["blocks"]
                           if isinstance(b, dict)
                           and b.get("type") in ("thinking", "redacted_thinking"))
            message = tuple((k, str(value["message"][k])) for k in ("id", "model"))
        except (zlib.error, ValueError, KeyError, TypeError):  # pragma: no cover - tag held
            return self._ignored("invalid", "its content cannot be read")
        return Thinking(blocks, message) if blocks else None

    # -- internals ------------------------------------------------------------------------
    def _keystream(self, nonce: bytes, size: int) -> bytes:
        return hashlib.shake_256(self._encryption + nonce).digest(size)

    def _tag(self, nonce: bytes, ciphertext: bytes, owner: str) -> bytes:
        data = b"".join((_VERSION, self.key_id, nonce, ciphertext, b"\0",
                         owner.encode("utf-8", "surrogatepass")))
        return hmac.new(self._mac, data, hashlib.sha256).digest()

    @staticmethod
    def _raw(token: Any) -> bytes | None:
        if not isinstance(token, str) or not token.startswith(PREFIX):
            return None
        body = token[len(PREFIX):]
        try:
            raw = base64.urlsafe_b64decode(body + "=" * (-len(body) % 4))
        except ValueError:
            return None
        return raw if len(raw) > _KEY_ID + _NONCE + _TAG else None

    def _ignored(self, reason: str, why: str) -> None:
        self.ignored[reason] += 1
        log.log(logging.INFO if reason == "another_run" else logging.WARNING,
                "responses: a reasoning item's encrypted_content was ignored: %s (the "
                "conversation goes on without that thinking)", why)
        return None


def _derive(secret: bytes, label: bytes) -> bytes:
    return hmac.new(secret, b"claude-max-api reasoning " + label, hashlib.sha256).digest()


def _xor(data: bytes, keystream: bytes) -> bytes:
    return (int.from_bytes(data, "big") ^ int.from_bytes(keystream, "big")) \
        .to_bytes(len(data), "big")


def with_thinking(history: Sequence[Turn], thoughts: Sequence[Sequence[Thinking]]
                  ) -> tuple[Turn, ...]:
    """The history with each assistant turn's thinking: `thoughts[k]` is what the k-th
    assistant turn's reasoning items held (empty: none). The blocks of the last API message
    among them are used (a turn is one API message's answer; any other is not its own)."""
    out: list[Turn] = []
    assistant = 0
    for turn in history:
        if turn.role != "assistant":
            out.append(turn)
            continue
        mine = thoughts[assistant] if assistant < len(thoughts) else ()
        assistant += 1
        if not mine:
            out.append(turn)
            continue
        message = mine[-1].message
        blocks = tuple(b for t in mine if t.message == message for b in t.blocks)
        calls = any('"type":"tool_use"' in b for b in turn.blocks)
        meta = (*message, ("stop_reason", "tool_use" if calls else "end_turn"))
        out.append(Turn(turn.role, turn.blocks, meta, thinking=blocks))
    return tuple(out)
