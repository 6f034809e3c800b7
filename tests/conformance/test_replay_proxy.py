"""The suite against this project's server in replay mode: no CLI, no network. The CLI runs the
suite's prompts cause are recorded in cli-cassettes/ (python -m conformance.servers.record_fixtures);
this is what CI runs on every push. The fuzz phase is off: its generated prompts have no
recordings (a replayed server answers them 503 fixture_not_found, as it should)."""

from __future__ import annotations

from pathlib import Path

from conformance.checks import catalogue
from conformance.checks.base import RunOptions
from conformance.results import Outcome
from conformance.runner import run_target
from conformance.target import KnownLimitation, Target
from proxy.runners.replay import ReplayRunner
from proxy.settings import Settings
from tests.support.servers import running_proxy

CASSETTES = Path(__file__).resolve().parent / "cli-cassettes"
KEY = "sk-conformance-replay-test"
# A tool loop spans two CLI runs, and a cassette's tool-use ids are redacted placeholders: the
# replayed call's id is not the one the recorded follow-up answered, so the follow-up finds no
# recording. The live run (test_live_proxy.py, the real CLI) checks it.
REPLAY_LIMITATIONS = [KnownLimitation(
    "responses.previous_response.outputs_only",
    "replayed tool-use ids are redacted placeholders, so a follow-up answering a replayed call "
    "matches no recording; checked against the live CLI instead")]


def test_every_check_passes_against_our_server_in_replay_mode():
    runner = ReplayRunner.from_directory(CASSETTES)
    with running_proxy(Settings(api_keys=[KEY]), runner) as proxy:
        run = run_target(Target("claude-max-api", proxy.base_url, "sonnet", KEY,
                                limitations=REPLAY_LIMITATIONS), catalogue(),
                         RunOptions(fuzz_examples=0, timeout=60))
    outcomes = {cid: r.outcome for cid, r in run.results.items()}
    not_passed = {cid: run.results[cid].message for cid, o in outcomes.items()
                  if o is not Outcome.PASS and not cid.startswith("fuzz.")
                  and not (o is Outcome.SKIP and cid == REPLAY_LIMITATIONS[0].pattern)}
    assert not_passed == {}
    assert {o for cid, o in outcomes.items() if cid.startswith("fuzz.")} == {Outcome.SKIP}
