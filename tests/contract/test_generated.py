"""Generated requests: what schemathesis derives from our document agrees with our validator
and with the official schema (positive), and every rejection is a short OpenAI-style error
(negative). Generation costs ~0.25 s an example, hence the small counts."""

from __future__ import annotations

import pytest
import schemathesis
from hypothesis import given, settings
from schemathesis import GenerationMode

from proxy.contract.document import load_document
from proxy.contract.official import official_validator
from proxy.contract.validation import RequestValidator
from tests.properties.budget import SUPPRESSED_HEALTH_CHECKS

pytestmark = pytest.mark.slow

DOC = load_document()
CHAT = schemathesis.openapi.from_dict(DOC)["/v1/chat/completions"]["POST"]
OURS = RequestValidator(DOC)
OFFICIAL = official_validator("CreateChatCompletionRequest", "strict")
SCHEMA = "CreateChatCompletionRequest"
FEW = settings(max_examples=15, deadline=None, database=None,
               suppress_health_check=SUPPRESSED_HEALTH_CHECKS)


@FEW
@given(CHAT.as_strategy(generation_mode=GenerationMode.POSITIVE))
def test_generated_valid_requests_are_valid_here_and_officially(case):
    body = case.body
    assert OURS.validate(SCHEMA, body) is None
    if body.get("top_logprobs", 0) is None:  # see test_top_logprobs_null_is_accepted
        body = {k: v for k, v in body.items() if k != "top_logprobs"}
    assert [e.message[:200] for e in OFFICIAL.iter_errors(body)] == []


@FEW
@given(CHAT.as_strategy(generation_mode=GenerationMode.NEGATIVE))
def test_generated_invalid_requests_get_a_short_issue(case):
    issue = OURS.validate(SCHEMA, case.body)
    assert issue is not None, case.body
    assert issue.code and len(issue.message) < 300
    assert issue.param is None or not issue.param.startswith((".", "["))


REFERENCE = OURS._schemas.validator(SCHEMA)      # jsonschema, which words the errors
FAST = OURS._fast_validator(SCHEMA)              # jsonschema-rs, which checks every request


@FEW
@given(CHAT.as_strategy(generation_mode=GenerationMode.POSITIVE)
       | CHAT.as_strategy(generation_mode=GenerationMode.NEGATIVE))
def test_the_fast_validator_agrees_with_the_reference(case):
    try:
        fast = FAST.is_valid(case.body)
    except (ValueError, TypeError, OverflowError):
        return  # not a JSON value (the request path then uses the reference alone)
    assert fast == REFERENCE.is_valid(case.body), case.body
