"""`claude-max-api conformance`: exit status, reports, the matrix, recording and replay."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from conformance.cli import EXIT_MUST_FAILED, EXIT_OK, EXIT_USAGE, main
from conformance.report import MARK_END, MARK_START
from tests.conformance.reference_server import MODEL, Behaviour, serve_reference

REPO = Path(__file__).resolve().parents[2]
FAST = ["--fuzz-examples", "0", "--oversized-mib", "9", "--quiet"]


def run(*args: str) -> int:
    return main([*args])


def outcomes(report: Path) -> dict[str, dict[str, str]]:
    data = json.loads(report.read_text(encoding="utf-8"))
    return {s["target"]["name"]: {cid: r["outcome"] for cid, r in s["results"].items()}
            for s in data["servers"]}


def test_a_conforming_server_exits_0_and_writes_both_reports(tmp_path, capsys):
    with serve_reference() as url:
        status = run("--base-url", url, "--model", MODEL, *FAST, "--only", "models,stream.*",
                     "--report", str(tmp_path / "r.json"), "--report", str(tmp_path / "r.md"))
    assert status == EXIT_OK
    out = capsys.readouterr().out
    assert "stream.done.last" in out and "no must-level failures" in out
    results = outcomes(tmp_path / "r.json")
    (name,) = results
    assert results[name]["stream.done.last"] == "pass"
    markdown = (tmp_path / "r.md").read_text(encoding="utf-8")
    assert "| `stream.done.last` | must | pass |" in markdown


def test_a_must_level_failure_exits_1(tmp_path):
    with serve_reference(Behaviour(frozenset({"no_done"}))) as url:
        status = run("--base-url", url, "--model", MODEL, *FAST, "--only", "stream.done.last",
                     "--report", str(tmp_path / "r.json"))
    assert status == EXIT_MUST_FAILED
    assert list(outcomes(tmp_path / "r.json").values())[0] == {"stream.done.last": "fail"}


def test_a_should_level_failure_alone_exits_0(tmp_path):
    with serve_reference(Behaviour(frozenset({"sse_cacheable"}))) as url:
        status = run("--base-url", url, "--model", MODEL, *FAST, "--only", "headers.sse_no_cache",
                     "--report", str(tmp_path / "r.json"))
    assert status == EXIT_OK
    assert list(outcomes(tmp_path / "r.json").values())[0] == {"headers.sse_no_cache": "fail"}


def test_a_baseline_keeps_known_failures_green_but_not_new_ones(tmp_path):
    with serve_reference(Behaviour(frozenset({"no_done"}))) as url:
        spec = f"ref={url},model={MODEL}"
        assert run("--server", spec, *FAST, "--only", "stream.*",
                   "--report", str(tmp_path / "base.json")) == EXIT_MUST_FAILED
        assert run("--server", spec, *FAST, "--only", "stream.*",
                   "--baseline", str(tmp_path / "base.json")) == EXIT_OK
    with serve_reference(Behaviour(frozenset({"no_done", "no_role"}))) as url:
        assert run("--server", f"ref={url},model={MODEL}", *FAST, "--only", "stream.*",
                   "--baseline", str(tmp_path / "base.json")) == EXIT_MUST_FAILED


def test_several_servers_build_one_matrix(tmp_path):
    with serve_reference() as good, serve_reference(Behaviour(frozenset({"no_role"}))) as bad:
        status = run("--server", f"good={good},model={MODEL}",
                     "--server", f"bad={bad},model={MODEL}", *FAST, "--only", "stream.*",
                     "--report", str(tmp_path / "m.md"), "--report", str(tmp_path / "m.json"))
    assert status == EXIT_MUST_FAILED
    results = outcomes(tmp_path / "m.json")
    assert results["good"]["stream.role_first"] == "pass"
    assert results["bad"]["stream.role_first"] == "fail"
    markdown = (tmp_path / "m.md").read_text(encoding="utf-8")
    assert "| check | level | good | bad |" in markdown
    assert "| `stream.role_first` | must | pass | **FAIL** |" in markdown


def test_known_limitations_skip_checks_with_their_reason(tmp_path):
    with serve_reference(Behaviour(frozenset({"ignore_stop"}))) as url:
        status = run("--server", f"mock={url},model={MODEL},skip=params.stop.*:the mock ignores "
                                 "stop, by design", *FAST, "--only", "params.stop.*",
                     "--report", str(tmp_path / "r.json"))
    assert status == EXIT_OK
    data = json.loads((tmp_path / "r.json").read_text(encoding="utf-8"))
    results = data["servers"][0]["results"]
    assert {r["outcome"] for r in results.values()} == {"skip"}
    assert "the mock ignores stop, by design" in results["params.stop.string"]["message"]


def test_the_api_key_can_come_from_the_environment_and_is_checked(tmp_path, monkeypatch):
    monkeypatch.setenv("REF_KEY", "sk-from-env")
    with serve_reference(Behaviour(api_key="sk-from-env")) as url:
        status = run("--server", f"ref={url},model={MODEL},key=env:REF_KEY", *FAST,
                     "--only", "headers.auth.*,models.list.status",
                     "--report", str(tmp_path / "r.json"))
    assert status == EXIT_OK
    assert set(outcomes(tmp_path / "r.json")["ref"].values()) == {"pass"}


def test_record_then_replay_offline_reproduces_the_run(tmp_path):
    with serve_reference(Behaviour(frozenset({"usage_in_choice_chunk"}))) as url:
        live = run("--server", f"ref={url},model={MODEL}", "--fuzz-examples", "3",
                   "--oversized-mib", "9", "--quiet", "--record", str(tmp_path / "rec"),
                   "--report", str(tmp_path / "live.json"))
    # the server is gone: only the cassette answers now
    replay = run("--from-cassettes", str(tmp_path / "rec"), "--quiet",
                 "--report", str(tmp_path / "replay.json"))
    assert live == replay == EXIT_MUST_FAILED
    assert outcomes(tmp_path / "live.json") == outcomes(tmp_path / "replay.json")
    assert outcomes(tmp_path / "replay.json")["ref"]["stream.usage.chunk"] == "fail"
    cassette = (tmp_path / "rec" / "ref.yaml").read_text(encoding="utf-8")
    assert "x-conformance-probe" in cassette and "authorization" not in cassette.lower()
    meta = json.loads((tmp_path / "rec" / "ref.json").read_text(encoding="utf-8"))
    assert meta["model"] == MODEL and meta["fuzz_cases"]


def test_the_doc_section_is_replaced_between_its_markers(tmp_path):
    doc = tmp_path / "doc.md"
    doc.write_text(f"intro\n{MARK_START}\nold\n{MARK_END}\noutro\n", encoding="utf-8")
    with serve_reference() as url:
        assert run("--server", f"ref={url},model={MODEL}", *FAST, "--only", "models.*",
                   "--doc", str(doc)) == EXIT_OK
    text = doc.read_text(encoding="utf-8")
    assert text.startswith("intro\n") and text.endswith("outro\n") and "\nold\n" not in text
    assert "| `models.list.shape` | must | pass |" in text


@pytest.mark.parametrize("args", [
    [],                                                            # no server
    ["--base-url", "http://127.0.0.1:9/v1", "--only", "nothing.matches"],
    ["--base-url", "ftp://example/v1"],                            # not http
    ["--server", "a=http://127.0.0.1:9/v1,colour=blue"],          # unknown field
    ["--server", "x=http://127.0.0.1:9/v1,key=env:CONFORMANCE_UNSET_VARIABLE"],
    ["--base-url", "http://127.0.0.1:9/v1", "--base-url", "http://127.0.0.1:9/v1"],
    ["--base-url", "http://127.0.0.1:9/v1", "--record", "a", "--from-cassettes", "b"],
])
def test_usage_errors_exit_2(args, tmp_path):
    assert run(*args, "--quiet") == EXIT_USAGE


def test_replaying_an_empty_directory_is_a_usage_error(tmp_path):
    assert run("--from-cassettes", str(tmp_path), "--quiet") == EXIT_USAGE


def test_an_unreachable_server_fails_its_must_checks(tmp_path):
    status = run("--base-url", "http://127.0.0.1:9/v1", "--model", "m", *FAST,
                 "--only", "models.list.status,chat.basic.status", "--timeout", "5",
                 "--report", str(tmp_path / "r.json"))
    assert status == EXIT_MUST_FAILED
    results = json.loads((tmp_path / "r.json").read_text())["servers"][0]["results"]
    assert "transport error" in results["models.list.status"]["message"]


def test_the_claude_max_api_command_runs_the_suite(tmp_path):
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    listed = subprocess.run([sys.executable, "-m", "proxy", "conformance", "--list"],
                            capture_output=True, text=True, cwd=tmp_path, env=env, timeout=120)
    assert listed.returncode == 0, listed.stderr
    assert "`errors.unknown_model.status` | must" in listed.stdout
    with serve_reference(Behaviour(frozenset({"no_done"}))) as url:
        done = subprocess.run(
            [sys.executable, "-m", "proxy", "conformance", "--base-url", url, "--model", MODEL,
             "--only", "stream.done.last,models.*", "--fuzz-examples", "0"],
            capture_output=True, text=True, cwd=tmp_path, env=env, timeout=300)
    assert done.returncode == EXIT_MUST_FAILED, done.stderr
    assert "[  1/6]" in done.stderr                       # progress while it runs
    assert "stream.done.last" in done.stdout and "FAIL" in done.stdout   # the final table
    assert not (tmp_path / ".hypothesis").exists()


def test_recordings_replace_the_home_directory(monkeypatch, tmp_path):
    from conformance.recording import redact_home

    monkeypatch.setenv("HOME", str(tmp_path / "someone"))
    body = f'{{"error": "File {tmp_path}/someone/.venv/x.py"}}'.encode()
    redacted = redact_home({"body": {"string": body}})["body"]["string"]
    assert redacted == b'{"error": "File ~/.venv/x.py"}'


def test_without_a_model_the_checks_cannot_run_and_the_exit_is_1(tmp_path):
    with serve_reference(Behaviour(frozenset({"models_hide_model"}))) as url:
        pass
    # the server is gone: GET /models fails, so no model can be chosen
    status = run("--base-url", url, *FAST, "--timeout", "5", "--only", "chat.basic.*",
                 "--report", str(tmp_path / "r.json"))
    assert status == EXIT_MUST_FAILED
    results = json.loads((tmp_path / "r.json").read_text())["servers"][0]["results"]
    assert {r["outcome"] for r in results.values()} == {"error"}
    assert "pass --model" in results["chat.basic.status"]["message"]
