"""A validated Responses request -> the chat completion request the backend runs.

The chat body carries exactly what the Responses request asks of the model:

| Responses | chat completions |
|---|---|
| `instructions` | a leading `system` message (so, with leading `developer` input messages, the CLI's system prompt) |
| the stored conversation of `previous_response_id`, then `input` | `messages` (proxy/responses/items.py) |
| `tools` (functions, custom tools, namespaces), `tool_choice`, `parallel_tool_calls` | the same (proxy/responses/tools.py) |
| `text.format` (`json_schema`, `json_object`) | `response_format` |
| `max_output_tokens` | `max_completion_tokens` |
| `stream` | `stream` |
| `reasoning.effort` | `reasoning_effort` |
| `reasoning.summary` set (`auto`, `concise`, `detailed`) | `include_reasoning: true` (absent: `false`, whatever the server's `--include-reasoning`) |

`include: ["reasoning.encrypted_content"]` and the reasoning items that come back are the
Responses side's own (proxy/responses/reasoning.py): the thinking a valid item holds goes back
into the history with the turn it precedes (`Translation.thinking`).

Accepted and ignored, as in chat: `temperature`, `top_p`, `metadata`, `user`,
`safety_identifier`, `service_tier`, `truncation`, `prompt_cache_key` and
`prompt_cache_retention` (hints: a conversation continues a kept CLI process by its history,
which Claude's own prompt cache then serves), `max_tool_calls` (every answer with calls ends
the response anyway), `stream_options`, the rest of `include`.
Refused with a 400 naming the field: `background`, `conversation` and `prompt` (no
Conversations or Prompts API here), `top_logprobs` above 0 and `include`
`message.output_text.logprobs` (the CLI reports no log probabilities).
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any, Callable, Sequence

from proxy.errors import ProxyError
from proxy.responses.items import Origin, normalize, remap_param, to_messages
from proxy.responses.reasoning import Settings, Thinking
from proxy.responses.tools import ToolMapping, map_tool_choice, map_tools

HISTORY = "previous_response_id"


def _unsupported(param: str, message: str) -> ProxyError:
    return ProxyError(400, message, param=param, code="unsupported_parameter")


def check_supported(body: dict[str, Any]) -> None:
    if body.get("background"):
        raise _unsupported("background", "Background responses are not supported: the CLI run "
                                         "belongs to its request.")
    if body.get("conversation") is not None:
        raise _unsupported("conversation", "The Conversations API is not served here; continue "
                                           "a conversation with previous_response_id.")
    if body.get("prompt") is not None:
        raise _unsupported("prompt", "Stored prompts (the Prompts API) are not served here.")
    if (body.get("top_logprobs") or 0) > 0 or \
            "message.output_text.logprobs" in (body.get("include") or ()):
        raise _unsupported("top_logprobs" if body.get("top_logprobs") else "include",
                           "logprobs are not available through the Claude Code CLI.")


@dataclass(frozen=True)
class Translation:
    chat_body: dict[str, Any]
    input_items: tuple[dict[str, Any], ...]   # this request's items, as stored
    origins: tuple[Origin, ...]
    instructions: bool                         # messages[0] is `instructions`
    tools: ToolMapping
    reasoning: Settings = Settings()
    # The thinking the input's reasoning items hold, per assistant turn of the conversation
    # (consecutive assistant messages are one turn), oldest first.
    thinking: tuple[tuple[Thinking, ...], ...] = ()

    def remap(self, error: ProxyError) -> ProxyError:
        """A chat-side error, naming the Responses parameters the client sent."""
        def names(text: str | None) -> str | None:
            if text is None:
                return None
            text = remap_param(text, self.origins, self.instructions)
            text = re.sub(r"tools\[(\d+)\]\.(?:function|custom)",
                          lambda m: self.tools.origins[int(m.group(1))]
                          if int(m.group(1)) < len(self.tools.origins) else "tools", text)
            for old, new in (("response_format.json_schema", "text.format"),
                             ("response_format", "text.format"),
                             ("max_completion_tokens", "max_output_tokens"),
                             ("reasoning_effort", "reasoning.effort")):
                text = text.replace(old, new)
            return "input" if text == "messages" else text
        remapped = ProxyError(error.status, names(error.message) or error.message,
                              type=error.type, param=names(error.param), code=error.code,
                              retry_after=error.retry_after, headers=error.headers)
        return remapped


def translate(body: dict[str, Any], history: Sequence[dict[str, Any]] = (),
              resolve: Callable[[str, str], dict[str, Any]] | None = None,
              unseal: Callable[[Any], Thinking | None] | None = None) -> Translation:
    """`history`: the stored conversation `previous_response_id` continues (items, oldest
    first); `unseal` opens a reasoning item's encrypted_content (None: nothing opens).
    ProxyError(400) for what cannot be carried."""
    check_supported(body)
    raw = body.get("input")
    items = normalize(raw, resolve)
    paths = ["input"] if isinstance(raw, str) else [f"input[{i}]" for i in range(len(items))]
    tools = map_tools(body.get("tools"))
    converted = to_messages([*((item, HISTORY) for item in history), *zip(items, paths)],
                            tools.names)
    messages = list(converted.messages)
    instructions = body.get("instructions")
    if instructions:
        messages.insert(0, {"role": "system", "content": instructions})
    if not converted.messages:
        raise ProxyError(400, "Missing required parameter: 'input'." if not items else
                              "The input holds no message to answer (only reasoning items).",
                         param="input", code="missing_required_parameter")
    chat: dict[str, Any] = {"model": body["model"], "messages": messages,
                            "stream": bool(body.get("stream"))}
    if tools.chat_tools:
        chat["tools"] = list(tools.chat_tools)
    choice = map_tool_choice(body.get("tool_choice"), tools)
    if choice is not None and (tools.chat_tools or choice == "none"):
        chat["tool_choice"] = choice
    if body.get("parallel_tool_calls") is not None:
        chat["parallel_tool_calls"] = body["parallel_tool_calls"]
    fmt = ((body.get("text") or {}).get("format")) or {}
    if fmt.get("type") == "json_schema":
        spec = {k: fmt[k] for k in ("name", "schema", "strict", "description") if k in fmt}
        chat["response_format"] = {"type": "json_schema", "json_schema": spec}
    elif fmt.get("type") == "json_object":
        chat["response_format"] = {"type": "json_object"}
    if body.get("max_output_tokens") is not None:
        chat["max_completion_tokens"] = body["max_output_tokens"]
    reasoning = Settings.of(body)
    effort = (body.get("reasoning") or {}).get("effort")
    if effort is not None:
        chat["reasoning_effort"] = effort
    chat["include_reasoning"] = reasoning.show
    thinking = _thinking(converted.messages, converted.reasoning, unseal)
    return Translation(chat, tuple(items), converted.origins, bool(instructions), tools,
                       reasoning, thinking)


def _thinking(messages: Sequence[dict[str, Any]],
              reasoning: Sequence[tuple[int, Sequence[dict[str, Any]]]],
              unseal: Callable[[Any], Thinking | None] | None
              ) -> tuple[tuple[Thinking, ...], ...]:
    """Per assistant turn (a run of assistant messages), what its reasoning items hold."""
    if unseal is None or not reasoning:
        return ()
    opened: dict[int, list[Thinking]] = {}
    for index, items in reasoning:
        for item in items:
            if item.get("encrypted_content"):
                found = unseal(item["encrypted_content"])
                if found is not None:
                    opened.setdefault(index, []).append(found)
    if not opened:
        return ()
    turns: list[list[Thinking]] = []
    for index, message in enumerate(messages):
        if message["role"] != "assistant":
            continue
        if index == 0 or messages[index - 1]["role"] != "assistant":
            turns.append([])
        turns[-1].extend(opened.get(index, ()))
    return tuple(tuple(t) for t in turns)


def echo(body: dict[str, Any], tools: ToolMapping) -> dict[str, Any]:
    """What a response object repeats of its request (the values in effect)."""
    def given(name: str, default: Any) -> Any:
        value = body.get(name)
        return default if value is None else value

    out: dict[str, Any] = {
        "instructions": body.get("instructions"),
        "max_output_tokens": body.get("max_output_tokens"),
        "max_tool_calls": body.get("max_tool_calls"),
        "parallel_tool_calls": body.get("parallel_tool_calls") is not False,
        "previous_response_id": body.get("previous_response_id"),
        "reasoning": _known(body.get("reasoning"), ("effort", "summary", "generate_summary")),
        "service_tier": "default",
        "temperature": given("temperature", 1.0),
        "text": _text(body.get("text")),
        "tool_choice": _tool_choice(given("tool_choice", "auto")),
        "tools": list(tools.offered),
        "top_p": given("top_p", 1.0),
        "top_logprobs": given("top_logprobs", 0),
        "truncation": "disabled",
        "metadata": given("metadata", {}),
        "background": False,
        "prompt_cache_key": body.get("prompt_cache_key"),
        "safety_identifier": body.get("safety_identifier"),
    }
    if body.get("user") is not None:
        out["user"] = body["user"]
    return out


# What the echoed objects may hold: the request schemas leave them open, the response's are
# the spec's (a client's extra keys are not settings in effect).
_FORMAT_KEYS = {"text": ("type",), "json_object": ("type",),
                "json_schema": ("type", "name", "schema", "strict", "description")}


# The official ToolChoice* objects, by type; a hosted tool's (file_search, web_search, ...) is
# its type alone.
_TOOL_CHOICE_KEYS = {"function": ("type", "name"), "custom": ("type", "name"),
                     "allowed_tools": ("type", "mode", "tools"),
                     "mcp": ("type", "server_label", "name")}


def _known(value: Any, keys: Sequence[str]) -> Any:
    return {k: value[k] for k in keys if k in value} if isinstance(value, dict) else value


def _text(value: Any) -> dict[str, Any]:
    text = _known(value, ("format", "verbosity")) if isinstance(value, dict) else {}
    fmt = text.get("format") or {"type": "text"}
    text["format"] = _known(fmt, _FORMAT_KEYS.get(fmt.get("type"), ("type",)))
    return text


def _tool_choice(value: Any) -> Any:
    if not isinstance(value, dict):
        return value
    return _known(value, _TOOL_CHOICE_KEYS.get(value.get("type"), ("type",)))
