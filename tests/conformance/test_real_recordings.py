"""The checks judged on recorded exchanges of real, independent servers (tests/conformance/
cassettes/, recorded with `--record`): the deviations the suite found stay found, what those
servers do right stays passing, and the committed matrix (docs/conformance.json) is exactly
what replaying the recordings gives."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from conformance.checks import catalogue
from conformance.recording import recorded_servers
from conformance.runner import Recording, run_target, target_from_recording

HERE = Path(__file__).resolve().parent
CASSETTES = HERE / "cassettes"
MATRIX = HERE.parents[1] / "docs" / "conformance.json"

# check id -> outcome, per server: real deviations (fail) and real conformance (pass).
EXPECTED = {
    "litellm": {
        "stream.usage.chunk": "fail",            # usage chunk has choices [{index: 0, delta: {}}]
        "stream.chunk.schema": "fail",           # intermediate chunks omit finish_reason
        "errors.unknown_model.status": "fail",   # 400, not 404
        "errors.unknown_model.code": "fail",     # code "400"
        "headers.auth.missing_key": "fail",      # 500 text/plain
        "headers.auth.wrong_key": "fail",        # 400 no_db_connection
        "errors.bad_role": "fail",               # 200
        "errors.unknown_route": "fail",          # {"detail": "Not Found"}
        "chat.basic.schema_strict": "fail",      # refusal and logprobs omitted
        "chat.basic.schema": "pass",
        "stream.done.last": "pass",
        "stream.role_first": "pass",
        "errors.malformed_json": "pass",
        "models.list.shape": "pass",
        "params.stop.string": "skip",            # declared: mock_response ignores stop
        # legacy completions (recorded with --only legacy and added to the cassette)
        "legacy.basic.schema": "fail",           # usage.*_tokens_details: null
        "legacy.stream.chunks": "fail",          # intermediate chunks omit finish_reason
        "legacy.stream.usage": "fail",           # usage chunk has choices [{index: 0}]
        "legacy.prompt_list": "fail",            # two prompts, one choice
        "legacy.basic.choice": "pass",
        "legacy.errors.missing_prompt": "pass",
        "legacy.max_tokens.length": "skip",      # declared: mock_response ignores token limits
        "tools.choice.none": "pass",             # tools and tool messages are accepted
        "tools.roundtrip.accepted": "pass",
        "tools.call.nonstream": "skip",          # a mock_response model never calls a tool
        "tools.choice.required": "skip",         # declared: it cannot be made to call
    },
    "llama-cpp": {
        "models.list.shape": "fail",             # no created
        "stream.usage.chunk": "fail",            # include_usage ignored
        "params.max_completion_tokens.length": "fail",   # ignored
        "params.max_tokens.length": "pass",      # max_tokens works
        "params.n.handled": "fail",              # one choice for n=2
        "errors.malformed_json": "fail",         # 500 text/plain
        "errors.bad_role": "fail",               # 500 with a traceback
        "errors.unknown_model.status": "fail",   # served by the loaded model
        "params.stop.array": "skip",             # not deterministic at temperature 0
        "stream.done.last": "pass",
        "stream.sse.syntax": "pass",
        "content.unicode.stream_intact": "pass",
        "structured.json_object.valid": "pass",  # the one format probe it was recorded with
        "tools.call.nonstream": "skip",          # recorded before the tools checks existed
    },
    "mock-llm": {
        "models.list.shape": "fail",             # no created
        "chat.basic.object": "fail",             # no created
        "chat.basic.choice": "fail",             # no choices[].index
        "errors.malformed_json": "fail",         # {"error": "SyntaxError", ...}
        "content.unicode.accepted": "fail",      # 500: the text breaks its JSON template
        "errors.unknown_model.status": "fail",   # 200
        "params.max_tokens.length": "fail",      # ignored
        "stream.done.last": "pass",
        "stream.sse.syntax": "pass",
        "tools.choice.required": "fail",         # no call: it echoes the prompt
        "structured.json_object.valid": "fail",  # 500: the prompt breaks its JSON template
    },
}


def _replay(server: str) -> dict[str, str]:
    target = target_from_recording(CASSETTES, server)
    run = run_target(target, catalogue(), recording=Recording(CASSETTES, "replay"))
    return {cid: r.outcome.value for cid, r in run.results.items()}


@pytest.fixture(scope="module")
def replayed() -> dict[str, dict[str, str]]:
    return {server: _replay(server) for server in recorded_servers(CASSETTES)}


def test_recordings_of_independent_servers_are_committed(replayed):
    assert {"claude-max-api", "litellm", "llama-cpp", "mock-llm"} <= set(replayed)


@pytest.mark.parametrize("server", sorted(EXPECTED))
def test_the_deviations_found_in_real_servers_stay_found(replayed, server):
    got = {cid: replayed[server][cid] for cid in EXPECTED[server]}
    assert got == EXPECTED[server]


def test_our_recorded_server_passes_every_check(replayed):
    assert {cid: o for cid, o in replayed["claude-max-api"].items() if o != "pass"} == {}


def test_the_committed_matrix_is_what_the_recordings_give(replayed):
    data = json.loads(MATRIX.read_text(encoding="utf-8"))
    committed = {s["target"]["name"]: {cid: r["outcome"] for cid, r in s["results"].items()}
                 for s in data["servers"]}
    assert committed == replayed
    assert [c["id"] for c in data["checks"]] == [c.id for c in catalogue()]
