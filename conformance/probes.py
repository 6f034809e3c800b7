"""The requests the checks send, by name. Several checks judge one exchange, so each probe is
sent once per run (the cassette holds it once, matched on its name and body).

Probes are built to be deterministic against a real model too: a tiny `max_tokens` forces
`finish_reason: "length"`, counting gives a predictable text to cut with `stop`, and
`temperature: 0` everywhere a repeatable answer matters. Whether a model repeats a text
exactly is up to the model, so the checks that rely on it are `should`.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, Callable

from conformance.exchange import Request

if TYPE_CHECKING:
    from conformance.checks.base import Context

UNKNOWN_MODEL = "conformance-no-such-model"
UNICODE_SAMPLE = ("Grüße, naïve café — 你好，世界 — こんにちは — مرحبا — שלום — "
                  "👩‍💻🎉 — 𝔘𝔫𝔦𝔠𝔬𝔡𝔢 — e\u0301 — \"quoted\" back\\slash <tag>")
PARTS = ("Alpha bravo.", "Charlie delta.")
REPEAT = ("Repeat the user's message exactly, character for character, with nothing before "
          "or after it.")
COUNT_PROMPT = "Count from 1 to 20, separated by spaces. Reply with the numbers only."
LONG_PROMPT = "Write a long essay about the history of the printing press."
HELLO = [{"role": "system", "content": "You are a helpful assistant. Answer briefly."},
         {"role": "user", "content": "Say hello in one short sentence."}]
NEVER_STOP = "zq-conformance-never-zq"
# A 1x1 transparent PNG: the smallest image a vision-capable server can decode.
TINY_PNG = ("data:image/png;base64,iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAYAAAAfFcSJAAAADUlEQVR42mNk"
            "+M9QDwADhgGAWjR9awAAAABJRU5ErkJggg==")
JSON_PROMPT = "Reply with a JSON object whose only key is \"greeting\" and whose value is \"hello\"."
REASON_PROMPT = "Think it through, then answer with the number only: what is 17 * 3?"
WEATHER_TOOL = {"type": "function", "function": {
    "name": "get_weather", "description": "Current weather for a city.",
    "parameters": {"type": "object", "properties": {"city": {"type": "string"}},
                   "required": ["city"]}}}
TIME_TOOL = {"type": "function", "function": {
    "name": "get_time", "description": "The local time in an IANA time zone.",
    "parameters": {"type": "object", "properties": {"timezone": {"type": "string"}},
                   "required": ["timezone"]}}}
STRICT_WEATHER_TOOL = {"type": "function", "function": {
    **WEATHER_TOOL["function"], "strict": True,
    "parameters": {**WEATHER_TOOL["function"]["parameters"], "additionalProperties": False}}}
# Each tool probe has a prompt of its own: a scripted model (the stand-in) tells them apart by
# it, and a real one is asked plainly for what the probe needs.
TOOL_CALL_PROMPT = "Use the get_weather tool to look up the weather in Paris."
PARALLEL_PROMPT = ("Use the get_weather tool twice, in parallel: once for Paris and once for "
                   "Tokyo.")
CHOICE_NONE_PROMPT = "What is the weather like in Berlin today? Answer in one sentence."
CHOICE_REQUIRED_PROMPT = "I am travelling to Madrid tomorrow."
CHOICE_NAMED_PROMPT = "I have a meeting in Rome soon."
STRICT_PROMPT = "Look up the weather in Oslo."
TOOL_RESULT = "Sunny, 22 degrees Celsius"
PERSON_PROMPT = "Extract the person from this sentence: Ada Lovelace was 36 years old."
PERSON_SCHEMA = {"type": "object", "properties": {"name": {"type": "string"},
                                                  "age": {"type": "integer"}},
                 "required": ["name", "age"], "additionalProperties": False}
PERSON_FORMAT = {"type": "json_schema", "json_schema": {"name": "person", "strict": True,
                                                        "schema": PERSON_SCHEMA}}


def _chat(ctx: "Context", **fields: Any) -> dict[str, Any]:
    return {"model": ctx.model, **fields}


def _hello(ctx: "Context", **extra: Any) -> dict[str, Any]:
    return _chat(ctx, messages=HELLO, max_tokens=100, **extra)


def _long(ctx: "Context", **extra: Any) -> dict[str, Any]:
    return _chat(ctx, messages=[{"role": "user", "content": LONG_PROMPT}], **extra)


def _count(ctx: "Context", **extra: Any) -> dict[str, Any]:
    return _chat(ctx, messages=[{"role": "user", "content": COUNT_PROMPT}], temperature=0,
                 max_tokens=100, **extra)


def _repeat(ctx: "Context", content: Any, **extra: Any) -> dict[str, Any]:
    return _chat(ctx, messages=[{"role": "system", "content": REPEAT},
                                {"role": "user", "content": content}],
                 temperature=0, max_tokens=200, **extra)


def _reason(ctx: "Context", **extra: Any) -> dict[str, Any]:
    """A question worth thinking about, asking to see the thinking: `include_reasoning` is the
    field vLLM, Groq and OpenRouter take (OpenAI refuses it, which the checks skip). The token
    budget leaves a reasoning model room to think."""
    return _chat(ctx, messages=[{"role": "user", "content": REASON_PROMPT}],
                 reasoning_effort="low", include_reasoning=True, max_completion_tokens=2000,
                 **extra)


def stop_word(text: str) -> str | None:
    """The stop sequence cut out of the model's own counting answer: its middle word."""
    words = text.split()
    return words[len(words) // 2] if len(words) >= 3 else None


def _stop(ctx: "Context", as_list: bool, **extra: Any) -> dict[str, Any]:
    word = ctx.stop_word()
    return _count(ctx, stop=[NEVER_STOP, word] if as_list else word, **extra)


def _chat_probe(name: str, build: Callable[["Context"], Any]) -> Callable[["Context"], Request]:
    return lambda ctx: Request.json(name, "/chat/completions", build(ctx))


HELLO_PROMPT = "Say hello in one short sentence."


def _legacy(name: str, **fields: Any) -> Callable[["Context"], Request]:
    """A legacy completions probe (POST /completions)."""
    return lambda ctx: Request.json(name, "/completions", {"model": ctx.model, **fields})


def _tools(ctx: "Context", prompt: str, tools: list, **extra: Any) -> dict[str, Any]:
    return _chat(ctx, max_tokens=200, temperature=0, tools=tools,
                 messages=[{"role": "user", "content": prompt}], **extra)


def _round_trip(ctx: "Context") -> dict[str, Any]:
    """The conversation of `tools.call` continued as a client does: the assistant's message as
    it came, then one tool message per call. A server that made no call gets a call a client
    could have received (the id is the client's own then)."""
    first = _tools(ctx, TOOL_CALL_PROMPT, [WEATHER_TOOL], tool_choice="auto")
    message: dict[str, Any] | None = None
    ex = ctx.exchange("tools.call")
    try:
        got = ex.json["choices"][0]["message"] if ex.status == 200 else None
        if isinstance(got, dict) and got.get("tool_calls"):
            message = {"role": "assistant", "content": got.get("content"),
                       "tool_calls": [{"id": c["id"], "type": "function", "function": {
                           "name": c["function"]["name"],
                           "arguments": c["function"]["arguments"]}}
                           for c in got["tool_calls"]]}
    except (ValueError, LookupError, TypeError):
        message = None
    if message is None:
        message = {"role": "assistant", "content": None, "tool_calls": [{
            "id": "call_conformance_1", "type": "function", "function": {
                "name": "get_weather", "arguments": "{\"city\": \"Paris\"}"}}]}
    results = [{"role": "tool", "tool_call_id": c["id"], "content": TOOL_RESULT}
               for c in message["tool_calls"]]
    return {**first, "messages": [*first["messages"], message, *results]}


def _oversized(ctx: "Context") -> Request:
    filler = "lorem ipsum " * (ctx.options.oversized_bytes // 12 + 1)
    payload = _chat(ctx, messages=[{"role": "user", "content": filler}], max_tokens=1)
    return Request.json("errors.oversized", "/chat/completions", payload)


# -- the Responses API (issue 13) -------------------------------------------------------------
RESPONSES_WEATHER_TOOL = {"type": "function", "name": "get_weather", "strict": False,
                          "description": "Current weather for a city.",
                          "parameters": WEATHER_TOOL["function"]["parameters"]}
UNKNOWN_RESPONSE = "resp_conformance_no_such_response"


def _responses(ctx: "Context", **fields: Any) -> dict[str, Any]:
    return {"model": ctx.model, "instructions": HELLO[0]["content"],
            "input": HELLO[1]["content"], "max_output_tokens": 100, **fields}


def _earlier(ctx: "Context", probe: str) -> dict[str, Any]:
    """The response object an earlier probe got; skips the asking check if there is none."""
    from conformance.checks.base import skip
    ex = ctx.exchange(probe)
    try:
        body = ex.json
        assert ex.status == 200 and isinstance(body.get("id"), str)
    except (ValueError, AssertionError, AttributeError):
        skip(f"{probe} did not give a response object ({ex.status}), so there is nothing to "
             f"follow up")
    return body


def _tool_output(ctx: "Context") -> dict[str, Any]:
    from conformance.checks.base import skip
    earlier = _earlier(ctx, "responses.tools")
    calls = [i for i in earlier.get("output") or [] if isinstance(i, dict)
             and i.get("type") == "function_call" and isinstance(i.get("call_id"), str)]
    if not calls:
        skip("responses.tools got no function_call, so there is no call to answer")
    return {"model": ctx.model, "previous_response_id": earlier["id"],
            "tools": [RESPONSES_WEATHER_TOOL], "max_output_tokens": 100,
            "input": [{"type": "function_call_output", "call_id": c["call_id"],
                       "output": "sunny, 21 C"} for c in calls]}


# Codex CLI's reasoning settings, on a question worth thinking about (store false: the client
# keeps the conversation, reasoning items included).
RESPONSES_REASONING = {"reasoning": {"effort": "low", "summary": "auto"},
                       "include": ["reasoning.encrypted_content"], "store": False,
                       "max_output_tokens": 2000}
REASON_AGAIN = "Think it through, then answer with the number only: what is 17 * 3 + 1?"


def _reasoning_given_back(ctx: "Context") -> dict[str, Any]:
    """The conversation so far, as a stateless client re-sends it: the question, the items the
    answer's stream finished (its reasoning items as they came), and a new question."""
    from conformance.checks.base import skip
    from conformance.responses_stream import check_responses_stream
    ex = ctx.exchange("responses.reasoning")
    items = check_responses_stream(ex.body).done_items if ex.status == 200 else []
    if not any(isinstance(i, dict) and i.get("type") == "reasoning" for i in items):
        skip("responses.reasoning got no reasoning item, so there is none to give back")
    return {"model": ctx.model, "input": [{"role": "user", "content": REASON_PROMPT}, *items,
                                          {"role": "user", "content": REASON_AGAIN}],
            **RESPONSES_REASONING}


def _responses_probe(name: str, build: Callable[["Context"], Any]
                     ) -> Callable[["Context"], Request]:
    return lambda ctx: Request.json(name, "/responses", build(ctx))


RESPONSES_PROBES: dict[str, Callable[["Context"], Request]] = {
    "responses.basic": _responses_probe("responses.basic", _responses),
    "responses.stream": _responses_probe("responses.stream", lambda ctx: _responses(
        ctx, stream=True)),
    "responses.max_output_tokens": _responses_probe("responses.max_output_tokens", lambda ctx: {
        "model": ctx.model, "input": LONG_PROMPT, "max_output_tokens": 16}),
    "responses.tools": _responses_probe("responses.tools", lambda ctx: {
        "model": ctx.model, "input": "What is the weather in Paris? Say it briefly.",
        "tool_choice": "auto",
        "tools": [RESPONSES_WEATHER_TOOL], "max_output_tokens": 100}),
    "responses.follow_up": _responses_probe("responses.follow_up", lambda ctx: {
        "model": ctx.model, "input": "What did you just say?", "max_output_tokens": 100,
        "previous_response_id": _earlier(ctx, "responses.basic")["id"]}),
    "responses.tool_output": _responses_probe("responses.tool_output", _tool_output),
    "responses.retrieve": lambda ctx: Request(
        "responses.retrieve", "GET", f"/responses/{_earlier(ctx, 'responses.basic')['id']}"),
    "responses.unknown_previous": _responses_probe("responses.unknown_previous", lambda ctx: {
        "model": ctx.model, "input": "Hello.", "max_output_tokens": 100,
        "previous_response_id": UNKNOWN_RESPONSE}),
    "responses.reasoning": _responses_probe("responses.reasoning", lambda ctx: {
        "model": ctx.model, "input": REASON_PROMPT, "stream": True, **RESPONSES_REASONING}),
    "responses.reasoning_given_back": _responses_probe("responses.reasoning_given_back",
                                                       _reasoning_given_back),
}


PROBES: dict[str, Callable[["Context"], Request]] = {
    # models
    "models.list": lambda ctx: Request("models.list", "GET", "/models"),
    "models.retrieve": lambda ctx: Request("models.retrieve", "GET", f"/models/{ctx.model}"),
    "models.retrieve_unknown": lambda ctx: Request("models.retrieve_unknown", "GET",
                                                   f"/models/{UNKNOWN_MODEL}"),
    # completions
    "chat.basic": _chat_probe("chat.basic", _hello),
    "chat.stream": _chat_probe("chat.stream", lambda ctx: _hello(ctx, stream=True)),
    "chat.stream_usage": _chat_probe("chat.stream_usage", lambda ctx: _hello(
        ctx, stream=True, stream_options={"include_usage": True})),
    "chat.stream_usage_false": _chat_probe("chat.stream_usage_false", lambda ctx: _hello(
        ctx, stream=True, stream_options={"include_usage": False})),
    # parameters
    "chat.max_tokens": _chat_probe("chat.max_tokens", lambda ctx: _long(ctx, max_tokens=1)),
    "chat.max_completion_tokens": _chat_probe("chat.max_completion_tokens", lambda ctx: _long(
        ctx, max_completion_tokens=1)),
    "chat.max_tokens_zero": _chat_probe("chat.max_tokens_zero", lambda ctx: _hello(
        ctx) | {"max_tokens": 0}),
    "chat.max_tokens_stream": _chat_probe("chat.max_tokens_stream", lambda ctx: _long(
        ctx, max_tokens=1, stream=True)),
    "chat.count": _chat_probe("chat.count", _count),
    "chat.stop_string": _chat_probe("chat.stop_string", lambda ctx: _stop(ctx, False)),
    "chat.stop_array": _chat_probe("chat.stop_array", lambda ctx: _stop(ctx, True)),
    "chat.stop_stream": _chat_probe("chat.stop_stream", lambda ctx: _stop(
        ctx, False, stream=True)),
    "chat.count_stream": _chat_probe("chat.count_stream", lambda ctx: _count(ctx, stream=True)),
    "chat.tools": _chat_probe("chat.tools", lambda ctx: _chat(
        ctx, max_tokens=100, tools=[WEATHER_TOOL], tool_choice="auto",
        messages=[{"role": "user", "content": "What is the weather in Paris?"}])),
    "chat.json_object": _chat_probe("chat.json_object", lambda ctx: _chat(
        ctx, max_tokens=100, temperature=0, response_format={"type": "json_object"},
        messages=[{"role": "user", "content": JSON_PROMPT}])),
    # tools
    "tools.call": _chat_probe("tools.call", lambda ctx: _tools(
        ctx, TOOL_CALL_PROMPT, [WEATHER_TOOL], tool_choice="auto")),
    "tools.call_stream": _chat_probe("tools.call_stream", lambda ctx: _tools(
        ctx, TOOL_CALL_PROMPT, [WEATHER_TOOL], tool_choice="auto", stream=True)),
    "tools.parallel": _chat_probe("tools.parallel", lambda ctx: _tools(
        ctx, PARALLEL_PROMPT, [WEATHER_TOOL], parallel_tool_calls=True)),
    "tools.parallel_stream": _chat_probe("tools.parallel_stream", lambda ctx: _tools(
        ctx, PARALLEL_PROMPT, [WEATHER_TOOL], parallel_tool_calls=True, stream=True)),
    "tools.roundtrip": _chat_probe("tools.roundtrip", _round_trip),
    "tools.choice_none": _chat_probe("tools.choice_none", lambda ctx: _tools(
        ctx, CHOICE_NONE_PROMPT, [WEATHER_TOOL], tool_choice="none")),
    "tools.choice_required": _chat_probe("tools.choice_required", lambda ctx: _tools(
        ctx, CHOICE_REQUIRED_PROMPT, [WEATHER_TOOL], tool_choice="required")),
    "tools.choice_named": _chat_probe("tools.choice_named", lambda ctx: _tools(
        ctx, CHOICE_NAMED_PROMPT, [WEATHER_TOOL, TIME_TOOL],
        tool_choice={"type": "function", "function": {"name": "get_time"}})),
    "tools.strict": _chat_probe("tools.strict", lambda ctx: _tools(
        ctx, STRICT_PROMPT, [STRICT_WEATHER_TOOL], tool_choice="required")),
    # structured outputs
    "structured.json_schema": _chat_probe("structured.json_schema", lambda ctx: _chat(
        ctx, max_tokens=200, temperature=0, response_format=PERSON_FORMAT,
        messages=[{"role": "user", "content": PERSON_PROMPT}])),
    "structured.json_schema_stream": _chat_probe("structured.json_schema_stream", lambda ctx: _chat(
        ctx, max_tokens=200, temperature=0, response_format=PERSON_FORMAT, stream=True,
        messages=[{"role": "user", "content": PERSON_PROMPT}])),
    "chat.n": _chat_probe("chat.n", lambda ctx: _hello(ctx, n=2)),
    "chat.temperature_zero": _chat_probe("chat.temperature_zero", lambda ctx: _hello(
        ctx, temperature=0)),
    "chat.temperature_too_high": _chat_probe("chat.temperature_too_high", lambda ctx: _hello(
        ctx, temperature=3)),
    "chat.common_fields": _chat_probe("chat.common_fields", lambda ctx: _hello(
        ctx, temperature=1, top_p=1, presence_penalty=0, frequency_penalty=0, seed=7,
        user="conformance-suite")),
    "chat.unknown_field": _chat_probe("chat.unknown_field", lambda ctx: _hello(
        ctx, x_conformance_unknown_field={"nested": True})),
    # reasoning
    "chat.reasoning_effort": _chat_probe("chat.reasoning_effort", lambda ctx: _hello(
        ctx, reasoning_effort="low")),
    "chat.reasoning_effort_invalid": _chat_probe(
        "chat.reasoning_effort_invalid", lambda ctx: _hello(ctx, reasoning_effort="extreme")),
    "chat.reasoning": _chat_probe("chat.reasoning", _reason),
    "chat.reasoning_stream": _chat_probe("chat.reasoning_stream", lambda ctx: _reason(
        ctx, stream=True, stream_options={"include_usage": True})),
    # content
    "chat.parts": _chat_probe("chat.parts", lambda ctx: _repeat(
        ctx, [{"type": "text", "text": t} for t in PARTS])),
    "chat.image": _chat_probe("chat.image", lambda ctx: _chat(
        ctx, max_tokens=50, messages=[{"role": "user", "content": [
            {"type": "text", "text": "What colour is this image?"},
            {"type": "image_url", "image_url": {"url": TINY_PNG}}]}])),
    "chat.unicode": _chat_probe("chat.unicode", lambda ctx: _repeat(ctx, UNICODE_SAMPLE)),
    "chat.unicode_stream": _chat_probe("chat.unicode_stream", lambda ctx: _repeat(
        ctx, UNICODE_SAMPLE, stream=True)),
    "chat.developer": _chat_probe("chat.developer", lambda ctx: _chat(
        ctx, max_tokens=100, messages=[
            {"role": "developer", "content": "You are a helpful assistant. Answer briefly."},
            {"role": "user", "content": "Say hello in one short sentence."}])),
    "chat.multi_turn": _chat_probe("chat.multi_turn", lambda ctx: _chat(
        ctx, max_tokens=100, messages=[
            {"role": "system", "content": "You are a helpful assistant. Answer briefly."},
            {"role": "user", "content": "My name is Ada."},
            {"role": "assistant", "content": "Nice to meet you, Ada."},
            {"role": "user", "content": "What is my name?"}])),
    # legacy completions
    "legacy.basic": _legacy("legacy.basic", prompt=HELLO_PROMPT, max_tokens=100),
    "legacy.stream": _legacy("legacy.stream", prompt=HELLO_PROMPT, max_tokens=100, stream=True,
                             stream_options={"include_usage": True}),
    "legacy.list": _legacy("legacy.list", prompt=[HELLO_PROMPT, COUNT_PROMPT], max_tokens=100,
                           temperature=0),
    "legacy.max_tokens": _legacy("legacy.max_tokens", prompt=LONG_PROMPT, max_tokens=1),
    "legacy.echo": _legacy("legacy.echo", prompt=HELLO_PROMPT, max_tokens=100, echo=True),
    "legacy.missing_prompt": _legacy("legacy.missing_prompt", max_tokens=16),
    # errors
    "errors.malformed_json": lambda ctx: Request(
        "errors.malformed_json", "POST", "/chat/completions",
        b'{"model": "' + (ctx.model or "").encode() + b'", "messages": [{"role": "user", ',
        "application/json"),
    "errors.content_type": lambda ctx: Request.json(
        "errors.content_type", "/chat/completions", _hello(ctx)).as_content_type("text/plain"),
    "errors.missing_messages": _chat_probe("errors.missing_messages", lambda ctx: _chat(ctx)),
    "errors.empty_messages": _chat_probe("errors.empty_messages", lambda ctx: _chat(
        ctx, messages=[])),
    "errors.bad_role": _chat_probe("errors.bad_role", lambda ctx: _chat(
        ctx, messages=[{"role": "wizard", "content": "Say hello."}])),
    "errors.wrong_type": _chat_probe("errors.wrong_type", lambda ctx: _chat(
        ctx, messages="Say hello.")),
    "errors.unknown_model": _chat_probe("errors.unknown_model", lambda ctx: {
        "model": UNKNOWN_MODEL, "messages": HELLO, "max_tokens": 16}),
    "errors.unknown_model_stream": _chat_probe("errors.unknown_model_stream", lambda ctx: {
        "model": UNKNOWN_MODEL, "messages": HELLO, "max_tokens": 16, "stream": True}),
    "errors.oversized": _oversized,
    "errors.unknown_route": lambda ctx: Request("errors.unknown_route", "GET",
                                                "/conformance-no-such-route"),
    "errors.wrong_method": lambda ctx: Request("errors.wrong_method", "GET", "/chat/completions"),
    # authentication
    "auth.missing_key": lambda ctx: Request("auth.missing_key", "GET", "/models", auth="none"),
    "auth.wrong_key": lambda ctx: Request("auth.wrong_key", "GET", "/models", auth="wrong"),
}
PROBES.update(RESPONSES_PROBES)
