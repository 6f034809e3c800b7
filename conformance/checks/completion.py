"""The non-streaming `chat.completion` object."""

from __future__ import annotations

from email.utils import parsedate_to_datetime

from conformance.checks.base import Context, check, completion, fail, json_object, require
from conformance.schemas import official_errors

check = check("completion")

FINISH_REASONS = ("stop", "length", "tool_calls", "content_filter", "function_call")
DAY = 86400


@check("chat.basic.status", level="must",
       title="A plain chat completion answers 200 application/json",
       protects="POST /chat/completions (createChatCompletion)")
def basic_status(ctx: Context) -> None:
    json_object(require(ctx.exchange("chat.basic")))


@check("chat.basic.schema", level="must",
       title="The completion validates against the official CreateChatCompletionResponse "
             "(lenient: refusal and logprobs may be omitted)",
       protects="CreateChatCompletionResponse; typed clients (openai SDK models, Vercel AI SDK "
                "zod schemas) reject what does not fit")
def basic_schema(ctx: Context) -> None:
    problems = official_errors("CreateChatCompletionResponse", completion(ctx, "chat.basic"))
    if problems:
        fail("; ".join(problems))


@check("chat.basic.schema_strict", level="should",
       title="The completion validates against the official schema as published (message."
             "refusal and choices[].logprobs present, null when unused)",
       protects="CreateChatCompletionResponse (strict): OpenAI itself always sends both")
def basic_schema_strict(ctx: Context) -> None:
    problems = official_errors("CreateChatCompletionResponse", completion(ctx, "chat.basic"),
                               "strict")
    if problems:
        fail("; ".join(problems))


@check("chat.basic.object", level="must",
       title="object is chat.completion, id a non-empty string, created the Unix time in seconds",
       protects="CreateChatCompletionResponse.id/object/created; clients key caches and logs "
                "on id and sort on created")
def basic_object(ctx: Context) -> None:
    ex = ctx.exchange("chat.basic")
    body = completion(ctx, "chat.basic")
    if body.get("object") != "chat.completion":
        fail(f"object is {body.get('object')!r}, not 'chat.completion'")
    if not isinstance(body.get("id"), str) or not body["id"]:
        fail(f"id is {body.get('id')!r}")
    created = body.get("created")
    if not isinstance(created, int) or isinstance(created, bool):
        fail(f"created is {created!r}, not an integer")
    try:
        now = int(parsedate_to_datetime(ex.headers["date"]).timestamp())
    except (KeyError, TypeError, ValueError):
        now = None
    if now is not None and abs(created - now) > DAY:
        fail(f"created is {created}, more than a day away from the response's Date ({now}): "
             f"not Unix seconds")
    if now is None and not 1_500_000_000 <= created <= 10_000_000_000:
        fail(f"created is {created}: not Unix seconds")


@check("chat.basic.model", level="should",
       title="model names the requested model (or a dated version of it)",
       protects="CreateChatCompletionResponse.model; clients that route or bill by model")
def basic_model(ctx: Context) -> None:
    model = completion(ctx, "chat.basic").get("model")
    if not isinstance(model, str) or not (model == ctx.model or model.startswith(str(ctx.model))):
        fail(f"model is {model!r}, requested {ctx.model!r}")


@check("chat.basic.choice", level="must",
       title="One choice with index 0, an assistant message with text content and a valid "
             "finish_reason",
       protects="choices[0].message.content, the field every client reads")
def basic_choice(ctx: Context) -> None:
    choices = completion(ctx, "chat.basic").get("choices")
    if not isinstance(choices, list) or len(choices) != 1:
        fail(f"expected exactly one choice, got {choices!r:.200}")
    choice = choices[0]
    if choice.get("index") != 0:
        fail(f"choices[0].index is {choice.get('index')!r}")
    message = choice.get("message") or {}
    if message.get("role") != "assistant":
        fail(f"message.role is {message.get('role')!r}")
    if not isinstance(message.get("content"), str) or not message["content"]:
        fail(f"message.content is {message.get('content')!r}: no text")
    if choice.get("finish_reason") not in FINISH_REASONS:
        fail(f"finish_reason is {choice.get('finish_reason')!r}")


@check("chat.basic.finish_stop", level="should",
       title="A short answer that ends by itself has finish_reason stop",
       protects="finish_reason semantics; agents treat 'length' as truncated and retry")
def basic_finish_stop(ctx: Context) -> None:
    choice = (completion(ctx, "chat.basic").get("choices") or [{}])[0]
    if choice.get("finish_reason") != "stop":
        fail(f"finish_reason is {choice.get('finish_reason')!r} for a short greeting")


@check("chat.basic.id_unique", level="should",
       title="Two completions get different ids",
       protects="id is a unique identifier; clients and logs deduplicate on it")
def basic_id_unique(ctx: Context) -> None:
    first = completion(ctx, "chat.basic").get("id")
    second = completion(ctx, "chat.temperature_zero").get("id")
    if first == second:
        fail(f"two completions share the id {first!r}")


@check("chat.basic.usage", level="should",
       title="usage has integer prompt/completion/total tokens, and total = prompt + completion",
       protects="CompletionUsage; cost tracking in LangChain, LiteLLM and IDE clients")
def basic_usage(ctx: Context) -> None:
    usage = completion(ctx, "chat.basic").get("usage")
    if not isinstance(usage, dict):
        fail(f"usage is {usage!r}")
    _usage_adds_up(usage)


def _usage_adds_up(usage: dict) -> None:
    values = {k: usage.get(k) for k in ("prompt_tokens", "completion_tokens", "total_tokens")}
    bad = {k: v for k, v in values.items()
           if not isinstance(v, int) or isinstance(v, bool) or v < 0}
    if bad:
        fail(f"usage fields are not non-negative integers: {bad}")
    if values["total_tokens"] != values["prompt_tokens"] + values["completion_tokens"]:
        fail(f"total_tokens {values['total_tokens']} != prompt_tokens "
             f"{values['prompt_tokens']} + completion_tokens {values['completion_tokens']}")
    if values["completion_tokens"] == 0:
        fail("completion_tokens is 0 for an answer with text")
