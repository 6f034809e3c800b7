"""OpenAI messages -> native Claude turns, or the reason a conversation cannot be native.

A conversation reaches Claude as it would through the Messages API: user and assistant turns
in order, each with its content blocks (text and images), so the model sees its earlier answers
as its own turns and the prompt cache can reuse every earlier turn. The rules:

* the leading `system`/`developer` messages are the system prompt (proxy/chat/render.py);
* consecutive messages of the same role are merged into one turn, blocks in order (the API
  needs user and assistant to alternate); `tool` (and legacy `function`) messages are tool
  results, which belong to the user's side, so they open the user turn that follows a call;
* a message's `name` becomes a text block `<name>NAME</name>` before its content: Claude has
  no such field, and the model must still be able to tell the speakers apart;
* the last turn must be the user's: it is what the CLI is given to answer, on its stdin.

What cannot be native, and then goes as a transcript (render.py), with the reason logged and
counted:
* a `system`/`developer` message after the conversation began: the Messages API has no
  place for it between turns;
* an empty turn (a message without content, not merged into a neighbour of its role): the
  API refuses empty turns, and dropping it would merge the turns around it;
* a whitespace-only text part: the API refuses such blocks;
* a conversation that ends with an assistant message (a prefill): the CLI answers a user turn;
* a conversation that starts with an assistant message (a greeting): a session starts with
  the user's turn;
* a last text part the CLI would act on as typed input (a leading `/`, an `@` mention).
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from html import escape
from typing import Any, Protocol, Sequence

from proxy.claude.typed_input import blank, typed_input_safe
from proxy.conversations.turns import Turn


class _Parsed(Protocol):
    """A message as proxy/chat/render.py parses it: role, name and parts (str or image)."""
    role: str
    name: str | None
    parts: tuple[Any, ...]


# Why a conversation went as a transcript; the keys label the fallback metric.
FALLBACKS = {
    "system_mid_conversation": "a system or developer message after the conversation began",
    "empty_assistant": "an assistant message without content",
    "blank_part": "a text part of only whitespace, which the API refuses",
    "empty": "no content at all (the CLI would send \"(no content)\")",
    "ends_with_assistant": "the conversation ends with an assistant message",
    "starts_with_assistant": "the conversation starts with an assistant message",
    "typed_input": "the last text starts with `/` or has an `@` mention, which the CLI would act on",
    "session_unavailable": "the CLI's session files cannot be written or read here (see the log)",
}


@dataclass(frozen=True)
class Native:
    """A conversation as native turns: the earlier turns, and the parts of the last user turn."""
    history: tuple[Turn, ...]
    last: tuple[Any, ...]   # str or an image (with `.source`), in order


@dataclass(frozen=True)
class NotNative:
    reason: str             # a key of FALLBACKS

    @property
    def description(self) -> str:
        return FALLBACKS[self.reason]


def native(conversation: Sequence[_Parsed]) -> Native | NotNative:
    """The conversation after its leading instructions, as native turns."""
    merged: list[tuple[str, list[Any]]] = []
    for message in conversation:
        if message.role in ("system", "developer"):
            return NotNative("system_mid_conversation")
        role = "user" if message.role in ("tool", "function") else message.role
        parts = [p for p in message.parts if p != ""]
        if any(isinstance(p, str) and blank(p) for p in parts):
            return NotNative("blank_part")
        if message.name and parts and role == message.role:
            parts.insert(0, f"<name>{escape(message.name, quote=False)}</name>")
        if merged and merged[-1][0] == role:
            merged[-1][1].extend(parts)
        else:  # an empty message still holds its place: it must not merge its neighbours
            merged.append((role, parts))
    empty = next((role for role, parts in merged if not parts), None)
    if empty is not None:
        return NotNative("empty_assistant" if empty == "assistant" else "empty")
    if not merged:
        return NotNative("empty")
    if merged[-1][0] != "user":
        return NotNative("ends_with_assistant")
    last = merged[-1][1]
    if isinstance(last[-1], str) and not typed_input_safe(last[-1]):
        return NotNative("typed_input")
    if merged[0][0] == "assistant":
        # A greeting before the first user message: a CLI session starts with a user turn.
        return NotNative("starts_with_assistant")
    return Native(_turns(merged[:-1]), tuple(last))


def _turns(merged: Sequence[tuple[str, list[Any]]]) -> tuple[Turn, ...]:
    return tuple(Turn.of(role, (block(p) for p in parts)) for role, parts in merged)


def block(part: Any) -> dict[str, Any]:
    """A part as a Messages API content block (text, an image, a tool call or result)."""
    if isinstance(part, str):
        return {"type": "text", "text": part}
    if hasattr(part, "block"):
        return part.block()
    return {"type": "image", "source": json.loads(part.source)}
