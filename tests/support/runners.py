"""Test runners behind the proxy's one seam (proxy/runners/base.py), for generated requests.

Generated requests cannot match a recorded invocation, and replay mode rightly answers them
503 `fixture_not_found`. To put them on the 200 path anyway:

* `wildcard_replay(name)` is the real `ReplayRunner` with a matcher that accepts any
  invocation, so it answers every request with that one recorded cassette;
* `LinesRunner(lines)` plays given stdout lines (recorded or generated) for every run, so a
  property test can drive the real app with any CLI event stream;
* `replay_or(fallback)` is replay mode over every recorded cassette (fixtures/), answering
  what matches no recording from `fallback`: one server for recorded and generated requests.

The wildcard and lines runners record the invocations they were started with, for assertions
on what the proxy asked the CLI to do.
"""

from __future__ import annotations

import threading
from pathlib import Path
from typing import Sequence

from proxy.cassettes.cassette import Cassette
from proxy.cassettes.matcher import Matcher
from proxy.cassettes.persister import CassetteDirectory
from proxy.claude.invocation import Invocation
from proxy.errors import ProxyError
from proxy.runners.base import CLIProcess, ExitStatus, Runner
from proxy.runners.replay import ReplayProcess, ReplayRunner

REPO = Path(__file__).resolve().parents[2]
CASSETTES = REPO / "fixtures" / "cassettes"


def load_cassette(name: str) -> Cassette:
    return CassetteDirectory(CASSETTES).load(name)


def all_cassettes() -> list[Cassette]:
    return CassetteDirectory(CASSETTES).load_all()


def _any_invocation(invocation: Invocation, recorded: object) -> bool:
    return True


class WildcardReplay(ReplayRunner):
    """A ReplayRunner that answers every invocation with one cassette."""

    def __init__(self, cassette: Cassette, timing: str = "fast") -> None:
        super().__init__([cassette], timing=timing, matcher=Matcher([_any_invocation]),
                         source=f"wildcard:{cassette.name}")
        self.invocations: list[Invocation] = []

    def start(self, invocation: Invocation) -> ReplayProcess:
        self.invocations.append(invocation)
        return super().start(invocation)


def wildcard_replay(name: str = "plain_question", timing: str = "fast") -> WildcardReplay:
    return WildcardReplay(load_cassette(name), timing)


class LinesProcess:
    """A finished CLI run: its stdout lines are all there, then it reports its exit."""

    def __init__(self, lines: Sequence[str], returncode: int, stderr: str) -> None:
        self._lines = list(lines)
        self._next = 0
        self._status = ExitStatus(returncode, stderr)
        self.closed = False

    def read_line(self, timeout: float) -> str | None:
        if self.closed or self._next >= len(self._lines):
            raise EOFError
        self._next += 1
        return self._lines[self._next - 1]

    def exit_status(self, timeout: float | None = None) -> ExitStatus:
        return self._status

    def close(self) -> None:
        self.closed = True


class LinesRunner:
    """Plays the same stdout lines for every run (a Runner)."""

    def __init__(self, lines: Sequence[str], returncode: int = 0, stderr: str = "") -> None:
        self.lines = list(lines)
        self.returncode = returncode
        self.stderr = stderr
        self.invocations: list[Invocation] = []
        self.processes: list[LinesProcess] = []
        self._lock = threading.Lock()

    def start(self, invocation: Invocation) -> LinesProcess:
        process = LinesProcess(self.lines, self.returncode, self.stderr)
        with self._lock:
            self.invocations.append(invocation)
            self.processes.append(process)
        return process

    def close(self) -> None:
        for process in self.processes:
            process.close()


class ReplayOr:
    """Replay mode over fixtures/; an invocation no cassette matches goes to `fallback`."""

    def __init__(self, fallback: Runner, replay: ReplayRunner | None = None) -> None:
        self.replay = replay or ReplayRunner.from_directory(CASSETTES, timing="fast")
        self.fallback = fallback
        self.fell_back = 0

    def start(self, invocation: Invocation) -> CLIProcess:
        try:
            return self.replay.start(invocation)
        except ProxyError as exc:
            if exc.code != "fixture_not_found":
                raise
        self.fell_back += 1
        return self.fallback.start(invocation)

    def close(self) -> None:
        try:
            self.replay.close()
        finally:
            self.fallback.close()


def replay_or(fallback: Runner | None = None) -> ReplayOr:
    return ReplayOr(fallback if fallback is not None else wildcard_replay())


# ---------------------------------------------------------------------------- a scripted model


def simple_instance(schema: object) -> object:
    """A small value valid under `schema` (a JSON Schema), or `NO_INSTANCE`: the schema's own
    const, enum, default or examples, else one built from its type and required properties,
    else one of a few plain values. Deterministic, and enough for the schemas fuzzers write."""
    from jsonschema import validators

    try:
        validator = validators.validator_for(schema)(schema)
    except Exception:
        return NO_INSTANCE
    for candidate in _candidates(schema, depth=0):
        try:
            if validator.is_valid(candidate):
                return candidate
        except Exception:  # a schema jsonschema cannot apply (a bad regex, say)
            return NO_INSTANCE
    return NO_INSTANCE


NO_INSTANCE = object()
CALL_A_TOOL = "Call a tool."  # a user turn with this makes the scripted model call one
_PLAIN = ({}, [], "", 0, None, False, "x", 1)


def _candidates(schema: object, depth: int) -> list:
    if not isinstance(schema, dict) or depth > 4:
        return list(_PLAIN)
    found: list = []
    if "const" in schema:
        found.append(schema["const"])
    for key in ("enum", "examples"):
        if isinstance(schema.get(key), list):
            found += schema[key][:3]
    if "default" in schema:
        found.append(schema["default"])
    kinds = schema.get("type") if isinstance(schema.get("type"), list) else [schema.get("type")]
    for kind in kinds:
        if kind == "object" or (kind is None and isinstance(schema.get("properties"), dict)):
            properties = schema.get("properties") if isinstance(schema.get("properties"),
                                                                dict) else {}
            required = [r for r in schema.get("required") or [] if isinstance(r, str)]
            value = {}
            for name in required:
                sub = _candidates(properties.get(name, {}), depth + 1)
                value[name] = sub[0] if sub else None
            found.append(value)
        elif kind == "array":
            found.append([])
        elif kind == "string":
            found += ["", "x" * int(schema.get("minLength") or 1)]
        elif kind in ("integer", "number"):
            found += [schema.get("minimum", 0), 0, 1]
        elif kind == "boolean":
            found.append(True)
        elif kind == "null":
            found.append(None)
    return found + list(_PLAIN)


def _json(obj: object) -> str:
    import json
    return json.dumps(obj, separators=(",", ":"), ensure_ascii=False)


class ScriptedProcess:
    """A CLI run that plays a model which follows the request: it answers a structured-output
    request through the StructuredOutput tool (a value valid under the schema, else it
    declines in prose), answers in text when tools are offered (or calls the first one when
    the user turn says `CALL_A_TOOL`), and calls a tool when the proxy asks for one (`[tool-choice-enforce]` on stdin, or a refused call naming the one to
    call), as the stand-in's model does. Its bridge takes the proxy's answers to held calls."""

    def __init__(self, invocation: Invocation) -> None:
        from collections import deque
        self.invocation = invocation
        self.lines: deque[str] = deque()
        self.closed = False
        self.bridge = self            # the proxy's guard answers refused calls through it
        self._refused: list[str] = []
        self._calls = 0
        tools = [t.upstream_name for t in invocation.tools]
        if invocation.json_schema is not None:
            tools.append("StructuredOutput")
        self.lines.append(_json({
            "type": "system", "subtype": "init", "session_id": "s", "model": invocation.model,
            "tools": tools, "mcp_servers": [{"name": "c", "status": "connected"}]
            if invocation.tools else []}))
        if invocation.json_schema is not None:
            self._structured(json_loads(invocation.json_schema))
        elif invocation.tools and any(CALL_A_TOOL in block for block in invocation.blocks):
            self._call(None)
        else:
            self._text("Hello from the scripted model.")

    # -- what the model says ----------------------------------------------------------------
    def _message(self, blocks: list[dict], stop: str) -> None:
        self._calls += 1
        mid = f"msg_{self._calls}"
        self.lines.append(_json({"type": "stream_event", "event": {
            "type": "message_start", "message": {"id": mid, "type": "message",
                                                 "role": "assistant", "content": [],
                                                 "usage": {"input_tokens": 10,
                                                           "output_tokens": 1}}}}))
        for index, block in enumerate(blocks):
            if block["type"] == "text":
                start, delta = {"type": "text", "text": ""}, {"type": "text_delta",
                                                              "text": block["text"]}
            else:
                start = {**block, "input": {}}
                delta = {"type": "input_json_delta", "partial_json": _json(block["input"])}
            self.lines.append(_json({"type": "stream_event", "event": {
                "type": "content_block_start", "index": index, "content_block": start}}))
            self.lines.append(_json({"type": "stream_event", "event": {
                "type": "content_block_delta", "index": index, "delta": delta}}))
            self.lines.append(_json({"type": "stream_event", "event": {
                "type": "content_block_stop", "index": index}}))
        self.lines.append(_json({"type": "stream_event", "event": {
            "type": "message_delta", "delta": {"stop_reason": stop},
            "usage": {"output_tokens": 5}}}))
        self.lines.append(_json({"type": "stream_event", "event": {"type": "message_stop"}}))

    def _result(self, **extra: object) -> None:
        self.lines.append(_json({"type": "result", "subtype": "success", "is_error": False,
                                 "stop_reason": "end_turn", "session_id": "s",
                                 "usage": {"input_tokens": 10, "output_tokens": 5}, **extra}))

    def _text(self, text: str) -> None:
        self._message([{"type": "text", "text": text}], "end_turn")
        self._result(result=text)

    def _structured(self, schema: object) -> None:
        value = simple_instance(schema)
        if value is NO_INSTANCE:  # declines, also when the CLI asks again: a refusal
            text = "I cannot answer in that format."
            self._message([{"type": "text", "text": text}], "end_turn")
            self._message([{"type": "text", "text": text}], "end_turn")
            self._result(result=text, structured_output=None)
            return
        self._message([{"type": "tool_use", "id": f"toolu_so_{self._calls}",
                        "name": "StructuredOutput", "input": value}], "tool_use")
        self._result(result=_json(value), structured_output=value)

    def _call(self, upstream_name: str | None) -> None:
        tool = next((t for t in self.invocation.tools if t.upstream_name == upstream_name),
                    self.invocation.tools[0])
        arguments = {"input": "x"} if tool.kind == "custom" else \
            simple_instance(json_loads(tool.schema))
        if arguments is NO_INSTANCE or not isinstance(arguments, dict):
            arguments = {}
        self._message([{"type": "tool_use", "id": f"toolu_scripted_{self._calls:020d}",
                        "name": tool.upstream_name, "input": arguments}], "tool_use")

    # -- what the proxy says to it --------------------------------------------------------
    def send(self, lines: list[str], close_stdin: bool = False) -> None:
        text = "\n".join(lines)
        if "[tool-choice-enforce]" in text and self.invocation.tools:
            named = next((t.upstream_name for t in self.invocation.tools
                          if f"the {t.upstream_name} tool" in text), None)
            self._call(named)

    def answer(self, use_id: str, content: object, is_error: bool = False) -> None:
        text = content if isinstance(content, str) else str(content)
        named = next((t.upstream_name for t in self.invocation.tools
                      if f"Call {t.upstream_name} instead" in text), None)
        if named is not None:
            self._call(named)
        elif "Answer without calling a tool" in text or "arguments do not match" in text:
            self._text("I will answer without the tool.")

    # -- CLIProcess ---------------------------------------------------------------------------
    def read_line(self, timeout: float) -> str | None:
        if self.closed or not self.lines:
            raise EOFError
        return self.lines.popleft()

    def exit_status(self, timeout: float | None = None) -> ExitStatus:
        return ExitStatus(0, "")

    def close(self) -> None:
        self.closed = True


def json_loads(text: str) -> object:
    import json
    return json.loads(text)


class ScriptedTools:
    """Runs requests that offer tools or ask for a format on a `ScriptedProcess`, everything
    else on `fallback`: generated requests with tools reach the 200 path. Counts what it
    served, for the fuzz tests' numbers."""

    def __init__(self, fallback: Runner) -> None:
        self.fallback = fallback
        self.served = {"tools": 0, "format": 0, "other": 0}
        self._lock = threading.Lock()

    def start(self, invocation: Invocation) -> CLIProcess:
        kind = "tools" if invocation.tools else \
            "format" if invocation.json_schema is not None else "other"
        with self._lock:
            self.served[kind] += 1
        if kind == "other":
            return self.fallback.start(invocation)
        return ScriptedProcess(invocation)

    def close(self) -> None:
        self.fallback.close()
