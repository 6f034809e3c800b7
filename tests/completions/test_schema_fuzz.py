"""schemathesis over POST /v1/completions against the WSGI app in this process: every phase,
every check, both generation modes, plus the text stream rules and the refusal policy
(schema_hooks.py) and the official spec (tests/schema_fuzz/hooks.py). The app replays one
recorded cassette for any invocation, so every valid request can reach the 200 path, streamed
and not, with any number of prompts up to the limit."""

from __future__ import annotations

import schemathesis

from proxy.app import create_app
from proxy.settings import Settings
from tests.completions import schema_hooks  # noqa: F401  (registers this endpoint's checks)
from tests.schema_fuzz import hooks  # noqa: F401  (model pinning, official-spec fidelity)
from tests.schema_fuzz.budget import config, only
from tests.support.runners import wildcard_replay

APP = create_app(Settings(), wildcard_replay("plain_question"))
schema = only(schemathesis.openapi.from_wsgi("/openapi.json", APP, config=config()),
              operation_id="createCompletion")


@schema.parametrize()
def test_completions_conform(case):
    case.call_and_validate()


def test_the_fuzzing_here_is_of_this_operation_alone():
    """The chat and Responses operations have fuzz tests of their own, with runners that can
    answer their tools; here they would only cost time and fail for want of a tool bridge."""
    assert [(o.ok().method, o.ok().path) for o in schema.get_all_operations()] == [
        ("post", "/v1/completions")]


# --- each custom check fails on the defect it exists for (injected into the real app) -------

import pytest  # noqa: E402
from hypothesis import HealthCheck, given, settings  # noqa: E402
from schemathesis import GenerationMode  # noqa: E402
from schemathesis.core.failures import FailureGroup  # noqa: E402

from proxy.chat import text_completion  # noqa: E402
from proxy.contract.document import load_document  # noqa: E402
from proxy.errors import ProxyError  # noqa: E402

LEGACY = schemathesis.openapi.from_dict(load_document())["/v1/completions"]["POST"]
PLAIN = {"model": "sonnet", "prompt": ["a", "b"]}


def failed_checks(body) -> set[str]:
    the_app = create_app(Settings(), wildcard_replay("plain_question"))
    try:
        LEGACY.Case(body=body, media_type="application/json").call_and_validate(app=the_app)
    except FailureGroup as group:
        return {getattr(f, "title", "") + " " + str(f) for f in group.exceptions}
    return set()


def test_the_unbroken_app_passes():
    assert failed_checks(PLAIN) == set()
    assert failed_checks({**PLAIN, "stream": True,
                          "stream_options": {"include_usage": True}}) == set()


def test_text_stream_rules_catch_a_choice_without_its_finish(monkeypatch):
    monkeypatch.setattr(text_completion.TextChunks, "finish",
                        lambda self, index, reason: self.text(index, ""))
    assert any("text_stream_rules" in f and "no finish_reason" in f
               for f in failed_checks({**PLAIN, "stream": True}))


def test_refusals_must_be_documented(monkeypatch):
    """A valid request refused with a schema-style code: validation and document disagree."""
    def refuse(self, body, owner=""):
        raise ProxyError(400, "nope", param="prompt", code="invalid_value")

    monkeypatch.setattr("proxy.backend.ChatService.prepare_completion", refuse)
    the_app = create_app(Settings(), wildcard_replay("plain_question"))
    failures: list[str] = []

    @settings(max_examples=1, deadline=None, database=None,
              suppress_health_check=list(HealthCheck))
    @given(LEGACY.as_strategy(generation_mode=GenerationMode.POSITIVE))
    def one_valid_request(case):
        with pytest.raises(FailureGroup) as caught:
            case.call_and_validate(app=the_app)
        failures.extend(str(f) for f in caught.value.exceptions)

    one_valid_request()
    assert any("refused with 400 `invalid_value`" in f for f in failures), failures


def test_generated_cases_reach_the_200_path_and_the_model_is_pinned():
    the_app = create_app(Settings(), wildcard_replay("plain_question"))
    seen: list[int] = []

    @settings(max_examples=15, deadline=None, database=None,
              suppress_health_check=list(HealthCheck))
    @given(LEGACY.as_strategy(generation_mode=GenerationMode.POSITIVE))
    def generated(case):
        seen.append(case.call(app=the_app).status_code)

    generated()
    assert 200 in seen and 404 not in seen
