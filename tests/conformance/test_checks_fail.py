"""Each check passes on a conforming server and FAILS on a recorded bad exchange.

The reference server (reference_server.py) is run once cleanly and once per fault; every run
is recorded with vcrpy, the server is stopped, and the checks are judged again from the
cassette alone. A check that cannot fail, or that fails on a conforming server, fails here.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import pytest

from conformance.checks import catalogue
from conformance.checks.base import RunOptions
from conformance.results import Outcome
from conformance.runner import Recording, run_target, target_from_recording
from conformance.target import Target
from tests.conformance.faults import FAULT_FOR
from tests.conformance.reference_server import MODEL, Behaviour, serve_reference

KEY = "sk-reference-key"
OPTIONS = RunOptions(fuzz_examples=4, oversized_bytes=9 * 1024 * 1024, timeout=30)
CHECKS = {c.id: c for c in catalogue()}


@dataclass
class Recorded:
    directory: Path
    live: dict      # server name -> {check id: outcome}


def _record(directory: Path, name: str, faults: frozenset[str], check_ids: list[str]) -> dict:
    with serve_reference(Behaviour(faults, api_key=KEY)) as url:
        run = run_target(Target(name, url, MODEL, KEY), [CHECKS[i] for i in check_ids], OPTIONS,
                         recording=Recording(directory, "record"))
    return {cid: r for cid, r in run.results.items()}


@pytest.fixture(scope="module")
def recorded(tmp_path_factory) -> Recorded:
    directory = tmp_path_factory.mktemp("fault-cassettes")
    live = {"good": _record(directory, "good", frozenset(), list(CHECKS))}
    by_fault: dict[str, list[str]] = {}
    for check_id, fault in FAULT_FOR.items():
        by_fault.setdefault(fault, []).append(check_id)
    for fault, check_ids in by_fault.items():
        live[fault] = _record(directory, fault, frozenset({fault}), check_ids)
    return Recorded(directory, live)


def _replay(recorded: Recorded, name: str, check_ids: list[str]) -> dict:
    target = target_from_recording(recorded.directory, name)
    run = run_target(target, [CHECKS[i] for i in check_ids], OPTIONS,
                     recording=Recording(recorded.directory, "replay"))
    return run.results


def test_a_conforming_server_passes_every_check_live_and_from_the_recording(recorded):
    live = recorded.live["good"]
    assert {cid: (r.outcome, r.message) for cid, r in live.items()
            if r.outcome is not Outcome.PASS} == {}
    replayed = _replay(recorded, "good", list(CHECKS))
    assert {cid: r.outcome for cid, r in replayed.items()} == \
        {cid: Outcome.PASS for cid in CHECKS}


@pytest.mark.parametrize("check_id", sorted(FAULT_FOR))
def test_check_fails_on_a_recorded_bad_exchange(recorded, check_id):
    fault = FAULT_FOR[check_id]
    live = recorded.live[fault][check_id]
    assert live.outcome is Outcome.FAIL, f"{check_id} did not fail live on {fault}: {live}"
    replayed = _replay(recorded, fault, [check_id])[check_id]
    assert replayed.outcome is Outcome.FAIL, replayed
    assert replayed.message == live.message
    assert replayed.message
