"""Content-part arrays, roles and unicode round trips.

Whether a model repeats a text exactly is up to the model, so the round-trip checks are
`should`; that the server accepts the request and returns intact text is `must`.
"""

from __future__ import annotations

from conformance.checks.base import (Context, check, completion, content_of, error_envelope,
                                     excerpt, fail, stream)
from conformance.probes import PARTS, UNICODE_SAMPLE
from conformance.schemas import official_errors

check = check("content")


def _valid_completion(ctx: Context, probe: str) -> dict:
    body = completion(ctx, probe)
    problems = official_errors("CreateChatCompletionResponse", body)
    if problems:
        fail(f"{probe}: " + "; ".join(problems))
    return body


def _broken_text(text: str) -> str | None:
    if "\ufffd" in text:
        return "it contains U+FFFD replacement characters (bytes were cut or mis-decoded)"
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        return "it contains a lone surrogate (a character was split between chunks)"
    return None


@check("content.parts.accepted", level="must",
       title="A user message whose content is an array of text parts is accepted",
       protects="ChatCompletionRequestUserMessage content parts; the openai SDK, LangChain "
                "and vision-capable clients always send arrays")
def parts_accepted(ctx: Context) -> None:
    _valid_completion(ctx, "chat.parts")


@check("content.parts.roundtrip", level="should",
       title="Every text part reaches the model, in order (asked to repeat, it repeats both)",
       protects="content parts are concatenated, not truncated to the first or last part")
def parts_roundtrip(ctx: Context) -> None:
    text = content_of(_valid_completion(ctx, "chat.parts"))
    positions = [text.find(part) for part in PARTS]
    if -1 in positions:
        fail(f"the reply lacks {[p for p, i in zip(PARTS, positions) if i < 0]}: {text[:200]!r}")
    if positions != sorted(positions):
        fail(f"the parts come back out of order: {text[:200]!r}")


@check("content.parts.image_handled", level="must",
       title="An image_url part (a data: URL) gets a valid completion or a 400 in the error "
             "envelope; never a server error",
       protects="ChatCompletionRequestMessageContentPartImage; vision clients send images to "
                "whatever model is selected")
def image_handled(ctx: Context) -> str:
    ex = ctx.exchange("chat.image")
    if ex.status == 200:
        _valid_completion(ctx, "chat.image")
        return "accepted"
    if ex.error or (ex.status or 0) >= 500:
        fail(f"answered {ex.error or ex.status}: {excerpt(ex)}")
    error_envelope(ex, (400,))
    return "refused with 400"


@check("content.unicode.accepted", level="must",
       title="A message with accents, CJK, RTL scripts, emoji ZWJ sequences, astral and "
             "combining characters is accepted and answered with intact UTF-8",
       protects="JSON strings are Unicode (RFC 8259); non-English users")
def unicode_accepted(ctx: Context) -> None:
    problem = _broken_text(content_of(_valid_completion(ctx, "chat.unicode")))
    if problem:
        fail(f"the reply is damaged: {problem}")


@check("content.unicode.roundtrip", level="should",
       title="Asked to repeat the unicode sample, the reply is exactly the sample",
       protects="no lossy re-encoding (NFC/NFD, escapes, dropped astral characters)")
def unicode_roundtrip(ctx: Context) -> None:
    text = content_of(_valid_completion(ctx, "chat.unicode")).strip()
    if text != UNICODE_SAMPLE:
        fail(f"sent {UNICODE_SAMPLE!r}, got back {text[:300]!r}")


@check("content.unicode.stream_intact", level="must",
       title="Streamed unicode text has no replacement characters or split surrogates",
       protects="multi-byte characters must not be split across chunks (each chunk is JSON "
                "text, decoded on its own)")
def unicode_stream_intact(ctx: Context) -> None:
    problem = _broken_text(stream(ctx, "chat.unicode_stream").text())
    if problem:
        fail(f"the streamed text is damaged: {problem}")


@check("content.unicode.stream_roundtrip", level="should",
       title="The streamed deltas of the repeated unicode sample join to exactly the sample",
       protects="streaming and non-streaming carry the same text")
def unicode_stream_roundtrip(ctx: Context) -> None:
    text = stream(ctx, "chat.unicode_stream").text().strip()
    if text != UNICODE_SAMPLE:
        fail(f"sent {UNICODE_SAMPLE!r}, the deltas joined give {text[:300]!r}")


@check("content.roles.developer", level="should",
       title="A developer message (the newer name for system) is accepted",
       protects="ChatCompletionRequestDeveloperMessage; current openai SDK examples and "
                "o-series clients send role developer")
def developer_role(ctx: Context) -> None:
    _valid_completion(ctx, "chat.developer")


@check("content.multi_turn", level="must",
       title="A conversation with system, user and assistant turns is accepted",
       protects="ChatCompletionRequestAssistantMessage; every chat client resends the history")
def multi_turn(ctx: Context) -> None:
    _valid_completion(ctx, "chat.multi_turn")
