"""The CLI's stream-json stdout -> a few events the OpenAI side needs.

Only `--include-partial-messages` output is token-level, so text comes from `stream_event`
text deltas. Everything else is reduced to: the upstream started answering, text, activity
(something happened: thinking, a retry), the end with a stop reason and usage, or a failure.
The CLI's `result` line is authoritative for success or failure; the exception is a
`max_tokens` stop, which ends the turn at once because the CLI would otherwise spend three
more model calls continuing it.

Usage is the `result` line's, the whole CLI turn's, except for a request whose tool results
answer the held calls of a kept process (`continues_turn`): that CLI turn began with the
request that got the calls, which was already given the usage of the calls' message, so this
request counts only the messages it saw itself.

When an upstream stream breaks mid-answer, the CLI marks the message abandoned
(`message_stop` with `abandoned_blocks`) and asks again without streaming. The new answer
replaces the abandoned one: if it continues what was already sent, only the rest is a
TextDelta; if it differs, a `Revision` withdraws the sent part (a buffered response can apply
it; a stream that already sent the old text cannot, and ends with an error).
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Any, Union

from proxy.claude import failures
from proxy.errors import ProxyError

STOP_REASONS = {
    "end_turn": "stop",
    "stop_sequence": "stop",
    "pause_turn": "stop",
    "tool_use": "stop",
    "max_tokens": "length",
    "model_context_window_exceeded": "length",
    "refusal": "content_filter",
}


@dataclass(frozen=True)
class Usage:
    input_tokens: int = 0
    cache_creation_input_tokens: int = 0
    cache_read_input_tokens: int = 0
    output_tokens: int = 0
    reasoning_tokens: int = 0

    @classmethod
    def from_anthropic(cls, usage: Any) -> "Usage":
        if not isinstance(usage, dict):
            return cls()
        details = usage.get("output_tokens_details")
        reasoning = details.get("thinking_tokens") if isinstance(details, dict) else 0

        def num(value: Any) -> int:
            return value if isinstance(value, int) and value >= 0 else 0

        return cls(num(usage.get("input_tokens")), num(usage.get("cache_creation_input_tokens")),
                   num(usage.get("cache_read_input_tokens")), num(usage.get("output_tokens")),
                   num(reasoning))

    @property
    def prompt_tokens(self) -> int:
        # Claude counts cached input apart; OpenAI's prompt_tokens includes it.
        return self.input_tokens + self.cache_creation_input_tokens + self.cache_read_input_tokens


@dataclass(frozen=True)
class Started:
    """The upstream accepted the request and began its answer (a `message_start`)."""


@dataclass(frozen=True)
class TextDelta:
    text: str


@dataclass(frozen=True)
class Revision:
    """The last `drop` characters of text already emitted are withdrawn; `text` follows.
    A buffered answer applies it; a stream, which cannot, ends with `error` (or the default:
    the upstream stream broke)."""
    drop: int
    text: str
    error: ProxyError | None = None


@dataclass(frozen=True)
class Refusal:
    """The model declined the requested format: its prose, which OpenAI calls a refusal."""
    text: str


@dataclass(frozen=True)
class Activity:
    """Output that carries no content: thinking, a retry, a status line."""
    kind: str
    detail: dict = field(default_factory=dict)


@dataclass(frozen=True)
class ReasoningDelta(Activity):
    """Thinking text (a `thinking_delta`): activity to whoever does not show it, and the
    client's `reasoning_content` when it asked (proxy/chat/reasoning.py). The first delta of a
    later thinking block starts with `separator` (a blank line), which only joins it to the
    thinking before it."""
    text: str = ""
    separator: str = ""


@dataclass(frozen=True)
class ThinkingBlock(Activity):
    """A whole thinking block as the API sent it, from the CLI's `assistant` line for it (which
    comes right after the block's signature, before the next block starts): `thinking` with its
    signature, or `redacted_thinking`. The API accepts the model's thinking back only exactly
    so (proxy/responses/reasoning.py). `message`: that API message's id and model."""
    block: dict = field(default_factory=dict)
    message: tuple[tuple[str, str], ...] = ()


@dataclass(frozen=True)
class Finished:
    finish_reason: str
    usage: Usage
    stop_reason: str | None = None
    cut_short: bool = False  # the proxy ended the run before the CLI's result (max_tokens)


@dataclass(frozen=True)
class Failed:
    error: ProxyError


@dataclass(frozen=True)
class ToolCallStart:
    """The model began a call of one of the client's tools (`index` counts the calls of the
    answer from 0)."""
    index: int
    id: str
    name: str            # the client's tool name
    kind: str = "function"


@dataclass(frozen=True)
class ToolCallArguments:
    """A piece of a call's arguments, as the model writes them (JSON text)."""
    index: int
    json: str


@dataclass(frozen=True)
class ToolCallEnd:
    index: int
    arguments: str       # the whole arguments text


Event = Union[Started, TextDelta, Revision, Activity, ReasoningDelta, ThinkingBlock, Finished,
              Failed, ToolCallStart, ToolCallArguments, ToolCallEnd, Refusal]

STRUCTURED_OUTPUT = "StructuredOutput"  # the CLI's tool for --json-schema


class EventTranslator:
    """Feeds on stdout lines; `feed()` returns the events each line means."""

    def __init__(self, tools: Any = None, structured: Any = None) -> None:
        # Structured output (a proxy.chat.response_format.ResponseFormat, or None): the
        # StructuredOutput tool's input is the answer's content; prose is held back, and is a
        # refusal if the model never calls the tool.
        self.structured = structured
        self._structured_block: Any = None
        self._structured_text = ""      # the content emitted from StructuredOutput input
        self._structured_attempts = 0
        self._prose: list[str] = []
        # The run's tools (a proxy.tools.spec.ToolRequest, or None): which `mcp__c__*` names are
        # the client's, and what the CLI must list at init.
        self.tools = tools
        self._blocks: dict[int, int] = {}     # content block index -> call index (this message)
        self._arguments: dict[int, str] = {}  # call index -> arguments so far
        self.calls = 0                        # calls of the client's tools in this answer
        self.unknown_calls: list[str] = []    # names the model called that were not offered
        self.started = False
        self.done = False
        self.garbage_lines = 0
        self.lines = 0
        self.init: dict[str, Any] | None = None
        self.last_retry: dict[str, Any] | None = None
        self.rate_limit: dict[str, Any] | None = None  # the last rate_limit_event's info
        self.fallback: dict[str, Any] | None = None
        self._emitted_text = False      # any text so far (decides block separators)
        self._need_separator = False
        self._message_text = ""         # what this API message emitted (with its separator)
        self._abandoned: str | None = None   # what an abandoned message emitted
        self._replacement = ""          # text of the message that replaces it, so far
        self._messages_with_deltas: set[str] = set()
        self._message_id: str | None = None
        self._start_usage: dict[str, Any] = {}
        self._reasoning_messages: set[str] = set()  # messages whose thinking was streamed
        self._emitted_reasoning = False
        self._reasoning_separator = False
        self.continues_turn = False     # see the module docstring (usage)
        self._seen_usage: list[Usage] = []  # each message this translator saw, as it ended

    def feed(self, line: str) -> list[Event]:
        if self.done or not line.strip():
            return []
        self.lines += 1
        try:
            obj = json.loads(line)
        except ValueError:
            self.garbage_lines += 1
            return []
        if not isinstance(obj, dict):
            self.garbage_lines += 1
            return []
        kind = obj.get("type")
        if kind == "stream_event":
            event = obj.get("event") or {}
            if obj.get("abandoned_blocks") is not None and event.get("type") == "message_stop":
                event = {**event, "abandoned_blocks": obj["abandoned_blocks"]}
            return self._stream_event(event)
        if kind == "system":
            return self._system(obj)
        if kind == "assistant":
            return self._assistant(obj.get("message") or {})
        if kind == "result":
            return self._result(obj)
        if kind == "rate_limit_event":
            info = obj.get("rate_limit_info")
            self.rate_limit = info if isinstance(info, dict) else None
            return [Activity(kind)]
        if kind == "user":
            return [Activity(kind)]
        return []

    def reopen(self) -> None:
        """The run goes on past an outcome (the proxy asked again): a new answer begins."""
        self.done = False
        self._prose = []
        self._structured_text = ""
        self.calls = 0
        self._blocks = {}
        self._arguments = {}
        self._emitted_text = False
        self._need_separator = False
        self._message_text = ""

    def partial_usage(self, output_text: str) -> Usage:
        """Usage of a run the proxy ends early (a stop sequence matched): the prompt side is
        exact (from `message_start`); the output side is estimated at 4 characters a token,
        because the CLI reports output tokens only at the end."""
        usage = Usage.from_anthropic(self._start_usage)
        return Usage(usage.input_tokens, usage.cache_creation_input_tokens,
                     usage.cache_read_input_tokens, max(1, -(-len(output_text) // 4)), 0)

    def end_of_output(self, returncode: int | None, stderr: str) -> list[Event]:
        """Called when stdout ended; a run without a result line failed."""
        if self.done:
            return []
        self.done = True
        return [Failed(failures.from_exit(returncode, stderr, saw_output=self.lines
                                          > self.garbage_lines, garbage=self.garbage_lines))]

    # -- line kinds --------------------------------------------------------------------
    def _system(self, obj: dict) -> list[Event]:
        subtype = obj.get("subtype")
        if subtype == "init":
            self.init = obj
            return self._check_init(obj)
        if subtype == "api_retry":
            self.last_retry = obj
        elif subtype == "model_fallback":
            self.fallback = obj
        return [Activity(str(subtype), {k: obj.get(k) for k in ("error_status", "error", "attempt")
                                        if k in obj})]

    def _check_init(self, obj: dict) -> list[Event]:
        """Fail closed: the CLI must offer the model exactly the client's tools (none without
        any), through a connected bridge; else the model could run something, or would write
        its calls as prose."""
        tools = [str(t) for t in obj.get("tools") or []]
        expected = sorted([t.upstream_name for t in self.tools.tools] if self.tools else []) \
            + ([STRUCTURED_OUTPUT] if self.structured is not None else [])
        expected.sort()
        if sorted(tools) == expected:
            if not self.tools:
                return []
            servers = {s.get("name"): s.get("status") for s in obj.get("mcp_servers") or []
                       if isinstance(s, dict)}
            from proxy.tools.spec import SERVER
            if servers.get(SERVER) == "connected":
                return []
        self.done = True
        if not expected or set(tools) - set(expected):
            return [Failed(ProxyError(500, "The Claude Code CLI started with tools enabled "
                                           f"({', '.join(tools)}); the request was stopped "
                                           "for safety.", code="unsafe_cli"))]
        return [Failed(ProxyError(502, "The Claude Code CLI did not connect the tool bridge "
                                       f"(it offers {len(tools)} of the {len(expected)} tools); "
                                       "the request was stopped rather than answered without "
                                       "tools.", code="tool_bridge_failed"))]

    def _stream_event(self, event: dict) -> list[Event]:
        etype = event.get("type")
        out: list[Event] = []
        if etype == "message_start":
            message = event.get("message") or {}
            self._blocks = {}
            self._prose = []  # a refusal is the model's last word, not every attempt
            if self.calls:  # calls of an earlier message of this turn were answered already
                self.calls = 0
            self._message_id = message.get("id")
            self._message_text = ""
            self._start_usage = message.get("usage") or {}
            if not self.started:
                self.started = True
                out.append(Started())
            if self._emitted_text:  # a later model call (after a tool request) continues the text
                self._need_separator = True
        elif etype == "content_block_start":
            block = event.get("content_block") or {}
            if block.get("type") == "tool_use" and self.structured is not None \
                    and block.get("name") == STRUCTURED_OUTPUT:
                return out + self._structured_start(event.get("index"))
            if block.get("type") == "tool_use":
                out.extend(self._call_start(event.get("index"), block))
                return out
            if self._emitted_text:
                self._need_separator = True
            block = event.get("content_block") or {}
            if block.get("type") == "thinking" and self._emitted_reasoning:
                self._reasoning_separator = True
            if block.get("type") != "text":
                out.append(Activity(str(block.get("type"))))
            elif block.get("text"):
                out.extend(self._text(block["text"]))
        elif etype == "content_block_delta":
            delta = event.get("delta") or {}
            if delta.get("type") == "text_delta" and isinstance(delta.get("text"), str):
                out.extend(self._text(delta["text"]))
            elif delta.get("type") == "input_json_delta" and self._structured_block is not None \
                    and event.get("index") == self._structured_block:
                piece = str(delta.get("partial_json") or "")
                if piece and not self.structured.wrapped:
                    self._structured_text += piece
                    self._emitted_text = True
                    out.append(TextDelta(piece))
            elif delta.get("type") == "input_json_delta" and event.get("index") in self._blocks:
                call = self._blocks[event["index"]]
                piece = str(delta.get("partial_json") or "")
                self._arguments[call] += piece
                if piece:
                    out.append(ToolCallArguments(call, piece))
            elif delta.get("type") == "thinking_delta" and isinstance(delta.get("thinking"), str):
                out.extend(self._reasoning(delta["thinking"], self._message_id))
            else:
                out.append(Activity(str(delta.get("type"))))
        elif etype == "content_block_stop" and self._structured_block is not None \
                and event.get("index") == self._structured_block:
            self._structured_block = None
        elif etype == "content_block_stop" and event.get("index") in self._blocks:
            call = self._blocks.pop(event["index"])
            out.append(ToolCallEnd(call, self._arguments[call]))
        elif etype == "message_stop" and event.get("abandoned_blocks") is not None:
            if self._message_text:
                self._abandoned = (self._abandoned or "") + self._message_text
            self._message_text = ""
            # A retry abandoned in turn while it still repeated what the client has: the next
            # answer replaces what was sent, not that retry's text plus it.
            self._replacement = ""
        elif etype == "message_delta":
            stop = (event.get("delta") or {}).get("stop_reason")
            self._seen_usage.append(Usage.from_anthropic(
                {**self._start_usage, **(event.get("usage") or {})}))
            if stop == "tool_use" and self.calls:
                # The answer ends here for the client: the calls go to it, and the CLI waits,
                # its calls held by the bridge, for the results its next request brings.
                usage = dict(self._start_usage)
                usage.update(event.get("usage") or {})
                self.done = True
                out.append(Finished("tool_calls", Usage.from_anthropic(usage), stop))
            elif stop in ("max_tokens", "model_context_window_exceeded"):
                usage = dict(self._start_usage)
                usage.update(event.get("usage") or {})
                self.done = True
                out.append(Finished("length", Usage.from_anthropic(usage), stop, cut_short=True))
        return out

    def _call_start(self, index: Any, block: dict) -> list[Event]:
        name = str(block.get("name") or "")
        tool = self.tools.by_upstream_name(name) if self.tools else None
        if tool is None:  # not offered: the CLI answers it with an error and the model goes on
            self.unknown_calls.append(name)
            return [Activity("tool_use", {"name": name})]
        if self._message_id:  # streamed: its `assistant` line must not repeat it
            self._messages_with_deltas.add(self._message_id)
        call = self.calls
        self.calls += 1
        self._blocks[index] = call
        self._arguments[call] = ""
        return [ToolCallStart(call, str(block.get("id") or ""), tool.name, tool.kind)]

    def _structured_start(self, index: Any) -> list[Event]:
        self._structured_block = index
        if self._message_id:  # streamed: its `assistant` line must not repeat it
            self._messages_with_deltas.add(self._message_id)
        self._structured_attempts += 1
        if self._structured_text:  # the CLI refused the last attempt (schema): it is withdrawn
            drop, self._structured_text = len(self._structured_text), ""
            return [Revision(drop, "", ProxyError(
                502, "The model's structured output did not match the schema and it was asked "
                     "again; the part already streamed cannot be withdrawn. Retry the request "
                     "(or do not stream it: the answer would then be the corrected one).",
                code="structured_output_invalid"))]
        return []

    def _text(self, text: str) -> list[Event]:
        if not text:
            return []
        if self._message_id:
            self._messages_with_deltas.add(self._message_id)
        if self.structured is not None:  # prose in structured mode: a refusal, if it stays one
            self._prose.append(text)
            return []
        if self._abandoned is not None:
            return self._replace(text)
        out: list[Event] = []
        if self._need_separator:
            self._need_separator = False
            self._message_text += "\n\n"
            out.append(TextDelta("\n\n"))
        self._emitted_text = True
        self._message_text += text
        out.append(TextDelta(text))
        return out

    def _reasoning(self, text: str, message_id: str | None) -> list[Event]:
        if not text:
            return []
        if message_id:
            self._reasoning_messages.add(message_id)
        separator = ""
        if self._reasoning_separator:  # a later thinking block (another model call)
            self._reasoning_separator = False
            separator = "\n\n"
        self._emitted_reasoning = True
        return [ReasoningDelta("thinking_delta", text=separator + text, separator=separator)]

    def _replace(self, text: str) -> list[Event]:
        """Text of the message that replaces an abandoned one (see the module docstring)."""
        self._need_separator = False
        self._replacement += text
        old, new = self._abandoned or "", self._replacement
        if old.startswith(new):
            return []  # so far it repeats what the client already has
        self._abandoned, self._replacement = None, ""
        self._emitted_text = True
        if new.startswith(old):
            self._message_text = new
            return [TextDelta(new[len(old):])]
        self._message_text = new
        return [Revision(len(old), new)]

    def _settle_replacement(self) -> list[Event]:
        """At the end: a replacement shorter than what it replaces withdraws the rest."""
        if self._abandoned is None:
            return []
        old, new = self._abandoned, self._replacement
        self._abandoned, self._replacement = None, ""
        return [Revision(len(old), new)] if new != old else []

    def _turn_usage(self, obj: dict) -> Usage:
        """The result line's usage, or (continuing a turn) what this request's messages used."""
        usage = Usage.from_anthropic(obj.get("usage"))
        if self.continues_turn and self._seen_usage:
            usage = Usage(*(sum(getattr(u, f) for u in self._seen_usage)
                            for f in Usage.__dataclass_fields__))
        return usage

    def _structured_result(self, obj: dict) -> list[Event]:
        usage = self._turn_usage(obj)
        value = obj.get("structured_output")
        if value is None:  # the model answered in prose, also when asked again: it declined
            prose = "".join(self._prose) or str(obj.get("result") or "")
            return [Refusal(prose), Finished("stop", usage, obj.get("stop_reason"))]
        value = self.structured.unwrap(value)
        problem = self.structured.violation(value)
        if problem is not None:  # the CLI let through what the schema forbids: never success
            return [Failed(ProxyError(502, f"The model's structured output does not match the "
                                           f"schema ({problem}).",
                                      code="structured_output_invalid"))]
        out: list[Event] = []
        if self.structured.wrapped or not self._structured_text:
            text = json.dumps(value, ensure_ascii=False)
            out.append(TextDelta(text))  # not streamed: sent whole
        return out + [Finished("stop", usage, obj.get("stop_reason"))]

    def _assistant(self, message: dict) -> list[Event]:
        # Text normally arrived as deltas already; a message that had none (output without
        # partial events) still reaches the client, once.
        if message.get("model") == "<synthetic>":
            return []
        out_reasoning = self._assistant_reasoning(message) + self._thinking_blocks(message)
        if message.get("id") in self._messages_with_deltas:
            return out_reasoning
        blocks = [b for b in message.get("content") or [] if isinstance(b, dict)]
        texts = [b.get("text") for b in blocks if b.get("type") == "text" and b.get("text")]
        uses = [b for b in blocks if b.get("type") == "tool_use"
                and not (self.structured is not None and b.get("name") == STRUCTURED_OUTPUT)]
        if not texts and not uses:
            return out_reasoning
        self._messages_with_deltas.add(message.get("id"))
        out: list[Event] = out_reasoning
        for text in texts:
            if self._emitted_text:
                self._need_separator = True
            out.extend(self._text(text))
        for use in uses:  # a message that came whole (the CLI's non-streaming retry)
            started = self._call_start(None, use)
            out.extend(started)
            if started and isinstance(started[0], ToolCallStart):
                arguments = json.dumps(use.get("input") or {}, separators=(",", ":"),
                                       ensure_ascii=False)
                self._blocks.pop(None, None)
                out += [ToolCallArguments(started[0].index, arguments),
                        ToolCallEnd(started[0].index, arguments)]
        if self.calls and message.get("stop_reason") == "tool_use":
            self.done = True
            out.append(Finished("tool_calls", Usage.from_anthropic(message.get("usage")),
                                "tool_use"))
        return out

    def _assistant_reasoning(self, message: dict) -> list[Event]:
        """The thinking of a message that streamed none (the CLI's non-streaming retry). Shown
        reasoning cannot be withdrawn, so a retried answer's thinking follows what was sent."""
        message_id = message.get("id")
        if message_id in self._reasoning_messages:
            return []
        out: list[Event] = []
        for block in message.get("content") or []:
            if isinstance(block, dict) and block.get("type") == "thinking" \
                    and isinstance(block.get("thinking"), str) and block["thinking"]:
                if self._emitted_reasoning:
                    self._reasoning_separator = True
                out.extend(self._reasoning(block["thinking"], message_id))
        return out

    @staticmethod
    def _thinking_blocks(message: dict) -> list[Event]:
        meta = (("id", str(message.get("id") or "")), ("model", str(message.get("model") or "")))
        return [ThinkingBlock(str(block["type"]), block=block, message=meta)
                for block in message.get("content") or []
                if isinstance(block, dict)
                and block.get("type") in ("thinking", "redacted_thinking")]

    def _result(self, obj: dict) -> list[Event]:
        self.done = True
        if obj.get("subtype") == "error_max_structured_output_retries":
            return [Failed(ProxyError(502, "The model's structured output did not match the "
                                           "schema after the CLI's retries: "
                                           + "; ".join(map(str, obj.get("errors") or [])),
                                      code="structured_output_invalid"))]
        if obj.get("is_error") or obj.get("subtype") not in (None, "success"):
            return [Failed(failures.from_result(obj, self.last_retry, self.rate_limit))]
        stop = obj.get("stop_reason")
        if self.structured is not None:
            return self._structured_result(obj)
        out: list[Event] = self._settle_replacement()
        if not self._emitted_text and isinstance(obj.get("result"), str) and obj["result"]:
            out.extend(self._text(obj["result"]))  # no deltas and no assistant text: trust result
        out.append(Finished(STOP_REASONS.get(stop, "stop"), self._turn_usage(obj), stop))
        return out
