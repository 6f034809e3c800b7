"""The Responses API (`POST /responses` and the stored responses): the response object, the
event stream, and what agents and coding tools (the openai-agents SDK, Codex CLI, GitHub
Copilot) rely on. Each rule is one a client or another proxy got wrong (PEERS-WAVE2 section 4):
events outside the spec, no `sequence_number`, no terminal event, `completed` for a truncated
answer, a follow-up that cannot find the response it continues."""

from __future__ import annotations

import json
from typing import Any

from conformance.checks.base import (Context, check, error_envelope, excerpt, fail, json_object,
                                     require, skip)
from conformance.responses_stream import ResponsesStreamReport, check_responses_stream
from conformance.schemas import official_errors

check = check("responses")


def response_object(ctx: Context, probe: str) -> dict[str, Any]:
    return json_object(require(ctx.exchange(probe)))


def _stream(ctx: Context, probe: str = "responses.stream") -> ResponsesStreamReport:
    return check_responses_stream(require(ctx.exchange(probe), 200, "text/event-stream").body)


def _texts(obj: dict[str, Any]) -> str:
    return "".join(part.get("text", "") for item in obj.get("output") or []
                   if isinstance(item, dict) and item.get("type") == "message"
                   for part in item.get("content") or []
                   if isinstance(part, dict) and part.get("type") == "output_text")


@check("responses.basic.status", level="must",
       title="POST /responses with a string input answers 200 application/json",
       protects="POST /responses (createResponse): the openai-agents SDK, Codex CLI and the "
                "newest SDK examples speak only this")
def basic_status(ctx: Context) -> None:
    response_object(ctx, "responses.basic")


@check("responses.basic.schema", level="must",
       title="The response validates against the official Response schema (strict)",
       protects="Response; the SDKs' typed models and the agents SDK read id, status, output, "
                "tools and usage from it")
def basic_schema(ctx: Context) -> None:
    problems = official_errors("Response", response_object(ctx, "responses.basic"), "strict")
    if problems:
        fail("; ".join(problems))


@check("responses.basic.output", level="must",
       title="object response, status completed, an assistant message with output_text, and "
             "usage whose total is input + output",
       protects="Response.output[].content[].text (the SDKs' output_text) and ResponseUsage")
def basic_output(ctx: Context) -> None:
    body = response_object(ctx, "responses.basic")
    if body.get("object") != "response" or not body.get("id"):
        fail(f"object {body.get('object')!r}, id {body.get('id')!r}")
    if body.get("status") != "completed":
        fail(f"status is {body.get('status')!r} for a short greeting")
    if not _texts(body):
        fail(f"no output_text in output: {json.dumps(body.get('output'))[:200]}")
    usage = body.get("usage") or {}
    total = usage.get("total_tokens")
    if total != (usage.get("input_tokens") or 0) + (usage.get("output_tokens") or 0):
        fail(f"usage does not add up: {usage}")


@check("responses.stream.events", level="must",
       title="stream: true answers text/event-stream whose every event validates against the "
             "official ResponseStreamEvent",
       protects="ResponseStreamEvent; strict clients (Codex CLI) reject an event type outside "
                "the spec (CLIProxyAPI#6007, litellm#19368)")
def stream_events(ctx: Context) -> None:
    report = _stream(ctx)
    if not report.events:
        fail(f"no events: {excerpt(ctx.exchange('responses.stream'))}")
    problems = []
    for number, event in enumerate(report.events):
        problems += [f"event {number} ({event.get('type')}): {p}"
                     for p in official_errors("ResponseStreamEvent", event, "strict", 1)]
    if problems:
        fail("; ".join(problems[:5]))


@check("responses.stream.rules", level="must",
       title="Sequence numbers 0, 1, 2...; created and in_progress first; items announced "
             "before their events and done before one terminal event, last",
       protects="the Responses event order the SDKs' accumulators and Codex CLI depend on "
                "(\"stream closed before response.completed\")")
def stream_rules(ctx: Context) -> None:
    report = _stream(ctx)
    if report.problems:
        fail("; ".join(report.problems[:5]))


@check("responses.stream.matches", level="should",
       title="The streamed deltas, the terminal response and a plain response carry the same "
             "text",
       protects="streaming and non-streaming give the same answer; Codex builds items from "
                "output_item.done, the SDKs from the terminal response")
def stream_matches(ctx: Context) -> None:
    report = _stream(ctx)
    final = report.response or {}
    plain = _texts(response_object(ctx, "responses.basic"))
    if report.text != _texts(final):
        fail(f"deltas {report.text!r} != the terminal response's {_texts(final)!r}")
    if report.text != plain:
        fail(f"streamed {report.text!r} != plain {plain!r}")


@check("responses.max_output_tokens.incomplete", level="should",
       title="An answer cut by max_output_tokens has status incomplete and incomplete_details."
             "reason max_output_tokens",
       protects="Response.incomplete_details; agents must not take a truncated answer as "
                "complete (CLIProxyAPI reports completed regardless)")
def max_output_tokens(ctx: Context) -> None:
    body = response_object(ctx, "responses.max_output_tokens")
    if body.get("status") != "incomplete" or \
            (body.get("incomplete_details") or {}).get("reason") != "max_output_tokens":
        fail(f"status {body.get('status')!r}, incomplete_details "
             f"{body.get('incomplete_details')!r} for a long essay in 16 tokens")


@check("responses.tools.function_call", level="should",
       title="A function tool the model calls comes back as a function_call item with call_id, "
             "name and JSON-object arguments",
       protects="FunctionToolCall; the agents SDK and Codex CLI run the call and answer with "
                "function_call_output naming its call_id")
def tools_function_call(ctx: Context) -> None:
    body = response_object(ctx, "responses.tools")
    calls = [i for i in body.get("output") or [] if isinstance(i, dict)
             and i.get("type") == "function_call"]
    if not calls:
        fail(f"no function_call item in output: {json.dumps(body.get('output'))[:200]}")
    for call in calls:
        if not call.get("call_id") or call.get("name") != "get_weather":
            fail(f"call_id {call.get('call_id')!r}, name {call.get('name')!r}")
        try:
            arguments = json.loads(call.get("arguments"))
        except (TypeError, ValueError):
            fail(f"arguments are not JSON: {call.get('arguments')!r}")
        if not isinstance(arguments, dict):
            fail(f"arguments are not a JSON object: {arguments!r}")


@check("responses.previous_response.follow_up", level="should",
       title="A follow-up naming the previous response's id (previous_response_id) is answered "
             "at once, and echoes that id",
       protects="previous_response_id; LiteLLM answered such follow-ups 404 for about 10 s "
                "(litellm#12364, #28587)")
def follow_up(ctx: Context) -> None:
    body = response_object(ctx, "responses.follow_up")
    earlier = response_object(ctx, "responses.basic")
    if body.get("previous_response_id") != earlier.get("id"):
        fail(f"previous_response_id is {body.get('previous_response_id')!r}, sent "
             f"{earlier.get('id')!r}")


@check("responses.previous_response.outputs_only", level="should",
       title="A follow-up of only function_call_output items and previous_response_id is "
             "answered",
       protects="GitHub Copilot's tool results (CLIProxyAPI#5735; litellm#26167 answered 400)")
def outputs_only(ctx: Context) -> None:
    body = response_object(ctx, "responses.tool_output")
    if body.get("status") not in ("completed", "incomplete"):
        fail(f"status {body.get('status')!r}")


@check("responses.retrieve", level="should",
       title="GET /responses/{id} returns the stored response with its id and output",
       protects="getResponse; store defaults to true")
def retrieve(ctx: Context) -> None:
    body = response_object(ctx, "responses.retrieve")
    earlier = response_object(ctx, "responses.basic")
    if body.get("id") != earlier.get("id") or _texts(body) != _texts(earlier):
        fail(f"GET gave id {body.get('id')!r} with text {_texts(body)!r}; created "
             f"{earlier.get('id')!r} with {_texts(earlier)!r}")


@check("responses.previous_response.unknown", level="should",
       title="An unknown previous_response_id is a 400 or 404 in the OpenAI error envelope, "
             "param previous_response_id",
       protects="the error a client must see to resend the whole input (never a 500 or a "
                "silently new conversation)")
def unknown_previous(ctx: Context) -> None:
    error = error_envelope(ctx.exchange("responses.unknown_previous"), (400, 404))
    if error.get("param") != "previous_response_id":
        fail(f"param is {error.get('param')!r}")


# ---------------------------------------------------------------------------- reasoning

@check("responses.reasoning.items", level="should",
       title="Asked for reasoning summaries (reasoning.summary auto, include "
             "reasoning.encrypted_content, streamed), any reasoning item comes before the "
             "answer, its summary is summary_text parts streamed by the official "
             "reasoning_summary events, and its encrypted_content is a string when present",
       protects="ReasoningItem and ResponseReasoningSummary*Event; Codex CLI sends these "
                "settings on every request, shows the summary and keeps the done item for its "
                "next request")
def reasoning_items(ctx: Context) -> str:
    ex = ctx.exchange("responses.reasoning")
    if ex.status != 200:
        if ex.error or (ex.status or 0) >= 500:
            fail(f"answered {ex.error or ex.status}: {excerpt(ex)}")
        error = error_envelope(ex)
        skip(f"the server refused the reasoning settings ({ex.status}, param "
             f"{error.get('param')!r})")
    report = check_responses_stream(require(ex, 200, "text/event-stream").body)
    problems = list(report.problems)
    for number, event in enumerate(report.events):
        problems += [f"event {number} ({event.get('type')}): {p}"
                     for p in official_errors("ResponseStreamEvent", event, "strict", 1)]
    if problems:
        fail("; ".join(problems[:5]))
    items = report.done_items
    reasoning = [i for i in items if i.get("type") == "reasoning"]
    if not reasoning:
        skip("no reasoning item: not a reasoning model, or it shows no reasoning")
    kinds = [i.get("type") for i in items]
    if kinds[0] != "reasoning":
        fail(f"the output is {kinds}: the reasoning follows the answer it led to")
    summary = ""
    for item in reasoning:
        for part in item.get("summary") or []:
            summary += part.get("text") or ""
        encrypted = item.get("encrypted_content")
        if "encrypted_content" in item and encrypted is not None and not encrypted:
            fail(f"reasoning item {item.get('id')!r} has an empty encrypted_content")
    sealed = sum(1 for i in reasoning if i.get("encrypted_content"))
    return (f"{len(reasoning)} reasoning item(s), {len(summary)} characters of summary, "
            f"{sealed} with encrypted_content")


@check("responses.reasoning.given_back", level="should",
       title="The conversation re-sent with the reasoning items as they came (store false, "
             "as Codex CLI sends every turn) is answered",
       protects="ReasoningItem in input; a stateless client gives every reasoning item back, "
                "and a server that refuses its own items breaks the client's next turn")
def reasoning_given_back(ctx: Context) -> str:
    body = response_object(ctx, "responses.reasoning_given_back")
    if body.get("status") not in ("completed", "incomplete"):
        fail(f"status {body.get('status')!r}")
    if not _texts(body):
        fail(f"no answer in the output: {json.dumps(body.get('output'))[:200]}")
    return "answered"
