"""Streaming: SSE framing, the chunk schema, role first, one finish, the usage chunk, [DONE]."""

from __future__ import annotations

from conformance.checks.base import (Context, Stream, check, completion, content_of, fail,
                                     require, stream)
from conformance.checks.completion import FINISH_REASONS, _usage_adds_up
from conformance.schemas import official_errors

check = check("streaming")

_STREAMS = ("chat.stream", "chat.stream_usage")


def _chunk_problems(s: Stream, profile: str) -> list[str]:
    """Schema problems of every chunk, the same problem in many chunks reported once."""
    by_problem: dict[str, list[int]] = {}
    for number, chunk in enumerate(s.chunks):
        for problem in official_errors("CreateChatCompletionStreamResponse", chunk, profile, 3):
            by_problem.setdefault(problem, []).append(number)
    probe = s.exchange.request.probe
    return [f"{probe} chunk {numbers[0]}: {problem}" + (
        f" (and {len(numbers) - 1} more chunks)" if len(numbers) > 1 else "")
            for problem, numbers in by_problem.items()]


@check("stream.content_type", level="must",
       title="stream: true answers 200 text/event-stream",
       protects="createChatCompletion 200 text/event-stream; SDKs pick their parser from it")
def content_type(ctx: Context) -> None:
    require(ctx.exchange("chat.stream"), 200, "text/event-stream")


@check("stream.sse.syntax", level="must",
       title="The body is well-formed SSE: UTF-8, `data:` fields, every event closed by a "
             "blank line, each data JSON or [DONE]",
       protects="WHATWG event-stream parsing (openai SDK, browsers' EventSource, "
                "eventsource-parser): an unterminated or malformed event is lost")
def sse_syntax(ctx: Context) -> None:
    for probe in _STREAMS:
        ex = require(ctx.exchange(probe), 200, "text/event-stream")
        if ex.stream.problems:
            fail(f"{probe}: " + "; ".join(ex.stream.problems[:5]))
        for event in ex.stream.events:
            if event.event not in ("message",):
                fail(f"{probe}: an event of type {event.event!r}: the openai SDK only reads "
                     f"unnamed (message) events for chat completions")
        stream(ctx, probe)  # every data is JSON or [DONE]


@check("stream.chunk.schema", level="must",
       title="Every chunk validates against the official CreateChatCompletionStreamResponse "
             "(lenient: logprobs may be omitted)",
       protects="CreateChatCompletionStreamResponse; finish_reason must be present (null "
                "until the end) in every choice")
def chunk_schema(ctx: Context) -> None:
    problems = [p for probe in _STREAMS for p in _chunk_problems(stream(ctx, probe), "lenient")]
    if problems:
        fail("; ".join(problems[:5]) + (f" (and {len(problems) - 5} more)" if len(problems) > 5
                                         else ""))


@check("stream.chunk.model", level="should",
       title="The chunks' model names the requested model (or a dated version of it)",
       protects="CreateChatCompletionStreamResponse.model; clients that route or bill by model")
def chunk_model(ctx: Context) -> None:
    model = stream(ctx, "chat.stream").chunks[0].get("model")
    if not isinstance(model, str) or not (model == ctx.model or model.startswith(str(ctx.model))):
        fail(f"model is {model!r}, requested {ctx.model!r}")


@check("stream.chunk.identity", level="must",
       title="Every chunk has object chat.completion.chunk and the same id, created and model",
       protects="chunk.id/created are 'the same for each chunk'; clients group deltas by id")
def chunk_identity(ctx: Context) -> None:
    for probe in _STREAMS:
        chunks = stream(ctx, probe).chunks
        for key in ("id", "created", "model"):
            values = {repr(c.get(key)) for c in chunks}
            if len(values) != 1:
                fail(f"{probe}: {key} differs between chunks: {sorted(values)[:4]}")
        objects = {c.get("object") for c in chunks}
        if objects != {"chat.completion.chunk"}:
            fail(f"{probe}: object is {sorted(map(str, objects))}, not chat.completion.chunk")


@check("stream.role_first", level="must",
       title="The first chunk's delta carries role: assistant, and no later chunk changes it",
       protects="ChatCompletionStreamResponseDelta.role; clients build the message from the "
                "first delta (LangChain's AIMessageChunk, the openai SDK's stream helpers)")
def role_first(ctx: Context) -> None:
    s = stream(ctx, "chat.stream")
    first = s.choice_chunks()[0]["choices"][0]
    if (first.get("delta") or {}).get("role") != "assistant":
        fail(f"the first chunk's delta is {first.get('delta')!r}, without role 'assistant'")
    for chunk in s.choice_chunks()[1:]:
        for choice in chunk["choices"]:
            role = (choice.get("delta") or {}).get("role")
            if role not in (None, "assistant"):
                fail(f"a later chunk sets role {role!r}")


@check("stream.finish.once", level="must",
       title="Each choice gets exactly one non-null finish_reason, from the enum, and no "
             "content after it",
       protects="finish_reason in the last chunk of a choice; clients stop reading a choice there")
def finish_once(ctx: Context) -> None:
    for probe in _STREAMS:
        finished: dict[int, str] = {}
        for chunk in stream(ctx, probe).choice_chunks():
            for choice in chunk["choices"]:
                index = choice.get("index", 0)
                reason = choice.get("finish_reason")
                delta = choice.get("delta") or {}
                if index in finished and (delta.get("content") or reason is not None):
                    fail(f"{probe}: choice {index} continues after finish_reason "
                         f"{finished[index]!r}: {choice!r:.200}")
                if reason is not None:
                    if reason not in FINISH_REASONS:
                        fail(f"{probe}: finish_reason {reason!r} is not one of {FINISH_REASONS}")
                    finished[index] = reason
        if 0 not in finished:
            fail(f"{probe}: no chunk carries a finish_reason")


@check("stream.done.last", level="must",
       title="The stream ends with data: [DONE], and nothing comes after it",
       protects="the [DONE] sentinel; clients that wait for it hang or drop the tail without it")
def done_last(ctx: Context) -> None:
    for probe in _STREAMS:
        s = stream(ctx, probe)
        if s.done_index is None:
            fail(f"{probe}: no data: [DONE] event")
        if s.done_index != len(s.payloads) - 1:
            fail(f"{probe}: {len(s.payloads) - 1 - s.done_index} event(s) after [DONE]")
        tail = s.exchange.body[s.exchange.body.rfind(b"[DONE]") + 6:]
        if tail.strip(b"\r\n") != b"":
            fail(f"{probe}: bytes after the [DONE] event: {tail[:80]!r}")


@check("stream.content.nonempty", level="must",
       title="The content deltas join to a non-empty text",
       protects="delta.content; the whole point of streaming")
def content_nonempty(ctx: Context) -> None:
    if not stream(ctx, "chat.stream").text():
        fail("the deltas carry no content")


@check("stream.usage.gated", level="must",
       title="Without stream_options.include_usage (absent or false): no usage chunk, no "
             "chunk with empty choices, no non-null usage",
       protects="stream_options.include_usage; clients that read choices[0] of every chunk "
                "crash on an unrequested usage chunk")
def usage_gated(ctx: Context) -> None:
    for probe in ("chat.stream", "chat.stream_usage_false"):
        for number, chunk in enumerate(stream(ctx, probe).chunks):
            if "error" in chunk:
                continue
            if not chunk.get("choices"):
                fail(f"{probe}: chunk {number} has empty choices although include_usage was "
                     f"not requested")
            if chunk.get("usage") is not None:
                fail(f"{probe}: chunk {number} carries usage although include_usage was not "
                     f"requested")


@check("stream.usage.chunk", level="must",
       title="With include_usage: exactly one chunk with choices: [] and the usage, last "
             "before [DONE]; usage is null on every other chunk",
       protects="stream_options.include_usage contract (ChatCompletionStreamOptions)")
def usage_chunk(ctx: Context) -> None:
    s = stream(ctx, "chat.stream_usage")
    chunks = [c for c in s.chunks if "error" not in c]
    usage_chunks = [i for i, c in enumerate(chunks) if c.get("choices") == []]
    if not usage_chunks:
        carriers = [i for i, c in enumerate(chunks) if isinstance(c.get("usage"), dict)]
        fail("no chunk with choices: []" + (
            f"; the usage came in chunk {carriers[-1]}, whose choices are "
            f"{chunks[carriers[-1]].get('choices')!r:.80}" if carriers else
            "; no chunk carries usage at all"))
    if len(usage_chunks) != 1:
        fail(f"{len(usage_chunks)} chunks with empty choices (expected exactly one)")
    index = usage_chunks[0]
    if index != len(chunks) - 1:
        fail(f"the usage chunk is chunk {index} of {len(chunks)}, not the last")
    if not isinstance(chunks[index].get("usage"), dict):
        fail(f"the usage chunk's usage is {chunks[index].get('usage')!r}")
    for number, chunk in enumerate(chunks[:-1]):
        if chunk.get("usage") is not None:
            fail(f"chunk {number} has usage {chunk['usage']!r}; only the last chunk may")


@check("stream.usage.totals", level="should",
       title="The usage chunk's totals add up (total = prompt + completion, completion > 0)",
       protects="CompletionUsage in streams; cost tracking")
def usage_totals(ctx: Context) -> None:
    s = stream(ctx, "chat.stream_usage")
    found = [c["usage"] for c in s.chunks if isinstance(c.get("usage"), dict)]
    if not found:
        fail("no chunk carries usage")
    _usage_adds_up(found[-1])


@check("stream.matches_nonstream", level="should",
       title="At temperature 0, the streamed deltas join to the same text as the non-streamed "
             "answer to the same prompt",
       protects="streaming and non-streaming are one completion in two encodings")
def matches_nonstream(ctx: Context) -> None:
    whole = content_of(completion(ctx, "chat.count"))
    streamed = stream(ctx, "chat.count_stream").text()
    if whole != streamed:
        fail(f"non-streamed {whole[:120]!r} != streamed {streamed[:120]!r}")
