"""Legacy completions (POST /completions): the text_completion object, its stream, a list of
prompts, max_tokens, echo and a missing prompt.

The official spec gives streamed and non-streamed completions one schema
(CreateCompletionResponse); chunks are judged against it with `finish_reason: null` allowed
before a choice ends, as OpenAI streams it.
"""

from __future__ import annotations

from typing import Any

from conformance.checks.base import (Context, check, error_envelope, excerpt, fail, json_object,
                                     require, stream)
from conformance.checks.completion import _usage_adds_up
from conformance.checks.parameters import _length
from conformance.probes import HELLO_PROMPT
from conformance.schemas import official_errors

check = check("legacy")

FINISH_REASONS = ("stop", "length", "content_filter")


def _completion(ctx: Context, probe: str) -> dict[str, Any]:
    return json_object(require(ctx.exchange(probe)))


def _texts(body: dict[str, Any]) -> dict[int, str]:
    return {c.get("index"): c.get("text") for c in body.get("choices") or []
            if isinstance(c, dict)}


@check("legacy.basic.schema", level="must",
       title="A legacy completion answers 200 JSON that validates against the official "
             "CreateCompletionResponse (lenient: logprobs may be omitted)",
       protects="POST /completions (createCompletion); typed clients (openai SDK "
                "Completion, LangChain's OpenAI LLM) read choices[].text")
def basic_schema(ctx: Context) -> None:
    problems = official_errors("CreateCompletionResponse", _completion(ctx, "legacy.basic"))
    if problems:
        fail("; ".join(problems))


@check("legacy.basic.choice", level="must",
       title="object is text_completion, with one choice: index 0, text, a valid finish_reason",
       protects="CreateCompletionResponse.object/choices; a chat.completion on this route "
                "leaves clients without choices[].text")
def basic_choice(ctx: Context) -> None:
    body = _completion(ctx, "legacy.basic")
    if body.get("object") != "text_completion":
        fail(f"object is {body.get('object')!r}, not 'text_completion'")
    choices = body.get("choices")
    if not isinstance(choices, list) or len(choices) != 1:
        fail(f"expected exactly one choice, got {choices!r:.200}")
    choice = choices[0]
    if choice.get("index") != 0:
        fail(f"choices[0].index is {choice.get('index')!r}")
    if not isinstance(choice.get("text"), str) or not choice["text"]:
        fail(f"choices[0].text is {choice.get('text')!r}: no text")
    if choice.get("finish_reason") not in FINISH_REASONS:
        fail(f"finish_reason is {choice.get('finish_reason')!r}")


@check("legacy.stream.chunks", level="must",
       title="stream: true answers text_completion chunks (each valid against the official "
             "schema, finish_reason null until the end), one finish_reason, [DONE] last",
       protects="streamed completions: the openai SDK parses each chunk as a Completion and "
                "stops at [DONE]")
def stream_chunks(ctx: Context) -> None:
    s = stream(ctx, "legacy.stream")
    if s.exchange.stream.problems:
        fail("legacy.stream: " + "; ".join(s.exchange.stream.problems[:3]))
    if s.done_index != len(s.payloads) - 1:
        fail(f"[DONE] at {s.done_index} of {len(s.payloads)} events: it must come once, last")
    for number, chunk in enumerate(s.chunks):
        if "error" in chunk:
            fail(f"chunk {number} is an error: {chunk!r:.200}")
        if chunk.get("object") != "text_completion":
            fail(f"chunk {number} has object {chunk.get('object')!r}, not 'text_completion'")
        problems = official_errors("CreateCompletionResponse", chunk, "lenient", 3,
                                   stream_chunk=True)
        if problems:
            fail(f"chunk {number}: " + "; ".join(problems))
    reasons = [c.get("finish_reason") for chunk in s.chunks for c in chunk.get("choices") or []
               if c.get("finish_reason") is not None]
    if len(reasons) != 1 or reasons[0] not in FINISH_REASONS:
        fail(f"finish reasons in the stream: {reasons} (expected exactly one)")
    text = "".join(c.get("text") or "" for chunk in s.chunks for c in chunk.get("choices") or [])
    if not text:
        fail("the stream carries no text")


@check("legacy.stream.usage", level="should",
       title="With stream_options.include_usage, the last chunk has empty choices and the usage",
       protects="stream_options.include_usage on /completions (the Vercel AI SDK's OpenAI "
                "completion model always asks for it)")
def stream_usage(ctx: Context) -> None:
    s = stream(ctx, "legacy.stream")
    last = s.chunks[-1]
    if last.get("choices") != [] or not isinstance(last.get("usage"), dict):
        fail(f"the last chunk is not a usage chunk with empty choices: {last!r:.300}")
    _usage_adds_up(last["usage"])
    early = [n for n, c in enumerate(s.chunks[:-1]) if isinstance(c.get("usage"), dict)]
    if early:
        fail(f"chunk(s) {early} before the last carry usage")


@check("legacy.prompt_list", level="should",
       title="A list of two prompts gets two choices, index 0 and 1, each with text",
       protects="CreateCompletionRequest.prompt as an array of strings (batching); the "
                "choices' index maps answers to prompts")
def prompt_list(ctx: Context) -> None:
    texts = _texts(_completion(ctx, "legacy.list"))
    if sorted(texts, key=str) != [0, 1]:
        fail(f"choice indexes {sorted(texts, key=str)} for two prompts (expected [0, 1])")
    empty = [i for i, t in texts.items() if not isinstance(t, str) or not t]
    if empty:
        fail(f"choice(s) {empty} have no text")


@check("legacy.max_tokens.length", level="should",
       title="max_tokens: 1 ends the completion with finish_reason length",
       protects="max_tokens on /completions; clients detect truncation by finish_reason")
def max_tokens_length(ctx: Context) -> None:
    _length(ctx, "legacy.max_tokens")


@check("legacy.echo", level="should",
       title="echo: true puts the prompt before the completion (or is refused with a 400 in "
             "the error envelope naming echo)",
       protects="CreateCompletionRequest.echo: silently dropped, a client cuts its prompt "
                "off an answer that does not start with it")
def echo(ctx: Context) -> None:
    ex = ctx.exchange("legacy.echo")
    if ex.status == 400:
        error = error_envelope(ex, (400,))
        if error.get("param") != "echo":
            fail(f"echo refused, but param is {error.get('param')!r}: {excerpt(ex, 200)}")
        return
    texts = _texts(json_object(require(ex)))
    text = texts.get(0)
    if not isinstance(text, str) or not text.startswith(HELLO_PROMPT):
        fail(f"choices[0].text does not start with the prompt: {text!r:.200}")
    if len(text) == len(HELLO_PROMPT):
        fail("choices[0].text is the prompt alone: no completion after it")


@check("legacy.errors.missing_prompt", level="must",
       title="A completion request without prompt is a 400 in the error envelope, param prompt",
       protects="CreateCompletionRequest.required: prompt; a server that guesses a prompt "
                "answers something nobody asked")
def missing_prompt(ctx: Context) -> None:
    error = error_envelope(ctx.exchange("legacy.missing_prompt"), (400,))
    if error.get("param") != "prompt":
        fail(f"param is {error.get('param')!r}, not 'prompt'")
