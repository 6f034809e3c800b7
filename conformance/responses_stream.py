"""The rules a Responses API stream must follow as a whole, checked on its raw bytes.

Used by the conformance checks (conformance/checks/responses.py), the official-spec tee that
watches every test server (tests/support/fidelity.py) and the client tests. Per-event schema
validation is done apart (against the official `ResponseStreamEvent`); these are the rules the
schemas cannot state, each one a failure some client reported against some server:

* framing: WHATWG SSE; every event's data is JSON with a `type`; a named event's name is that
  type (OpenAI sends `event: <type>`); no `[DONE]` (the Responses API has none);
* `sequence_number` 0, 1, 2, ... in order, on every event;
* `response.created` first, then `response.in_progress`; exactly one terminal event
  (`response.completed`, `response.incomplete` or `response.failed`), last; the three carry
  the same response id, and the created/in_progress/terminal events nest the whole response
  object under `response`;
* an output item is announced (`output_item.added`) before any event about it, a content part
  (`content_part.added`) before its deltas; every added item is done (`output_item.done`)
  before the terminal event, and nothing about it follows its done;
* the deltas of a text part join to its `output_text.done` text and to the done item's text;
  a call's argument deltas join to its `function_call_arguments.done` arguments; a reasoning
  summary part (`reasoning_summary_part.added`) comes before its deltas, which join to its
  `reasoning_summary_text.done` text, its `reasoning_summary_part.done` part and the done
  item's `summary` (clients that show reasoning build it from the deltas, Codex CLI from
  the done item);
* the terminal response's `output` is the done items, in output-index order (Codex CLI builds
  its items from `output_item.done` only, the SDKs from the terminal object).
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Any

from conformance.sse import parse

TERMINAL = ("response.completed", "response.incomplete", "response.failed")
LIFECYCLE = ("response.created", "response.in_progress", *TERMINAL)


@dataclass
class ResponsesStreamReport:
    problems: list[str] = field(default_factory=list)
    events: list[dict[str, Any]] = field(default_factory=list)

    @property
    def types(self) -> list[str]:
        return [e.get("type") for e in self.events]

    @property
    def terminal(self) -> dict[str, Any] | None:
        last = self.events[-1] if self.events else None
        return last if last is not None and last.get("type") in TERMINAL else None

    @property
    def response(self) -> dict[str, Any] | None:
        terminal = self.terminal
        return terminal.get("response") if terminal else None

    @property
    def text(self) -> str:
        return "".join(e.get("delta", "") for e in self.events
                       if e.get("type") == "response.output_text.delta")

    @property
    def done_items(self) -> list[dict[str, Any]]:
        return [e["item"] for e in self.events if e.get("type") == "response.output_item.done"]

    def assert_ok(self) -> "ResponsesStreamReport":
        assert not self.problems, "Responses stream rules broken:\n  " + "\n  ".join(self.problems)
        return self


def check_responses_stream(body: bytes) -> ResponsesStreamReport:
    report = ResponsesStreamReport()
    parsed = parse(body)
    problems = report.problems
    problems += parsed.problems
    if parsed.unterminated is not None:
        problems.append("the stream ends inside an event (no blank line after it)")
    for number, event in enumerate(parsed.events):
        if event.data.startswith("[DONE]"):
            problems.append(f"event {number}: `[DONE]`, which a Responses stream never sends")
            continue
        try:
            payload = json.loads(event.data)
        except ValueError:
            problems.append(f"event {number}: data is not JSON: {event.data[:60]!r}")
            continue
        if not isinstance(payload, dict) or not isinstance(payload.get("type"), str):
            problems.append(f"event {number}: no `type` in its data")
            continue
        if event.event != "message" and event.event != payload["type"]:
            problems.append(f"event {number}: named `{event.event}` but its type is "
                            f"`{payload['type']}`")
        report.events.append(payload)
    _check_order(report)
    return report


def _check_order(report: ResponsesStreamReport) -> None:
    problems, events = report.problems, report.events
    if not events:
        problems.append("the stream has no events")
        return
    for number, event in enumerate(events):
        if event.get("sequence_number") != number:
            problems.append(f"event {number} ({event['type']}): sequence_number "
                            f"{event.get('sequence_number')!r}, expected {number}")
            break
    types = report.types
    if types[:2] != ["response.created", "response.in_progress"]:
        problems.append(f"the stream begins with {types[:2]}, not response.created then "
                        f"response.in_progress")
    terminals = [i for i, t in enumerate(types) if t in TERMINAL]
    if len(terminals) != 1 or terminals[0] != len(types) - 1:
        problems.append(f"expected exactly one terminal event ({', '.join(TERMINAL)}), last; "
                        f"got {[types[i] for i in terminals]} at {terminals} of {len(types)}")
    ids = {e["response"].get("id") for e in events if e["type"] in LIFECYCLE
           and isinstance(e.get("response"), dict)}
    lifecycle = [e for e in events if e["type"] in LIFECYCLE]
    if any(not isinstance(e.get("response"), dict) for e in lifecycle):
        problems.append("a lifecycle event does not nest the response object under `response`")
    if len(ids) > 1:
        problems.append(f"the lifecycle events carry different response ids: {sorted(ids)}")
    _check_items(report)


def _check_items(report: ResponsesStreamReport) -> None:
    problems = report.problems
    added: dict[int, dict[str, Any]] = {}
    done: dict[int, dict[str, Any]] = {}
    parts: dict[tuple[int, int], str] = {}       # (item, part) -> text so far
    parts_done: set[tuple[int, int]] = set()
    arguments: dict[int, str] = {}
    summaries: dict[tuple[int, int], str] = {}   # (item, summary_index) -> text so far
    summaries_done: set[tuple[int, int]] = set()
    for number, event in enumerate(report.events):
        kind = event["type"]
        index = event.get("output_index")
        where = f"event {number} ({kind})"
        if kind == "response.output_item.added":
            if index in added:
                problems.append(f"{where}: output_index {index} announced twice")
            added[index] = event.get("item") or {}
            continue
        if index is None:
            continue
        if index not in added:
            problems.append(f"{where}: output_index {index} was never announced "
                            f"(output_item.added)")
            continue
        if index in done:
            problems.append(f"{where}: output_index {index} is already done")
            continue
        item_id = added[index].get("id")
        if "item_id" in event and item_id is not None and event["item_id"] != item_id:
            problems.append(f"{where}: item_id {event['item_id']!r}, the item is {item_id!r}")
        key = (index, event.get("content_index"))
        if kind == "response.content_part.added":
            parts[key] = ""
        elif kind in ("response.output_text.delta", "response.refusal.delta"):
            if key not in parts or key in parts_done:
                problems.append(f"{where}: a delta outside an open content part")
            else:
                parts[key] += event.get("delta", "")
        elif kind in ("response.output_text.done", "response.refusal.done"):
            text = event.get("text", event.get("refusal"))
            if parts.get(key) != text:
                problems.append(f"{where}: the deltas join to {parts.get(key)!r}, done says "
                                f"{text!r}")
            parts_done.add(key)
        elif kind == "response.content_part.done":
            parts_done.add(key)
        elif kind == "response.function_call_arguments.delta":
            arguments[index] = arguments.get(index, "") + event.get("delta", "")
        elif kind == "response.function_call_arguments.done":
            if index in arguments and arguments[index] != event.get("arguments"):
                problems.append(f"{where}: the argument deltas join to {arguments[index]!r}, "
                                f"done says {event.get('arguments')!r}")
        elif kind.startswith("response.reasoning_summary_"):
            _check_summary(where, kind, event, (index, event.get("summary_index")), summaries,
                           summaries_done, problems)
        elif kind == "response.output_item.done":
            done[index] = event.get("item") or {}
            item = done[index]
            if item.get("type") == "reasoning":
                texts = [p.get("text") for p in item.get("summary") or []]
                streamed = [t for (i, _), t in sorted(summaries.items(), key=lambda kv: kv[0][1])
                            if i == index]
                if streamed and texts != streamed:
                    problems.append(f"{where}: the done item's summary {texts!r} differs from "
                                    f"its deltas {streamed!r}")
            if item.get("type") == "message":
                texts = [p.get("text") for p in item.get("content") or []
                         if p.get("type") == "output_text"]
                streamed = [t for (i, _), t in sorted(parts.items(), key=lambda kv: kv[0][1])
                            if i == index]
                if texts and streamed and texts != streamed[:len(texts)]:
                    problems.append(f"{where}: the done item's text differs from its deltas")
    missing = sorted(set(added) - set(done))
    if missing:
        problems.append(f"output items {missing} were announced and never done")
    response = report.response
    if response is not None and isinstance(response.get("output"), list):
        expected = [done[i] for i in sorted(done)]
        if [_identity(i) for i in response["output"]] != [_identity(i) for i in expected]:
            problems.append("the terminal response's output is not the done items in order")


def _check_summary(where: str, kind: str, event: dict[str, Any], key: tuple[int, Any],
                   summaries: dict[tuple[int, Any], str], closed: set[tuple[int, Any]],
                   problems: list[str]) -> None:
    if kind == "response.reasoning_summary_part.added":
        if key in summaries:
            problems.append(f"{where}: summary part {key[1]} added twice")
        summaries[key] = ""
        return
    if key not in summaries:
        problems.append(f"{where}: summary part {key[1]} was never added "
                        f"(reasoning_summary_part.added)")
        return
    if kind == "response.reasoning_summary_text.delta":
        if key in closed:
            problems.append(f"{where}: a delta after its summary text was done")
        summaries[key] += event.get("delta", "")
    elif kind == "response.reasoning_summary_text.done":
        if summaries[key] != event.get("text"):
            problems.append(f"{where}: the summary deltas join to {summaries[key]!r}, done "
                            f"says {event.get('text')!r}")
        closed.add(key)
    elif kind == "response.reasoning_summary_part.done":
        text = (event.get("part") or {}).get("text")
        if summaries[key] != text:
            problems.append(f"{where}: the summary deltas join to {summaries[key]!r}, the "
                            f"done part says {text!r}")
        closed.add(key)


def _identity(item: dict[str, Any]) -> tuple[Any, ...]:
    return (item.get("type"), item.get("id"), item.get("call_id"))
