"""Property: any request the contract's request schema allows gets a 200 or a documented 4xx
from the real app, never a 5xx, and every answer is what the official spec allows.

Bodies come from hypothesis-jsonschema over the document's `CreateChatCompletionRequest`
(its components inlined as `$defs`), with the model pinned to a served one. The app replays
one recorded answer for any invocation (a wildcard replay runner), so the 200 path is reached
whenever the proxy accepts the request; a refusal must be a documented status with a code
from the proxy's documented limits (tests/schema_fuzz/hooks.py POLICY_CODES).
"""

from __future__ import annotations

import json

import falcon.testing
import pytest
from hypothesis import event, given
from hypothesis_jsonschema import from_schema

from proxy.app import create_app
from proxy.contract.document import load_document
from proxy.settings import Settings
from tests.properties.budget import budget
from tests.schema_fuzz.hooks import POLICY_CODES
from tests.support.fidelity import official_problems
from tests.support.runners import wildcard_replay

PATH = "/v1/chat/completions"
MODEL = "claude-sonnet-4"
EXAMPLES = budget(40)


def request_schema() -> dict:
    doc = load_document()
    defs = json.loads(json.dumps(doc["components"]["schemas"])
                      .replace("#/components/schemas/", "#/$defs/"))
    return {"$ref": "#/$defs/CreateChatCompletionRequest", "$defs": defs}


def documented_statuses() -> set[int]:
    responses = load_document()["paths"][PATH]["post"]["responses"]
    return {int(status) for status in responses}


DOCUMENTED = documented_statuses()


@pytest.fixture(scope="module")
def served():
    runner = wildcard_replay("plain_question")
    app = create_app(Settings(), runner)
    yield runner, falcon.testing.TestClient(app, headers={"Host": "127.0.0.1"})
    runner.close()


@EXAMPLES
@given(from_schema(request_schema()).map(lambda body: {**body, "model": MODEL}))
def test_any_valid_request_gets_200_or_a_documented_refusal(served, body):
    runner, client = served
    started = len(runner.invocations)
    result = client.simulate_post(PATH, json=body)
    status = result.status_code
    event(f"{status} {result.json['error']['code'] if status >= 400 else ''}".strip()
          if result.headers.get("content-type", "").startswith("application/json")
          else f"{status} stream")
    assert status < 500, result.text[:500]
    assert status in DOCUMENTED, status
    if status >= 400:
        assert status == 400 and result.json["error"]["code"] in POLICY_CODES, result.json
    problems = official_problems("POST", PATH, status, result.headers.get("content-type", ""),
                                 result.content, request_body=body)
    assert problems == [], problems
    # What the CLI was asked to do: one run, the served model, something to answer and no
    # blank text block (the API refuses those), a sane limit.
    invocations = runner.invocations[started:]
    assert len(invocations) == (1 if status == 200 else 0)
    for invocation in invocations:
        assert invocation.model == "sonnet"
        assert invocation.blocks or invocation.images
        assert all(block.strip() for block in invocation.blocks), invocation.blocks
        assert invocation.max_output_tokens is None or invocation.max_output_tokens >= 1
