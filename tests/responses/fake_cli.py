"""A runner that answers each invocation with CLI stdout made for it, in the shapes the pinned
CLI prints (fixtures/cassettes): an `init` line listing exactly the run's tools (and the
StructuredOutput tool for a schema), then the steps a test scripts: text, calls of the
client's tools, structured output, a stop reason, a failure. The real translator, CLIRun and
referee read it; only the process is fake. For the HTTP-level tests of the Responses layer,
where the live tier (test_live.py) would be slow to reach every branch.
"""

from __future__ import annotations

import json
import threading
from dataclasses import dataclass, field
from typing import Any, Callable, Sequence

from proxy.claude.invocation import Invocation
from tests.support.runners import LinesProcess

SESSION = "session-fake"


@dataclass(frozen=True)
class Text:
    text: str
    pieces: int = 3          # deltas it streams in


@dataclass(frozen=True)
class Call:
    name: str                # the chat-side tool name (the client's, or a namespaced alias)
    input: dict[str, Any] = field(default_factory=dict)
    id: str = "toolu_fake00000000000000000001"


@dataclass(frozen=True)
class Thinking:
    """A thinking block: deltas (unless `display` is omitted), its signature, then the CLI's
    `assistant` line with the whole block, as the pinned CLI prints them."""
    text: str
    signature: str = "sig_fake_0001"
    pieces: int = 2


@dataclass(frozen=True)
class Structured:
    value: Any


@dataclass(frozen=True)
class Stop:
    reason: str = "end_turn"     # end_turn | max_tokens | tool_use (after calls)


@dataclass(frozen=True)
class Crash:
    """The CLI dies here: stdout ends without a result line (exit 1)."""


Step = Any
Script = Callable[[Invocation], Sequence[Step]]


def _line(obj: dict[str, Any]) -> str:
    return json.dumps(obj, separators=(",", ":"))


def _event(event: dict[str, Any]) -> str:
    return _line({"type": "stream_event", "event": event, "session_id": SESSION,
                  "parent_tool_use_id": None, "uuid": "u"})


def _pieces(text: str, n: int) -> list[str]:
    size = max(1, -(-len(text) // max(1, n)))
    return [text[i:i + size] for i in range(0, len(text), size)] or [""]


def lines_for(invocation: Invocation, steps: Sequence[Step], usage: tuple[int, int] = (10, 5)
              ) -> tuple[list[str], int]:
    tools = sorted(t.upstream_name for t in invocation.tools)
    if invocation.json_schema is not None:
        tools = sorted([*tools, "StructuredOutput"])
    servers = [{"name": "c", "status": "connected"}] if invocation.tools else []
    lines = [_line({"type": "system", "subtype": "init", "cwd": "/tmp/x", "session_id": SESSION,
                    "tools": tools, "mcp_servers": servers, "model": "claude-sonnet-5-5",
                    "permissionMode": "default"}),
    ]
    if steps and isinstance(steps[0], Crash):  # before the upstream began answering
        return lines, 1
    lines += [_event({"type": "message_start", "message": {
                 "id": "msg_fake", "type": "message", "role": "assistant",
                 "model": "claude-sonnet-5-5", "content": [], "stop_reason": None,
                 "usage": {"input_tokens": usage[0], "cache_creation_input_tokens": 0,
                           "cache_read_input_tokens": 0, "output_tokens": 1}}})]
    by_name = {t.name: t for t in invocation.tools}
    structured = None
    for index, step in enumerate(steps):
        if isinstance(step, Thinking):
            lines.append(_event({"type": "content_block_start", "index": index, "content_block": {
                "type": "thinking", "thinking": "", "signature": ""}}))
            if invocation.thinking_display == "summarized":  # else the CLI's `updates`: none
                for piece in _pieces(step.text, step.pieces):
                    lines.append(_event({"type": "content_block_delta", "index": index,
                                         "delta": {"type": "thinking_delta", "thinking": piece}}))
            lines.append(_event({"type": "content_block_delta", "index": index, "delta": {
                "type": "signature_delta", "signature": step.signature}}))
            shown = step.text if invocation.thinking_display == "summarized" else ""
            lines.append(_line({"type": "assistant", "message": {
                "id": "msg_fake", "type": "message", "role": "assistant",
                "model": "claude-sonnet-5-5", "content": [{
                    "type": "thinking", "thinking": shown, "signature": step.signature}]},
                "session_id": SESSION, "parent_tool_use_id": None, "uuid": "u"}))
            lines.append(_event({"type": "content_block_stop", "index": index}))
        elif isinstance(step, Text):
            lines.append(_event({"type": "content_block_start", "index": index,
                                 "content_block": {"type": "text", "text": ""}}))
            for piece in _pieces(step.text, step.pieces):
                lines.append(_event({"type": "content_block_delta", "index": index,
                                     "delta": {"type": "text_delta", "text": piece}}))
            lines.append(_event({"type": "content_block_stop", "index": index}))
        elif isinstance(step, Call):
            tool = by_name[step.name]
            arguments = json.dumps(step.input)
            lines.append(_event({"type": "content_block_start", "index": index, "content_block": {
                "type": "tool_use", "id": step.id, "name": tool.upstream_name, "input": {}}}))
            for piece in _pieces(arguments, 3):
                lines.append(_event({"type": "content_block_delta", "index": index,
                                     "delta": {"type": "input_json_delta",
                                               "partial_json": piece}}))
            lines.append(_event({"type": "content_block_stop", "index": index}))
        elif isinstance(step, Structured):
            structured = step.value
            text = json.dumps(step.value)
            lines.append(_event({"type": "content_block_start", "index": index, "content_block": {
                "type": "tool_use", "id": "toolu_structured", "name": "StructuredOutput",
                "input": {}}}))
            for piece in _pieces(text, 3):
                lines.append(_event({"type": "content_block_delta", "index": index,
                                     "delta": {"type": "input_json_delta",
                                               "partial_json": piece}}))
            lines.append(_event({"type": "content_block_stop", "index": index}))
        elif isinstance(step, Crash):
            return lines, 1
        elif isinstance(step, Stop):
            lines.append(_event({"type": "message_delta", "delta": {
                "stop_reason": step.reason, "stop_sequence": None},
                "usage": {"output_tokens": usage[1]}}))
            if step.reason != "end_turn":
                return lines, 0
            lines.append(_event({"type": "message_stop"}))
    result: dict[str, Any] = {
        "type": "result", "subtype": "success", "is_error": False, "stop_reason": "end_turn",
        "session_id": SESSION, "result": "", "usage": {
            "input_tokens": usage[0], "cache_creation_input_tokens": 0,
            "cache_read_input_tokens": 0, "output_tokens": usage[1]}}
    if structured is not None:
        result["structured_output"] = structured
    lines.append(_line(result))
    return lines, 0


def text(answer: str) -> Script:
    return lambda invocation: [Text(answer), Stop()]


class ScriptedRunner:
    """A Runner: every run plays `script(invocation)`; the invocations are recorded."""

    def __init__(self, script: Script = text("Hello from the fake CLI.")) -> None:
        self.script = script
        self.invocations: list[Invocation] = []
        self.processes: list[LinesProcess] = []
        self._lock = threading.Lock()

    def start(self, invocation: Invocation) -> LinesProcess:
        lines, returncode = lines_for(invocation, self.script(invocation))
        process = LinesProcess(lines, returncode, "boom" if returncode else "")
        with self._lock:
            self.invocations.append(invocation)
            self.processes.append(process)
        return process

    def close(self) -> None:
        for process in self.processes:
            process.close()
