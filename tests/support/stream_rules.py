"""The rules a chat completion stream must follow as a whole, checked on its raw bytes.

One implementation, used by the schemathesis custom check (tests/schema_fuzz/hooks.py), by
the official-spec tee that watches every test server (tests/support/fidelity.py) and by the
property and SDK tests. Per-event schema validation is not repeated here: schemathesis does it
from the document, the tee against the official schemas.

The rules, for a 200 `text/event-stream` answer to POST /v1/chat/completions:

* framing: UTF-8, WHATWG SSE grammar, every event closed by a blank line, unnamed events
  carrying only `data` (comments are allowed: heartbeats), each data JSON or `[DONE]`;
* `[DONE]` exactly once, last, with nothing after it;
* every chunk has object `chat.completion.chunk` and the same `id`, `created` and `model`;
* the first chunk's delta carries `role: assistant`, and no later one carries a role;
* exactly one non-null `finish_reason`, after which no choice carries content, unless the
  stream fails: then one error object comes last before `[DONE]` and no finish_reason at all;
* with `stream_options.include_usage`, exactly one chunk with `choices: []` and a usage
  object, the last chunk, while every other chunk has `usage: null`; without it, no chunk
  with empty choices and no usage (a failed stream has no usage chunk either way);
* tool calls as OpenAI streams them: every `tool_calls` delta has an integer index; indexes
  first appear in order 0..n-1; the first delta of a call carries its id, its type and the
  function's (or custom tool's) name, later deltas of that call only argument fragments (no
  id, type or name again: clients concatenate what each delta carries); the fragments join
  to a JSON object; calls have distinct ids; and the finish_reason is `tool_calls` exactly
  when calls were streamed (`function_call` for legacy `delta.function_call`, whose first
  delta names the function). A stream that carries a `refusal` carries no content.

A legacy text completion stream (POST /v1/completions, `check_text_stream`) has the same
framing, `[DONE]` and error rules, and its own chunk rules:

* every chunk has object `text_completion` and the same `id`, `created` and `model`;
* each choice index (one per prompt: 0..n-1 when the number of prompts is known) ends with
  exactly one non-null `finish_reason`, after which no chunk carries text for that index; a
  failed stream has no finish for the choice it failed in (or before);
* with `stream_options.include_usage`, exactly one chunk with `choices: []` and a usage
  object, the last; no other chunk has a `usage` key (the official schema does not allow it
  to be null); without it, neither.

The SSE grammar comes from the conformance suite's parser (conformance/sse.py), the same one
it applies to other servers.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Any

from conformance.sse import parse

DONE = "[DONE]"
_DONE_FRAME = b"data: [DONE]\n\n"


@dataclass
class StreamReport:
    """What a stream said, and every rule it broke (empty `problems`: it conforms)."""

    problems: list[str] = field(default_factory=list)
    chunks: list[dict[str, Any]] = field(default_factory=list)
    error: dict[str, Any] | None = None       # the error event's `error` object, if it failed
    finish_reason: str | None = None
    usage: dict[str, Any] | None = None

    @property
    def text(self) -> str:
        """The content deltas joined."""
        return "".join(choice.get("delta", {}).get("content") or ""
                       for chunk in self.chunks for choice in chunk.get("choices") or []
                       if isinstance(choice, dict) and isinstance(choice.get("delta"), dict))

    def assert_ok(self) -> "StreamReport":
        assert not self.problems, "stream rules broken:\n  " + "\n  ".join(self.problems)
        return self


def include_usage_of(body: Any) -> bool:
    """Whether a chat request body asked for the usage chunk."""
    if not isinstance(body, dict) or not body.get("stream"):
        return False
    options = body.get("stream_options")
    return isinstance(options, dict) and options.get("include_usage") is True


def check_stream(raw: bytes, *, include_usage: bool | None) -> StreamReport:
    """Checks a complete chat stream body. `include_usage=None` when the request is unknown:
    the usage rules are then only checked for consistency, not against the request."""
    report = _framed(raw)
    _check_chunks(report, include_usage)
    return report


def _framed(raw: bytes) -> StreamReport:
    """The framing, `[DONE]` and error-event rules every OpenAI stream follows; the report's
    chunks are the JSON objects that are not errors."""
    report = StreamReport()
    problems = report.problems
    parsed = parse(raw)
    problems.extend(f"framing: {p}" for p in parsed.problems)
    for number, event in enumerate(parsed.events):
        if event.event != "message" or set(event.fields) != {"data"} or len(event.fields) != 1:
            problems.append(f"framing: event {number} has fields {list(event.fields)} "
                            f"(type {event.event!r}); expected one unnamed `data` line")

    datas = parsed.data
    dones = [i for i, d in enumerate(datas) if d == DONE]
    if not dones:
        problems.append("no `data: [DONE]` event")
    elif dones != [len(datas) - 1]:
        problems.append(f"`[DONE]` at event(s) {dones} of {len(datas)}: it must come once, last")
    if dones and not raw.endswith(_DONE_FRAME):
        tail = raw[raw.rfind(b"[DONE]") + len(DONE):]
        problems.append(f"bytes after the `[DONE]` event: {tail[:80]!r}")

    payloads: list[Any] = []
    for number, data in enumerate(datas):
        if data == DONE:
            continue
        try:
            payloads.append(json.loads(data))
        except ValueError:
            problems.append(f"event {number}: data is neither JSON nor [DONE]: {data[:80]!r}")
    errors = [p for p in payloads if isinstance(p, dict) and "error" in p]
    report.chunks = [p for p in payloads if isinstance(p, dict) and "error" not in p]
    if any(not isinstance(p, dict) for p in payloads):
        problems.append("an event's data is JSON but not an object")
    if errors:
        report.error = errors[-1].get("error")
        if len(errors) > 1 or payloads[-1] is not errors[-1]:
            problems.append("an error event that is not the last event before [DONE]")
    return report


def _same_identity(report: StreamReport, obj: str) -> None:
    chunks, problems = report.chunks, report.problems
    for key in ("id", "created", "model"):
        values = {json.dumps(c.get(key)) for c in chunks}
        if len(values) != 1:
            problems.append(f"`{key}` differs between chunks: {sorted(values)[:4]}")
    objects = {str(c.get("object")) for c in chunks}
    if objects != {obj}:
        problems.append(f"object is {sorted(objects)}, not {obj}")


def _check_chunks(report: StreamReport, include_usage: bool | None) -> None:
    problems, chunks, failed = report.problems, report.chunks, report.error is not None
    if not chunks:
        if not failed:
            problems.append("no chunks")
        return
    _same_identity(report, "chat.completion.chunk")

    with_choices = [c for c in chunks if c.get("choices")]
    empty = [i for i, c in enumerate(chunks) if c.get("choices") == []]
    if not with_choices:
        problems.append("no chunk carries a choice")
    else:
        first = with_choices[0]["choices"][0]
        if not isinstance(first, dict) or (first.get("delta") or {}).get("role") != "assistant":
            problems.append(f"the first chunk's delta has no role 'assistant': {first!r:.200}")
    finishes: list[tuple[int, str]] = []
    for number, chunk in enumerate(chunks):
        for choice in chunk.get("choices") or []:
            if not isinstance(choice, dict):
                problems.append(f"chunk {number}: a choice that is not an object")
                continue
            delta = choice.get("delta") if isinstance(choice.get("delta"), dict) else {}
            if chunk is not with_choices[0] and "role" in delta:
                problems.append(f"chunk {number} sets role {delta['role']!r} again")
            if finishes and (delta.get("content") or delta.get("refusal")
                             or delta.get("tool_calls") or delta.get("function_call")):
                problems.append(f"chunk {number} carries content after finish_reason "
                                f"{finishes[0][1]!r}")
            if choice.get("finish_reason") is not None:
                finishes.append((number, choice["finish_reason"]))
    if failed:
        if finishes:
            problems.append(f"a failed stream also has finish_reason {finishes[0][1]!r}")
    elif len(finishes) != 1:
        problems.append(f"{len(finishes)} non-null finish_reasons (expected exactly one): "
                        f"{[reason for _, reason in finishes]}")
    else:
        report.finish_reason = finishes[0][1]

    _check_tool_calls(report, failed)

    usages = [i for i, c in enumerate(chunks) if c.get("usage") is not None]
    if failed:
        if empty or usages:
            problems.append("a failed stream has a usage chunk")
        return
    if include_usage is None:
        include_usage = bool(empty)
    if include_usage:
        if empty != [len(chunks) - 1]:
            problems.append(f"include_usage: chunk(s) {empty} of {len(chunks)} have empty "
                            f"choices; expected exactly one, the last")
        if usages != [len(chunks) - 1] or not isinstance(chunks[-1].get("usage"), dict):
            problems.append(f"include_usage: chunk(s) {usages} carry usage; expected only the "
                            f"last, with a usage object")
        missing = [i for i, c in enumerate(chunks[:-1]) if "usage" not in c]
        if missing:
            problems.append(f"include_usage: chunk(s) {missing[:5]} lack `usage: null`")
        if isinstance(chunks[-1].get("usage"), dict):
            report.usage = chunks[-1]["usage"]
    else:
        if empty:
            problems.append(f"chunk(s) {empty} have empty choices, but include_usage was not "
                            f"asked for")
        if usages:
            problems.append(f"chunk(s) {usages} carry usage, but include_usage was not asked for")


# ---------------------------------------------------------------------------- text completions


@dataclass
class TextStreamReport(StreamReport):
    """A text completion stream: `texts` and `finish_reasons` per choice index."""

    texts: dict[int, str] = field(default_factory=dict)
    finish_reasons: dict[int, str] = field(default_factory=dict)


def check_text_stream(raw: bytes, *, include_usage: bool | None,
                      prompts: int | None = None) -> TextStreamReport:
    """Checks a complete text completion stream body; `prompts` is how many choices the
    request asked for (None: unknown, then every index seen must end once)."""
    framed = _framed(raw)
    report = TextStreamReport(framed.problems, framed.chunks, framed.error)
    problems, chunks, failed = report.problems, report.chunks, report.error is not None
    if not chunks:
        if not failed:
            problems.append("no chunks")
        return report
    _same_identity(report, "text_completion")
    for number, chunk in enumerate(chunks):
        for choice in chunk.get("choices") or []:
            if not isinstance(choice, dict) or not isinstance(choice.get("index"), int):
                problems.append(f"chunk {number}: a choice without an integer index")
                continue
            index = choice["index"]
            if index in report.finish_reasons and choice.get("text"):
                problems.append(f"chunk {number} carries text for choice {index} after its "
                                f"finish_reason {report.finish_reasons[index]!r}")
            report.texts[index] = report.texts.get(index, "") + str(choice.get("text") or "")
            reason = choice.get("finish_reason")
            if reason is not None:
                if index in report.finish_reasons:
                    problems.append(f"choice {index} has a second finish_reason {reason!r}")
                report.finish_reasons.setdefault(index, reason)
    seen = sorted(report.texts)
    unfinished = [i for i in seen if i not in report.finish_reasons]
    if failed:
        if prompts is not None and sorted(report.finish_reasons) == list(range(prompts)):
            problems.append("a failed stream also has a finish_reason for every choice")
    else:
        if unfinished:
            problems.append(f"choice(s) {unfinished} have no finish_reason")
        if prompts is not None and seen != list(range(prompts)):
            problems.append(f"choices {seen}, expected one for each of the {prompts} prompt(s)")
    if len(set(report.finish_reasons.values())) == 1:
        report.finish_reason = next(iter(report.finish_reasons.values()))

    empty = [i for i, c in enumerate(chunks) if c.get("choices") == []]
    with_usage = [i for i, c in enumerate(chunks) if "usage" in c]
    if failed:
        if empty or with_usage:
            problems.append("a failed stream has a usage chunk")
        return report
    if include_usage is None:
        include_usage = bool(empty)
    if include_usage:
        last = len(chunks) - 1
        if empty != [last] or with_usage != [last] \
                or not isinstance(chunks[-1].get("usage"), dict):
            problems.append(f"include_usage: chunk(s) {empty} have empty choices and {with_usage} "
                            f"a `usage` key; expected only the last, with a usage object")
        elif isinstance(chunks[-1].get("usage"), dict):
            report.usage = chunks[-1]["usage"]
    elif empty or with_usage:
        problems.append(f"chunk(s) {sorted(set(empty + with_usage))} have empty choices or "
                        f"usage, but include_usage was not asked for")
    return report


def prompts_of(body: Any) -> int | None:
    """How many choices a completions request asks for (None when the body is unusual)."""
    if not isinstance(body, dict):
        return None
    prompt = body.get("prompt")
    if isinstance(prompt, str):
        return 1
    return len(prompt) if isinstance(prompt, list) and prompt else None


def _check_tool_calls(report: StreamReport, failed: bool) -> None:
    """The tool-call rules of the module docstring, on the chunks of choice 0."""
    problems = report.problems
    calls: dict[int, dict[str, Any]] = {}
    order: list[int] = []
    legacy: dict[str, Any] | None = None
    content = refusal = ""
    for number, chunk in enumerate(report.chunks):
        for choice in chunk.get("choices") or []:
            delta = choice.get("delta") if isinstance(choice, dict) else None
            if not isinstance(delta, dict):
                continue
            content += delta.get("content") or ""
            refusal += delta.get("refusal") or ""
            if isinstance(delta.get("function_call"), dict):
                piece = delta["function_call"]
                if legacy is None:
                    if not piece.get("name"):
                        problems.append(f"chunk {number}: the first function_call delta has "
                                        f"no name: {piece!r:.120}")
                    legacy = {"arguments": ""}
                elif piece.get("name"):
                    problems.append(f"chunk {number}: a later function_call delta repeats the "
                                    f"name {piece['name']!r}")
                legacy["arguments"] += piece.get("arguments") or ""
            for call in delta.get("tool_calls") or []:
                index = call.get("index") if isinstance(call, dict) else None
                if not isinstance(index, int) or isinstance(index, bool):
                    problems.append(f"chunk {number}: a tool_calls delta without an integer "
                                    f"index: {call!r:.120}")
                    continue
                kind = call.get("type")
                body = call.get(kind) if kind in ("function", "custom") else None
                if index not in calls:
                    order.append(index)
                    name = body.get("name") if isinstance(body, dict) else None
                    if not (isinstance(call.get("id"), str) and call["id"]) or not name:
                        problems.append(f"chunk {number}: the first delta of tool call {index} "
                                        f"lacks its id, type or name: {call!r:.160}")
                    calls[index] = {"id": call.get("id"), "type": kind, "arguments": "",
                                    "input": (body or {}).get("input")}
                    arguments = (body or {}).get("arguments") if kind == "function" else None
                else:
                    again = [k for k in ("id", "type") if call.get(k) is not None]
                    function = call.get("function") if isinstance(call.get("function"), dict) \
                        else {}
                    if function.get("name") or "custom" in call:
                        again.append("name")
                    if again:
                        problems.append(f"chunk {number}: a later delta of tool call {index} "
                                        f"repeats its {', '.join(again)}: {call!r:.160}")
                    arguments = function.get("arguments")
                if arguments is not None and not isinstance(arguments, str):
                    problems.append(f"chunk {number}: tool call {index} has arguments that "
                                    f"are not a string: {arguments!r:.80}")
                elif arguments:
                    calls[index]["arguments"] += arguments
    if refusal and content:
        problems.append("the stream carries both a refusal and content")
    if order != list(range(len(order))):
        problems.append(f"tool call indexes first appear as {order}, not 0..{len(order) - 1}")
    ids = [c["id"] for c in calls.values()]
    if len(set(ids)) != len(ids):
        problems.append(f"tool calls share ids: {ids}")
    if failed:
        return
    for index, call in sorted(calls.items()):
        if call["type"] == "function":
            problems += [f"tool call {index}: {p}" for p in arguments_problems(call["arguments"])]
    if legacy is not None:
        problems += [f"function_call: {p}" for p in arguments_problems(legacy["arguments"])]
    expected = "tool_calls" if calls else "function_call" if legacy is not None else None
    if report.finish_reason is not None and (expected or report.finish_reason) in (
            "tool_calls", "function_call") and report.finish_reason != expected:
        problems.append(f"finish_reason {report.finish_reason!r} for a stream with "
                        f"{len(calls)} tool call(s)" + (" and a function_call" if legacy else ""))


def arguments_problems(arguments: Any) -> list[str]:
    """Why a call's arguments are not a JSON object's text ([] when they are)."""
    if not isinstance(arguments, str):
        return [f"the arguments are {type(arguments).__name__}, not a string"]
    try:
        value = json.loads(arguments)
    except ValueError:
        return [f"the arguments are not JSON: {arguments[:80]!r}"]
    return [] if isinstance(value, dict) else [f"the arguments are not a JSON object: "
                                               f"{arguments[:80]!r}"]


def completion_problems(body: Any) -> list[str]:
    """The same rules for a whole `chat.completion`: calls with distinct ids and arguments
    that are a JSON object's text, finish_reason `tool_calls` (`function_call`) exactly when
    the message has calls (a function_call), and no content beside a refusal."""
    problems: list[str] = []
    for choice in (body.get("choices") if isinstance(body, dict) else None) or []:
        if not isinstance(choice, dict) or not isinstance(choice.get("message"), dict):
            continue
        message, reason = choice["message"], choice.get("finish_reason")
        calls = message.get("tool_calls") or []
        where = f"choices[{choice.get('index')}]"
        for number, call in enumerate(calls):
            if isinstance(call, dict) and call.get("type") == "function":
                problems += [f"{where}.message.tool_calls[{number}]: {p}" for p in
                             arguments_problems((call.get("function") or {}).get("arguments"))]
        ids = [c.get("id") for c in calls if isinstance(c, dict)]
        if len(set(ids)) != len(ids):
            problems.append(f"{where}: tool calls share ids: {ids}")
        legacy = message.get("function_call")
        if isinstance(legacy, dict):
            problems += [f"{where}.message.function_call: {p}"
                         for p in arguments_problems(legacy.get("arguments"))]
        expected = "tool_calls" if calls else "function_call" if legacy else None
        if (expected or reason) in ("tool_calls", "function_call") and reason != expected:
            problems.append(f"{where}: finish_reason {reason!r} with {len(calls)} tool call(s)"
                            + (" and a function_call" if legacy else ""))
        if message.get("refusal") and message.get("content"):
            problems.append(f"{where}: a refusal beside content")
    return problems
