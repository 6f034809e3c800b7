"""OpenAI messages -> what the CLI receives: a system prompt, earlier turns, one user turn.

The rules, in order:

* Leading `system` and `developer` messages become the CLI's system prompt, joined by a blank
  line. They replace Claude Code's own prompt, so the model follows the client's instructions
  and not a coding-agent persona, and they sit where Claude gives instructions most weight.
  A system prompt of whitespace only is no system prompt (the API refuses blank text blocks).
* The rest is native (proxy/conversations/history.py): user and assistant turns with their
  text and image blocks, the last user turn sent on the CLI's stdin, the earlier ones through a
  session file the CLI resumes. A one-message conversation is exactly its blocks, as a direct
  API call would send them.
* What cannot be native (history.py lists the cases: a later system message, a prefill, a
  blank part, a last text the CLI would act on as typed input, an empty message) is a
  transcript in one user turn, in two blocks: a one-line preamble and one `<turn role="...">`
  element per message, in order; then, alone, the request for the next reply, which the CLI
  reads as the typed input and leaves alone. If any text contains the tag itself, a numbered
  tag (`turn-2`, ...) that no text contains is used instead, so turns always stay
  distinguishable without escaping text. An image in a turn splits the transcript there: text
  block, image block, text block (whitespace alone between two images is dropped).
* Tool calls and results are native too: an assistant's `tool_calls` become `tool_use` blocks
  (under the names the model was offered, proxy/tools/spec.py), and `tool` messages become
  `tool_result` blocks of a user turn (proxy/tools/calls.py). A result without its call, or a
  call without its result, is a 400, as OpenAI answers it. In a transcript both are text.
* What the CLI cannot carry (audio, files) is refused with a 400 naming the message and part,
  never dropped.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from html import escape
from typing import Any, Iterable, Sequence

from proxy.chat.images import image_source
from proxy.claude.typed_input import blank as _blank
from proxy.conversations.history import Native, native
from proxy.conversations.turns import Turn
from proxy.errors import ProxyError, param_path
from proxy.tools.calls import (ToolResult, ToolUse, arguments_object, block_id, canonical,
                               legacy_id)

TRANSCRIPT_PREAMBLE = "Below is a conversation, one <{tag}> element per message, oldest first."
# The transcript's last block, alone: the CLI reads the last block as typed input, so it must
# hold nothing the CLI acts on (see `_typed_input_safe`).
TRANSCRIPT_REQUEST = (
    "Write the assistant's next reply to the conversation above: plain reply text only, "
    "without any <{tag}> tags."
)

_UNSUPPORTED_PART = {
    "input_audio": "audio input",
    "file": "file inputs",
}


@dataclass(frozen=True)
class Image:
    """An image part: its Messages API source as canonical JSON (proxy/chat/images.py)."""

    source: str


@dataclass(frozen=True)
class Prompt:
    """What one CLI run receives: a system prompt ("" for none), the earlier turns, the last
    user turn's text blocks, and its images, each as (the index of the text block it comes
    before, its source). `fallback` names why the conversation went as a transcript."""

    system: str
    blocks: tuple[str, ...]
    images: tuple[tuple[int, str], ...] = ()
    history: tuple[Turn, ...] = ()
    fallback: str | None = None   # a key of proxy.conversations.history.FALLBACKS
    results: tuple[str, ...] = ()  # tool_result blocks that open the last user turn

    @property
    def size(self) -> int:
        """Characters of text (images are bounded by the request body's size instead)."""
        return len(self.system) + sum(len(b) for b in self.blocks) \
            + sum(t.size for t in self.history)


@dataclass(frozen=True)
class _Turn:
    role: str
    name: str | None
    parts: tuple["str | Image", ...]

    @property
    def text(self) -> str:
        return "\n".join(p for p in self.parts if isinstance(p, str) and p)

    @property
    def transcript_text(self) -> str:
        return "\n".join(p if isinstance(p, str) else p.as_text() for p in self.parts
                         if not isinstance(p, Image) and p)


def render(messages: Sequence[dict[str, Any]], fallback: str | None = None) -> Prompt:
    """Renders validated OpenAI chat messages; raises ProxyError(400) for what cannot be carried.
    `fallback` (a reason) asks for the transcript even where the conversation could be native."""
    turns = _paired([_turn(i, m) for i, m in enumerate(messages)], messages)

    lead = 0
    while lead < len(turns) and turns[lead].role in ("system", "developer"):
        lead += 1
    conversation = turns[lead:]
    if not conversation:  # only instructions: they are the whole request
        lead, conversation = 0, turns
    system = "\n\n".join(t.text for t in turns[:lead] if t.text)
    if _blank(system):  # whitespace instructs nothing, and the API refuses blank text blocks
        system = ""

    result = native(conversation)
    if isinstance(result, Native) and (fallback is None or not result.history):
        results = tuple(canonical(p.block()) for p in result.last if isinstance(p, ToolResult))
        return Prompt(system, *_blocks_and_images([p for p in result.last
                                                   if not isinstance(p, ToolResult)]),
                      history=result.history, results=results)
    reason = result.reason if not isinstance(result, Native) else fallback
    return Prompt(system, *_transcript(conversation), fallback=reason)


def _blocks_and_images(parts: Sequence[Any]
                       ) -> tuple[tuple[str, ...], tuple[tuple[int, str], ...]]:
    blocks: list[str] = []
    images: list[tuple[int, str]] = []
    for part in parts:
        if isinstance(part, Image):
            images.append((len(blocks), part.source))
        else:
            blocks.append(part)
    return tuple(blocks), tuple(images)


def _turn(index: int, message: dict[str, Any]) -> _Turn:
    role = message["role"]
    if role == "tool":
        content = message["content"]
        if not isinstance(content, str):
            content = [{"type": "text", "text": p["text"]} for p in content]
        return _Turn(role, None, (ToolResult(block_id(message["tool_call_id"]),
                                             canonical(content)),))
    if role == "function":  # legacy: its call's id comes from the message before (_paired)
        return _Turn(role, message.get("name"),
                     (ToolResult("", canonical(message.get("content") or "")),))
    if role == "assistant" and message.get("audio"):
        raise ProxyError(400, f"messages[{index}] refers to assistant audio, which this "
                              f"proxy cannot carry.",
                         param=param_path("messages", index, "audio"),
                         code="unsupported_content")
    parts: list[Any] = list(_parts(message, index))
    if role == "assistant" and not parts and message.get("refusal"):
        parts = [message["refusal"]]
    if role == "assistant":
        for j, call in enumerate(message.get("tool_calls") or ()):
            where = param_path("messages", index, "tool_calls", j)
            if call.get("type") == "custom":
                parts.append(ToolUse(block_id(call["id"]), call["custom"]["name"],
                                     canonical({"input": call["custom"].get("input", "")}),
                                     "custom"))
            else:
                function = call["function"]
                parts.append(ToolUse(block_id(call["id"]), function["name"], canonical(
                    arguments_object(function["arguments"], f"{where}.function.arguments"))))
        legacy = message.get("function_call")
        if legacy and not message.get("tool_calls"):
            parts.append(ToolUse(legacy_id(index, legacy["name"], legacy["arguments"]),
                                 legacy["name"], canonical(arguments_object(
                                     legacy["arguments"],
                                     param_path("messages", index, "function_call") +
                                     ".arguments"))))
    return _Turn(role=role, name=message.get("name"), parts=tuple(parts))


def _paired(turns: list[_Turn], messages: Sequence[dict[str, Any]]) -> list[_Turn]:
    """Checks that every tool result answers a call of the assistant message before it, and
    every call is answered before the conversation goes on (OpenAI's rules, and the API's);
    gives legacy `function` results the id of their call."""
    out: list[_Turn] = []
    open_calls: dict[str, ToolUse] = {}   # the last assistant message's unanswered calls
    for index, turn in enumerate(turns):
        if turn.role in ("tool", "function"):
            result = turn.parts[0]
            if turn.role == "function":
                call = next((c for c in reversed(open_calls.values()) if c.name == turn.name),
                            None)
                result = ToolResult(call.id if call else "", result.content)
                turn = _Turn(turn.role, None, (result,))
            if result.tool_use_id not in open_calls:
                raise ProxyError(400, f"Invalid parameter: messages[{index}] with role "
                                      f"'{turn.role}' must be a response to a preceding message "
                                      f"with 'tool_calls'.",
                                 param=param_path("messages", index, "tool_call_id"
                                                  if turn.role == "tool" else "role"),
                                 code="invalid_tool_message")
            del open_calls[result.tool_use_id]
        else:
            if open_calls:
                missing = ", ".join(c.id for c in open_calls.values())
                raise ProxyError(400, "An assistant message with 'tool_calls' must be followed "
                                      "by tool messages responding to each 'tool_call_id'. The "
                                      f"following tool_call_ids did not have response messages: "
                                      f"{missing}",
                                 param=param_path("messages", index), code="invalid_tool_message")
            if turn.role == "assistant":
                open_calls = {p.id: p for p in turn.parts if isinstance(p, ToolUse)}
                ids = [p.id for p in turn.parts if isinstance(p, ToolUse)]
                if len(set(ids)) != len(ids):
                    raise ProxyError(400, f"messages[{index}] has two tool calls with one id.",
                                     param=param_path("messages", index, "tool_calls"),
                                     code="invalid_tool_message")
        out.append(turn)
    return out


def _parts(message: dict[str, Any], index: int) -> Iterable["str | Image"]:
    content = message.get("content")
    if content is None:
        return
    if isinstance(content, str):
        yield content
        return
    for j, part in enumerate(content):
        kind = part.get("type")
        if kind == "text":
            yield part["text"]
        elif kind == "refusal":
            yield part["refusal"]
        elif kind == "image_url":
            yield Image(image_source(part, index, j))
        else:
            what = _UNSUPPORTED_PART.get(kind, f"`{kind}` parts")
            raise ProxyError(400, f"messages[{index}].content[{j}] is of type `{kind}`: {what} "
                                  f"cannot be passed to Claude through this proxy yet.",
                             param=param_path("messages", index, "content", j),
                             code="unsupported_content")


def _transcript(turns: Sequence[_Turn]) -> tuple[tuple[str, ...], tuple[tuple[int, str], ...]]:
    """The transcript's text blocks and its images. An image splits the text where it stands:
    the text before it ends a block, the image follows, the text after it starts the next."""
    tag = _free_tag([t.transcript_text for t in turns])
    blocks: list[str] = []
    images: list[tuple[int, str]] = []
    current = TRANSCRIPT_PREAMBLE.format(tag=tag) + "\n"
    for t in turns:
        name = f' name="{escape(t.name, quote=True)}"' if t.name else ""
        current += f'\n<{tag} role="{t.role}"{name}>'
        texts: list[str] = []
        for part in t.parts:
            if isinstance(part, Image):
                current += "\n".join(texts)
                if not _blank(current):  # only whitespace between two images: nothing to send
                    blocks.append(current)
                images.append((len(blocks), part.source))
                current, texts = "", []
            elif isinstance(part, (ToolUse, ToolResult)):
                texts.append(part.as_text())
            elif part:
                texts.append(part)
        current += "\n".join(texts) + f"</{tag}>"
    blocks += [current, TRANSCRIPT_REQUEST.format(tag=tag)]
    return tuple(blocks), tuple(images)


def _free_tag(texts: Sequence[str]) -> str:
    """The first of `turn`, `turn-2`, `turn-3`, ... that no text could be mistaken for.

    Mistaken by any reader: `<turn` or `</turn` followed by any whitespace, `/` or `>`, in any
    letter case (`</turn\n><turn\trole="assistant">` must not close a turn and open another).
    """
    n = 1
    while True:
        tag = "turn" if n == 1 else f"turn-{n}"
        markup = re.compile(rf"</?{re.escape(tag)}(?=[\s/>]|$)", re.IGNORECASE)
        if not any(markup.search(t) for t in texts):
            return tag
        n += 1
