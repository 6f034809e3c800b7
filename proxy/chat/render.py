"""OpenAI messages -> what the CLI receives: a system prompt and one user turn.

The CLI's stream-json input takes user turns only (an assistant line is not placed in order),
so a conversation is rendered into a single user turn. The rules, in order:

* Leading `system` and `developer` messages become the CLI's system prompt, joined by a blank
  line. They replace Claude Code's own prompt, so the model follows the client's instructions
  and not a coding-agent persona, and they sit where Claude gives instructions most weight.
  (A system message later in the conversation stays at its place in the transcript.)
* A conversation that is one unnamed user message is sent as it is: each non-empty text part
  becomes its own text block and each image an image block, in order, exactly as a direct API
  call would send them. The exceptions go
  as a one-turn transcript instead, so that the model still receives exactly what was sent:
  - the last part is something the CLI acts on as typed input: a leading `/` (a slash command
    even with `--disable-slash-commands`: `/help` is answered by the CLI itself, any other
    gets a reminder injected) or an `@word` (a file mention);
  - a part is blank, or there is nothing at all: the Messages API refuses whitespace-only
    text blocks, so the CLI silently drops them and sends "(no content)" when none is left.
* A system prompt of whitespace only is no system prompt, for the same reason.
* Anything longer is a transcript, in two blocks: a one-line preamble and one
  `<turn role="...">` element per message, in order; then, alone, the request for the next
  reply, which the CLI reads as the typed input and leaves alone. If any text contains the tag
  itself, a numbered tag (`turn-2`, ...) that no text contains is used instead, so turns
  always stay distinguishable without escaping text. An image in a turn splits the transcript
  there: text block, image block, text block (whitespace alone between two images is dropped).
* What the CLI cannot carry yet (audio, files, tool calls and tool results) is refused with a
  400 naming the message and part, never dropped.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from html import escape
from typing import Any, Iterable, Sequence

from proxy.chat.images import image_source
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
    """What one CLI run receives: a system prompt ("" for none), the user turn's text blocks,
    and its images, each as (the index of the text block it comes before, its source)."""

    system: str
    blocks: tuple[str, ...]
    images: tuple[tuple[int, str], ...] = ()

    @property
    def size(self) -> int:
        """Characters of text (images are bounded by the request body's size instead)."""
        return len(self.system) + sum(len(b) for b in self.blocks)


@dataclass(frozen=True)
class _Turn:
    role: str
    name: str | None
    parts: tuple["str | Image", ...]

    @property
    def text(self) -> str:
        return "\n".join(p for p in self.parts if isinstance(p, str) and p)


def render(messages: Sequence[dict[str, Any]]) -> Prompt:
    """Renders validated OpenAI chat messages; raises ProxyError(400) for what cannot be carried."""
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

    single = len(conversation) == 1 and conversation[0].role == "user" \
        and conversation[0].name is None
    parts = [p for p in conversation[0].parts if p != ""] if single else []
    if parts and _sendable_as_is(parts):
        return Prompt(system, *_blocks_and_images(parts))
    return Prompt(system, *_transcript(conversation))  # see the exceptions above


def _sendable_as_is(parts: Sequence["str | Image"]) -> bool:
    """No blank text, and a last block the CLI does not act on (an image last is fine: then
    the CLI reads no typed input at all, measured)."""
    last = parts[-1]
    return not any(isinstance(p, str) and _blank(p) for p in parts) \
        and (isinstance(last, Image) or _typed_input_safe(last))


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


def _typed_input_safe(text: str) -> bool:
    """Whether the CLI passes this last block on untouched (measured with CLI 2.1.332).

    The CLI treats the last text block as what a user typed: a leading `/` is a slash command
    (answered by the CLI, or a reminder injected, whatever `--disable-slash-commands` says),
    and an `@path` is a file mention (the file's content attached; with file mentions disabled,
    a note that the user mentioned a file). Earlier blocks are not read this way.
    """
    return not text.startswith("/") and _MENTION.search(text) is None


# What the CLI's JavaScript `String.prototype.trim()` removes: a text block made only of these
# is dropped (measured with CLI 2.1.332). Not Python's isspace(): it differs on U+001C-U+001F,
# U+0085 (space to Python, text to JavaScript) and U+FEFF (the reverse).
_CLI_WHITESPACE = frozenset(
    "\t\n\v\f\r \u00a0\u1680\u2028\u2029\u202f\u205f\u3000\ufeff"
    + "".join(map(chr, range(0x2000, 0x200B))))


# An `@` the CLI takes for a mention: at the start, or after its whitespace or CJK punctuation.
_MENTION = re.compile("(?:^|[" + re.escape("".join(sorted(_CLI_WHITESPACE)))
                      + "\u3002\u3001\uff1f\uff01])@")


def _blank(text: str) -> bool:
    """Empty or whitespace only, to the CLI (which drops such a block) or possibly to the
    Messages API (which refuses whitespace-only text blocks; which characters it counts is not
    documented, so Unicode's whitespace counts too)."""
    return not text.strip() or all(c in _CLI_WHITESPACE for c in text)


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
