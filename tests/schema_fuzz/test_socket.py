"""schemathesis over a socket against the real waitress server in replay mode.

The server replays fixtures/ (the recorded catalogue); a generated request that matches no
recording is answered from one recorded cassette instead of 503 fixture_not_found, so valid
requests reach the 200 path (tests/support/runners.py `replay_or`). Every phase, every check,
positive and negative data, as in the in-process run; then every recorded answer of the
catalogue, streamed and not, goes through the same checks. What the chat operation's fuzzing
reached is counted and held to floors (statistics.py).
"""

from __future__ import annotations

import pytest
import requests
import schemathesis
from schemathesis.checks import not_a_server_error

from proxy.cassettes.catalogue import load
from proxy.chat.models import ModelCatalogue
from proxy.contract.document import load_document
from proxy.settings import Settings
from tests.schema_fuzz import hooks  # noqa: F401  (registers the hook and custom checks)
from tests.schema_fuzz.budget import chat_fuzzing_examples, config
from tests.support.runners import REPO, ScriptedTools, replay_or, wildcard_replay
from tests.support.servers import running_proxy

STATISTICS = "schemathesis over a socket"
CHAT_FUZZING_EXAMPLES = chat_fuzzing_examples(5)
schema = schemathesis.openapi.from_dict(load_document(), config=config(chat_factor=5))
CHAT = schema["/v1/chat/completions"]["POST"]
RETRIEVE = schema["/v1/models/{model}"]["GET"]
CATALOGUE = load(REPO / "fixtures" / "catalogue.json")


def _serving():
    # What no recording answers goes to a scripted model (tools and formats) or one cassette.
    runner = replay_or(ScriptedTools(wildcard_replay()))
    with running_proxy(Settings(), runner) as proxy, requests.Session() as session:
        yield proxy, session


server = pytest.fixture(scope="module")(_serving)
# The fuzzing gets a server of its own: the recorded answers include the plan's limits
# reached, after which /health/ready rightly answers 503 not_ready (the plan is "rejected"),
# which `not_a_server_error` would count against the fuzzing of that operation.
fuzz_server = pytest.fixture(scope="module")(_serving)


@pytest.mark.parametrize("mode", ["whole", "stream", "stream_usage"])
@pytest.mark.parametrize("name", sorted(CATALOGUE.entries))
def test_recorded_answers_conform(name, mode, server):
    """Recorded failures are 5xx on purpose (a 502 for a crashed CLI is the right answer), so
    `not_a_server_error` is the one check left out; the status must still be documented."""
    proxy, session = server
    body = dict(CATALOGUE.entries[name].request)
    if mode != "whole":
        body.update(stream=True, stream_options={"include_usage": mode == "stream_usage"})
    case = CHAT.Case(body=body, media_type="application/json")
    fell_back = proxy.parts.runner.fell_back
    case.call_and_validate(base_url=proxy.url, session=session,
                           excluded_checks=[not_a_server_error])
    assert proxy.parts.runner.fell_back == fell_back, "the recording was not replayed"


@pytest.mark.parametrize("model", [m.id for m in ModelCatalogue()])
def test_every_served_model_can_be_retrieved(model, server):
    """Generated model names are (almost) never served ones: the 200 path, explicitly."""
    proxy, session = server
    response = RETRIEVE.Case(path_parameters={"model": model}).call_and_validate(
        base_url=proxy.url, session=session)
    assert response.status_code == 200 and response.json()["id"] == model


# Last in the module, so that the fuzzing floor (checked when the module ends) is reported
# on the fuzz test itself.
@schema.parametrize()
def test_server_conforms(case, fuzz_server, fuzz_statistics):
    proxy, session = fuzz_server
    response = case.call_and_validate(base_url=proxy.url, session=session)
    fuzz_statistics.record(case, response)
