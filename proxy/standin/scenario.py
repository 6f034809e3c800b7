"""What the stand-in upstream answers: one `Scenario` per behaviour.

A scenario is plain data so catalogue files (JSON or YAML) can describe it. Everything that
reaches the CLI's stdout is fixed by the scenario (text, usage numbers, ids derived from the
scenario name), never by the request body, which carries volatile paths and dates; the one
exception is opt-in: `prompt_caching` derives the input and cache usage from the request.
"""

from __future__ import annotations

import dataclasses
import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Mapping

STOP_REASONS = ("end_turn", "max_tokens", "stop_sequence", "tool_use", "pause_turn", "refusal")


@dataclass(frozen=True)
class ToolUse:
    """A `tool_use` block the first call answers with (stop_reason `tool_use`).

    The CLI then runs (or, with `--tools ""`, refuses) the tool and makes a second call whose
    last user message carries the `tool_result`; that call gets `Scenario.after_tool_text`.
    """

    name: str
    input: dict[str, Any] = field(default_factory=dict)
    text: str = ""  # optional text block before the tool_use block ("Let me run it.")

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> "ToolUse":
        _reject_unknown(cls, data)
        return cls(name=data["name"], input=dict(data.get("input") or {}), text=data.get("text", ""))


@dataclass(frozen=True)
class Scenario:
    """One upstream behaviour. All times are in seconds.

    Text placeholders (`reply_text`, `after_tool_text`): `{echo}` is the text of the last user
    message (text blocks joined by newlines, `<system-reminder>` blocks left out), `{model}` the
    requested model id, and in `after_tool_text` also `{tool_result}` (the tool_result's text).
    Literal braces are written `{{` and `}}`.
    """

    # --- the answer ---------------------------------------------------------------------------
    reply_text: str = "Hello from the stand-in."
    split: int = 6  # characters per text/thinking/input_json delta (>= 1)
    # A thinking block (thinking_delta + signature_delta) first, as the request's `thinking` asks:
    # none when it is absent or `disabled`; this text with display `summarized` (or none given).
    thinking: str | None = None
    # What display `updates` shows (the API's short progress notes; "" hides the reasoning).
    # None: the same as `summarized`, so scenarios that predate display modes are unchanged.
    thinking_updates: str | None = None
    # Reported as usage.output_tokens_details.thinking_tokens (the thinking-token-count beta
    # the CLI sends); None: not reported.
    thinking_tokens: int | None = None
    tool_use: ToolUse | None = None
    # Several calls in one message (parallel calls; `tool_use`, if set, comes first).
    tool_uses: tuple[ToolUse, ...] = ()
    # Call the tools only when the last user message's text contains this (e.g. a steering
    # message); otherwise answer `reply_text`. None: always call them (on a turn without results).
    tool_use_when: str | None = None
    # After an error tool_result (a refused call), call the tools again instead of answering
    # `after_tool_text`: a model that keeps making the same mistake.
    tool_use_on_error: bool = False
    # After an error tool_result, call this instead (a model that corrects its call).
    tool_use_retry: ToolUse | None = None
    after_tool_text: str = "Tool result: {tool_result}"
    stop_reason: str = "end_turn"  # of the final answer; a tool_use answer always says tool_use
    stop_sequence: str | None = None  # reported when stop_reason == "stop_sequence"

    # --- fixed usage (deterministic: never derived from the request body) ----------------------
    input_tokens: int = 100
    cache_creation_input_tokens: int = 0
    cache_read_input_tokens: int = 0
    output_tokens: int = 12
    # Opt-in: report input and cache tokens from the upstream's prompt-cache model instead of the
    # numbers above (`output_tokens` stays fixed). They then depend on the request body, so a
    # scenario that records fixtures keeps this off. See docs/standin.md "Prompt caching".
    prompt_caching: bool = False

    # --- failures: answer an HTTP error instead of a message -------------------------------------
    fail_status: int | None = None  # 400, 401, 403, 404, 413, 429, 500, 529, ...
    fail_count: int | None = None  # fail the first N matching calls then succeed; None = always
    fail_models: tuple[str, ...] | None = None  # only calls for these models fail (fallback tests)
    fail_headers: dict[str, str] = field(default_factory=dict)  # e.g. {"retry-after": "1"}
    fail_body: dict[str, Any] | None = None  # default: the Anthropic error envelope for the status

    # --- response headers on a successful answer (e.g. Anthropic's unified rate-limit headers,
    # `anthropic-ratelimit-unified-*`, which the CLI turns into `rate_limit_event` lines) --------
    answer_headers: dict[str, str] = field(default_factory=dict)

    # --- timing and broken streams ---------------------------------------------------------------
    first_byte_delay: float = 0.0  # before the status line
    chunk_delay: float = 0.0  # between SSE events
    hang: bool = False  # read the request, then never answer (until the client or server leaves)
    hang_after_events: int | None = None  # send N SSE events, then stall without closing
    abort_after_events: int | None = None  # send N SSE events, then drop the TCP connection
    error_event_after: int | None = None  # send N SSE events, then `event: error` (overloaded)

    # --- selection -------------------------------------------------------------------------------
    when_prompt_contains: str | None = None  # serve requests at the root URL whose user text has it

    def __post_init__(self) -> None:
        if self.split < 1:
            raise ValueError("split must be >= 1")
        if self.stop_reason not in STOP_REASONS:
            raise ValueError(f"stop_reason must be one of {STOP_REASONS}, not {self.stop_reason!r}")
        if self.fail_status is not None and not 400 <= self.fail_status <= 599:
            raise ValueError("fail_status must be an HTTP error status (400-599)")
        for name in ("fail_count", "hang_after_events", "abort_after_events", "error_event_after",
                     "thinking_tokens"):
            value = getattr(self, name)
            if value is not None and value < 0:
                raise ValueError(f"{name} must be >= 0")
        if self.fail_models is not None and not isinstance(self.fail_models, tuple):
            object.__setattr__(self, "fail_models", tuple(self.fail_models))
        # A placeholder typo should fail when the catalogue loads, not mid-stream.
        sample = {"echo": "", "model": "", "tool_result": ""}
        texts = [self.reply_text, self.after_tool_text] + [t.text for t in self.calls]
        for text in texts:
            try:
                text.format_map(sample)
            except (KeyError, IndexError, ValueError) as exc:
                raise ValueError(f"bad placeholder in {text!r}: {exc!r}") from exc

    @property
    def calls(self) -> tuple[ToolUse, ...]:
        """Every tool call of the scenario's tool_use answer, in order."""
        return ((self.tool_use,) if self.tool_use else ()) + tuple(self.tool_uses)

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> "Scenario":
        """Build from a catalogue entry; unknown keys are an error (typos must not pass silently)."""
        _reject_unknown(cls, data)
        values = dict(data)
        if values.get("tool_use") is not None:
            values["tool_use"] = ToolUse.from_dict(values["tool_use"])
        if values.get("tool_use_retry") is not None:
            values["tool_use_retry"] = ToolUse.from_dict(values["tool_use_retry"])
        if values.get("tool_uses") is not None:
            values["tool_uses"] = tuple(ToolUse.from_dict(t) for t in values["tool_uses"])
        if values.get("fail_models") is not None:
            values["fail_models"] = tuple(values["fail_models"])
        for name in ("fail_headers", "answer_headers"):
            if name in values:
                values[name] = {str(k): str(v) for k, v in (values[name] or {}).items()}
        return cls(**values)

    def to_dict(self) -> dict[str, Any]:
        """The fields that differ from the defaults, JSON-ready (the inverse of `from_dict`)."""
        out: dict[str, Any] = {}
        for f in dataclasses.fields(self):
            value = getattr(self, f.name)
            default = f.default_factory() if f.default_factory is not dataclasses.MISSING else f.default
            if value == default:
                continue
            if isinstance(value, ToolUse):
                value = dataclasses.asdict(value)
            elif isinstance(value, tuple):
                value = [dataclasses.asdict(v) if isinstance(v, ToolUse) else v for v in value]
            out[f.name] = value
        return out

    def replace(self, **changes: Any) -> "Scenario":
        return dataclasses.replace(self, **changes)


def load_catalogue(path: str | Path) -> dict[str, Scenario]:
    """Read `{name: scenario-dict}` from a .json, .yaml or .yml file."""
    path = Path(path)
    text = path.read_text(encoding="utf-8")
    if path.suffix in (".yaml", ".yml"):
        import yaml  # only needed for YAML catalogues

        data = yaml.safe_load(text)
    else:
        data = json.loads(text)
    if not isinstance(data, dict):
        raise ValueError(f"{path}: a catalogue is a mapping of scenario name to scenario")
    return {str(name): Scenario.from_dict(entry or {}) for name, entry in data.items()}


def _reject_unknown(cls: type, data: Mapping[str, Any]) -> None:
    known = {f.name for f in dataclasses.fields(cls)}
    unknown = sorted(set(data) - known)
    if unknown:
        raise ValueError(f"unknown {cls.__name__} field(s): {', '.join(unknown)}")
