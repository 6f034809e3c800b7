"""OpenAI's reasoning settings -> the CLI's (measured with CLI 2.1.332; docs/standin.md,
"Thinking").

`reasoning_effort` becomes `--effort`, which the CLI sends as `output_config.effort` to the
models that support it (5.x: every level; claude-opus-4-5: up to `high`; claude-sonnet-4-5 and
claude-haiku-4-5: none, so it is ignored there). OpenAI has two levels below Claude's lowest:
`minimal` is `low`, and `none` is `low` with thinking turned off, which the CLI can do only for
models with budgeted thinking (4.x); adaptive thinking (5.x) stays on.

Showing the thinking is the client's ask (`include_reasoning`, or the server's default): the CLI
then runs with `--thinking-display summarized`, so the API sends its summary of the thinking,
which the client gets as `reasoning_content`. Without the ask the CLI keeps its own default
(`updates`): the same request upstream as before, and no thinking text reaches the client.
"""

from __future__ import annotations

from dataclasses import dataclass

# OpenAI's ReasoningEffort -> (--effort, --thinking).
EFFORTS: dict[str, tuple[str, str | None]] = {
    "none": ("low", "disabled"),
    "minimal": ("low", None),
    "low": ("low", None),
    "medium": ("medium", None),
    "high": ("high", None),
    "xhigh": ("xhigh", None),
    "max": ("max", None),
}
# What the API shows when a client asked to see the thinking.
SHOWN_DISPLAY = "summarized"


@dataclass(frozen=True)
class Reasoning:
    """What one request asks of Claude's thinking."""
    effort: str | None = None            # --effort; None: the model's default
    thinking: str | None = None          # --thinking; None: the CLI's default
    thinking_display: str | None = None  # --thinking-display; None: the CLI's default
    show: bool = False                   # the client gets reasoning_content

    @classmethod
    def of(cls, reasoning_effort: str | None, show: bool) -> "Reasoning":
        effort, thinking = EFFORTS[reasoning_effort] if reasoning_effort else (None, None)
        return cls(effort, thinking, SHOWN_DISPLAY if show else None, show)
