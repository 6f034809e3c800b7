"""The schemathesis hooks and custom checks (tests/schema_fuzz/hooks.py) work on this
document: the model is pinned for every phase, and each custom check fails on the defect it
exists for (injected into the real app)."""

from __future__ import annotations

import pytest
import schemathesis
from hypothesis import given, settings
from schemathesis import GenerationMode
from schemathesis.core.failures import FailureGroup

import proxy.http.resources.chat as chat_resource
from proxy.app import create_app
from proxy.chat.completion import ChunkFactory
from proxy.contract.document import load_document
from proxy.errors import ProxyError
from proxy.settings import Settings
from tests.properties.budget import SUPPRESSED_HEALTH_CHECKS
from tests.schema_fuzz import hooks
from tests.support.runners import wildcard_replay

SCHEMA = schemathesis.openapi.from_dict(load_document())
CHAT = SCHEMA["/v1/chat/completions"]["POST"]
PLAIN = {"model": "claude-sonnet-4", "messages": [{"role": "user", "content": "Say hello."}]}
STREAM = {**PLAIN, "stream": True}


def app():
    return create_app(Settings(), wildcard_replay())


def failed_checks(body, the_app) -> set[str]:
    try:
        CHAT.Case(body=body, media_type="application/json").call_and_validate(app=the_app)
    except FailureGroup as group:
        return {getattr(f, "title", "") + " " + str(f) for f in group.exceptions}
    return set()


def test_the_model_of_generated_cases_is_pinned_before_every_call():
    the_app = app()
    seen: list[tuple[str, int]] = []

    @settings(max_examples=5, deadline=None, database=None,
              suppress_health_check=SUPPRESSED_HEALTH_CHECKS)
    @given(CHAT.as_strategy(generation_mode=GenerationMode.POSITIVE))
    def generated(case):
        response = case.call(app=the_app)
        seen.append((case.body["model"], response.status_code))

    generated()
    assert seen and {model for model, _ in seen} == {hooks.served_model()} == {"claude-sonnet-4"}
    # A test's own case is sent as it is.
    case = CHAT.Case(body={**PLAIN, "model": "no-such-model"}, media_type="application/json")
    assert case.call(app=the_app).status_code == 404


def test_the_unbroken_app_passes():
    assert failed_checks(STREAM, app()) == set()
    assert failed_checks({**STREAM, "stream_options": {"include_usage": True}}, app()) == set()


def test_stream_rules_catch_a_missing_role(monkeypatch):
    monkeypatch.setattr(ChunkFactory, "role",
                        lambda self: self._chunk([self._choice({"content": ""})]))
    assert any("chat_stream_rules" in f and "role" in f for f in failed_checks(STREAM, app()))


def test_stream_rules_catch_an_unasked_usage_chunk(monkeypatch):
    real = ChunkFactory.__init__
    monkeypatch.setattr(ChunkFactory, "__init__",
                        lambda self, identity, include_usage: real(self, identity, True))
    monkeypatch.setattr(chat_resource.ChatStream, "_finish",
                        lambda self, finished: iter([
                            chat_resource.sse.event(self.factory.finish("stop")),
                            chat_resource.sse.event(self.factory.usage(finished.usage)),
                            chat_resource.sse.DONE]))
    assert any("chat_stream_rules" in f and "include_usage" in f
               for f in failed_checks(STREAM, app()))


def test_official_fidelity_catches_a_missing_refusal(monkeypatch):
    real = chat_resource.completion_object

    def without_refusal(*args, **kwargs):
        answer = real(*args, **kwargs)
        del answer["choices"][0]["message"]["refusal"]
        return answer

    monkeypatch.setattr(chat_resource, "completion_object", without_refusal)
    assert any("official_spec_fidelity" in f and "refusal" in f
               for f in failed_checks(PLAIN, app()))


def test_positive_refusals_must_be_documented(monkeypatch):
    """A valid request refused with a schema-style code means the server's validation and its
    document disagree."""
    def refuse(self, body, owner=""):
        raise ProxyError(400, "nope", param="messages", code="invalid_value")

    monkeypatch.setattr("proxy.backend.ChatService.prepare", refuse)
    the_app = app()
    failures: list[str] = []

    @settings(max_examples=1, deadline=None, database=None,
              suppress_health_check=SUPPRESSED_HEALTH_CHECKS)
    @given(CHAT.as_strategy(generation_mode=GenerationMode.POSITIVE))
    def one_valid_request(case):
        with pytest.raises(FailureGroup) as caught:
            case.call_and_validate(app=the_app)
        failures.extend(str(f) for f in caught.value.exceptions)

    one_valid_request()
    assert any("refused with 400 `invalid_value`" in f for f in failures), failures
