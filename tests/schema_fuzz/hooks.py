"""schemathesis hooks and custom checks for claude-max-api's document.

Loaded by the tests here (imported) and by the schemathesis command line through
schemathesis.toml beside this file (`hooks = "tests.schema_fuzz.hooks"`; run it from the
repository root):

    schemathesis --config-file tests/schema_fuzz/schemathesis.toml \
        run http://127.0.0.1:3456/openapi.json --url http://127.0.0.1:3456

schemathesis registers hooks and checks globally, on import; both act only on operations of
this project's document (its `info.title`), so other schemas in the same process are left
alone.

* `flatmap_case` steers most valid chat requests of the fuzzing phase toward what the proxy
  serves, streamed or not (steering.py), so the success path and the stream rules see hundreds
  of generated requests instead of a handful; the rest stay as generated, and so do the
  examples and coverage phases and every invalid request. Only in runs configured by
  schemathesis.toml (the fuzz tests, the command line): other tests that generate from the
  document get what it allows, unsteered.
* `before_call` pins the served model (`CMA_FUZZ_MODEL`, default claude-sonnet-4) into every
  generated body that names one; otherwise nearly every valid case is a 404 model_not_found.
  It runs for every phase, coverage included (`map_body` does not).
* `chat_stream_rules`: the whole-stream rules (tests/support/stream_rules.py) on every SSE
  answer; schemathesis itself validates each event against the document.
* `official_spec_fidelity`: every answer against the official OpenAI schemas, strict profile.
* `positive_refusals_are_documented`: a valid request may be refused only for what the proxy
  documents it cannot do (400 with an `unsupported_*`-style code), never with a schema code,
  which would mean the server's validation disagrees with its own document.
"""

from __future__ import annotations

import json
import os
from typing import Any

import schemathesis
from hypothesis import strategies as st
from schemathesis.generation.meta import TestPhase

from tests.schema_fuzz.steering import Steer, steered, steers
from tests.support.fidelity import official_problems
from tests.support.stream_rules import check_stream, include_usage_of

DOCUMENT_TITLE = "claude-max-api"
DEFAULT_MODEL = "claude-sonnet-4"
CHAT_PATH = "/v1/chat/completions"
LEGACY_PATH = "/v1/completions"

# 400 codes for a schema-valid request: what the proxy decides it cannot carry or honour,
# and the bounds OpenAI's server enforces beyond its schema (max_tokens >= 1).
POLICY_CODES = frozenset({
    "unsupported_parameter", "unsupported_content", "unsupported_message", "invalid_image_url",
    "invalid_image_format",
    "invalid_unicode", "too_many_messages", "context_length_exceeded", "integer_below_min_value",
    # Tools and formats (issues 11, 12): what the API refuses beyond what a schema can say:
    # two tools of one name, parameters or a response_format schema that are not a JSON Schema
    # (of an object, for parameters), a tool_choice naming a tool that is not offered, tool
    # messages that answer no call, arguments sent back that are not a JSON object.
    "duplicate_tool_name", "invalid_function_parameters", "invalid_response_format",
    "tool_not_found", "invalid_tool_message", "invalid_tool_arguments",
})


# The Responses API (issue 13): what a schema-valid request may still be refused for, as
# OpenAI refuses it (an output without its call, a call without its output, a missing input,
# two tools of one name), and the ids a generated request names that no stored response has.
RESPONSES_PATH = "/v1/responses"
RESPONSES_POLICY_CODES = POLICY_CODES | frozenset({
    "invalid_tool_output", "missing_required_parameter", "duplicate_tool_name",
    "invalid_function_name", "invalid_value", "invalid_function_parameters",
    "invalid_response_format", "tool_not_found", "invalid_tool_arguments",
})
NOT_FOUND_CODES = frozenset({"model_not_found", "response_not_found",
                             "previous_response_not_found", "item_not_found"})


def served_model() -> str:
    return os.environ.get("CMA_FUZZ_MODEL") or DEFAULT_MODEL


def _ours(case: Any) -> bool:
    try:
        return case.operation.schema.raw_schema.get("info", {}).get("title") == DOCUMENT_TITLE
    except AttributeError:
        return False


def _is_chat(case: Any) -> bool:
    return case.operation.method.upper() == "POST" and case.operation.path == CHAT_PATH


def _media_type(response: Any) -> str:
    values = response.headers.get("content-type") or [""]
    return values[0].split(";")[0].strip().lower()


def _is_positive(case: Any) -> bool:
    meta = case.meta
    return meta is not None and meta.generation.mode.is_positive


def _is_fuzzing(case: Any) -> bool:
    meta = case.meta
    return meta is not None and meta.phase.name == TestPhase.FUZZING


def _configured_here(case: Any) -> bool:
    """Whether the run was configured by schemathesis.toml, which names this module."""
    return getattr(case.operation.schema.config, "hooks", None) == __name__


@schemathesis.hook
def flatmap_case(context: Any, case: Any) -> st.SearchStrategy:
    if not (_ours(case) and _is_chat(case) and _configured_here(case) and _is_positive(case)
            and _is_fuzzing(case) and isinstance(case.body, dict)):
        return st.just(case)

    def steer(choice: Steer) -> Any:
        case.body = steered(case.body, choice)
        return case

    return steers().map(steer)


@schemathesis.hook
def before_call(context: Any, case: Any, kwargs: dict[str, Any]) -> None:
    # Generated cases only (they carry generation metadata); a test's own case keeps its model.
    if _ours(case) and case.meta is not None and isinstance(case.body, dict) \
            and isinstance(case.body.get("model"), str):
        case.body["model"] = served_model()


def is_chat_case(case: Any) -> bool:
    """A case of this project's chat completion operation."""
    return _ours(case) and _is_chat(case)


def _asked_for_stream(case: Any) -> bool:
    return isinstance(case.body, dict) and case.body.get("stream") is True


def whole_stream_checked(case: Any, response: Any) -> bool:
    """Whether `chat_stream_rules` checks this answer as a whole stream (and so, once the
    checks passed, the stream followed every rule)."""
    return is_chat_case(case) and response.status_code == 200 and _asked_for_stream(case) \
        and _media_type(response) == "text/event-stream" and not response.stream_cut_short


@schemathesis.check
def chat_stream_rules(ctx: Any, response: Any, case: Any) -> bool | None:
    if not is_chat_case(case) or response.status_code != 200:
        return None
    media = _media_type(response)
    asked = _asked_for_stream(case)
    if media == "text/event-stream" and not asked:
        raise AssertionError("a stream was sent, but the request did not ask for one")
    if asked and media != "text/event-stream":
        raise AssertionError(f"`stream: true` was answered with {media}, not a stream")
    if not whole_stream_checked(case, response):
        return None  # not a stream, or schemathesis stopped reading it (max-stream-events)
    check_stream(response.content, include_usage=include_usage_of(case.body)).assert_ok()
    return True


@schemathesis.check
def official_spec_fidelity(ctx: Any, response: Any, case: Any) -> bool | None:
    if not _ours(case):
        return None
    problems = official_problems(
        case.operation.method.upper(), case.formatted_path, response.status_code,
        (response.headers.get("content-type") or [""])[0], response.content or b"",
        request_body=case.body if isinstance(case.body, dict) else None,
        complete=not response.stream_cut_short)
    if problems:
        raise AssertionError("off the official OpenAI spec:\n" + "\n".join(problems[:10]))
    return True


@schemathesis.check
def positive_refusals_are_documented(ctx: Any, response: Any, case: Any) -> bool | None:
    if not (_ours(case) and _is_positive(case)) or response.status_code < 400:
        return None
    if case.operation.path == LEGACY_PATH:
        return None  # judged by tests/completions/schema_hooks.py, with that endpoint's codes
    if response.status_code >= 500:
        return None  # not_a_server_error reports it
    try:
        error = json.loads(response.content)["error"]
    except (ValueError, KeyError, TypeError):
        raise AssertionError(f"a {response.status_code} without an OpenAI error body") from None
    code = error.get("code")
    if case.operation.method.upper() == "POST" and case.operation.path == RESPONSES_PATH \
            and response.status_code == 400 and code in RESPONSES_POLICY_CODES:
        return True
    if case.operation.path.startswith(RESPONSES_PATH) and response.status_code == 404 \
            and code in NOT_FOUND_CODES:
        return True
    if _is_chat(case):
        if response.status_code == 400 and code in POLICY_CODES:
            return True
        raise AssertionError(
            f"a valid request was refused with {response.status_code} `{code}`: "
            f"{error.get('message')} (only {sorted(POLICY_CODES)} may refuse a valid request)")
    if response.status_code == 404 and code == "model_not_found":
        return True
    raise AssertionError(f"a valid request was refused with {response.status_code} `{code}`")
