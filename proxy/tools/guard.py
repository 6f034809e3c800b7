"""What a tool turn must be, made true: `tool_choice` and `strict`, where the CLI cannot.

Measured with CLI 2.1.332: no `tool_choice` ever reaches the API (no flag, variable or setting
sends one, and the CLI demotes a forced choice to `auto` while thinking is on), and the CLI
does not check a call's arguments against the tool's schema. So the proxy checks the answer
itself, and asks the model once more in the same run when it does not hold:

| the request asks      | the answer breaks it when                  | the one correction             |
|-----------------------|--------------------------------------------|--------------------------------|
| `required`            | it calls no tool                           | a user message: call a tool    |
| a named function      | it calls no tool, or another one           | that message / the calls are   |
|                       |                                            | refused: call the named one    |
| `none` (with calls in | it calls a tool                            | the calls are refused: answer  |
| the history, so the   |                                            | without tools                  |
| tools are defined)    |                                            |                                |
| `strict: true`        | a call's arguments fail the schema         | the calls are refused, with    |
|                       |                                            | the schema's complaint         |

A refused call gets an error `tool_result` through the bridge (the CLI then asks the model
again, as in its own tool loop); a missing call gets a steering user message, as the CLI's own
`[structured-output-enforce]` does. If the second answer breaks the rule too, the client gets
an honest error (502, `tool_choice_not_honoured` or `tool_arguments_invalid`), never prose with
`finish_reason: "stop"` when a call was required. Meanwhile the answer is held back (a stream
sends it once it is known to be right), and the first attempt never reaches the client.

A corrected turn's process is not kept: it holds the first attempt, which the client never
saw, so the client's next request resumes a session of what it did see.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any, Iterator

from proxy.claude.events import (Activity, Failed, Finished, ToolCallArguments, ToolCallEnd,
                                 ToolCallStart, Usage)
from proxy.claude.run import Idle
from proxy.errors import ProxyError
from proxy.tools.spec import Tool, ToolRequest

ENFORCE = "[tool-choice-enforce]"


def needs_referee(request: ToolRequest) -> bool:
    return bool(request.tools) and (request.choice.mode in ("required", "named", "none")
                                    or any(t.strict for t in request.tools))


def _find(process: Any, attribute: str) -> Any:
    """The first object down a chain of process wrappers that has `attribute`."""
    seen = 0
    while process is not None and seen < 8:
        if hasattr(type(process), attribute) or attribute in getattr(process, "__dict__", {}):
            return process
        process = getattr(process, "inner", None) or getattr(process, "process", None)
        seen += 1
    return None


@dataclass
class _Call:
    id: str
    name: str
    arguments: str = ""


class Referee:
    def __init__(self, request: ToolRequest) -> None:
        self.request = request
        self.corrected = False
        self._validators: dict[str, Any] = {}
        # What an attempt ended by a steering message used: that message starts a new CLI turn,
        # whose result counts only itself, so the answer's usage adds it (a refused call
        # stays in its CLI turn, whose result counts the whole turn already).
        self.spent: Usage | None = None

    # -- the event stream ---------------------------------------------------------------------
    def guard(self, run: Any, events: Iterator[Any]) -> Iterator[Any]:
        """The run's events with each attempt held back until it is known to hold."""
        held: list[Any] = []
        handle = _find(run.process, "reopen")
        if handle is not None:
            handle.defer_keep()
        for event in events:
            if isinstance(event, (Activity, Idle)):  # heartbeats go on while an answer is held
                yield event
            elif isinstance(event, Failed):
                yield event
                return
            elif isinstance(event, Finished):
                verdict = self.judge(run, event, held)
                if verdict is None:          # corrected: the next attempt follows
                    held = []
                    run.reopen()
                    continue
                if isinstance(verdict, ProxyError):
                    yield Failed(verdict)
                    return
                if handle is not None and not self.corrected:
                    handle.settle()
                if self.spent is not None:
                    event = Finished(event.finish_reason, _add(self.spent, event.usage),
                                     event.stop_reason, event.cut_short)
                yield from held
                yield event
                return
            else:
                held.append(event)

    # -- the rules --------------------------------------------------------------------------
    def judge(self, run: Any, finished: Finished, held: list[Any]) -> ProxyError | bool | None:
        """True: the answer holds; None: corrected, read the next attempt; an error: it broke
        the rule twice."""
        calls = _calls(held)
        choice = self.request.choice
        if finished.finish_reason == "tool_calls":
            refusals = self._refusals(calls)
            if not refusals:
                return True
            if self.corrected:
                strict = any(r.startswith("This call was not executed: its arguments")
                             for r in refusals.values())
                return ProxyError(502, "The model's tool calls broke the request's rules twice: "
                                       + next(iter(refusals.values())),
                                  code="tool_arguments_invalid" if strict
                                  else "tool_choice_not_honoured")
            bridge = _find(run.process, "bridge")
            for call in calls:
                text = refusals.get(call.id) or ("This call was not executed, because another "
                                                 "call of the same answer was refused; make it "
                                                 "again if it is still needed.")
                if bridge is not None:
                    bridge.bridge.answer(call.id, text, is_error=True)
            self.corrected = True
            return None
        if choice.forces_a_call and finished.finish_reason in ("stop", "content_filter"):
            if self.corrected:
                return ProxyError(502, "The model answered without calling "
                                       + (f"`{choice.name}`" if choice.name else "a tool")
                                       + " although the request requires it (tool_choice), "
                                         "also when asked again.", code="tool_choice_not_honoured")
            sender = _find(run.process, "send")
            if sender is not None:
                line = {"type": "user", "message": {"role": "user", "content": [
                    {"type": "text", "text": self._enforcement()}]},
                    "parent_tool_use_id": None, "session_id": ""}
                sender.send([json.dumps(line, separators=(",", ":"))], close_stdin=False)
            self.corrected = True
            self.spent = finished.usage
            return None
        return True

    def _enforcement(self) -> str:
        choice = self.request.choice
        if choice.name:
            tool = self.request.by_name(choice.name)
            name = tool.upstream_name if tool else choice.name
            return f"{ENFORCE} You must call the {name} tool now, to complete this request."
        return f"{ENFORCE} You must call one of the available tools now, to complete this request."

    def _refusals(self, calls: list[_Call]) -> dict[str, str]:
        choice = self.request.choice
        out: dict[str, str] = {}
        for call in calls:
            tool = self.request.by_name(call.name)
            if choice.mode == "none":
                out[call.id] = ("This call was not executed: tools may not be used for this "
                                "request. Answer without calling a tool.")
            elif choice.mode == "named" and call.name != choice.name:
                named = self.request.by_name(choice.name or "")
                upstream = named.upstream_name if named else choice.name
                out[call.id] = (f"This call was not executed: this request requires a call of "
                                f"{upstream}. Call {upstream} instead.")
            elif tool is not None and tool.strict:
                problem = self._violation(tool, call.arguments)
                if problem:
                    out[call.id] = (f"This call was not executed: its arguments do not match "
                                    f"the tool's schema: {problem}. Call it again with "
                                    f"arguments that do.")
        return out

    def _violation(self, tool: Tool, arguments: str) -> str | None:
        try:
            value = json.loads(arguments or "{}")
        except ValueError as exc:
            return f"they are not JSON ({exc})"
        validator = self._validators.get(tool.name)
        if validator is None:
            from jsonschema import validators
            schema = json.loads(tool.schema)
            validator = validators.validator_for(schema)(schema)
            self._validators[tool.name] = validator
        error = next(iter(validator.iter_errors(value)), None)
        if error is None:
            return None
        where = "/".join(str(p) for p in error.absolute_path)
        return f"{'/' + where if where else 'the root'}: {error.message}"


def _add(a: Usage, b: Usage) -> Usage:
    return Usage(*(getattr(a, f) + getattr(b, f) for f in Usage.__dataclass_fields__))


def _calls(events: list[Any]) -> list[_Call]:
    calls: dict[int, _Call] = {}
    for event in events:
        if isinstance(event, ToolCallStart):
            calls[event.index] = _Call(event.id, event.name)
        elif isinstance(event, ToolCallArguments) and event.index in calls:
            calls[event.index].arguments += event.json
        elif isinstance(event, ToolCallEnd) and event.index in calls:
            calls[event.index].arguments = event.arguments
    return [calls[i] for i in sorted(calls)]

