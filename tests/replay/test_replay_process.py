"""ReplayProcess behaves like a live CLI process towards the proxy."""

from __future__ import annotations

import logging
import threading
import time

import pytest

from proxy.cassettes.cassette import Cassette, Ending, RecordedInvocation, Text
from proxy.claude.invocation import Invocation
from proxy.errors import ProxyError
from proxy.runners.base import CLIProcess
from proxy.runners.replay import SIGTERM_EXIT, ReplayProcess, ReplayRunner


def _cassette(lines=("a", "b", "c"), offsets=(0.0, 0.2, 0.4), exit_offset=0.5, returncode=0,
              stderr="", closed_by_proxy=False, name="sample", prompt="hi") -> Cassette:
    invocation = RecordedInvocation.of(Invocation(model="sonnet", blocks=(prompt,)))
    return Cassette(name=name, invocation=invocation, stdout=tuple(lines),
                    offsets=tuple(offsets), exit_offset=exit_offset,
                    ending=Ending(returncode, stderr, closed_by_proxy))


def _read_all(process, timeout=5.0) -> list[str]:
    out = []
    while True:
        try:
            line = process.read_line(timeout)
        except EOFError:
            return out
        if line is not None:
            out.append(line)


def test_it_is_a_cli_process():
    assert isinstance(ReplayProcess(_cassette()), CLIProcess)


def test_fast_replay_hands_out_every_line_then_eof_and_the_recorded_status():
    process = ReplayProcess(_cassette(returncode=1, stderr="boom\n"))
    assert process.exit_status(0).returncode == 1  # as if it had already run to its end
    assert _read_all(process, timeout=0) == ["a", "b", "c"]
    with pytest.raises(EOFError):
        process.read_line(0)
    assert process.exit_status() == process.exit_status(0)
    assert process.exit_status().stderr == "boom\n"


def test_close_is_idempotent_ends_reading_and_tells_the_runner_once():
    closed = []
    process = ReplayProcess(_cassette(), on_close=closed.append)
    assert process.read_line(0) == "a"
    process.close()
    process.close()
    assert closed == [process]
    with pytest.raises(EOFError):
        process.read_line(0)


def test_recorded_timing_waits_for_each_line():
    process = ReplayProcess(_cassette(offsets=(0.0, 0.6, 0.7), exit_offset=0.8),
                            timing="recorded")
    assert process.read_line(0) == "a"
    assert process.read_line(0.05) is None           # "b" is not due yet
    assert process.exit_status(0.01).returncode is None  # still running
    assert process.read_line(5.0) == "b"
    assert _read_all(process) == ["c"]
    assert process.exit_status(5.0).returncode == 0


def test_closing_a_recorded_run_early_wakes_a_reader_and_reports_sigterm():
    process = ReplayProcess(_cassette(offsets=(0.0, 30.0, 31.0), exit_offset=32.0),
                            timing="recorded")
    assert process.read_line(0) == "a"
    threading.Timer(0.2, process.close).start()
    started = time.monotonic()
    with pytest.raises(EOFError):
        while True:
            process.read_line(60.0)
    assert time.monotonic() - started < 20  # woken by close(), not by the 30 s offset
    assert process.exit_status(0).returncode == SIGTERM_EXIT


def test_reading_past_a_run_the_recording_proxy_closed_is_logged(caplog):
    process = ReplayProcess(_cassette(closed_by_proxy=True, returncode=SIGTERM_EXIT))
    with caplog.at_level(logging.WARNING, logger="claude_max_api.replay"):
        assert _read_all(process, timeout=0) == ["a", "b", "c"]
    assert "re-record" in caplog.text


def test_the_runner_serves_a_cassette_any_number_of_times_and_closes_what_is_open():
    runner = ReplayRunner([_cassette()], timing="recorded")
    first = runner.start(Invocation(model="sonnet", blocks=("hi",)))
    second = runner.start(Invocation(model="sonnet", blocks=("hi",)))
    assert set(runner.open_processes()) == {first, second}
    runner.close()
    assert runner.open_processes() == [] and first.closed and second.closed


def test_a_miss_is_a_503_fixture_not_found():
    runner = ReplayRunner([_cassette()])
    with pytest.raises(ProxyError) as caught:
        runner.start(Invocation(model="sonnet", blocks=("something else",)))
    assert (caught.value.status, caught.value.code) == (503, "fixture_not_found")


def test_ambiguous_matches_take_the_first_and_say_so(caplog):
    runner = ReplayRunner([_cassette(name="one", lines=("1",), offsets=(0.0,)),
                           _cassette(name="two", lines=("2",), offsets=(0.0,))])
    with caplog.at_level(logging.WARNING, logger="claude_max_api.replay"):
        process = runner.start(Invocation(model="sonnet", blocks=("hi",)))
    assert process.cassette.name == "one"
    assert "2 cassettes match" in caplog.text


def test_unknown_timing_is_refused():
    with pytest.raises(ValueError, match="timing"):
        ReplayRunner([_cassette()], timing="slow-motion")


def test_long_texts_match_through_their_digest():
    long_prompt = "x" * 100_000
    cassette = _cassette(prompt=long_prompt)
    stored = cassette.invocation.blocks[0]
    assert stored.is_digest and stored.chars == 100_000 and len(stored.head) < 200
    runner = ReplayRunner([cassette])
    assert runner.start(Invocation(model="sonnet", blocks=(long_prompt,))).cassette is cassette
    with pytest.raises(ProxyError):
        runner.start(Invocation(model="sonnet", blocks=("x" * 99_999 + "y",)))
    assert Text.of("short").full == "short"
