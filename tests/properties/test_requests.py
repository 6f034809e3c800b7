"""Properties of generated requests against the real app.

1. Any request the contract's request schema allows gets a 200 or a documented 4xx, never a
   5xx, and every answer is what the official spec allows. Drawn from the document alone,
   most of these carry something the proxy refuses on purpose (about 12 of 40 draws reach a
   completion), so refusals are explored here.
2. The success path has its own budget: any valid request made servable (the README's "What
   is supported", tests/schema_fuzz/steering.py), streamed with or without the usage chunk,
   not streamed, or as generated, is answered 200, with a conforming completion or stream,
   and runs the CLI once.

Bodies come from hypothesis-jsonschema over the document's `CreateChatCompletionRequest` (its
components inlined as `$defs`), with the model pinned to a served one. The app replays one
recorded answer for any invocation (a wildcard replay runner), so the 200 path is reached
whenever the proxy accepts the request; a refusal must be a documented status with a code from
the proxy's documented limits (tests/schema_fuzz/hooks.py POLICY_CODES). How many draws reached
a completion is handed to the run report (tests/support/tiers.py).
"""

from __future__ import annotations

import json
from collections import Counter

import falcon.testing
import pytest
from hypothesis import event, given
from hypothesis_jsonschema import from_schema
from jsonschema import Draft202012Validator

from proxy.app import create_app
from proxy.contract.document import load_document
from proxy.settings import Settings
from tests.properties.budget import budget
from tests.schema_fuzz.hooks import POLICY_CODES
from tests.schema_fuzz.steering import STREAMING, Steer, steered
from tests.support.fidelity import official_problems
from tests.support.runners import wildcard_replay
from tests.support.stream_rules import check_stream, include_usage_of

PATH = "/v1/chat/completions"
MODEL = "claude-sonnet-4"
EXAMPLES = budget(40)
SERVABLE_EXAMPLES = budget(8)   # for each way of streaming: 40 draws


def request_schema() -> dict:
    doc = load_document()
    defs = json.loads(json.dumps(doc["components"]["schemas"])
                      .replace("#/components/schemas/", "#/$defs/"))
    return {"$ref": "#/$defs/CreateChatCompletionRequest", "$defs": defs}


def documented_statuses() -> set[int]:
    responses = load_document()["paths"][PATH]["post"]["responses"]
    return {int(status) for status in responses}


DOCUMENTED = documented_statuses()
REQUESTS = from_schema(request_schema()).map(lambda body: {**body, "model": MODEL})
VALID = Draft202012Validator(request_schema())


@pytest.fixture(scope="module")
def served():
    runner = wildcard_replay("plain_question")
    app = create_app(Settings(), runner)
    yield runner, falcon.testing.TestClient(app, headers={"Host": "127.0.0.1"})
    runner.close()


@pytest.fixture(scope="module")
def tally(run_statistics):
    """name -> Counter of draws, completions and streams; handed to the run report."""
    counts: dict[str, Counter] = {}
    yield lambda name: counts.setdefault(name, Counter())
    for name, counter in counts.items():
        run_statistics.add_statistics(name, {"draws": counter["draws"],
                                             "completions": counter["completions"],
                                             "streams checked": counter["streams"]})


def _post(served, body):
    runner, client = served
    started = len(runner.invocations)
    result = client.simulate_post(PATH, json=body)
    return result, runner.invocations[started:]


def _check_invocations(invocations) -> None:
    """What the CLI was asked to do: the served model, something to answer and no blank text
    block (the API refuses those), a sane limit."""
    for invocation in invocations:
        assert invocation.model == "sonnet"
        assert invocation.blocks or invocation.images
        assert all(block.strip() for block in invocation.blocks), invocation.blocks
        assert invocation.max_output_tokens is None or invocation.max_output_tokens >= 1


@EXAMPLES
@given(REQUESTS)
def test_any_valid_request_gets_200_or_a_documented_refusal(served, tally, body):
    counts = tally("request property")
    result, invocations = _post(served, body)
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
    assert len(invocations) == (1 if status == 200 else 0)
    _check_invocations(invocations)
    counts["draws"] += 1
    counts["completions"] += status == 200
    counts["streams"] += status == 200 and bool(body.get("stream"))


@pytest.mark.parametrize("streaming", STREAMING)
@SERVABLE_EXAMPLES
@given(REQUESTS)
def test_any_servable_request_is_served(served, tally, streaming, body):
    counts = tally("servable request property")
    body = steered(body, Steer(servable=True, streaming=streaming))
    assert [e.message[:200] for e in VALID.iter_errors(body)] == [], "steering broke the body"
    result, invocations = _post(served, body)
    assert result.status_code == 200, result.text[:500]
    media = result.headers.get("content-type", "")
    if body.get("stream"):
        assert media.startswith("text/event-stream"), media
        report = check_stream(result.content, include_usage=include_usage_of(body)).assert_ok()
        assert report.text and report.finish_reason == "stop"
        counts["streams"] += 1
    else:
        assert media.startswith("application/json"), media
        assert result.json["choices"][0]["message"]["content"]
    problems = official_problems("POST", PATH, 200, media, result.content, request_body=body)
    assert problems == [], problems
    assert len(invocations) == 1
    _check_invocations(invocations)
    counts["draws"] += 1
    counts["completions"] += 1
