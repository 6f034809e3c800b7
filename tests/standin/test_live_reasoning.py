"""The real CLI's reasoning settings against the stand-in: what `--effort`, `--thinking` and
`--thinking-display` send upstream for each model, and what reaches stdout. These pin the
tables in docs/standin.md ("Thinking") that the proxy's reasoning_effort mapping relies on."""

from __future__ import annotations

from typing import Any

import pytest

from proxy.standin import Scenario, StandInUpstream

from .clirun import CLIRun, claude_path, run_claude

pytestmark = [
    pytest.mark.live,
    pytest.mark.skipif(
        claude_path() is None,
        reason="the claude CLI is not on PATH (npm install -g @anthropic-ai/claude-code@2.1.332)",
    ),
]

SCENARIO = Scenario(thinking="The full reasoning.", thinking_updates="A progress note.",
                    thinking_tokens=7, reply_text="Done.")


def run(up: StandInUpstream, model: str = "sonnet", args: tuple[str, ...] = (),
        env: dict[str, str] | None = None) -> CLIRun:
    up.reset()
    up.add_scenario("r", SCENARIO)
    result = run_claude(up.base_url_for("r"), model=model, extra_args=args, env=env)
    assert not result.timed_out and result.returncode == 0, result.stderr
    return result


def thinking_text(r: CLIRun) -> str:
    return "".join(e["delta"]["thinking"] for e in r.stream_events("content_block_delta")
                   if e["delta"]["type"] == "thinking_delta")


def sent(up: StandInUpstream, key: str) -> list[Any]:
    return [(req.body or {}).get(key) for req in up.requests]


@pytest.mark.parametrize("model, effort, output_config", [
    ("sonnet", None, {"effort": "medium"}),
    ("sonnet", "low", {"effort": "low"}),
    ("sonnet", "max", {"effort": "max"}),
    ("haiku", "xhigh", {"effort": "xhigh"}),
    ("claude-opus-4-5", None, {"effort": "high"}),     # its own default
    ("claude-opus-4-5", "low", {"effort": "low"}),
    ("claude-opus-4-5", "max", {"effort": "high"}),    # clamped to what it supports
    ("claude-sonnet-4-5", "high", None),               # no effort support: not sent at all
    ("claude-haiku-4-5", "low", None),
])
def test_effort_reaches_the_request_as_the_model_supports_it(upstream, model, effort,
                                                             output_config) -> None:
    run(upstream, model, ("--effort", effort) if effort else ())
    assert sent(upstream, "output_config") == [output_config]


@pytest.mark.parametrize("model, thinking", [
    ("claude-sonnet-4-5", {"type": "disabled"}),
    ("claude-opus-4-5", {"type": "disabled"}),
    # Adaptive thinking cannot be turned off from the CLI (MAX_THINKING_TOKENS=0 neither).
    ("sonnet", {"type": "adaptive", "display": "updates"}),
])
def test_thinking_disabled(upstream, model, thinking) -> None:
    r = run(upstream, model, ("--thinking", "disabled"))
    assert sent(upstream, "thinking") == [thinking]
    blocks = [b["type"] for a in r.of_type("assistant") for b in a["message"]["content"]]
    assert ("thinking" in blocks) == (thinking["type"] != "disabled")


@pytest.mark.parametrize("args, env, displays, shown", [
    ((), None, ["updates"], "A progress note."),
    (("--thinking-display", "summarized"), None, ["summarized"], "The full reasoning."),
    # `omitted` is replaced by `updates` unless the variable turns updates off.
    (("--thinking-display", "omitted"), None, ["updates"], "A progress note."),
    (("--thinking-display", "omitted"), {"CLAUDE_CODE_THINKING_DISPLAY_UPDATES": "0"},
     ["omitted"], ""),
    # Refused (400) twice, then asked again with no display at all.
    (("--thinking-display", "highlights"), None, ["highlights", "highlights", None],
     "The full reasoning."),
])
def test_thinking_display_is_what_the_request_asks_and_stdout_carries_what_comes_back(
        upstream, args, env, displays, shown) -> None:
    r = run(upstream, "sonnet", args, env)
    assert [(t or {}).get("display") for t in sent(upstream, "thinking")] == displays
    assert thinking_text(r) == shown                # the CLI forwards the deltas as they come
    (block,) = [b for a in r.of_type("assistant") for b in a["message"]["content"]
                if b["type"] == "thinking"]
    assert block["thinking"] == shown and block["signature"].startswith("sig_standin_")
    assert r.result["usage"]["output_tokens_details"] == {"thinking_tokens": 7}


def test_thinking_display_on_a_budgeted_model(upstream) -> None:
    r = run(upstream, "claude-sonnet-4-5", ("--thinking-display", "summarized"))
    assert sent(upstream, "thinking") == [{"type": "enabled", "budget_tokens": 31999,
                                           "display": "summarized"}]
    assert thinking_text(r) == "The full reasoning."
