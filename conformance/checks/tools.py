"""Tool calling: calls whole and streamed, parallel calls, results sent back, `tool_choice`.

What OpenAI guarantees is `must`: a call's shape (id, type, name, arguments as a string), how a
call streams (the first delta of each call carries its index, id, type and name, then come
argument fragments, one finish chunk `tool_calls`), distinct indexes and ids for parallel
calls, `tool_choice` honoured (`none` calls nothing, `required` and a named function force a
call), and arguments that fit the schema under `strict: true`. Without `strict` OpenAI itself
says a model may produce arguments that are not valid JSON, so that is `should`; whether a
model calls at all under `auto`, or calls twice when asked for two lookups, is up to the
model: those checks skip, saying so, when it did not.
"""

from __future__ import annotations

import json
from typing import Any

from conformance.checks.base import (Context, Stream, check, completion, excerpt, fail,
                                     finish_reasons, skip, stream)
from conformance.probes import STRICT_WEATHER_TOOL, TOOL_RESULT
from conformance.schemas import official_errors

check = check("tools")

DECLARED = {"get_weather", "get_time"}


def _valid(ctx: Context, probe: str) -> dict[str, Any]:
    """A 200 completion that validates against the official schema (lenient)."""
    body = completion(ctx, probe)
    problems = official_errors("CreateChatCompletionResponse", body)
    if problems:
        fail(f"{probe}: " + "; ".join(problems))
    return body


def _calls(body: dict[str, Any], probe: str) -> list[dict[str, Any]]:
    message = (body.get("choices") or [{}])[0].get("message") or {}
    calls = message.get("tool_calls")
    if calls is None:
        return []
    if not isinstance(calls, list):
        fail(f"{probe}: message.tool_calls is {calls!r:.100}, not an array")
    return calls


def _call_shape(call: Any, probe: str, names: set[str]) -> dict[str, Any]:
    """One call of a completion: id, type function, a declared name, arguments a string."""
    if not isinstance(call, dict):
        fail(f"{probe}: a tool call is {call!r:.100}, not an object")
    if not isinstance(call.get("id"), str) or not call["id"]:
        fail(f"{probe}: a tool call has id {call.get('id')!r}; clients send it back as "
             f"tool_call_id")
    if call.get("type") != "function":
        fail(f"{probe}: a tool call has type {call.get('type')!r}, not 'function'")
    function = call.get("function")
    if not isinstance(function, dict) or function.get("name") not in names:
        fail(f"{probe}: a tool call names {(function or {}).get('name')!r}, not one of the "
             f"declared functions {sorted(names)}")
    if not isinstance(function.get("arguments"), str):
        fail(f"{probe}: function.arguments is {function.get('arguments')!r:.100}, not a JSON "
             f"string")
    return call


def _arguments(text: str, where: str) -> dict[str, Any]:
    try:
        value = json.loads(text)
    except ValueError:
        fail(f"{where}: the arguments are not JSON: {text[:200]!r}")
    if not isinstance(value, dict):
        fail(f"{where}: the arguments are JSON but not an object: {text[:200]!r}")
    return value


def _made_calls(ctx: Context, probe: str, names: set[str] = DECLARED) -> list[dict[str, Any]]:
    """The calls of a tool_choice `auto` probe; skips when the model answered in text."""
    body = _valid(ctx, probe)
    calls = _calls(body, probe)
    if not calls:
        reasons = finish_reasons(body)
        if reasons == ["tool_calls"]:
            fail(f"{probe}: finish_reason is tool_calls but the message has no tool_calls")
        skip(f"{probe}: the model answered without calling the tool (tool_choice auto, "
             f"finish_reason {reasons}); the call's shape cannot be judged")
    for call in calls:
        _call_shape(call, probe, names)
    return calls


# ---------------------------------------------------------------------------- streams


def _stream_calls(s: Stream) -> dict[int, list[dict[str, Any]]]:
    """The tool_calls deltas of choice 0, by index, in order (the check fails on a delta
    without an integer index: clients cannot place it)."""
    probe = s.exchange.request.probe
    calls: dict[int, list[dict[str, Any]]] = {}
    for number, chunk in enumerate(s.chunks):
        for choice in chunk.get("choices") or []:
            if not isinstance(choice, dict) or choice.get("index", 0) != 0:
                continue
            for delta in (choice.get("delta") or {}).get("tool_calls") or []:
                index = delta.get("index") if isinstance(delta, dict) else None
                if not isinstance(index, int) or isinstance(index, bool):
                    fail(f"{probe}: chunk {number} has a tool_calls delta without an integer "
                         f"index: {delta!r:.160}")
                calls.setdefault(index, []).append(delta)
    return calls


def _stream_finishes(s: Stream) -> list[Any]:
    return [c.get("finish_reason") for chunk in s.choice_chunks() for c in chunk["choices"]
            if isinstance(c, dict) and c.get("finish_reason") is not None]


def _streamed_calls(ctx: Context, probe: str) -> tuple[Stream, dict[int, list[dict[str, Any]]]]:
    s = stream(ctx, probe)
    calls = _stream_calls(s)
    if not calls:
        reasons = _stream_finishes(s)
        if reasons == ["tool_calls"]:
            fail(f"{probe}: the stream ends with finish_reason tool_calls but streamed no call")
        skip(f"{probe}: the model answered without calling the tool (tool_choice auto, "
             f"finish_reason {reasons}); the streamed call cannot be judged")
    return s, calls


def _judge_deltas(probe: str, calls: dict[int, list[dict[str, Any]]]) -> None:
    for index, deltas in sorted(calls.items()):
        first, rest = deltas[0], deltas[1:]
        function = first.get("function") if isinstance(first.get("function"), dict) else {}
        missing = [k for k, ok in (("id", isinstance(first.get("id"), str) and first["id"]),
                                   ("type", first.get("type") == "function"),
                                   ("function.name", function.get("name") in DECLARED))
                   if not ok]
        if missing:
            fail(f"{probe}: the first delta of call {index} lacks {', '.join(missing)}: "
                 f"{first!r:.200}")
        for delta in rest:
            again = [k for k in ("id", "type") if delta.get(k) is not None] + \
                (["function.name"] if (delta.get("function") or {}).get("name") else [])
            if again:
                fail(f"{probe}: a later delta of call {index} repeats {', '.join(again)} "
                     f"(clients concatenate what each delta carries): {delta!r:.200}")
        pieces = [(d.get("function") or {}).get("arguments") for d in deltas]
        if any(p is not None and not isinstance(p, str) for p in pieces):
            fail(f"{probe}: call {index} has argument fragments that are not strings: "
                 f"{pieces!r:.200}")


def _joined(calls: dict[int, list[dict[str, Any]]], index: int) -> str:
    return "".join((d.get("function") or {}).get("arguments") or "" for d in calls[index])


# ---------------------------------------------------------------------------- one call


@check("tools.call.nonstream", level="must",
       title="A call comes back as message.tool_calls: id, type function, a declared name, "
             "arguments as a string, and finish_reason tool_calls",
       protects="ChatCompletionMessageToolCall; agents read tool_calls and answer each id")
def call_nonstream(ctx: Context) -> None:
    _made_calls(ctx, "tools.call")
    reasons = finish_reasons(completion(ctx, "tools.call"))
    if reasons != ["tool_calls"]:
        fail(f"tools.call: finish_reason {reasons} for an answer with tool calls (expected "
             f"['tool_calls']); agent loops stop when it is 'stop'")


@check("tools.call.arguments", level="should",
       title="The call's arguments parse as a JSON object with the function's required "
             "parameters",
       protects="function.arguments; OpenAI notes that without strict a model may produce "
                "invalid JSON, so clients should validate, but every client json.loads() it")
def call_arguments(ctx: Context) -> None:
    for call in _made_calls(ctx, "tools.call"):
        value = _arguments(call["function"]["arguments"], "tools.call")
        if not isinstance(value.get("city"), str):
            fail(f"tools.call: the arguments {value!r:.200} lack the required string 'city'")


@check("tools.stream.deltas", level="must",
       title="A streamed call: its first delta carries index, id, type function and the name; "
             "later deltas carry only the index and argument fragments",
       protects="ChatCompletionMessageToolCallChunk as OpenAI streams it; the openai SDK, "
                "LangChain and the Vercel AI SDK accumulate calls by index")
def stream_deltas(ctx: Context) -> None:
    _, calls = _streamed_calls(ctx, "tools.call_stream")
    _judge_deltas("tools.call_stream", calls)


@check("tools.stream.arguments", level="must",
       title="A streamed call's argument fragments join to a JSON object",
       protects="function.arguments streamed in pieces; clients json.loads() the joined text")
def stream_arguments(ctx: Context) -> None:
    _, calls = _streamed_calls(ctx, "tools.call_stream")
    for index in sorted(calls):
        _arguments(_joined(calls, index), f"tools.call_stream call {index}")


@check("tools.stream.finish", level="must",
       title="A streamed call ends with exactly one finish chunk whose finish_reason is "
             "tool_calls, and no content or call delta after it",
       protects="finish_reason 'tool_calls' in streams; agent loops run the tools on it")
def stream_finish(ctx: Context) -> None:
    s, _ = _streamed_calls(ctx, "tools.call_stream")
    reasons = _stream_finishes(s)
    if reasons != ["tool_calls"]:
        fail(f"tools.call_stream: finish reasons {reasons} (expected exactly ['tool_calls'])")
    finished = False
    for chunk in s.choice_chunks():
        for choice in chunk["choices"]:
            delta = choice.get("delta") or {}
            if finished and (delta.get("content") or delta.get("tool_calls")):
                fail(f"tools.call_stream: a delta after the finish chunk: {choice!r:.200}")
            if choice.get("finish_reason") is not None:
                finished = True


# ---------------------------------------------------------------------------- parallel calls


@check("tools.parallel.nonstream", level="must",
       title="Parallel calls: every call of the answer is in message.tool_calls, each with "
             "its own id",
       protects="parallel_tool_calls; an agent answers every id, and two calls with one id "
                "cannot both be answered")
def parallel_nonstream(ctx: Context) -> str:
    calls = _made_calls(ctx, "tools.parallel")
    if len(calls) < 2:
        skip(f"tools.parallel: the model made {len(calls)} call for two lookups; parallel "
             f"calls cannot be judged")
    ids = [c["id"] for c in calls]
    if len(set(ids)) != len(ids):
        fail(f"tools.parallel: the calls share ids: {ids}")
    for call in calls:
        _arguments(call["function"]["arguments"], "tools.parallel")
    return f"{len(calls)} calls"


@check("tools.parallel.stream", level="must",
       title="Streamed parallel calls have indexes 0..n-1 in order, each starting with its "
             "own id and name, and one finish chunk tool_calls",
       protects="ChatCompletionMessageToolCallChunk.index; clients put every delta in the "
                "call of its index")
def parallel_stream(ctx: Context) -> str:
    s, calls = _streamed_calls(ctx, "tools.parallel_stream")
    # Calls are counted by the deltas that start one (they carry an id): a server that puts
    # two calls on one index has two starts there, which clients merge into one broken call.
    starts = sum(1 for deltas in calls.values() for d in deltas if d.get("id"))
    if max(starts, len(calls)) < 2:
        skip(f"tools.parallel_stream: the model made 1 call for two lookups; parallel "
             f"calls cannot be judged")
    order = []
    for chunk in s.choice_chunks():
        for choice in chunk["choices"]:
            for delta in (choice.get("delta") or {}).get("tool_calls") or []:
                if delta["index"] not in order:
                    order.append(delta["index"])
    if order != list(range(len(calls))):
        fail(f"tools.parallel_stream: call indexes appear as {order}, not 0..{len(calls) - 1}")
    _judge_deltas("tools.parallel_stream", calls)
    ids = [calls[i][0]["id"] for i in sorted(calls)]
    if len(set(ids)) != len(ids):
        fail(f"tools.parallel_stream: the calls share ids: {ids}")
    for index in sorted(calls):
        _arguments(_joined(calls, index), f"tools.parallel_stream call {index}")
    reasons = _stream_finishes(s)
    if reasons != ["tool_calls"]:
        fail(f"tools.parallel_stream: finish reasons {reasons} (expected ['tool_calls'])")
    return f"{len(calls)} calls"


# ---------------------------------------------------------------------------- round trip


@check("tools.roundtrip.accepted", level="must",
       title="The results sent back (the assistant's tool_calls, then one tool message per "
             "call) get a valid completion",
       protects="ChatCompletionRequestToolMessage; the second half of every agent loop")
def roundtrip_accepted(ctx: Context) -> None:
    body = _valid(ctx, "tools.roundtrip")
    message = body["choices"][0]["message"]
    if not message.get("content") and not message.get("tool_calls"):
        fail(f"tools.roundtrip: the answer has neither content nor tool calls: "
             f"{excerpt(ctx.exchange('tools.roundtrip'))}")


@check("tools.roundtrip.answer", level="should",
       title="Given the tool's result, the model answers in text that uses it, with "
             "finish_reason stop",
       protects="the tool result reaches the model as the call's result, not dropped or "
                "garbled")
def roundtrip_answer(ctx: Context) -> None:
    body = _valid(ctx, "tools.roundtrip")
    text = body["choices"][0]["message"].get("content") or ""
    reasons = finish_reasons(body)
    if reasons != ["stop"]:
        fail(f"tools.roundtrip: finish_reason {reasons} after the results (expected ['stop'])")
    if "22" not in text:
        fail(f"tools.roundtrip: the answer does not use the result {TOOL_RESULT!r}: "
             f"{text[:200]!r}")


# ---------------------------------------------------------------------------- tool_choice


@check("tools.choice.auto", level="must",
       title="tool_choice auto gets a 200 with either tool calls (finish_reason tool_calls) "
             "or text (finish_reason stop)",
       protects="ChatCompletionToolChoiceOption 'auto', what every agent sends")
def choice_auto(ctx: Context) -> str:
    body = _valid(ctx, "tools.call")
    calls = _calls(body, "tools.call")
    reasons = finish_reasons(body)
    if calls:
        for call in calls:
            _call_shape(call, "tools.call", DECLARED)
        if reasons != ["tool_calls"]:
            fail(f"tools.call: finish_reason {reasons} with tool calls")
        return "tool call"
    if reasons == ["tool_calls"]:
        fail("tools.call: finish_reason tool_calls without tool calls")
    if not (body["choices"][0]["message"].get("content") or ""):
        fail("tools.call: neither tool calls nor text")
    return "answered in text"


@check("tools.choice.none", level="must",
       title="tool_choice none gets a 200 with a text answer and no tool calls",
       protects="'none': the model must not call a tool; clients use it to force a final "
                "answer")
def choice_none(ctx: Context) -> None:
    body = _valid(ctx, "tools.choice_none")
    calls = _calls(body, "tools.choice_none")
    if calls:
        fail(f"tools.choice_none: {len(calls)} tool call(s) although tool_choice is none")
    if finish_reasons(body) != ["stop"]:
        fail(f"tools.choice_none: finish_reason {finish_reasons(body)} (expected ['stop'])")
    if not body["choices"][0]["message"].get("content"):
        fail("tools.choice_none: no text in the answer")


@check("tools.choice.required", level="must",
       title="tool_choice required gets a 200 with at least one tool call and finish_reason "
             "tool_calls, never prose",
       protects="'required': the model must call a tool; agents that force a call hang or "
                "loop on a prose answer")
def choice_required(ctx: Context) -> None:
    body = _valid(ctx, "tools.choice_required")
    calls = _calls(body, "tools.choice_required")
    if not calls:
        fail(f"tools.choice_required: no tool call although tool_choice is required "
             f"(finish_reason {finish_reasons(body)}): {excerpt(ctx.exchange('tools.choice_required'), 160)}")
    for call in calls:
        _call_shape(call, "tools.choice_required", {"get_weather"})
    if finish_reasons(body) != ["tool_calls"]:
        fail(f"tools.choice_required: finish_reason {finish_reasons(body)} with tool calls")


@check("tools.choice.named", level="must",
       title="tool_choice naming a function gets a 200 with a call of that function, and only "
             "that one",
       protects="ChatCompletionNamedToolChoice; extraction clients (instructor) force one "
                "function")
def choice_named(ctx: Context) -> None:
    body = _valid(ctx, "tools.choice_named")
    calls = _calls(body, "tools.choice_named")
    if not calls:
        fail(f"tools.choice_named: no tool call although tool_choice names get_time "
             f"(finish_reason {finish_reasons(body)})")
    for call in calls:
        _call_shape(call, "tools.choice_named", DECLARED)
        if call["function"]["name"] != "get_time":
            fail(f"tools.choice_named: a call of {call['function']['name']!r} although "
                 f"tool_choice names get_time")


@check("tools.strict.arguments", level="must",
       title="With strict: true the call's arguments are a JSON object that validates against "
             "the function's schema",
       protects="FunctionObject.strict: OpenAI guarantees schema-valid arguments (Structured "
                "Outputs for function calling)")
def strict_arguments(ctx: Context) -> None:
    body = _valid(ctx, "tools.strict")
    calls = _calls(body, "tools.strict")
    if not calls:
        fail(f"tools.strict: no tool call although tool_choice is required "
             f"(finish_reason {finish_reasons(body)})")
    from jsonschema import Draft202012Validator

    validator = Draft202012Validator(STRICT_WEATHER_TOOL["function"]["parameters"])
    for call in calls:
        _call_shape(call, "tools.strict", {"get_weather"})
        value = _arguments(call["function"]["arguments"], "tools.strict")
        error = next(iter(validator.iter_errors(value)), None)
        if error is not None:
            fail(f"tools.strict: the arguments {value!r:.160} break the schema: {error.message}")

