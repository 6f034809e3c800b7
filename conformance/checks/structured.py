"""Structured outputs: `response_format` json_schema (whole and streamed) and json_object.

OpenAI guarantees that a `json_schema` answer with `strict: true` is JSON that validates
against the schema, and that a `json_object` answer is one JSON object: both are `must`. A
model may decline, which OpenAI reports as `message.refusal` (content null): that is a valid
answer to a request, so the checks skip it, saying so, rather than fail.
"""

from __future__ import annotations

import json
from typing import Any

from conformance.checks.base import (Context, check, completion, content_of, fail,
                                     finish_reasons, skip, stream)
from conformance.probes import PERSON_SCHEMA
from conformance.schemas import official_errors

check = check("structured")


def _valid(ctx: Context, probe: str) -> dict[str, Any]:
    body = completion(ctx, probe)
    problems = official_errors("CreateChatCompletionResponse", body)
    if problems:
        fail(f"{probe}: " + "; ".join(problems))
    return body


def _judge(text: str, where: str) -> Any:
    from jsonschema import Draft202012Validator

    try:
        value = json.loads(text)
    except ValueError:
        fail(f"{where}: the content is not JSON: {text[:200]!r}")
    error = next(iter(Draft202012Validator(PERSON_SCHEMA).iter_errors(value)), None)
    if error is not None:
        fail(f"{where}: the content {text[:160]!r} does not match the schema: {error.message}")
    return value


def _refused(message: dict[str, Any], where: str) -> None:
    if message.get("refusal"):
        skip(f"{where}: the model declined (refusal {str(message['refusal'])[:120]!r}); the "
             f"format cannot be judged")


@check("structured.json_schema.valid", level="must",
       title="response_format json_schema (strict) gives content that parses as JSON and "
             "validates against the schema, with finish_reason stop",
       protects="ResponseFormatJsonSchema; chat.completions.parse(), LangChain's "
                "with_structured_output and pydantic-ai build typed objects from it")
def json_schema_valid(ctx: Context) -> None:
    body = _valid(ctx, "structured.json_schema")
    message = body["choices"][0]["message"]
    _refused(message, "structured.json_schema")
    _judge(content_of(body), "structured.json_schema")
    if finish_reasons(body) != ["stop"]:
        fail(f"structured.json_schema: finish_reason {finish_reasons(body)} (expected ['stop'])")


@check("structured.json_schema.stream", level="must",
       title="Streamed, the content deltas of a json_schema answer join to JSON that "
             "validates against the schema, with one finish chunk stop",
       protects="ResponseFormatJsonSchema with stream: true; the openai SDK's "
                "chat.completions.stream() parses the joined deltas")
def json_schema_stream(ctx: Context) -> None:
    s = stream(ctx, "structured.json_schema_stream")
    refusal = "".join((c.get("delta") or {}).get("refusal") or "" for chunk in s.choice_chunks()
                      for c in chunk["choices"] if isinstance(c, dict))
    _refused({"refusal": refusal}, "structured.json_schema_stream")
    _judge(s.text(), "structured.json_schema_stream")
    reasons = [c.get("finish_reason") for chunk in s.choice_chunks() for c in chunk["choices"]
               if isinstance(c, dict) and c.get("finish_reason") is not None]
    if reasons != ["stop"]:
        fail(f"structured.json_schema_stream: finish reasons {reasons} (expected ['stop'])")


@check("structured.json_object.valid", level="must",
       title="response_format json_object gets a 200 whose content is one JSON object",
       protects="ResponseFormatJsonObject ('JSON mode'); instructor's JSON mode and every "
                "extraction pipeline json.loads() the content")
def json_object_valid(ctx: Context) -> None:
    body = _valid(ctx, "chat.json_object")
    _refused(body["choices"][0]["message"], "chat.json_object")
    text = content_of(body)
    try:
        value = json.loads(text)
    except ValueError:
        fail(f"chat.json_object: the content is not JSON: {text[:200]!r}")
    if not isinstance(value, dict):
        fail(f"chat.json_object: the content is JSON but not an object: {text[:200]!r}")
