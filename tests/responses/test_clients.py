"""Third-party clients of /v1/responses against the real server, the real CLI and the stand-in:
the official npm SDK, the openai-agents SDK with its default Responses model, and Codex CLI
(`codex exec` with a custom provider, `wire_api = "responses"`), each through a full tool loop.
Installed pinned on first use (tests/responses/conftest.py); missing, they fail in CI."""

from __future__ import annotations

import json
import os
import signal
import subprocess
from pathlib import Path

import pytest

from proxy.standin.scenario import Scenario, ToolUse

pytestmark = [pytest.mark.live, pytest.mark.slow]

WEATHER_LOOP = Scenario(tool_use=ToolUse("mcp__c__get_weather", {"city": "Paris"}),
                        after_tool_text="It is {tool_result}.")
CODEX_TIMEOUT = 180  # codex retries forever against a dead port: always a hard limit


def run(argv, *, env, cwd, timeout):
    """Runs a client in its own process group, killed whole at the timeout."""
    process = subprocess.Popen(argv, cwd=cwd, env=env, stdin=subprocess.DEVNULL,
                               stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                               start_new_session=True)
    try:
        stdout, stderr = process.communicate(timeout=timeout)
    except subprocess.TimeoutExpired:
        os.killpg(process.pid, signal.SIGKILL)
        stdout, stderr = process.communicate()
        pytest.fail(f"{argv[0]} did not finish in {timeout} s:\n{stderr[-3000:]}")
    return process.returncode, stdout, stderr


# ---------------------------------------------------------------------------- npm SDK

def test_the_npm_sdk_runs_tool_loops_plain_and_streamed(node_clients, live):
    proxy = live(WEATHER_LOOP)
    code, stdout, stderr = run(["node", "responses_check.mjs"], cwd=node_clients, timeout=300,
                               env={**os.environ, "BASE_URL": proxy.base_url, "API_KEY": "x"})
    assert code == 0, stderr[-3000:]
    out = json.loads(stdout)
    assert out["first"] == {"status": "completed", "types": ["function_call"], "text": "",
                            "call": {"name": "get_weather", "arguments": {"city": "Paris"},
                                     "call_id": out["first"]["call"]["call_id"]}}
    assert out["first"]["call"]["call_id"].startswith("toolu_")
    assert out["second"] == {"status": "completed", "text": "It is sunny.", "previous": True}
    stream = out["stream"]
    assert (stream["first"], stream["last"], stream["call"]) == \
        ("response.created", "response.completed", "get_weather")
    assert stream["text"] == stream["deltas"] == "It is rainy."
    assert "response.function_call_arguments.delta" in stream["types"]
    assert out["raw"]["ordered"] and out["raw"]["ids"] == 1 and out["raw"]["count"] > 6
    assert out["stored"] == {"same": True, "items": ["function_call_output"]}
    assert out["deleted"] == {"class": "NotFoundError", "status": 404,
                              "code": "response_not_found"}
    assert out["unknown"] == {"class": "NotFoundError", "status": 404,
                              "code": "previous_response_not_found",
                              "param": "previous_response_id"}
    assert proxy.live.spawned == 3   # each loop's result went to the process that waited


# ---------------------------------------------------------------------------- openai-agents

def test_the_agents_sdk_runs_a_tool_loop_with_its_default_model(agents_python, live):
    proxy = live(WEATHER_LOOP)
    script = Path(__file__).resolve().parent / "clients" / "agents_check.py"
    code, stdout, stderr = run([str(agents_python), str(script)], cwd=script.parent,
                               timeout=300,
                               env={**os.environ, "BASE_URL": proxy.base_url, "API_KEY": "x"})
    assert code == 0, stderr[-3000:]
    out = json.loads(stdout.strip().splitlines()[-1])
    assert out["default_model_class"] == "OpenAIResponsesModel"
    assert out["plain"]["calls"] == ["Paris"]
    assert out["plain"]["final"] == "It is sunny in Paris."
    assert out["plain"]["items"] == ["tool_call_item", "tool_call_output_item",
                                     "message_output_item"]
    assert out["streamed"]["calls"] == ["Paris"]
    assert out["streamed"]["final"] == "It is sunny in Paris."
    assert "raw_response_event" in out["streamed"]["events"]
    assert len(proxy.requests()) == 4   # two model calls per run: the call, then the answer
    assert proxy.live.spawned == 2      # each run's result went to the process that waited


# ---------------------------------------------------------------------------- Codex CLI

def codex_home(tmp_path: Path, base_url: str) -> Path:
    home = tmp_path / "codex-home"
    home.mkdir()
    (home / "config.toml").write_text(f"""\
model = "sonnet"
model_provider = "claude-max-api"
approval_policy = "never"
check_for_update_on_startup = false

[model_providers.claude-max-api]
name = "claude-max-api"
base_url = "{base_url}"
env_key = "CLAUDE_MAX_API_KEY_FOR_CODEX"
wire_api = "responses"
request_max_retries = 0
stream_max_retries = 0

[analytics]
enabled = false

[features]
plugins = false
""")
    return home


def codex(node_clients: Path, tmp_path: Path, base_url: str, prompt: str):
    work = tmp_path / "work"
    work.mkdir(exist_ok=True)
    (work / "hello.txt").write_text("hello from the file\n")
    last = tmp_path / "last-message.txt"
    env = {**{k: v for k, v in os.environ.items() if not k.startswith(("OPENAI_", "CODEX_"))},
           "CODEX_HOME": str(codex_home(tmp_path, base_url)),
           "CLAUDE_MAX_API_KEY_FOR_CODEX": "x"}
    binary = node_clients / "node_modules" / ".bin" / "codex"
    code, stdout, stderr = run(
        [str(binary), "exec", "--skip-git-repo-check", "--ephemeral", "--json", "-s",
         "read-only", "-C", str(work), "-o", str(last), "--", prompt],
        env=env, cwd=tmp_path, timeout=CODEX_TIMEOUT)
    assert code == 0, (stdout[-3000:], stderr[-3000:])
    events = [json.loads(line) for line in stdout.splitlines() if line.startswith("{")]
    return last.read_text(), events


def test_codex_answers_plainly(node_clients, live, tmp_path):
    proxy = live(Scenario(reply_text="Hello from Claude, through Codex."))
    answer, events = codex(node_clients, tmp_path, proxy.base_url, "Say hello.")
    assert answer.strip() == "Hello from Claude, through Codex."
    assert events[-1]["type"] == "turn.completed" and events[-1]["usage"]["input_tokens"] > 0
    (body,) = proxy.upstream()
    tools = sorted(t["name"] for t in body["tools"])
    assert "mcp__c__exec_command" in tools
    assert "mcp__c__multi_agent_v1__spawn_agent" in tools   # its namespace, carried
    assert not any("web_search" in t for t in tools)         # hosted: not offered
    assert "You are a coding agent running in the Codex CLI" in json.dumps(body["system"])


def test_codex_runs_exec_command_in_its_sandbox_and_the_answer_uses_the_result(
        node_clients, live, tmp_path):
    proxy = live(Scenario(tool_use=ToolUse("mcp__c__exec_command", {"cmd": "cat hello.txt"}),
                          after_tool_text="The file says: {tool_result}"))
    answer, events = codex(node_clients, tmp_path, proxy.base_url, "What does hello.txt say?")
    commands = [e["item"] for e in events if e.get("type") == "item.completed"
                and e["item"].get("type") == "command_execution"]
    assert len(commands) == 1 and "cat hello.txt" in commands[0]["command"]
    assert commands[0]["exit_code"] == 0
    assert "hello from the file" in commands[0]["aggregated_output"]
    assert answer.startswith("The file says: ") and "hello from the file" in answer
    first, second = proxy.upstream()
    (result,) = [b for b in second["messages"][-1]["content"] if b["type"] == "tool_result"]
    assert "hello from the file" in json.dumps(result["content"])
    # Codex re-sends everything (store false); the history matches the kept process.
    assert proxy.live.spawned == 1


@pytest.mark.parametrize("keep", [4, 0], ids=["kept", "resumed"])
def test_codex_shows_claudes_thinking_and_gives_it_back_across_the_tool_call(
        node_clients, live, tmp_path, keep):
    """Codex asks for reasoning summaries and encrypted_content on every request and re-sends
    its reasoning items (store false). With a kept process the loop continues it; without
    (keep=0) the resumed request carries the thinking Codex gave back, signature and all."""
    thinking = "The user asks about hello.txt: read it with cat."
    proxy = live(Scenario(thinking=thinking,
                          tool_use=ToolUse("mcp__c__exec_command", {"cmd": "cat hello.txt"}),
                          after_tool_text="The file says: {tool_result}"), keep=keep)
    answer, events = codex(node_clients, tmp_path, proxy.base_url, "What does hello.txt say?")
    assert answer.startswith("The file says: ")
    shown = [e["item"]["text"] for e in events if e.get("type") == "item.completed"
             and e["item"].get("type") == "reasoning"]
    assert shown and thinking in shown[0]
    first, second = proxy.upstream()
    assert first["thinking"]["display"] == "summarized"
    assert proxy.live.spawned == (1 if keep else 2)
    if not keep:
        call_turn = second["messages"][-2]
        assert [b["type"] for b in call_turn["content"]][:1] == ["thinking"]
        assert call_turn["content"][0]["thinking"] == thinking
        assert call_turn["content"][0]["signature"].startswith("sig_standin_")
