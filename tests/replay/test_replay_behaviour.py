"""Replay mode as a client sees it: misses, matching, recorded timing, disconnects, load."""

from __future__ import annotations

import logging
import time
from concurrent.futures import ThreadPoolExecutor

import httpx
import openai
import pytest
from openai import OpenAI

from proxy.cli import main
from proxy.runners.replay import SIGTERM_EXIT, ReplayRunner
from proxy.settings import Settings
from tests.replay.conftest import CASSETTES
from tests.support.servers import running_proxy


def _plain(catalogue, **changes) -> dict:
    return {**catalogue.entries["plain_question"].request, **changes}


def test_a_request_without_recording_is_a_503_naming_the_closest_and_the_first_difference(
        catalogue, client, caplog):
    caplog.set_level(logging.WARNING, logger="claude_max_api.replay")
    request = _plain(catalogue, model="claude-haiku-4")  # the recorded one asked for sonnet
    with pytest.raises(openai.APIStatusError) as caught:
        client.chat.completions.create(**request)
    assert caught.value.status_code == 503
    assert caught.value.code == "fixture_not_found"
    assert caught.value.type == "server_error"
    # The same prompt under another model is the closest recording; message and log say why.
    words = 'plain_question: model differs: "haiku" here, "sonnet" in the cassette'
    assert f"Closest: {words};" in caught.value.message
    logged = " ".join(r.getMessage() for r in caplog.records)
    assert f"closest: {words} (at /model)" in logged


def test_a_miss_in_a_conversation_names_the_turn_that_differs(catalogue, client):
    """The third turn of conversation_edited as a client that did not edit would send it: the
    recorded one resumed the edited history, so it is not an answer to this one."""
    edited = catalogue.entries["conversation_edited"]
    unedited = [*edited.turns[1].request["messages"],
                {"role": "assistant", "content": "Noted: Add one to it."},
                {"role": "user", "content": "What is the result?"}]
    with pytest.raises(openai.APIStatusError) as caught:
        client.chat.completions.create(model="claude-sonnet-4", messages=unedited)
    assert caught.value.code == "fixture_not_found"
    assert ('Closest: conversation_edited/turn-3: history[1].content[0].text (an assistant '
            'turn) differs: "Noted: Remember the number 41." here, "Noted: 41." in the '
            'cassette') in caught.value.message


@pytest.mark.parametrize("changes", [
    {"max_tokens": 50},
    {"messages": [{"role": "system", "content": "Be brief."},
                  {"role": "user", "content": "What is 2 + 2?"}]},
    {"messages": [{"role": "user", "content": "What is 2 + 3?"}]},
], ids=["max_tokens", "system_prompt", "prompt"])
def test_each_default_matcher_field_tells_requests_apart(catalogue, client, changes):
    with pytest.raises(openai.APIStatusError) as caught:
        client.chat.completions.create(**_plain(catalogue, **changes))
    assert (caught.value.status_code, caught.value.code) == (503, "fixture_not_found")


def test_match_on_is_configurable(catalogue):
    """Like vcrpy's match_on: matching on the prompt alone answers for any model."""
    runner = ReplayRunner.from_directory(CASSETTES, match_on=("blocks",))
    with running_proxy(Settings(), runner) as proxy, \
            OpenAI(base_url=proxy.base_url, api_key="x", max_retries=0) as sdk:
        answer = sdk.chat.completions.create(**_plain(catalogue, model="claude-haiku-4"))
    assert answer.choices[0].message.content == "2 + 2 = 4."
    assert answer.model == "claude-haiku-4"
    assert list(runner.started) == ["plain_question"]


def test_recorded_timing_paces_the_stream_like_the_recording(catalogue):
    cassette = next(c for c in ReplayRunner.from_directory(CASSETTES).cassettes
                    if c.name == "slow_stream")
    deltas = [t for line, t in zip(cassette.stdout, cassette.offsets) if '"text_delta"' in line]
    recorded_span = deltas[-1] - deltas[0]
    assert recorded_span > 1.0  # the stand-in paced it at 100 ms an event

    runner = ReplayRunner.from_directory(CASSETTES, timing="recorded")
    with running_proxy(Settings(), runner) as proxy, \
            OpenAI(base_url=proxy.base_url, api_key="x", max_retries=0) as sdk:
        arrivals = []
        for chunk in sdk.chat.completions.create(**catalogue.entries["slow_stream"].request,
                                                 stream=True):
            if chunk.choices and chunk.choices[0].delta.content:
                arrivals.append(time.monotonic())
    assert len(arrivals) >= 5
    # A generous lower bound only (no upper one): the pace is the recording's, not "at once".
    assert arrivals[-1] - arrivals[0] >= 0.6 * recorded_span


def test_a_client_that_leaves_mid_stream_closes_the_replayed_run(catalogue):
    runner = ReplayRunner.from_directory(CASSETTES, timing="recorded")
    with running_proxy(Settings(), runner) as proxy:
        body = {**catalogue.entries["slow_stream"].request, "stream": True}
        with httpx.Client(timeout=30) as http:
            with http.stream("POST", proxy.base_url + "/chat/completions", json=body) as resp:
                assert resp.status_code == 200
                for line in resp.iter_lines():
                    if '"content":"' in line:
                        break  # one content chunk, then hang up
                processes = runner.open_processes()
                assert len(processes) == 1
                process = processes[0]
        deadline = time.monotonic() + 20
        while runner.open_processes() and time.monotonic() < deadline:
            time.sleep(0.05)
        assert runner.open_processes() == []
    assert process.closed
    # Closed before its recorded end, it reports what the CLI reports for SIGTERM.
    assert process.exit_status(0).returncode == SIGTERM_EXIT


def test_concurrent_replays_of_one_cassette(catalogue, replay_proxy):
    def ask(_):
        with OpenAI(base_url=replay_proxy.base_url, api_key="x", max_retries=0) as sdk:
            return sdk.chat.completions.create(**_plain(catalogue)).choices[0].message.content

    with ThreadPoolExecutor(8) as pool:
        answers = list(pool.map(ask, range(16)))
    assert answers == ["2 + 2 = 4."] * 16


def test_serve_refuses_a_missing_replay_directory(tmp_path, capsys):
    code = main(["serve", "--replay", str(tmp_path / "nothing-here"), "--port", "0"])
    assert code == 2
    assert "cannot replay" in capsys.readouterr().err


def test_serve_refuses_a_directory_without_cassettes(tmp_path, capsys):
    (tmp_path / "other.json").write_text('{"not": "a cassette"}', encoding="utf-8")
    assert main(["serve", "--replay", str(tmp_path), "--port", "0"]) == 2
    assert "no cassettes" in capsys.readouterr().err
