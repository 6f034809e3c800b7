"""Reasoning: reasoning_effort, the thinking as `reasoning_content` (the field vLLM, DeepSeek and
LiteLLM use; not in OpenAI's own schema), and reasoning tokens in usage.

All `should`: OpenAI's chat completions never show reasoning, and a server without reasoning
models may refuse the fields. A server that shows no reasoning skips the content checks."""

from __future__ import annotations

import re
from typing import Any

from conformance.checks.base import (Context, check, error_envelope, excerpt, fail, json_object,
                                     skip, stream)
from conformance.schemas import official_errors

check = check("reasoning")

_THINK_TAG = re.compile(r"<think(ing)?>", re.IGNORECASE)


def _asked(ctx: Context, probe: str) -> Any:
    """The exchange of a probe that asked to see the thinking; skips when the server refused
    the request (a 400 in the envelope: OpenAI does, for `include_reasoning`)."""
    ex = ctx.exchange(probe)
    if ex.status == 200:
        return ex
    if ex.error or (ex.status or 0) >= 500:
        fail(f"{probe}: answered {ex.error or ex.status}: {excerpt(ex)}")
    error = error_envelope(ex)
    skip(f"{probe}: the server refused to show reasoning ({ex.status}, param "
         f"{error.get('param')!r}): {str(error.get('message'))[:120]}")


def _message(ctx: Context) -> dict[str, Any]:
    body = json_object(_asked(ctx, "chat.reasoning"))
    problems = official_errors("CreateChatCompletionResponse", body)
    if problems:
        fail("; ".join(problems))
    return body["choices"][0]["message"]


@check("reasoning.effort.accepted", level="should",
       title="reasoning_effort: low gets a valid completion, or a 400 in the error envelope "
             "naming it; never a server error",
       protects="ReasoningEffort in CreateChatCompletionRequest; agents send it to every model "
                "and must learn plainly when a model has no such setting")
def effort_accepted(ctx: Context) -> str:
    ex = ctx.exchange("chat.reasoning_effort")
    if ex.status == 200:
        problems = official_errors("CreateChatCompletionResponse", json_object(ex))
        if problems:
            fail("; ".join(problems))
        return "accepted"
    if ex.error or (ex.status or 0) >= 500:
        fail(f"answered {ex.error or ex.status}: {excerpt(ex)}")
    error = error_envelope(ex, (400,))
    if error.get("param") not in ("reasoning_effort", None):
        fail(f"the 400 names param {error.get('param')!r}, not 'reasoning_effort'")
    return "refused with 400 (no reasoning effort for this model)"


@check("reasoning.effort.invalid", level="should",
       title="reasoning_effort: \"extreme\" (not in the enum) is rejected with a 400 naming "
             "reasoning_effort",
       protects="ReasoningEffort's enum (none, minimal, low, medium, high, xhigh, max); a "
                "misspelt effort silently ignored runs at a depth the client did not choose")
def effort_invalid(ctx: Context) -> None:
    ex = ctx.exchange("chat.reasoning_effort_invalid")
    if ex.status == 200:
        fail("reasoning_effort \"extreme\" was accepted: " + excerpt(ex, 160))
    error = error_envelope(ex, (400,))
    if error.get("param") not in ("reasoning_effort", None):
        fail(f"the 400 names param {error.get('param')!r}, not 'reasoning_effort'")


@check("reasoning.content.separate", level="should",
       title="Asked to show its reasoning (include_reasoning), the answer keeps it out of "
             "`content`: a string `reasoning_content`, or none at all; no <think> tags",
       protects="message.reasoning_content (vLLM, DeepSeek, LiteLLM); clients show it apart "
                "from the answer and never feed it back as the answer")
def content_separate(ctx: Context) -> str:
    message = _message(ctx)
    content = message.get("content")
    if isinstance(content, str) and _THINK_TAG.search(content):
        fail(f"the content carries a <think> block: {content[:160]!r}")
    if "reasoning_content" not in message:
        skip("the server shows no reasoning_content (not a reasoning model, or it is asked "
             "another way)")
    reasoning = message["reasoning_content"]
    if reasoning is not None and not isinstance(reasoning, str):
        fail(f"reasoning_content is {type(reasoning).__name__}, not a string: "
             f"{str(reasoning)[:160]}")
    if not reasoning:
        skip("reasoning_content is empty: the model did not think about this prompt")
    if isinstance(content, str) and content.strip() and reasoning.strip() == content.strip():
        fail("reasoning_content repeats the content")
    return f"{len(reasoning)} characters of reasoning"


@check("reasoning.content.stream", level="should",
       title="Streamed, the reasoning comes as `delta.reasoning_content` strings, all before "
             "the first content delta, and no delta's content carries <think> tags",
       protects="delta.reasoning_content (vLLM, DeepSeek, LiteLLM); clients render the "
                "thinking first and the answer after it")
def content_stream(ctx: Context) -> str:
    _asked(ctx, "chat.reasoning_stream")
    s = stream(ctx, "chat.reasoning_stream")
    if _THINK_TAG.search(s.text()):
        fail(f"the streamed content carries a <think> block: {s.text()[:160]!r}")
    pieces, content_seen = [], False
    for number, chunk in enumerate(s.choice_chunks()):
        for choice in chunk["choices"]:
            delta = choice.get("delta") or {}
            if "reasoning_content" in delta:
                piece = delta["reasoning_content"]
                if piece is not None and not isinstance(piece, str):
                    fail(f"chunk {number}: reasoning_content is {type(piece).__name__}")
                if piece and content_seen:
                    fail(f"chunk {number}: reasoning_content after the content began")
                pieces.append(piece or "")
            if delta.get("content"):
                content_seen = True
    if not "".join(pieces):
        skip("the stream carries no reasoning_content")
    return f"{len(pieces)} reasoning deltas"


@check("reasoning.tokens.counted", level="should",
       title="With reasoning shown, usage.completion_tokens_details.reasoning_tokens counts it: "
             "an integer from 1 to completion_tokens",
       protects="CompletionUsage.completion_tokens_details.reasoning_tokens; thinking is "
                "billed as output, and budgets and dashboards read it here")
def tokens_counted(ctx: Context) -> str:
    message = _message(ctx)
    if not (isinstance(message.get("reasoning_content"), str) and message["reasoning_content"]):
        skip("no reasoning_content to count")
    usage = json_object(ctx.exchange("chat.reasoning")).get("usage")
    if not isinstance(usage, dict):
        fail("the completion has no usage")
    details = usage.get("completion_tokens_details")
    reasoning = details.get("reasoning_tokens") if isinstance(details, dict) else None
    completion_tokens = usage.get("completion_tokens")
    if not isinstance(reasoning, int) or isinstance(reasoning, bool):
        fail(f"completion_tokens_details.reasoning_tokens is {reasoning!r} for a shown "
             f"reasoning of {len(message['reasoning_content'])} characters")
    if not isinstance(completion_tokens, int) or not 1 <= reasoning <= completion_tokens:
        fail(f"reasoning_tokens {reasoning} is not between 1 and completion_tokens "
             f"{completion_tokens}")
    return f"{reasoning} of {completion_tokens} completion tokens"
