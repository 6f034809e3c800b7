"""The Responses cassettes (fixtures/responses/): one per catalogue entry, recorded through the
proxy's own request path (a Responses body translated as POST /v1/responses translates it),
still what the proxy would run, unambiguous among every cassette `serve --replay fixtures/`
loads, and replayed through the real server to the answers the catalogue describes."""

from __future__ import annotations

import json

import pytest
from pydantic import BaseModel

from proxy.cassettes.catalogue import load
from proxy.cassettes.matcher import STRICT_MATCH_ON, Matcher
from proxy.cassettes.persister import CassetteDirectory
from proxy.chat.models import ModelCatalogue
from proxy.claude.run import Limits
from proxy.commands.record import prepared as entry_chat_request
from proxy.concurrency import ConcurrencyLimiter
from proxy.contract.validation import RequestValidator
from proxy.runners.replay import ReplayRunner
from proxy.backend import ChatService
from proxy.settings import Settings
from tests.conftest import pinned_cli_version
from tests.support.runners import REPO
from tests.support.servers import running_proxy

FIXTURES = REPO / "fixtures"
CATALOGUE = load(FIXTURES / "responses" / "catalogue.json")
CASSETTES = {c.name: c for c in CassetteDirectory(FIXTURES / "responses" / "cassettes").load_all()}
SERVICE = ChatService(ModelCatalogue(), runner=None, limiter=ConcurrencyLimiter(1, 0, 1),
                      limits=Limits())


def invocation(name: str):
    return entry_chat_request(CATALOGUE.entries[name], SERVICE, RequestValidator()).invocation()


def test_every_entry_has_its_cassette_recorded_with_the_pinned_cli():
    assert set(CASSETTES) == set(CATALOGUE.entries) and len(CASSETTES) >= 7
    assert all(e.endpoint == "responses" for e in CATALOGUE.entries.values())
    for cassette in CASSETTES.values():
        assert cassette.cli_version == pinned_cli_version()
        assert cassette.recording.upstream == "stand-in"
        assert cassette.recording.description == CATALOGUE.entries[cassette.name].description


def test_the_proxy_still_invokes_the_cli_exactly_as_recorded():
    """If this fails, re-record: claude-max-api record --upstream stand-in --catalogue
    fixtures/responses/catalogue.json --output fixtures/responses/cassettes --overwrite"""
    strict = Matcher(STRICT_MATCH_ON)
    stale = [f"{name}: {', '.join(failures)}" for name in CATALOGUE.entries
             if (failures := strict.failures(invocation(name), CASSETTES[name].invocation))]
    assert stale == []


def test_each_request_finds_exactly_its_own_cassette_among_all_of_fixtures():
    everything = CassetteDirectory(FIXTURES).load_all()
    matcher = Matcher()
    for name in CATALOGUE.entries:
        found = [c.name for c in everything if matcher.matches(invocation(name), c.invocation)]
        assert found == [f"responses/cassettes/{name}"]


@pytest.fixture(scope="module")
def replay():
    with running_proxy(Settings(), ReplayRunner.from_directory(FIXTURES)) as proxy:
        import openai
        proxy.client = openai.OpenAI(base_url=proxy.base_url, api_key="x", max_retries=0)
        yield proxy


def request(name: str) -> dict:
    return dict(CATALOGUE.entries[name].request)


@pytest.mark.parametrize("stream", [False, True], ids=["whole", "stream"])
def test_replayed_answers(replay, stream):
    client = replay.client

    def respond(name, **extra):
        body = {**request(name), **extra}
        if not stream:
            return client.responses.create(**body)
        with client.responses.stream(**body) as events:
            last = list(events)[-1]
            if last.type != "response.completed":  # the SDK's final response is a completed one
                return last.response
            return events.get_final_response()

    plain = respond("responses_plain")
    assert (plain.output_text, plain.usage.input_tokens, plain.usage.output_tokens) == \
        ("Eight.", 34, 3)
    assert respond("responses_message_items").output_text == "First: pears.\nSecond: plums."
    called = respond("responses_function_call")
    assert [o.type for o in called.output] == ["message", "function_call"]
    assert (called.output[1].name, json.loads(called.output[1].arguments)) == \
        ("get_weather", {"city": "Lyon"})
    assert respond("responses_function_call_output").output_text == "In Lyon: cloudy, 14 C."
    namespaced = respond("responses_namespace_hosted")
    (call,) = namespaced.output
    assert (call.namespace, call.name, json.loads(call.arguments)) == \
        ("multi_agent_v1", "spawn_agent", {"message": "Run the tests."})
    assert [t.type for t in namespaced.tools] == ["namespace"]   # web_search: not offered

    class Person(BaseModel):
        name: str
        age: int

    structured = respond("responses_structured_output")
    assert Person.model_validate_json(structured.output_text) == Person(name="Ada", age=36)
    incomplete = respond("responses_max_output_tokens")
    assert (incomplete.status, incomplete.incomplete_details.reason) == \
        ("incomplete", "max_output_tokens")

    summarized = respond("responses_reasoning_summary")
    reasoning, message = summarized.output
    assert reasoning.summary[0].text == "12 * 12: 10 * 12 + 2 * 12 = 120 + 24 = 144."
    assert reasoning.encrypted_content is None and summarized.output_text == "144."
    assert summarized.usage.output_tokens_details.reasoning_tokens == 14
    sealed = respond("responses_reasoning_sealed_call")
    assert [o.type for o in sealed.output] == ["reasoning", "function_call"]
    assert sealed.output[0].summary[0].text == "The user wants Oslo's weather: call get_weather."
    assert sealed.output[0].encrypted_content.startswith("cmaR1.")  # sealed by this server
    given_back = respond("responses_reasoning_given_back")   # its item: ignored, never a 500
    assert given_back.output_text == "In Oslo: snow, -3 C."
    assert given_back.output[0].summary[0].text == "Now answer with the result."
