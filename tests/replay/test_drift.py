"""The drift check: re-record the whole catalogue with the installed CLI against the stand-in
and compare with fixtures/. A change in what the CLI prints fails here with a readable diff;
after review, `claude-max-api record --upstream stand-in --overwrite` accepts it (see
fixtures/README.md). Runs every entry (about 35 s with 2 CLI runs at a time).

Entries marked `"stable": false` in the catalogue (where a race inside the CLI changes its
lines from run to run) are compared by the proxy's answer to them instead of line by line."""

from __future__ import annotations

import difflib

import openai
import pytest
from openai import OpenAI

from proxy.cassettes.cassette import Cassette
from proxy.cassettes.persister import CassetteDirectory
from proxy.cassettes.serializer import comparable
from proxy.commands.record import record_catalogue
from proxy.runners.replay import ReplayRunner
from proxy.settings import Settings
from tests.conftest import CLI_VERSION, pinned_cli_version
from tests.replay.conftest import CASSETTES
from tests.support.servers import running_proxy


def _answer(cassette: Cassette, request: dict) -> tuple:
    """What the proxy answers from this cassette: (content, finish_reason) or (status, code)."""
    with running_proxy(Settings(), ReplayRunner([cassette])) as proxy, \
            OpenAI(base_url=proxy.base_url, api_key="x", max_retries=0) as sdk:
        try:
            answer = sdk.chat.completions.create(**request)
        except openai.APIStatusError as exc:
            return exc.status_code, exc.code
        return answer.choices[0].message.content, answer.choices[0].finish_reason


@pytest.mark.live
@pytest.mark.slow
def test_the_cli_still_prints_what_the_fixtures_recorded(catalogue, tmp_path):
    pinned = pinned_cli_version()
    if CLI_VERSION != pinned:
        pytest.skip(f"the installed CLI is {CLI_VERSION}, the fixtures are from the pinned "
                    f"{pinned}; the drift check compares like with like")
    results = record_catalogue(catalogue, tmp_path, upstream="stand-in", jobs=2)
    failed = [f"{r.name}: {r.detail}" for r in results if r.status != "recorded"]
    assert failed == []

    fixtures = CassetteDirectory(CASSETTES)
    diffs = []
    for result in results:
        entry = catalogue.entries[result.name]
        assert [c.name for c in result.cassettes] == entry.cassette_names
        for (name, request), cassette in zip(entry.requests, result.cassettes):
            recorded = fixtures.load(name)
            if not entry.stable:
                before, now = _answer(recorded, request), _answer(cassette, request)
                if before != now:
                    diffs.append(f"{name} (compared by answer): recorded {before!r}, "
                                 f"now {now!r}")
                continue
            before_lines = comparable(recorded).splitlines()
            now_lines = comparable(cassette).splitlines()
            if before_lines != now_lines:
                diffs.append("\n".join(difflib.unified_diff(
                    before_lines, now_lines, f"fixtures/cassettes/{name}.json",
                    "re-recorded", lineterm="", n=1)))
    assert not diffs, (
        f"{len(diffs)} cassette(s) differ from what CLI {CLI_VERSION} prints now. If the change "
        "is expected, re-record: claude-max-api record --upstream stand-in --overwrite\n\n"
        + "\n\n".join(d[:4000] for d in diffs))
