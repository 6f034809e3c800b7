"""schemathesis checks for POST /v1/completions (legacy), beside tests/schema_fuzz/hooks.py
(whose model pinning and official-spec check apply to this operation too).

* `text_stream_rules`: the whole-stream rules of a text completion stream
  (tests/support/stream_rules.py `check_text_stream`) on every SSE answer;
* `completion_refusals_are_documented`: a valid request may be refused only for what the
  proxy documents it cannot honour on this endpoint (README: legacy completions), never with a
  schema code, which would mean the server's validation disagrees with its own document.
"""

from __future__ import annotations

import json
from typing import Any

import schemathesis

from tests.schema_fuzz.hooks import POLICY_CODES, _is_positive, _media_type, _ours
from tests.support.stream_rules import check_text_stream, include_usage_of, prompts_of

LEGACY_PATH = "/v1/completions"
# What this endpoint refuses on top of chat's: token arrays, too many prompts.
LEGACY_CODES = POLICY_CODES | {"unsupported_value", "too_many_prompts"}


def _is_legacy(case: Any) -> bool:
    return _ours(case) and case.operation.method.upper() == "POST" \
        and case.operation.path == LEGACY_PATH


@schemathesis.check
def text_stream_rules(ctx: Any, response: Any, case: Any) -> bool | None:
    if not _is_legacy(case) or response.status_code != 200:
        return None
    asked = isinstance(case.body, dict) and case.body.get("stream") is True
    if _media_type(response) == "text/event-stream":
        if not asked:
            raise AssertionError("a stream was sent, but the request did not ask for one")
        if response.stream_cut_short:
            return None
        check_text_stream(response.content, include_usage=include_usage_of(case.body),
                          prompts=prompts_of(case.body)).assert_ok()
        return True
    if asked:
        raise AssertionError("`stream: true` was answered without a stream")
    return None


@schemathesis.check
def completion_refusals_are_documented(ctx: Any, response: Any, case: Any) -> bool | None:
    if not (_is_legacy(case) and _is_positive(case)) or not 400 <= response.status_code < 500:
        return None
    try:
        error = json.loads(response.content)["error"]
    except (ValueError, KeyError, TypeError):
        raise AssertionError(f"a {response.status_code} without an OpenAI error body") from None
    code = error.get("code")
    if (response.status_code, code) == (404, "model_not_found") or \
            (response.status_code == 400 and code in LEGACY_CODES):
        return True
    raise AssertionError(f"a valid request was refused with {response.status_code} `{code}`: "
                         f"{error.get('message')} (only {sorted(LEGACY_CODES)} may refuse one)")
