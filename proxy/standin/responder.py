"""The backend: given a scenario and a parsed request, decide what the stand-in answers.

No HTTP here (that is `server.py`) and no wire format (that is `wire.py`). Ids come from a hash of
the scenario name and the scenario's call index, so re-running the same scenario gives the same
ids and the CLI's stdout is reproducible.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from typing import Any

from .cache import CacheUsage
from .scenario import Scenario
from .wire import Block, Message, TextBlock, ThinkingBlock, ToolUseBlock, Usage, error_envelope

_REMINDER = "<system-reminder>"


@dataclass(frozen=True)
class Failure:
    """Answer with an HTTP error status and a JSON body."""

    status: int
    headers: dict[str, str]
    body: dict[str, Any]


@dataclass(frozen=True)
class Answer:
    """Answer with a message (streamed as SSE when the request asked for `stream: true`)."""

    message: Message
    request_id: str


Reply = Failure | Answer


@dataclass
class CallCounter:
    """Per-scenario counters; the server mutates them under its lock."""

    calls: int = 0
    failures: int = 0


def stable_id(prefix: str, scenario_name: str, call_index: int, length: int = 24) -> str:
    digest = hashlib.sha256(f"{scenario_name}\0{call_index}".encode()).hexdigest()
    return f"{prefix}{digest[:length]}"


def invalid_request(body: dict[str, Any]) -> str | None:
    """What the real API refuses in every request, as its 400 message says it; None if nothing.

    Empty and whitespace-only text blocks in `messages` (the messages as the API words them).
    Which characters the API counts as whitespace is not documented: Unicode's are used here.
    """
    thinking = body.get("thinking")
    if isinstance(thinking, dict) and thinking.get("display") == "highlights":
        # The CLI's own help: the API takes `highlights` only from sessions Anthropic hosts.
        return "thinking.display: 'highlights' is not available for this request"
    for message in body.get("messages") or []:
        content = message.get("content") if isinstance(message, dict) else None
        blocks = [{"type": "text", "text": content}] if isinstance(content, str) else content
        for block in blocks if isinstance(blocks, list) else []:
            if isinstance(block, dict) and block.get("type") == "text" \
                    and isinstance(block.get("text"), str):
                if not block["text"]:
                    return "messages: text content blocks must be non-empty"
                if not block["text"].strip():
                    return "messages: text content blocks must contain non-whitespace text"
    return None


def thinking_text(scenario: Scenario, thinking: Any) -> str | None:
    """The text of the thinking block the request's `thinking` setting gets; None: no block.

    As the API: none when thinking is `disabled`; `display: omitted` keeps the block and its
    signature but not the text; `updates` shows the scenario's progress notes. A request with no
    `thinking` setting (the CLI always sends one) gets the text, so direct test requests need not
    name one (docs/standin.md, "Thinking")."""
    if scenario.thinking is None:
        return None
    thinking = thinking if isinstance(thinking, dict) else {}
    if thinking.get("type") == "disabled":
        return None
    display = thinking.get("display")
    if display == "omitted":
        return ""
    if display == "updates" and scenario.thinking_updates is not None:
        return scenario.thinking_updates
    return scenario.thinking


def should_fail(scenario: Scenario, model: str, failures_so_far: int) -> bool:
    if scenario.fail_status is None:
        return False
    if scenario.fail_models is not None and model not in scenario.fail_models:
        return False
    return scenario.fail_count is None or failures_so_far < scenario.fail_count


def failure(scenario: Scenario, request_id: str) -> Failure:
    assert scenario.fail_status is not None
    headers = {"request-id": request_id, **scenario.fail_headers}
    body = scenario.fail_body if scenario.fail_body is not None else error_envelope(scenario.fail_status)
    return Failure(status=scenario.fail_status, headers=headers, body=body)


def answer(scenario: Scenario, scenario_name: str, call_index: int, body: dict[str, Any],
           cache_usage: CacheUsage | None = None) -> Answer:
    """The message for a successful call: a tool_use turn, or the text (after a tool_result) turn.

    With `cache_usage` (prompt caching modelled) the input and cache counts are those; otherwise
    they are the scenario's fixed numbers."""
    model = str(body.get("model", ""))
    messages = body.get("messages") or []
    tool_results = last_tool_results(messages)
    msg_id = stable_id("msg_standin_", scenario_name, call_index)
    values = {"echo": last_user_text(messages), "model": model, "tool_result": "\n".join(tool_results)}

    blocks: list[Block] = []
    shown = thinking_text(scenario, body.get("thinking"))
    if shown is not None:
        blocks.append(ThinkingBlock(shown, stable_id("sig_standin_", scenario_name, call_index, 32)))
    calls = scenario.calls
    wanted = scenario.tool_use_when is None or scenario.tool_use_when in values["echo"]
    failed = last_tool_result_failed(messages)
    again = (scenario.tool_use_on_error or scenario.tool_use_retry is not None) and failed
    if scenario.tool_use_retry is not None and failed:
        calls = (scenario.tool_use_retry,)
    if calls and (not tool_results or again) and wanted:
        # First turn of a tool scenario: ask for the tools; the CLI answers with tool_results.
        for j, call in enumerate(calls):
            if call.text:
                blocks.append(TextBlock(_fill(call.text, values)))
            # Ids that are not prefixes of each other, as the API's random ones (the CLI
            # mixes up a call whose id starts with another call's id: measured).
            # Of the API's own form (toolu_01 and letters and digits): clients rely on it (one
            # strips every character but letters and digits, and the proxy restores the `_`).
            tool_id = stable_id("toolu_01", scenario_name, call_index, 22) if j == 0 else \
                stable_id("toolu_01", f"{scenario_name}/{j}", call_index, 22)
            blocks.append(ToolUseBlock(tool_id, call.name, call.input))
        stop_reason, stop_sequence = "tool_use", None
    else:
        template = scenario.after_tool_text if calls and tool_results else scenario.reply_text
        blocks.append(TextBlock(_fill(template, values)))
        stop_reason = scenario.stop_reason
        stop_sequence = scenario.stop_sequence if stop_reason == "stop_sequence" else None

    # No thinking block, no thinking tokens (thinking disabled).
    thinking_tokens = scenario.thinking_tokens
    if shown is None and thinking_tokens is not None:
        thinking_tokens = 0
    if cache_usage is None:
        usage = Usage(
            input_tokens=scenario.input_tokens,
            cache_creation_input_tokens=scenario.cache_creation_input_tokens,
            cache_read_input_tokens=scenario.cache_read_input_tokens,
            output_tokens=scenario.output_tokens,
            thinking_tokens=thinking_tokens,
        )
    else:
        usage = Usage(
            input_tokens=cache_usage.input_tokens,
            cache_creation_input_tokens=cache_usage.cache_creation_input_tokens,
            cache_read_input_tokens=cache_usage.cache_read_input_tokens,
            output_tokens=scenario.output_tokens,
            cache_creation=(cache_usage.ephemeral_5m_input_tokens, cache_usage.ephemeral_1h_input_tokens),
            thinking_tokens=thinking_tokens,
        )
    message = Message(msg_id, model, tuple(blocks), stop_reason, stop_sequence, usage)
    return Answer(message=message, request_id=stable_id("req_standin_", scenario_name, call_index))


def user_texts(messages: list[Any]) -> list[str]:
    """The text of every user message (reminder blocks and tool results left out), in order."""
    return [text for m in messages if _is_user(m) for text in [_text_of(m.get("content"))] if text]


def last_user_text(messages: list[Any]) -> str:
    texts = user_texts(messages)
    return texts[-1] if texts else ""


def last_tool_result_failed(messages: list[Any]) -> bool:
    users = [m for m in messages if _is_user(m)]
    if not users or not isinstance(users[-1].get("content"), list):
        return False
    return any(isinstance(b, dict) and b.get("type") == "tool_result" and b.get("is_error")
               for b in users[-1]["content"])


def last_tool_results(messages: list[Any]) -> list[str]:
    """The tool_result texts of the last user message (empty when it carries none)."""
    users = [m for m in messages if _is_user(m)]
    if not users or not isinstance(users[-1].get("content"), list):
        return []
    results = []
    for block in users[-1]["content"]:
        if isinstance(block, dict) and block.get("type") == "tool_result":
            content = block.get("content")
            results.append(content if isinstance(content, str) else _text_of(content, keep_reminders=True))
    return results


def _is_user(message: Any) -> bool:
    return isinstance(message, dict) and message.get("role") == "user"


def _text_of(content: Any, keep_reminders: bool = False) -> str:
    if isinstance(content, str):
        return content
    if not isinstance(content, list):
        return ""
    parts = [
        b["text"]
        for b in content
        if isinstance(b, dict) and b.get("type") == "text" and isinstance(b.get("text"), str)
        and (keep_reminders or not b["text"].lstrip().startswith(_REMINDER))
    ]
    return "\n".join(parts)


def _fill(template: str, values: dict[str, str]) -> str:
    # format_map on a fixed mapping: an unknown placeholder is a scenario bug, reported clearly.
    try:
        return template.format_map(values)
    except (KeyError, IndexError, ValueError) as exc:
        raise ValueError(f"bad placeholder in scenario text {template!r}: {exc}") from exc

