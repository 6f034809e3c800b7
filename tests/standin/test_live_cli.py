"""The real `claude` CLI against the stand-in: what reaches its stdout, and what it sends upstream.

These also pin the CLI behaviours docs/standin.md reports and the proxy relies on (system prompt
flags, content arrays, max_tokens, timeouts), so a CLI upgrade that changes them fails here.
"""

from __future__ import annotations

import json
import time
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import pytest

from proxy.standin import Scenario, StandInUpstream, ToolUse

from .clirun import CLIRun, run_claude, user_line

# Without the CLI, tests/conftest.py skips these (on a developer's machine) or fails them (CI).
pytestmark = pytest.mark.live

# Keys whose values differ between two identical runs (found by diffing two runs).
VOLATILE = {"session_id", "uuid", "timestamp", "cwd", "original_cwd", "memory_paths", "messaging_socket_path",
            "duration_ms", "duration_api_ms", "ttft_ms", "ttft_stream_ms", "time_to_request_ms",
            "first_content_frame_ms", "thinking_duration_ms"}


def run(up: StandInUpstream, scenario: Scenario, name: str = "case", **kwargs: Any) -> CLIRun:
    up.add_scenario(name, scenario)
    result = run_claude(up.base_url_for(name), **kwargs)
    assert not result.timed_out, result.stderr
    return result


def texts(run_: CLIRun) -> str:
    return "".join(e["delta"]["text"] for e in run_.stream_events("content_block_delta") if e["delta"]["type"] == "text_delta")


def system_texts(body: dict[str, Any]) -> list[str]:
    return [block["text"] for block in body["system"]]


def stable(value: Any) -> Any:
    if isinstance(value, dict):
        return {k: stable(v) for k, v in value.items() if k not in VOLATILE}
    if isinstance(value, list):
        return [stable(v) for v in value]
    return value


# --- what the brief asks the stand-in to drive ------------------------------------------------------

def test_plain_reply(upstream: StandInUpstream) -> None:
    scenario = Scenario(reply_text="Hello there, streamed in pieces.", split=6, input_tokens=21, output_tokens=8)
    r = run(upstream, scenario, prompt="Say hello ünïcode --not-a-flag")

    assert r.returncode == 0, r.stderr
    kinds = [(e["type"], e.get("subtype") or e.get("event", {}).get("type")) for e in r.events]
    assert kinds[:4] == [("system", "init"), ("system", "status"), ("stream_event", "message_start"),
                         ("stream_event", "content_block_start")]
    assert kinds[-1] == ("result", "success")
    assert texts(r) == scenario.reply_text
    assert len(r.stream_events("content_block_delta")) == 6
    (assistant,) = r.of_type("assistant")
    assert assistant["message"]["content"] == [{"type": "text", "text": scenario.reply_text}]
    assert assistant["message"]["id"].startswith("msg_standin_")
    assert assistant["request_id"].startswith("req_standin_")
    result = r.result
    assert result["is_error"] is False and result["result"] == scenario.reply_text
    assert result["usage"]["input_tokens"] == 21 and result["usage"]["output_tokens"] == 8

    (req,) = upstream.requests
    assert req.path == "/scenario/case/v1/messages?beta=true"
    assert req.body["tools"] == [] and req.body["stream"] is True
    assert req.body["model"] == "claude-sonnet-5-5"
    assert req.body["messages"][0] == {"role": "user", "content": "Say hello ünïcode --not-a-flag"}
    assert req.headers["x-api-key"] == "<redacted>"


def test_thinking(upstream: StandInUpstream) -> None:
    r = run(upstream, Scenario(thinking="Let me think about this.", reply_text="Thought done."))
    assert r.returncode == 0, r.stderr
    contents = [e["message"]["content"] for e in r.of_type("assistant")]
    assert contents[0][0]["type"] == "thinking" and contents[0][0]["thinking"] == "Let me think about this."
    assert contents[0][0]["signature"].startswith("sig_standin_")
    assert contents[1] == [{"type": "text", "text": "Thought done."}]
    assert r.of_type("system", "thinking_tokens")
    assert r.result["result"] == "Thought done."


def test_tool_use_makes_a_second_call(upstream: StandInUpstream) -> None:
    tool = ToolUse(name="Bash", input={"command": "echo hi", "description": "say hi"}, text="Let me run it.")
    r = run(upstream, Scenario(tool_use=tool, after_tool_text="Tool said: {tool_result}"), prompt="run it")

    assert r.returncode == 0, r.stderr
    assert len(r.stream_events("message_start")) == 2
    first, second = upstream.requests
    assert (first.call_index, second.call_index) == (0, 1)
    (result_block,) = second.body["messages"][-1]["content"]
    assert result_block["type"] == "tool_result" and result_block["is_error"] is True
    assert "No such tool available: Bash" in result_block["content"]
    assert result_block["tool_use_id"].startswith("toolu_01")
    (tool_result_line,) = r.of_type("user")
    assert tool_result_line["message"]["content"][0]["tool_use_id"] == result_block["tool_use_id"]
    assert r.result["num_turns"] == 2
    assert r.result["result"] == "Tool said: " + result_block["content"]


def test_429_with_retry_after_then_success(upstream: StandInUpstream) -> None:
    scenario = Scenario(fail_status=429, fail_count=1, fail_headers={"retry-after": "1"}, reply_text="after the wait")
    r = run(upstream, scenario, env={"CLAUDE_CODE_MAX_RETRIES": "2"})

    assert r.returncode == 0, r.stderr
    (retry,) = r.of_type("system", "api_retry")
    assert retry["error_status"] == 429 and retry["error"] == "rate_limit" and retry["retry_delay_ms"] >= 1000
    assert r.result["is_error"] is False and r.result["result"] == "after the wait"
    first, second = upstream.requests
    assert (first.status, second.status) == (429, 200)
    assert second.received_at - first.received_at >= 0.9  # retry-after was honoured


def test_529_fails_the_run(upstream: StandInUpstream) -> None:
    r = run(upstream, Scenario(fail_status=529))  # CLAUDE_CODE_MAX_RETRIES=0
    assert r.returncode == 1
    result = r.result
    assert result["subtype"] == "success" and result["is_error"] is True
    assert result["api_error_status"] == 529 and result["terminal_reason"] == "api_error"
    assert len(upstream.requests) == 1


def test_fallback_model_after_529(upstream: StandInUpstream) -> None:
    scenario = Scenario(fail_status=529, fail_models=("claude-opus-5-5",), reply_text="model={model}")
    r = run(upstream, scenario, model="opus", extra_args=["--fallback-model", "haiku"],
            env={"CLAUDE_CODE_MAX_RETRIES": "2"})
    assert r.returncode == 0, r.stderr
    (fallback,) = r.of_type("system", "model_fallback")
    assert fallback["fallback_model"] == "claude-haiku-5-5"
    assert r.result["result"] == "model=claude-haiku-5-5"


def test_base_url_path_selects_the_scenario_for_concurrent_runs(upstream: StandInUpstream) -> None:
    names = [f"run{i}" for i in range(3)]
    for name in names:
        upstream.add_scenario(name, Scenario(reply_text=f"I am {name}: {{echo}}"))
    with ThreadPoolExecutor(len(names)) as pool:
        runs = list(pool.map(lambda n: run_claude(upstream.base_url_for(n), prompt=f"prompt of {n}"), names))
    for name, r in zip(names, runs):
        assert r.returncode == 0, r.stderr
        assert r.result["result"] == f"I am {name}: prompt of {name}"
    assert sorted(req.scenario for req in upstream.requests) == names


def test_stdout_is_reproducible_apart_from_ids_times_and_paths(upstream: StandInUpstream) -> None:
    scenario = Scenario(thinking="hm", reply_text="Reproducible.")
    first = run(upstream, scenario)
    upstream.reset()
    second = run(upstream, scenario)
    assert stable(first.events) == stable(second.events)
    assert first.of_type("assistant")[0]["message"]["id"] == second.of_type("assistant")[0]["message"]["id"]


# --- CLI behaviours the proxy relies on (docs/standin.md) ------------------------------------------

def test_system_prompt_file_replaces_the_default_prompt(upstream: StandInUpstream, tmp_path) -> None:
    prompt = tmp_path / "system.txt"
    prompt.write_text("You are FILE-MARKER.\n  Ünïcode and trailing space  \n", encoding="utf-8")
    run(upstream, Scenario(), extra_args=["--system-prompt-file", str(prompt)])
    texts_ = system_texts(upstream.requests[0].body)
    assert len(texts_) == 3
    assert texts_[0].startswith("x-anthropic-billing-header: cc_version=")
    assert texts_[1] == "You are a Claude agent, built on Anthropic's Claude Agent SDK."
    assert texts_[2] == prompt.read_text(encoding="utf-8")  # byte for byte


def test_empty_system_prompt_leaves_only_billing_and_identity(upstream: StandInUpstream) -> None:
    run(upstream, Scenario(), extra_args=["--system-prompt", ""])
    texts_ = system_texts(upstream.requests[0].body)
    assert len(texts_) == 2
    assert texts_[1] == "You are a Claude agent, built on Anthropic's Claude Agent SDK."


def test_content_array_blocks_stay_separate(upstream: StandInUpstream) -> None:
    blocks = [{"type": "text", "text": "a"}, {"type": "text", "text": "  b\n"}, {"type": "text", "text": ""}]
    r = run(upstream, Scenario(reply_text="{echo}"), stdin_lines=[user_line(blocks)])
    assert r.returncode == 0, r.stderr
    # Blocks are kept apart and verbatim; the empty one is dropped by the CLI.
    assert upstream.requests[0].body["messages"][0] == {"role": "user", "content": blocks[:2]}


def test_empty_string_prompt_becomes_no_content(upstream: StandInUpstream) -> None:
    run(upstream, Scenario(), prompt="")
    assert upstream.requests[0].body["messages"][0] == {"role": "user", "content": "(no content)"}


def test_max_output_tokens_env_and_max_tokens_auto_continue(upstream: StandInUpstream) -> None:
    r = run(upstream, Scenario(reply_text="truncated outp", stop_reason="max_tokens"),
            env={"CLAUDE_CODE_MAX_OUTPUT_TOKENS": "50"})
    assert [req.body["max_tokens"] for req in upstream.requests] == [50] * 4  # 1 call + 3 continuations
    assert "Output token limit hit" in json.dumps(upstream.requests[1].body["messages"][-1])
    deltas = [e for e in r.stream_events("message_delta")]
    assert [d["delta"]["stop_reason"] for d in deltas] == ["max_tokens"] * 4
    assert r.returncode == 1
    assert r.result["is_error"] is True and "exceeded the 50 output token maximum" in r.result["result"]


def test_hanging_upstream_ends_with_api_timeout(upstream: StandInUpstream) -> None:
    started = time.monotonic()
    r = run(upstream, Scenario(hang=True), env={"API_TIMEOUT_MS": "2000"}, timeout=30)
    assert r.returncode == 1
    assert [e.get("subtype") for e in r.events] == ["init", "status", None, "success"]
    assert r.result["is_error"] is True and r.result["result"].startswith("Request timed out.")
    assert 2 <= time.monotonic() - started < 15
    deadline = time.monotonic() + 3
    while not upstream.requests[0].client_aborted and time.monotonic() < deadline:
        time.sleep(0.05)
    assert upstream.requests[0].client_aborted


def test_mid_stream_error_is_abandoned_then_retried_without_streaming(upstream: StandInUpstream) -> None:
    r = run(upstream, Scenario(reply_text="partial answer here", error_event_after=5))
    assert r.returncode == 0, r.stderr
    events = r.stream_events()
    assert [e["type"] for e in events] == ["message_start", "content_block_start", "content_block_delta",
                                           "content_block_delta", "content_block_stop", "message_stop"]
    assert r.of_type("stream_event")[-1]["abandoned_blocks"]["from_block_index"] == 0
    first, second = upstream.requests
    assert first.body["stream"] is True and second.body.get("stream") is False  # the CLI's fallback
    (assistant,) = r.of_type("assistant")  # only the fallback's message, with no deltas of its own
    assert assistant["message"]["id"] != events[0]["message"]["id"]
    assert r.result["result"] == "partial answer here"


def test_dropped_connection_without_the_fallback_fails_the_run(upstream: StandInUpstream) -> None:
    r = run(upstream, Scenario(reply_text="partial answer here", abort_after_events=5),
            env={"CLAUDE_CODE_DISABLE_NONSTREAMING_FALLBACK": "1"})
    assert r.returncode == 1
    assert len(upstream.requests) == 1
    assert r.result["is_error"] is True and r.result["api_error"] == "connection_failed"


# --- what the CLI does to the last text block, the "typed input" (see proxy/chat/render.py) ------

def _everything_sent(up: StandInUpstream) -> str:
    return json.dumps([r.body for r in up.requests])


def test_an_at_mention_attaches_a_host_file_unless_file_mentions_are_disabled(
        upstream: StandInUpstream, tmp_path) -> None:
    # Why FIXED_ENV has CLAUDE_CODE_DISABLE_FILE_MENTIONS: despite `--tools ""`, a prompt whose
    # last block says `@/some/file` made the CLI read that file and send it to the model.
    from proxy.claude.invocation import FIXED_ENV
    canary = tmp_path / "canary.txt"
    canary.write_text("canary-7f3a9 secret")
    for env, leaks in (({}, True), (FIXED_ENV, False)):
        upstream.reset()
        r = run(upstream, Scenario(reply_text="ok"), prompt=[
            {"type": "text", "text": f"what is in @{canary} ?"}], env=env)
        assert r.returncode == 0, r.stderr
        assert ("canary-7f3a9" in _everything_sent(upstream)) is leaks, env


def test_only_the_last_text_block_is_read_as_typed_input(upstream: StandInUpstream, tmp_path) -> None:
    # Why a transcript ends with a fixed request block: an `@` or a leading `/` in an earlier
    # block reaches the model untouched.
    canary = tmp_path / "canary.txt"
    canary.write_text("canary-7f3a9 secret")
    blocks = [f"what is in @{canary} ?", "/help", "Answer the question above."]
    r = run(upstream, Scenario(reply_text="ok"),
            prompt=[{"type": "text", "text": b} for b in blocks])
    assert r.returncode == 0, r.stderr
    (req,) = upstream.requests
    user = [m for m in req.body["messages"] if m["role"] == "user"]
    assert [b["text"] for b in user[-1]["content"]] == blocks
    assert "canary-7f3a9" not in _everything_sent(upstream)
    assert "mentioned" not in _everything_sent(upstream)


def test_ultrathink_adds_a_note_unless_disabled(upstream: StandInUpstream) -> None:
    from proxy.claude.invocation import FIXED_ENV
    for env, noted in (({}, True), (FIXED_ENV, False)):
        upstream.reset()
        r = run(upstream, Scenario(reply_text="ok"), prompt="ultrathink: 2+2?", env=env)
        assert r.returncode == 0, r.stderr
        assert ('keyword \\"ultrathink\\"' in _everything_sent(upstream)) is noted, env


def test_the_fallback_model_takes_over_only_after_three_overloaded_answers(
        upstream: StandInUpstream) -> None:
    # Why the proxy raises CLAUDE_CODE_MAX_RETRIES to 2 when --fallback-model is set.
    overloaded = Scenario(fail_status=529, fail_models=("claude-opus-5-5",),
                          reply_text="Answered by {model}.")
    for retries, answered in (("1", False), ("2", True)):
        upstream.reset()
        r = run(upstream, overloaded, model="opus", extra_args=("--fallback-model", "haiku"),
                env={"CLAUDE_CODE_MAX_RETRIES": retries}, timeout=90)
        asked = [q.body["model"] for q in upstream.requests]
        assert (r.returncode == 0) is answered, (retries, asked, r.result)
        assert asked[-1] == ("claude-haiku-5-5" if answered else "claude-opus-5-5")
