"""fixtures/ is clean, complete and in step with the catalogue and with the proxy itself."""

from __future__ import annotations

import getpass
import os
import socket
from pathlib import Path

import pytest

from proxy.cassettes import serializer
from proxy.cassettes.matcher import STRICT_MATCH_ON, Matcher
from proxy.cassettes.persister import CassetteDirectory
from proxy.cassettes.redaction import scan
from proxy.chat.models import ModelCatalogue
from proxy.claude.run import Limits
from proxy.concurrency import ConcurrencyLimiter
from proxy.runners.recording import InvocationWithArgs
from proxy.backend import ChatService
from tests.conftest import pinned_cli_version
from tests.replay.conftest import CASSETTES, FIXTURES, REPO


def _machine_literals() -> dict[str, str]:
    """Things of this machine that must never appear in fixtures, when specific enough."""
    found = {}
    home = os.path.expanduser("~")
    if home.count("/") >= 2:  # "/root" alone is caught by the path pattern
        found["this machine's HOME"] = home
    host = socket.gethostname()
    if len(host) >= 6 and host not in ("localhost", "ubuntu", "debian"):
        found["this machine's host name"] = host
    user = getpass.getuser()
    if len(user) >= 5 and user not in ("runner", "build", "ubuntu"):
        found["this machine's user name"] = f"/{user}/"
    found["this repository's path"] = str(REPO)
    return found


def _fixture_files() -> list[Path]:
    return sorted(p for p in FIXTURES.rglob("*") if p.is_file())


def test_no_file_in_fixtures_carries_a_secret_or_a_trace_of_the_recording_machine():
    files = _fixture_files()
    assert len(files) > 30
    literals = _machine_literals()
    problems = []
    for file in files:
        text = file.read_text(encoding="utf-8", errors="replace")
        problems += [f"{file.relative_to(REPO)}: {leak}" for leak in scan(text, literals)]
    assert problems == [], "\n".join(problems[:50])


@pytest.fixture(scope="module")
def cassettes():
    return {c.name: c for c in CassetteDirectory(CASSETTES).load_all()}


def test_every_catalogue_entry_has_its_cassette_and_nothing_else_is_there(catalogue, cassettes):
    assert len(catalogue.entries) >= 30
    names = [n for entry in catalogue.entries.values() for n in entry.cassette_names]
    assert sorted(cassettes) == sorted(names)


def test_conversation_turns_ran_as_the_catalogue_says(catalogue, cassettes):
    """The recorder checks it when recording; this keeps hand edits honest too."""
    from proxy.commands.record import run_process
    conversations = [e for e in catalogue.entries.values() if e.turns]
    assert {t.process for e in conversations for t in e.turns} == {"new", "continued",
                                                                    "resumed"}
    for entry in conversations:
        ran = [run_process(cassettes[n]) for n in entry.cassette_names]
        assert ran == [t.process for t in entry.turns], entry.name


def test_cassettes_were_recorded_with_the_pinned_cli_or_a_committed_fake(cassettes):
    pinned = pinned_cli_version()
    for cassette in cassettes.values():
        if cassette.recording.cli == "claude":
            assert cassette.cli_version == pinned, (cassette.name, cassette.cli_version)
            assert cassette.recording.upstream in ("stand-in", "closed-port")
        else:  # a fake CLI: named by its path in fixtures/, never passed off as the real one
            assert cassette.cli_version is None
            assert (FIXTURES / cassette.recording.cli).is_file(), cassette.name


def test_cassettes_record_what_the_catalogue_says(catalogue, cassettes):
    for entry in catalogue.entries.values():
        for name in entry.cassette_names:
            recording = cassettes[name].recording
            assert recording.description == entry.description, name
            assert recording.scenario == entry.scenario, name
            assert recording.extra_args == entry.extra_args, name
            assert dict(recording.env).items() >= entry.env.items(), name
            assert recording.credentials == entry.credentials, name
            assert (recording.interrupt is not None) == (entry.interrupt is not None), name


def _invocation(request):
    service = ChatService(ModelCatalogue(), runner=None, limiter=ConcurrencyLimiter(1, 0, 1),
                          limits=Limits())
    return service.prepare(request).invocation()


def test_the_proxy_still_invokes_the_cli_exactly_as_recorded(catalogue, cassettes):
    """If this fails, the proxy changed how it builds argv or stdin: re-record the fixtures
    (fixtures/README.md) so replays stay faithful to what the CLI would do now."""
    strict = Matcher(STRICT_MATCH_ON)
    stale = []
    for entry in catalogue.entries.values():
        for name, request in entry.requests:
            invocation = _invocation(request)
            if entry.extra_args:
                invocation = InvocationWithArgs.of(invocation, entry.extra_args)
            failures = strict.failures(invocation, cassettes[name].invocation)
            if failures:
                stale.append(f"{name}: {', '.join(failures)}")
    assert stale == []


def test_every_request_of_the_catalogue_finds_exactly_its_own_cassette(catalogue, cassettes):
    """`serve --replay fixtures/` is unambiguous: each recorded request answers one way."""
    matcher = Matcher()
    for entry in catalogue.entries.values():
        for name, request in entry.requests:
            invocation = _invocation(request)
            found = [c.name for c in cassettes.values()
                     if matcher.matches(invocation, c.invocation)]
            assert found == [name]


def test_cassette_files_are_small_enough_to_review():
    for file in CASSETTES.rglob("*.json"):
        assert file.stat().st_size < 256 * 1024, file.name
    assert sum(f.stat().st_size for f in CASSETTES.rglob("*.json")) < 2 * 1024 * 1024


def test_the_fake_cli_is_executable_and_every_cassette_is_readable_by_the_serializer():
    fake = FIXTURES / "fake-cli" / "claude-garbage"
    assert os.access(fake, os.X_OK)
    for file in CASSETTES.rglob("*.json"):
        serializer.loads(file.read_text(encoding="utf-8"), file.stem)
