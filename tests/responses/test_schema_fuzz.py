"""schemathesis over the Responses operations of the document, in process: every phase, every
check, positive and negative data. Each SSE event is validated against the document's
ResponseStreamEvent by schemathesis, every answer against the official schemas by the shared
`official_spec_fidelity` check, and every stream against the Responses stream rules by
`responses_stream_rules` below. Then the stored-response operations with a real id.

The CLI is scripted (tests/responses/fake_cli.py): it answers every request in text, so a
request that forces a tool call gets the documented 502 `tool_choice_not_honoured` after the
one correction, which is checked for instead of `not_a_server_error`.
"""

from __future__ import annotations

import json
from typing import Any

import pytest
import schemathesis
from schemathesis.checks import not_a_server_error

from conformance.responses_stream import check_responses_stream
from proxy.app import create_app
from proxy.contract.document import load_document
from proxy.settings import Settings
from tests.responses.fake_cli import ScriptedRunner, text
from tests.schema_fuzz import hooks
from tests.schema_fuzz.budget import config, only

APP = create_app(Settings(), ScriptedRunner(text("A fuzzed answer.")))
schema = only(schemathesis.openapi.from_wsgi("/openapi.json", APP, config=config()),
              path_regex="^/v1/responses")
DOCUMENT = schemathesis.openapi.from_dict(load_document())


def _forces_a_call(body: Any) -> bool:
    if not isinstance(body, dict) or not body.get("tools"):
        return False
    choice = body.get("tool_choice")
    return choice == "required" or (isinstance(choice, dict) and (
        choice.get("type") in ("function", "custom")
        or (choice.get("type") == "allowed_tools" and choice.get("mode") == "required")))


@schemathesis.check
def responses_stream_rules(ctx: Any, response: Any, case: Any) -> bool | None:
    if not (hooks._ours(case) and case.operation.path == "/v1/responses"
            and case.operation.method.upper() == "POST") or response.status_code != 200:
        return None
    media = (response.headers.get("content-type") or [""])[0].split(";")[0].strip()
    asked = isinstance(case.body, dict) and case.body.get("stream") is True
    if media == "text/event-stream":
        if not asked:
            raise AssertionError("a stream was sent, but the request did not ask for one")
        if not response.stream_cut_short:
            check_responses_stream(response.content).assert_ok()
        return True
    if asked:
        raise AssertionError(f"`stream: true` was answered with {media}, not a stream")
    return None


@schema.parametrize()
def test_the_responses_operations_conform(case):
    if _forces_a_call(case.body):
        response = case.call(app=APP)
        if response.status_code == 502:   # the model answered in text twice: documented
            assert response.json()["error"]["code"] == "tool_choice_not_honoured"
            case.validate_response(response, excluded_checks=[not_a_server_error])
            return
        case.validate_response(response)
        return
    case.call_and_validate(app=APP)


@pytest.mark.parametrize("stream", [False, True])
def test_the_stored_response_operations_conform_with_a_real_id(stream):
    create = DOCUMENT["/v1/responses"]["POST"]
    response = create.Case(body={"model": "sonnet", "input": "Hi", "stream": stream},
                           media_type="application/json").call(app=APP)
    create.Case(body={"model": "sonnet", "input": "Hi", "stream": stream},
                media_type="application/json").validate_response(response)
    if stream:
        last = check_responses_stream(response.content).assert_ok().events[-1]
        response_id = last["response"]["id"]
    else:
        response_id = json.loads(response.content)["id"]
    for (path, method, query), status in zip((
            ("/v1/responses/{response_id}", "GET", None),
            ("/v1/responses/{response_id}/input_items", "GET", {"limit": 1, "order": "asc"}),
            ("/v1/responses/{response_id}", "DELETE", None),
            ("/v1/responses/{response_id}", "GET", None)), (200, 200, 200, 404)):
        case = DOCUMENT[path][method].Case(path_parameters={"response_id": response_id},
                                           query=query)
        answer = case.call(app=APP)
        case.validate_response(answer)
        assert answer.status_code == status, (method, path, answer.content)


def _failures(body: dict) -> set[str]:
    from schemathesis.core.failures import FailureGroup
    try:
        DOCUMENT["/v1/responses"]["POST"].Case(
            body=body, media_type="application/json").call_and_validate(app=APP)
    except FailureGroup as group:
        return {f"{getattr(f, 'title', '')} {f}" for f in group.exceptions}
    return set()


STREAM = {"model": "sonnet", "input": "Hi", "stream": True}


def test_the_checks_pass_the_real_writer():
    assert _failures(STREAM) == set()


def test_the_stream_rules_catch_a_missing_in_progress(monkeypatch):
    from proxy.responses.output import ResponseWriter
    real = ResponseWriter.begin
    monkeypatch.setattr(ResponseWriter, "begin", lambda self: real(self)[:1])
    assert any("responses_stream_rules" in f and "in_progress" in f for f in _failures(STREAM))


def test_the_official_schemas_catch_an_event_outside_the_spec(monkeypatch):
    from proxy.responses.output import ResponseWriter
    real = ResponseWriter.begin
    monkeypatch.setattr(ResponseWriter, "begin", lambda self: [
        *real(self), self._event("codex.rate_limits", limits={})])
    failures = _failures(STREAM)
    assert any("official" in f and "codex.rate_limits" in f for f in failures), failures
