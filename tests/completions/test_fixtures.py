"""fixtures/completions/: recorded CLI runs of legacy completions requests, made by the
project's recorder through the proxy's own request path (`ChatService.prepare_completion`, then
`ChatService.prepare`), replayed through the real server and read with the official SDK, as
`claude-max-api serve --replay fixtures/` serves them."""

from __future__ import annotations

import openai
import pytest

from proxy.cassettes.catalogue import load
from proxy.cassettes.matcher import STRICT_MATCH_ON, Matcher
from proxy.cassettes.persister import CassetteDirectory
from proxy.chat.models import ModelCatalogue
from proxy.claude.run import Limits
from proxy.commands.record import prepared
from proxy.concurrency import ConcurrencyLimiter
from proxy.runners.replay import ReplayRunner
from proxy.backend import ChatService
from proxy.settings import Settings
from tests.conftest import pinned_cli_version
from tests.support.runners import REPO
from tests.support.servers import running_proxy

FIXTURES = REPO / "fixtures"
HERE = FIXTURES / "completions"
CATALOGUE = load(HERE / "catalogue.json")
MAIN = load(FIXTURES / "catalogue.json")

# What each entry answers, from its scenario (not from the cassettes): text, finish, usage.
EXPECTED = {
    "completion_plain": ("This is a test.", "stop", (14, 6)),
    "completion_length": ("The lighthouse keeper climbed the stairs", "length", (16, 8)),
    "completion_list_first": ("Blue.", "stop", (11, 3)),
    "completion_list_second": ("Apple.", "stop", (11, 3)),
}


def _invocation(entry, request=None):
    service = ChatService(ModelCatalogue(), runner=None, limiter=ConcurrencyLimiter(1, 0, 1),
                          limits=Limits())
    return prepared(entry, service, request=request).invocation()


@pytest.fixture(scope="module")
def cassettes():
    return {c.name: c for c in CassetteDirectory(HERE / "cassettes").load_all()}


@pytest.fixture(scope="module")
def client():
    """Replay over all of fixtures/, as `serve --replay fixtures/` does."""
    with running_proxy(Settings(), ReplayRunner.from_directory(FIXTURES)) as proxy:
        yield openai.OpenAI(base_url=proxy.base_url, api_key="unused", max_retries=0)


def test_every_entry_has_its_cassette_recorded_with_the_pinned_cli(cassettes):
    assert set(cassettes) == set(CATALOGUE.entries) == set(EXPECTED) | {"completion_overloaded"}
    for name, cassette in cassettes.items():
        assert CATALOGUE.entries[name].endpoint == "completions"
        assert cassette.cli_version == pinned_cli_version(), name
        assert cassette.recording.description == CATALOGUE.entries[name].description


def test_the_proxy_still_invokes_the_cli_exactly_as_recorded(cassettes):
    strict = Matcher(STRICT_MATCH_ON)
    stale = [f"{name}: {strict.failures(_invocation(entry), cassettes[name].invocation)}"
             for name, entry in CATALOGUE.entries.items()
             if strict.failures(_invocation(entry), cassettes[name].invocation)]
    assert stale == [], "re-record: claude-max-api record --upstream stand-in " \
                        "--catalogue fixtures/completions/catalogue.json --overwrite"


def test_serving_all_of_fixtures_every_request_finds_exactly_its_own_cassette():
    everything = CassetteDirectory(FIXTURES).load_all()
    matcher = Matcher()
    for catalogue in (CATALOGUE, MAIN):
        for name, entry in catalogue.entries.items():
            for cassette, request in entry.requests:  # each turn of a conversation its own
                found = [c.name.split("cassettes/", 1)[-1] for c in everything
                         if matcher.matches(_invocation(entry, request), c.invocation)]
                assert found == [cassette], cassette


@pytest.mark.parametrize("name", sorted(EXPECTED))
@pytest.mark.parametrize("stream", [False, True], ids=["whole", "stream"])
def test_each_recorded_answer(client, name, stream):
    request = CATALOGUE.entries[name].request
    text, finish, (prompt_tokens, completion_tokens) = EXPECTED[name]
    if stream:
        chunks = list(client.completions.create(**request, stream=True,
                                                stream_options={"include_usage": True}))
        got = "".join(c.choices[0].text for c in chunks if c.choices)
        reasons = [c.choices[0].finish_reason for c in chunks
                   if c.choices and c.choices[0].finish_reason]
        usage = chunks[-1].usage
    else:
        result = client.completions.create(**request)
        got, reasons, usage = result.choices[0].text, [result.choices[0].finish_reason], \
            result.usage
    assert (got, reasons) == (text, [finish])
    assert (usage.prompt_tokens, usage.completion_tokens) == (prompt_tokens, completion_tokens)


def test_a_list_of_prompts_replays_one_recording_each(client):
    prompts = [CATALOGUE.entries[n].request["prompt"]
               for n in ("completion_list_first", "completion_list_second")]
    result = client.completions.create(model="sonnet", prompt=prompts, echo=True)
    assert [(c.index, c.text) for c in result.choices] == [
        (0, "Name a colour.Blue."), (1, "Name a fruit.Apple.")]
    assert result.usage.total_tokens == 28
    chunks = list(client.completions.create(model="sonnet", prompt=prompts, stream=True))
    assert [(c.choices[0].index, c.choices[0].finish_reason) for c in chunks
            if c.choices[0].finish_reason] == [(0, "stop"), (1, "stop")]


def test_stop_and_echo_are_applied_to_the_recording(client):
    result = client.completions.create(model="sonnet", prompt="Say this is a test.",
                                       stop=[" a "], echo=True)
    assert result.choices[0].text == "Say this is a test.This is"


@pytest.mark.parametrize("stream", [False, True], ids=["whole", "stream"])
def test_the_recorded_overload_is_a_503_before_any_chunk(client, stream):
    request = CATALOGUE.entries["completion_overloaded"].request
    with pytest.raises(openai.InternalServerError) as caught:
        result = client.completions.create(**request, stream=stream)
        if stream:
            list(result)
    assert caught.value.status_code == 503
    assert caught.value.body["code"] == "upstream_overloaded"


@pytest.mark.live
@pytest.mark.slow
def test_the_cli_still_prints_what_the_completions_fixtures_recorded(tmp_path):
    """The drift check (tests/replay/test_drift.py) for fixtures/completions/."""
    import difflib

    from proxy.cassettes.serializer import comparable
    from proxy.commands.record import record_catalogue
    from tests.conftest import CLI_VERSION

    if CLI_VERSION != pinned_cli_version():
        pytest.skip(f"the installed CLI is {CLI_VERSION}, the fixtures are from the pinned "
                    f"{pinned_cli_version()}")
    results = record_catalogue(CATALOGUE, tmp_path, upstream="stand-in", jobs=2)
    assert [f"{r.name}: {r.detail}" for r in results if r.status != "recorded"] == []
    fixtures = CassetteDirectory(HERE / "cassettes")
    diffs = []
    for result in results:
        before = comparable(fixtures.load(result.name)).splitlines()
        now = comparable(result.cassette).splitlines()
        if before != now:
            diffs.append("\n".join(difflib.unified_diff(before, now, result.name, "now",
                                                        lineterm="", n=1)))
    assert not diffs, "re-record: claude-max-api record --upstream stand-in --catalogue " \
                      "fixtures/completions/catalogue.json --overwrite\n\n" + "\n\n".join(diffs)
