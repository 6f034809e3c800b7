"""The real CLI against the stand-in with prompt caching on: what a conversation costs, two ways.

One CLI process kept open (`--input-format stream-json`, one user message a turn, Claude Code's own
session) reads the whole earlier conversation from the cache. A fresh process a turn, given the
history rendered into one text block (the proxy's way before issue 10), reads the system prompt
and nothing past it.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from proxy.standin import Scenario, StandInUpstream
from proxy.standin.cache import prompt_blocks

from .clirun import CLIRun, claude_path, run_claude, user_line

pytestmark = [
    pytest.mark.live,
    pytest.mark.skipif(
        claude_path() is None,
        reason="the claude CLI is not on PATH (npm install -g @anthropic-ai/claude-code@2.1.332)",
    ),
]

QUESTIONS = ["What is a prefix cache?", "Why does the order of blocks matter?", "And the lookback window?"]
INPUT_KEYS = ("input_tokens", "cache_creation_input_tokens", "cache_read_input_tokens")
# A client's system prompt, given as the proxy gives it (--system-prompt-file): well over the
# 1,024-token minimum, and the same in every process (the CLI's default prompt holds a path under
# HOME, see test_the_default_system_prompt_names_the_home_directory_unless_auto_memory_is_off).
SYSTEM_PROMPT = "".join(f"Rule {i}: answer briefly, cite the documentation, and keep to the topic.\n"
                        for i in range(80))


@pytest.fixture
def system_prompt_file(tmp_path: Path) -> Path:
    path = tmp_path / "system.txt"
    path.write_text(SYSTEM_PROMPT, encoding="utf-8")
    return path


def prompt_tokens(body: dict[str, Any], section: str | None = None) -> int:
    return sum(b.tokens for b in prompt_blocks(body) if section is None or b.where.startswith(section))


def message_start_usages(events: list[dict[str, Any]]) -> list[dict[str, Any]]:
    return [e["event"]["message"]["usage"] for e in events
            if e.get("type") == "stream_event" and e["event"]["type"] == "message_start"]


def check_stdout_reports(events: list[dict[str, Any]], usage: dict[str, Any]) -> None:
    """The CLI's stdout for one call shows what the stand-in reported, in message_start and result."""
    (start,) = message_start_usages(events)
    assert start == {**usage, "output_tokens": 1}
    (result,) = [e for e in events if e.get("type") == "result"]
    assert result["is_error"] is False
    for key in (*INPUT_KEYS, "output_tokens"):
        assert result["usage"][key] == usage[key], key


def test_one_process_reads_the_growing_conversation_from_the_cache(system_prompt_file: Path) -> None:
    with StandInUpstream(Scenario(reply_text="You asked: {echo}", output_tokens=7), prompt_caching=True) as up:
        r = run_claude(up.base_url, [user_line(q) for q in QUESTIONS], one_turn_at_a_time=True,
                       extra_args=["--system-prompt-file", str(system_prompt_file)], timeout=120)
        assert r.returncode == 0 and not r.timed_out, r.stderr
        requests = up.requests
        totals = up.usage_totals()

    assert len(requests) == 3 and len(r.turns()) == 3
    assert [q.body["messages"][-1]["role"] for q in requests] == ["system", "user", "user"]
    sizes = [prompt_tokens(q.body) for q in requests]
    usages = [q.usage for q in requests]
    assert all(u is not None for u in usages)

    # Turn 1 writes its whole prompt (the breakpoint is on its last block).
    assert (usages[0]["cache_read_input_tokens"], usages[0]["cache_creation_input_tokens"]) == (0, sizes[0])
    # Turns 2 and 3 read everything the turn before sent, and write only what is new.
    for n in (1, 2):
        assert usages[n]["cache_read_input_tokens"] == sizes[n - 1]
        assert usages[n]["cache_creation_input_tokens"] == sizes[n] - sizes[n - 1]
        assert usages[n]["input_tokens"] == 0
    assert 0 < usages[1]["cache_read_input_tokens"] < usages[2]["cache_read_input_tokens"]

    for events, usage in zip(r.turns(), usages):
        check_stdout_reports(events, usage)
    assert (totals.requests, totals.cache_read_input_tokens, totals.uncached_input_tokens) == (
        3, sizes[0] + sizes[1], sizes[2])


def render(history: list[tuple[str, str]]) -> str:
    return "\n\n".join(f"{who}: {text}" for who, text in history)


def test_a_fresh_process_per_turn_reads_no_further_than_the_system_prompt(system_prompt_file: Path) -> None:
    history: list[tuple[str, str]] = []
    runs: list[CLIRun] = []
    with StandInUpstream(Scenario(reply_text="You asked: {echo}", output_tokens=7), prompt_caching=True) as up:
        for question in QUESTIONS:
            history.append(("User", question))
            run = run_claude(up.base_url, [user_line([{"type": "text", "text": render(history)}])],
                             extra_args=["--system-prompt-file", str(system_prompt_file)], timeout=60)
            assert run.returncode == 0 and not run.timed_out, run.stderr
            history.append(("Assistant", run.result["result"]))
            runs.append(run)
        requests = up.requests
        totals = up.usage_totals()

    assert len(requests) == 3
    system = prompt_tokens(requests[0].body, "system")
    assert system > 1024  # the minimum cacheable length: the system prompt alone is cached
    usages = [q.usage for q in requests]
    assert usages[0]["cache_read_input_tokens"] == 0
    for n in (1, 2):
        assert prompt_tokens(requests[n].body, "system") == system
        assert usages[n]["cache_read_input_tokens"] == system  # the system prompt, nothing past it
        assert usages[n]["cache_creation_input_tokens"] == prompt_tokens(requests[n].body) - system
    for run, usage in zip(runs, usages):
        check_stdout_reports(run.events, usage)
    assert totals.cache_read_input_tokens == 2 * system


def test_the_default_system_prompt_names_the_home_directory_unless_auto_memory_is_off() -> None:
    # Why a per-run HOME and cwd would miss the cache even on the system prompt: the default prompt
    # names the memory directory under them. CLAUDE_CODE_DISABLE_AUTO_MEMORY=1 leaves it out.
    with StandInUpstream(Scenario(reply_text="ok")) as up:
        for env in ({}, {}, {"CLAUDE_CODE_DISABLE_AUTO_MEMORY": "1"}, {"CLAUDE_CODE_DISABLE_AUTO_MEMORY": "1"}):
            run = run_claude(up.base_url, prompt="hi", env=env)
            assert run.returncode == 0, run.stderr
        prompts = [q.body["system"][2]["text"] for q in up.requests]
    assert prompts[0] != prompts[1]
    assert "persistent file-based memory at `/" in prompts[0]
    assert prompts[2] == prompts[3] and "file-based memory" not in prompts[2]
