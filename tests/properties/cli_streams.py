"""A hypothesis strategy for what `claude -p --output-format stream-json --verbose
--include-partial-messages` prints: whole CLI runs, line by line, in the shapes recorded in
fixtures/cassettes (CLI 2.1.332).

A run is an `init` line, then one or two model calls (a second one after a `tool_use` the CLI
answered with a tool error), each streamed as `message_start`, content blocks (text with
arbitrary unicode split into arbitrary deltas, thinking, tool_use), `assistant` lines, a
`message_delta` with the stop reason and `message_stop`; optionally a call abandoned mid-text
(a broken upstream stream), perhaps retried with a stream that breaks too, and answered again
without streaming, with a text that continues the abandoned one or not; retries and status lines; and an ending: a `result` line (success
or an API error), or none at all (the CLI crashed or was killed). A `max_tokens` stop ends a
call; the CLI would continue, the proxy does not read on.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Any

from hypothesis import strategies as st

MODEL = "claude-sonnet-5-5"
SESSION = "session-1"

# Any text JSON can carry, split anywhere: the pieces are what the deltas carry.
texts = st.text(max_size=40)
pieces = st.lists(texts, max_size=6)


@dataclass
class CLIRun:
    lines: list[str]
    returncode: int
    blocks: list[str] = field(default_factory=list)   # each streamed text block's text
    retried: str | None = None                        # the answer to an abandoned call
    outcome: str = "success"                          # success | api_error | crash | length
    stop_reason: str = "end_turn"                     # of the last model call
    usage: tuple[int, int] = (0, 0)                   # input, output tokens of the whole run

    @property
    def content(self) -> str:
        """What the answer says, if it succeeds: the text blocks, a blank line between them
        (the proxy's rule), or the retried answer that replaced an abandoned one."""
        if self.retried is not None:
            return self.retried
        return "\n\n".join(b for b in self.blocks if b)


def _line(obj: dict[str, Any]) -> str:
    return json.dumps(obj, separators=(",", ":"))


def _event(event: dict[str, Any], **extra: Any) -> str:
    return _line({"type": "stream_event", "event": event, "session_id": SESSION,
                  "parent_tool_use_id": None, "uuid": "u", **extra})


def _assistant(message_id: str, block: dict[str, Any], **extra: Any) -> str:
    return _line({"type": "assistant", "message": {
        "id": message_id, "type": "message", "role": "assistant", "model": MODEL,
        "content": [block], "stop_reason": None, "usage": {}}, "session_id": SESSION,
        "parent_tool_use_id": None, **extra})


def _usage(input_tokens: int, output_tokens: int, cache_read: int = 0) -> dict[str, int]:
    return {"input_tokens": input_tokens, "cache_creation_input_tokens": 0,
            "cache_read_input_tokens": cache_read, "output_tokens": output_tokens}


@st.composite
def _text_block(draw: st.DrawFn, index: int, message_id: str, run: CLIRun) -> list[str]:
    parts = draw(pieces)
    run.blocks.append("".join(parts))
    lines = [_event({"type": "content_block_start", "index": index,
                     "content_block": {"type": "text", "text": ""}})]
    lines += [_event({"type": "content_block_delta", "index": index,
                      "delta": {"type": "text_delta", "text": p}}) for p in parts]
    if "".join(parts):
        lines.append(_assistant(message_id, {"type": "text", "text": "".join(parts)}))
    lines.append(_event({"type": "content_block_stop", "index": index}))
    return lines


@st.composite
def _thinking_block(draw: st.DrawFn, index: int, message_id: str) -> list[str]:
    thoughts = draw(pieces)
    lines = [_event({"type": "content_block_start", "index": index,
                     "content_block": {"type": "thinking", "thinking": "", "signature": ""}})]
    for thought in thoughts:
        lines.append(_line({"type": "system", "subtype": "thinking_tokens", "session_id": SESSION}))
        lines.append(_event({"type": "content_block_delta", "index": index,
                             "delta": {"type": "thinking_delta", "thinking": thought}}))
    lines.append(_event({"type": "content_block_delta", "index": index,
                         "delta": {"type": "signature_delta", "signature": "sig"}}))
    lines.append(_assistant(message_id, {"type": "thinking", "thinking": "".join(thoughts),
                                         "signature": "sig"}))
    lines.append(_event({"type": "content_block_stop", "index": index}))
    return lines


def _tool_use_block(index: int, message_id: str) -> list[str]:
    return [
        _event({"type": "content_block_start", "index": index, "content_block": {
            "type": "tool_use", "id": "toolu_1", "name": "Bash", "input": {}}}),
        _event({"type": "content_block_delta", "index": index,
                "delta": {"type": "input_json_delta", "partial_json": "{\"command\": \"ls\"}"}}),
        _assistant(message_id, {"type": "tool_use", "id": "toolu_1", "name": "Bash",
                                "input": {"command": "ls"}}),
        _line({"type": "user", "message": {"role": "user", "content": [{
            "type": "tool_result", "content": "<tool_use_error>Error: No such tool available: "
            "Bash.</tool_use_error>", "is_error": True, "tool_use_id": "toolu_1"}]},
            "session_id": SESSION, "parent_tool_use_id": None}),
        _event({"type": "content_block_stop", "index": index}),
    ]


@st.composite
def _call(draw: st.DrawFn, number: int, run: CLIRun, stop_reason: str) -> tuple[list[str], int, int]:
    """One streamed model call: (lines, input tokens, output tokens)."""
    message_id = f"msg_{number}"
    input_tokens = draw(st.integers(0, 5000))
    output_tokens = draw(st.integers(0, 5000))
    lines = [_line({"type": "system", "subtype": "status", "status": "requesting",
                    "session_id": SESSION})]
    for attempt in range(draw(st.integers(0, 2))):
        lines.append(_line({"type": "system", "subtype": "api_retry", "attempt": attempt + 1,
                            "error_status": 500, "error": "server_error",
                            "retry_delay_ms": 500, "session_id": SESSION}))
    lines.append(_event({"type": "message_start", "message": {
        "id": message_id, "type": "message", "role": "assistant", "model": MODEL,
        "content": [], "stop_reason": None, "usage": _usage(input_tokens, 1)}}))
    kinds = draw(st.lists(st.sampled_from(["text", "thinking"]), min_size=0, max_size=3))
    for index, kind in enumerate(kinds):
        if kind == "text":
            lines += draw(_text_block(index, message_id, run))
        else:
            lines += draw(_thinking_block(index, message_id))
    if stop_reason == "tool_use":
        lines += _tool_use_block(len(kinds), message_id)
    lines.append(_event({"type": "message_delta", "delta": {"stop_reason": stop_reason,
                                                             "stop_sequence": None},
                         "usage": {"output_tokens": output_tokens}}))
    lines.append(_event({"type": "message_stop"}))
    return lines, input_tokens, output_tokens


@st.composite
def _abandoned_call(draw: st.DrawFn, number: int, run: CLIRun) -> tuple[list[str], int, int]:
    """A call whose stream broke after some text, answered again without streaming."""
    message_id, retry_id = f"msg_{number}", f"msg_{number}_retry"
    parts = draw(st.lists(texts, min_size=1, max_size=4))
    old = "".join(parts)
    new = draw(st.one_of(texts.map(lambda more: old + more), texts))
    run.retried = new
    lines = [
        _line({"type": "system", "subtype": "status", "status": "requesting", "session_id": SESSION}),
        _event({"type": "message_start", "message": {
            "id": message_id, "type": "message", "role": "assistant", "model": MODEL,
            "content": [], "stop_reason": None, "usage": _usage(100, 1)}}),
        _event({"type": "content_block_start", "index": 0,
                "content_block": {"type": "text", "text": ""}}),
        *[_event({"type": "content_block_delta", "index": 0,
                  "delta": {"type": "text_delta", "text": p}}) for p in parts],
        _event({"type": "content_block_stop", "index": 0}),
        _event({"type": "message_stop"}, abandoned_blocks={"api_message_id": message_id,
                                                           "from_block_index": 0}),
    ]
    # The CLI's first retry may stream and break too: the same beginning again (recorded with
    # 2.1.332, upstream_dropped_mid_stream), or other text, before the answer that stays.
    again = draw(st.one_of(st.none(), st.just(parts), st.lists(texts, min_size=1, max_size=4)))
    if again is not None:
        again_id = f"msg_{number}_again"
        lines += [
            _event({"type": "message_start", "message": {
                "id": again_id, "type": "message", "role": "assistant", "model": MODEL,
                "content": [], "stop_reason": None, "usage": _usage(100, 1)}}),
            _event({"type": "content_block_start", "index": 0,
                    "content_block": {"type": "text", "text": ""}}),
            *[_event({"type": "content_block_delta", "index": 0,
                      "delta": {"type": "text_delta", "text": p}}) for p in again],
            _event({"type": "content_block_stop", "index": 0}),
            _event({"type": "message_stop"}, abandoned_blocks={"api_message_id": again_id,
                                                               "from_block_index": 0}),
        ]
    if new:
        lines.append(_assistant(retry_id, {"type": "text", "text": new}))
    return lines, 200, draw(st.integers(0, 500))


@st.composite
def cli_runs(draw: st.DrawFn) -> CLIRun:
    run = CLIRun(lines=[], returncode=0)
    run.lines.append(_line({"type": "system", "subtype": "init", "cwd": "/tmp/x",
                            "session_id": SESSION, "tools": [], "mcp_servers": [],
                            "model": MODEL, "permissionMode": "default"}))
    calls = draw(st.sampled_from(["none", "one", "tool_then_answer", "abandoned_then_answered"]))
    total_in = total_out = 0
    if calls == "none":  # the upstream refused (or the CLI died) before any answer began
        run.lines.append(_line({"type": "system", "subtype": "status", "status": "requesting",
                                "session_id": SESSION}))
        for attempt in range(draw(st.integers(0, 2))):
            run.lines.append(_line({"type": "system", "subtype": "api_retry",
                                    "attempt": attempt + 1, "error_status": 529,
                                    "error": "overloaded", "retry_delay_ms": 1500,
                                    "session_id": SESSION}))
    elif calls == "tool_then_answer":
        lines, i, o = draw(_call(1, run, "tool_use"))
        run.lines += lines
        total_in, total_out = total_in + i, total_out + o
    if calls == "none":
        pass
    elif calls == "abandoned_then_answered":
        lines, i, o = draw(_abandoned_call(1, run))
        run.lines += lines
        total_in, total_out = total_in + i, total_out + o
    else:
        last_stop = draw(st.sampled_from(["end_turn", "stop_sequence", "max_tokens", "refusal"]))
        lines, i, o = draw(_call(2, run, last_stop))
        run.lines += lines
        total_in, total_out = total_in + i, total_out + o
        run.stop_reason = last_stop
        if last_stop == "max_tokens":
            run.outcome = "length"
    run.usage = (total_in, total_out)

    ending = draw(st.sampled_from(["api_error", "crash", "killed"] if calls == "none" else
                                  ["result", "result", "api_error", "crash", "killed"]))
    if draw(st.booleans()):  # a line that is not stream-json (a warning on stdout)
        at = draw(st.integers(1, len(run.lines)))
        run.lines.insert(at, draw(st.sampled_from(["", "Warning: something", "{not json"])))
    if run.outcome == "length" and ending != "result":
        # The proxy stops at the max_tokens stop: whatever follows is never read.
        ending = "result"
    if ending == "result":
        run.lines.append(_line({
            "type": "result", "subtype": "success", "is_error": False,
            "result": run.content.rsplit("\n\n", 1)[-1], "stop_reason": run.stop_reason,
            "session_id": SESSION, "num_turns": 1,
            "usage": {**_usage(total_in, total_out), "output_tokens_details": {
                "thinking_tokens": 0}}}))
    elif ending == "api_error":
        status = draw(st.sampled_from([400, 401, 429, 500, 529]))
        run.lines.append(_line({
            "type": "result", "subtype": "success", "is_error": True, "api_error_status": status,
            "result": f"API Error: {status} something went wrong", "session_id": SESSION,
            "usage": _usage(0, 0)}))
        run.returncode = 1
        run.outcome = "api_error"
    else:
        run.returncode = 1 if ending == "crash" else 143
        run.outcome = "crash"
    return run
