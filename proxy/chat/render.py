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
* What the CLI cannot carry yet (audio, files, tool calls and tool results) is refused with a
  400 naming the message and part, never dropped.
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


def render(messages: Sequence[dict[str, Any]], fallback: str | None = None) -> Prompt:
    """Renders validated OpenAI chat messages; raises ProxyError(400) for what cannot be carried.
    `fallback` (a reason) asks for the transcript even where the conversation could be native."""
    turns = [_turn(i, m) for i, m in enumerate(messages)]

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
        return Prompt(system, *_blocks_and_images(result.last), history=result.history)
    reason = result.reason if not isinstance(result, Native) else fallback
    return Prompt(system, *_transcript(conversation), fallback=reason)


def _blocks_and_images(parts: Sequence["str | Image"]
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
    if role in ("tool", "function"):
        raise ProxyError(400, f"messages[{index}] has role `{role}`: tool calling is not "
                              f"supported by this proxy yet.",
                         param=param_path("messages", index, "role"), code="unsupported_message")
    if role == "assistant":
        for key in ("tool_calls", "function_call"):
            if message.get(key):
                raise ProxyError(400, f"messages[{index}] carries `{key}`: tool calling is not "
                                      f"supported by this proxy yet.",
                                 param=param_path("messages", index, key),
                                 code="unsupported_message")
        if message.get("audio"):
            raise ProxyError(400, f"messages[{index}] refers to assistant audio, which this "
                                  f"proxy cannot carry.",
                             param=param_path("messages", index, "audio"),
                             code="unsupported_content")
    parts = list(_parts(message, index))
    if role == "assistant" and not parts and message.get("refusal"):
        parts = [message["refusal"]]
    return _Turn(role=role, name=message.get("name"), parts=tuple(parts))


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
    tag = _free_tag([t.text for t in turns])
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
