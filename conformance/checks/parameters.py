"""Request parameters: max_tokens / max_completion_tokens, stop, n, temperature, and the fields
clients send routinely or by mistake."""

from __future__ import annotations

import json

from conformance.checks.base import (Context, check, completion, content_of, error_envelope,
                                     excerpt, fail, finish_reasons, json_object, skip, stream)
from conformance.schemas import official_errors

check = check("parameters")


def _length(ctx: Context, probe: str) -> None:
    body = completion(ctx, probe)
    reasons = finish_reasons(body)
    if reasons != ["length"]:
        fail(f"{probe}: finish_reason {reasons} with a 1-token limit on a long essay "
             f"(expected ['length'])")
    usage = body.get("usage")
    if isinstance(usage, dict) and isinstance(usage.get("completion_tokens"), int) \
            and usage["completion_tokens"] > 1:
        fail(f"{probe}: usage.completion_tokens is {usage['completion_tokens']} with a limit of 1")


@check("params.max_tokens.length", level="must",
       title="max_tokens: 1 stops the answer with finish_reason length",
       protects="max_tokens (deprecated, still sent by most clients); agents detect truncation "
                "by finish_reason 'length'")
def max_tokens_length(ctx: Context) -> None:
    _length(ctx, "chat.max_tokens")


@check("params.max_completion_tokens.length", level="must",
       title="max_completion_tokens: 1 stops the answer with finish_reason length",
       protects="max_completion_tokens, what current openai SDKs and o-series clients send")
def max_completion_tokens_length(ctx: Context) -> None:
    _length(ctx, "chat.max_completion_tokens")


@check("params.max_tokens.stream", level="must",
       title="Streaming with max_tokens: 1 ends with a chunk whose finish_reason is length",
       protects="max_tokens in streams; the finish chunk tells clients the text was cut")
def max_tokens_stream(ctx: Context) -> None:
    s = stream(ctx, "chat.max_tokens_stream")
    reasons = [c.get("finish_reason") for chunk in s.choice_chunks() for c in chunk["choices"]
               if c.get("finish_reason") is not None]
    if reasons != ["length"]:
        fail(f"finish reasons in the stream: {reasons} (expected ['length'])")


@check("params.max_tokens.invalid", level="should",
       title="max_tokens: 0 is rejected with a 400 in the error envelope, not read as 'no limit'",
       protects="max_tokens >= 1 (OpenAI answers 400 integer_below_min_value); a limit "
                "silently dropped turns a capped request into an unbounded one")
def max_tokens_invalid(ctx: Context) -> None:
    ex = ctx.exchange("chat.max_tokens_zero")
    if ex.status == 200:
        fail("max_tokens 0 was accepted: " + excerpt(ex, 160))
    error = error_envelope(ex, (400,))
    if error.get("param") not in ("max_tokens", None):
        fail(f"the 400 names param {error.get('param')!r}, not 'max_tokens'")


def _judge_stop(ctx: Context, probe: str, text: str, reasons: list) -> None:
    word = ctx.stop_word()
    if word in text:
        fail(f"{probe}: the content still contains the stop sequence {word!r}: {text[:200]!r}")
    if reasons == ["stop"]:
        return
    # The answer must be the first answer cut before the sequence. A model that answered
    # differently this time (not deterministic at temperature 0) may never have produced it.
    first = content_of(completion(ctx, "chat.count"))
    if text.strip() != first[:first.find(word)].strip():
        skip(f"the model did not repeat its first answer at temperature 0 ({first[:60]!r}, "
             f"then {text[:60]!r}), so it may never have produced the stop sequence {word!r}")
    fail(f"{probe}: finish_reason {reasons} for a text cut at the stop sequence "
         f"(expected ['stop'])")


def _stop(ctx: Context, probe: str) -> None:
    body = completion(ctx, probe)
    _judge_stop(ctx, probe, content_of(body), finish_reasons(body))


@check("params.stop.string", level="must",
       title="stop as a string ends the text before the sequence, with finish_reason stop",
       protects="StopConfiguration (string); the sequence itself is not returned")
def stop_string(ctx: Context) -> None:
    _stop(ctx, "chat.stop_string")


@check("params.stop.array", level="must",
       title="stop as an array of strings is honoured the same way",
       protects="StopConfiguration (array of up to 4)")
def stop_array(ctx: Context) -> None:
    _stop(ctx, "chat.stop_array")


@check("params.stop.stream", level="must",
       title="stop is honoured in streams too: no delta carries the sequence, the finish "
             "chunk says stop",
       protects="StopConfiguration with stream: true; a sequence split across deltas must "
                "still be cut")
def stop_stream(ctx: Context) -> None:
    ctx.stop_word()
    s = stream(ctx, "chat.stop_stream")
    reasons = [c.get("finish_reason") for chunk in s.choice_chunks() for c in chunk["choices"]
               if c.get("finish_reason") is not None]
    _judge_stop(ctx, "chat.stop_stream", s.text(), reasons)


@check("params.n.handled", level="must",
       title="n: 2 gives two choices (index 0 and 1), or a 400 error naming n; never one "
             "choice silently",
       protects="n; a client that asked for two candidates must not get one without being told")
def n_handled(ctx: Context) -> None:
    ex = ctx.exchange("chat.n")
    if ex.status == 200:
        body = json_object(ex)
        indexes = sorted(c.get("index") for c in body.get("choices") or [] if isinstance(c, dict))
        if indexes != [0, 1]:
            fail(f"n=2 answered 200 with choice indexes {indexes}")
        return
    error = error_envelope(ex, (400,))
    if error.get("param") not in ("n", None):
        fail(f"the 400 names param {error.get('param')!r}, not 'n'")
    return "refused with 400 (n > 1 unsupported)"


@check("params.temperature.zero", level="must",
       title="temperature: 0 is accepted",
       protects="temperature (0 to 2); 0 is what evaluation and coding clients send")
def temperature_zero(ctx: Context) -> None:
    problems = official_errors("CreateChatCompletionResponse",
                               completion(ctx, "chat.temperature_zero"))
    if problems:
        fail("; ".join(problems))


@check("params.temperature.range", level="should",
       title="temperature: 3 (outside 0..2) is rejected with a 400 in the error envelope",
       protects="temperature's range in CreateChatCompletionRequest")
def temperature_range(ctx: Context) -> None:
    ex = ctx.exchange("chat.temperature_too_high")
    if ex.status == 200:
        fail("temperature 3 was accepted")
    error_envelope(ex, (400,))


@check("params.common_fields.accepted", level="must",
       title="Fields clients send routinely (top_p, presence/frequency_penalty, seed, user) "
             "are accepted",
       protects="CreateChatCompletionRequest optional fields; LangChain and others always "
                "send some of them")
def common_fields(ctx: Context) -> None:
    problems = official_errors("CreateChatCompletionResponse",
                               completion(ctx, "chat.common_fields"))
    if problems:
        fail("; ".join(problems))


@check("params.unknown_field.clean", level="must",
       title="An unknown top-level field gets a normal completion or a 400 in the error "
             "envelope, never a server error",
       protects="vendor extensions clients add (extra_body); OpenAI answers 400, compatible "
                "servers often ignore them")
def unknown_field(ctx: Context) -> str | None:
    ex = ctx.exchange("chat.unknown_field")
    if ex.status == 200:
        problems = official_errors("CreateChatCompletionResponse", json_object(ex))
        if problems:
            fail("; ".join(problems))
        return "accepted (ignored)"
    if ex.status is not None and ex.status >= 500 or ex.error:
        fail(f"answered {ex.status or ex.error}: {excerpt(ex)}")
    error_envelope(ex, (400,))
    return "rejected with 400"


def _handled(ex, what: str) -> dict | None:
    """A 200 completion (returned) or a 400 in the envelope (None); anything else fails."""
    if ex.status == 200:
        body = json_object(ex)
        problems = official_errors("CreateChatCompletionResponse", body)
        if problems:
            fail("; ".join(problems))
        return body
    if ex.error or (ex.status or 0) >= 500:
        fail(f"{what}: answered {ex.error or ex.status}: {excerpt(ex)}")
    error_envelope(ex, (400,))
    return None


@check("params.tools.handled", level="must",
       title="A request with a function tool gets a valid completion (text, or tool_calls of "
             "the declared function with finish_reason tool_calls) or a 400 in the error "
             "envelope; never a server error",
       protects="tools / tool_choice; agents send tools on every request, and must be told "
                "rather than have them dropped silently (the tools area checks the calls)")
def tools_handled(ctx: Context) -> str:
    body = _handled(ctx.exchange("chat.tools"), "tools")
    if body is None:
        return "refused with 400 (tools unsupported)"
    choice = body["choices"][0]
    calls = choice["message"].get("tool_calls")
    if choice.get("finish_reason") == "tool_calls" and not calls:
        fail("finish_reason is tool_calls but the message has no tool_calls")
    for call in calls or []:
        function = call.get("function") or {}
        if function.get("name") != "get_weather":
            fail(f"a tool call names {function.get('name')!r}, not a declared tool")
        if not isinstance(function.get("arguments"), str):
            fail(f"a tool call's arguments are {function.get('arguments')!r:.80}, not a string")
    if calls and choice.get("finish_reason") != "tool_calls":
        fail(f"finish_reason is {choice.get('finish_reason')!r} for an answer with tool calls")
    return "tool call" if calls else "answered in text"


@check("params.response_format.json_object", level="must",
       title="response_format json_object gives content that parses as a JSON object, or a "
             "400 saying it is unsupported; never free text",
       protects="response_format; structured-output clients json.loads() the content")
def json_object_format(ctx: Context) -> str:
    body = _handled(ctx.exchange("chat.json_object"), "response_format")
    if body is None:
        return "refused with 400 (response_format unsupported)"
    text = content_of(body)
    try:
        value = json.loads(text)
    except ValueError:
        fail(f"the content is not JSON: {text[:200]!r}")
    if not isinstance(value, dict):
        fail(f"the content is JSON but not an object: {text[:200]!r}")
    return "JSON object"
