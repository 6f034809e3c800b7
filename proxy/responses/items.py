"""Responses input items: their stored form, and the chat messages they mean.

`normalize()` gives every input item the form the store keeps and `input_items` lists (the
official item resources: an id on each, a string message content as an `input_text` part, an
assistant message as an `output_message`). `to_messages()` turns a conversation of such items
into the chat completion messages the backend runs, so a conversation reaches Claude exactly as
the same conversation over chat completions does (native turns, kept processes, tool calls):

| item | chat message |
|---|---|
| message `user` / `system` / `developer` | the same role; `input_text` -> text part, `input_image` -> `image_url` part |
| message `assistant` (`output_text`, `refusal` parts) | an assistant message |
| `function_call` (and a `custom_tool_call`) | a `tool_calls` entry of the assistant message it follows (or of a new one), `id` = `call_id` |
| `function_call_output` (`custom_tool_call_output`) | a `tool` message, `tool_call_id` = `call_id` |
| `reasoning` | no message: its `encrypted_content` (proxy/responses/reasoning.py) is the thinking of the assistant message that follows it, which goes back into Claude's history with that turn |

Each chat message remembers the item it came from, so an error the chat side finds names the
Responses parameter (`input[3].content[1]`), never a `messages[...]` the client did not send.
"""

from __future__ import annotations

import json
import re
import secrets
from dataclasses import dataclass
from typing import Any, Callable, Sequence

from proxy.errors import ProxyError
from proxy.responses.tools import ToolNames

ID_PREFIX = {"message": "msg", "function_call": "fc", "function_call_output": "fco",
             "custom_tool_call": "ctc", "custom_tool_call_output": "ctco", "reasoning": "rs"}
_CALLS = ("function_call", "custom_tool_call")
_OUTPUTS = ("function_call_output", "custom_tool_call_output")


def new_id(prefix: str) -> str:
    return f"{prefix}_{secrets.token_hex(24)}"


def dumps(item: dict[str, Any]) -> str:
    return json.dumps(item, ensure_ascii=False, separators=(",", ":"))


@dataclass(frozen=True)
class Origin:
    """Where a chat message came from: the item's param path (`input[2]`), and for an
    assistant message the path of each of its calls."""
    item: str
    calls: tuple[str, ...] = ()
    tool: bool = False     # a tool message: its `content` is the item's `output`


# ---------------------------------------------------------------------------- normalizing

def tolerated(body: Any) -> Any:
    """The request with the one thing a real client sends that OpenAI accepts and the official
    schema does not taken out before validation: Codex CLI (0.171) sends every reasoning item
    back with `"content": null` (it drops the raw reasoning text it may hold, and serializes the
    empty field as null). A null content is no content; nothing else is relaxed."""
    items = body.get("input") if isinstance(body, dict) else None
    if not isinstance(items, list) or not any(
            isinstance(i, dict) and i.get("type") == "reasoning" and "content" in i
            and i["content"] is None for i in items):
        return body
    return {**body, "input": [
        {k: v for k, v in i.items() if k != "content"}
        if isinstance(i, dict) and i.get("type") == "reasoning" and i.get("content", 0) is None
        else i for i in items]}


def kind_of(item: dict[str, Any]) -> str:
    kind = item.get("type")
    if kind is None:
        return "message" if "role" in item else "item_reference"
    return kind


def normalize(input_value: Any, resolve: Callable[[str, str], dict[str, Any]] | None = None
              ) -> list[dict[str, Any]]:
    """The request's `input` as stored items. `resolve(id, param)` looks up an
    `item_reference` (ProxyError when it finds none)."""
    if input_value is None:
        return []
    if isinstance(input_value, str):
        return [_message({"role": "user", "content": input_value}, "input")]
    out = []
    for i, item in enumerate(input_value):
        where = f"input[{i}]"
        kind = kind_of(item)
        if kind == "item_reference":
            if resolve is None:
                raise ProxyError(400, f"{where} is an item reference; only stored items can be "
                                      f"referenced.", param=f"{where}.id", code="item_not_found")
            out.append(resolve(item["id"], f"{where}.id"))
        elif kind == "message":
            out.append(_message(item, where))
        elif kind in _CALLS:
            out.append(_call(item, kind))
        elif kind in _OUTPUTS:
            out.append(_output(item, kind, where))
        elif kind == "reasoning":
            out.append(dict(item))
        else:  # pragma: no cover - the contract admits no other kind
            raise ProxyError(400, f"{where} is a `{kind}` item, which this server cannot carry.",
                             param=f"{where}.type", code="unsupported_content")
    return out


def _message(item: dict[str, Any], where: str) -> dict[str, Any]:
    role = item["role"]
    content = item["content"]
    if isinstance(content, str):
        parts = [{"type": "output_text", "text": content, "annotations": [], "logprobs": []}
                 if role == "assistant" else {"type": "input_text", "text": content}]
    else:
        parts = [_part(part, role, f"{where}.content[{j}]") for j, part in enumerate(content)]
    stored: dict[str, Any] = {"id": item.get("id") or new_id("msg"), "type": "message",
                              "role": role, "content": parts}
    stored["status"] = item.get("status") or "completed"
    if role == "assistant" and item.get("phase"):
        stored["phase"] = item["phase"]
    return stored


def _part(part: dict[str, Any], role: str, where: str) -> dict[str, Any]:
    kind = part["type"]
    if role == "assistant":
        if kind in ("input_text", "output_text"):
            return {"type": "output_text", "text": part["text"], "annotations": [],
                    "logprobs": []}
        if kind == "refusal":
            return {"type": "refusal", "refusal": part["refusal"]}
        raise ProxyError(400, f"{where} is an `{kind}` part: an assistant message carries text "
                              f"and refusals only.", param=where, code="unsupported_content")
    if kind in ("output_text", "refusal"):
        raise ProxyError(400, f"{where} is an `{kind}` part, which only an assistant message "
                              f"can carry.", param=f"{where}.type", code="invalid_value")
    return dict(part)


def _call(item: dict[str, Any], kind: str) -> dict[str, Any]:
    stored = {"id": item.get("id") or new_id(ID_PREFIX[kind]), "type": kind,
              "call_id": item["call_id"]}
    if item.get("namespace"):
        stored["namespace"] = item["namespace"]
    stored["name"] = item["name"]
    if kind == "function_call":
        stored["arguments"] = item["arguments"]
    else:
        stored["input"] = item["input"]
    stored["status"] = item.get("status") or "completed"
    return stored


def _output(item: dict[str, Any], kind: str, where: str) -> dict[str, Any]:
    if not item.get("call_id"):
        raise ProxyError(400, f"Missing required parameter: '{where}.call_id'.",
                         param=f"{where}.call_id", code="missing_required_parameter")
    return {"id": item.get("id") or new_id(ID_PREFIX[kind]), "type": kind,
            "call_id": item["call_id"], "output": item["output"], "status": "completed"}


# ---------------------------------------------------------------------------- chat messages

@dataclass(frozen=True)
class Messages:
    messages: tuple[dict[str, Any], ...]
    origins: tuple[Origin, ...]
    # The reasoning items before each assistant message (by its index), oldest first.
    reasoning: tuple[tuple[int, tuple[dict[str, Any], ...]], ...] = ()


def to_messages(items: Sequence[tuple[dict[str, Any], str]], names: ToolNames) -> Messages:
    """Chat messages for (item, its param path) pairs, oldest first. Checks that every output
    answers an earlier call and every call is answered before the conversation goes on."""
    messages: list[dict[str, Any]] = []
    origins: list[Origin] = []
    open_calls: dict[str, str] = {}        # call_id -> the call's param path, unanswered
    reasoning: dict[int, list[dict[str, Any]]] = {}
    pending: list[dict[str, Any]] = []     # reasoning items waiting for their answer
    for item, where in items:
        kind = kind_of(item)
        if kind == "reasoning":
            pending.append(item)
            continue
        if pending and (kind in _CALLS or item.get("role") == "assistant"):
            # the thinking before an answer is that answer's (its text and calls)
            index = len(messages) - 1 if kind in _CALLS and messages \
                and messages[-1]["role"] == "assistant" else len(messages)
            reasoning.setdefault(index, []).extend(pending)
        pending = []
        if kind in _OUTPUTS:
            call_id = item["call_id"]
            if call_id not in open_calls:
                raise ProxyError(400, f"No tool call found for function call output with call_id "
                                      f"{call_id}.", param=f"{where}.call_id",
                                 code="invalid_tool_output")
            del open_calls[call_id]
            messages.append({"role": "tool", "tool_call_id": call_id,
                             "content": _tool_content(item["output"], where)})
            origins.append(Origin(where, tool=True))
            continue
        if kind in _CALLS:
            call = _chat_call(item, names)
            open_calls[item["call_id"]] = where
            last = messages[-1] if messages else None
            if last is not None and last["role"] == "assistant":
                # the answer's text and its calls are one assistant message, as in chat
                last.setdefault("tool_calls", []).append(call)
                origins[-1] = Origin(origins[-1].item, (*origins[-1].calls, where))
            else:
                messages.append({"role": "assistant", "content": None, "tool_calls": [call]})
                origins.append(Origin(where, (where,)))
            continue
        if open_calls:
            call_id, call_where = next(iter(open_calls.items()))
            raise ProxyError(400, f"No tool output found for function call {call_id}.",
                             param=call_where, code="invalid_tool_output")
        messages.append(_chat_message(item, where))
        origins.append(Origin(where))
    return Messages(tuple(messages), tuple(origins),
                    tuple((i, tuple(r)) for i, r in sorted(reasoning.items())))


def _chat_call(item: dict[str, Any], names: ToolNames) -> dict[str, Any]:
    name = names.chat_name(item.get("namespace"), item["name"])
    if item["type"] == "custom_tool_call":
        return {"id": item["call_id"], "type": "custom",
                "custom": {"name": name, "input": item["input"]}}
    return {"id": item["call_id"], "type": "function",
            "function": {"name": name, "arguments": item["arguments"]}}


def _tool_content(output: Any, where: str) -> Any:
    if isinstance(output, str):
        return output
    parts = []
    for j, part in enumerate(output):
        if part.get("type") != "input_text":
            raise ProxyError(400, f"{where}.output[{j}] is an `{part.get('type')}` part: a tool "
                                  f"result reaches Claude as text, so this server carries "
                                  f"`input_text` parts only.",
                             param=f"{where}.output[{j}]", code="unsupported_content")
        parts.append({"type": "text", "text": part["text"]})
    return parts if parts else ""


def _chat_message(item: dict[str, Any], where: str) -> dict[str, Any]:
    role = item["role"]
    if role == "assistant":
        parts = []
        for part in item["content"]:
            if part["type"] == "refusal":
                parts.append({"type": "refusal", "refusal": part["refusal"]})
            else:
                parts.append({"type": "text", "text": part["text"]})
        if len(parts) == 1 and parts[0]["type"] == "text":
            return {"role": "assistant", "content": parts[0]["text"]}
        return {"role": "assistant", "content": parts or ""}
    parts = []
    for j, part in enumerate(item["content"]):
        kind = part["type"]
        at = f"{where}.content[{j}]"
        if kind == "input_text":
            parts.append({"type": "text", "text": part["text"]})
        elif kind == "input_image":
            if role != "user":
                raise ProxyError(400, f"{at} is an image in a `{role}` message: instructions "
                                      f"carry text only.", param=at, code="unsupported_content")
            if not part.get("image_url"):
                raise ProxyError(400, f"{at} names a file (`file_id`); this server has no Files "
                                      f"API: send the image as a data: or http(s) URL.",
                                 param=f"{at}.file_id", code="unsupported_content")
            image: dict[str, Any] = {"url": part["image_url"]}
            if part.get("detail") in ("auto", "low", "high"):
                image["detail"] = part["detail"]
            parts.append({"type": "image_url", "image_url": image})
        else:
            raise ProxyError(400, f"{at} is of type `{kind}`: file inputs cannot be passed to "
                                  f"Claude through this proxy yet.", param=at,
                             code="unsupported_content")
    if len(parts) == 1 and parts[0]["type"] == "text":
        return {"role": role, "content": parts[0]["text"]}
    return {"role": role, "content": parts or ""}  # no parts: an empty message, as chat has it


# ---------------------------------------------------------------------------- errors

_MESSAGE = re.compile(r"messages\[(\d+)\]((?:\.tool_calls\[(\d+)\])?)([A-Za-z0-9_.\[\]]*)")
_RENAMES = (
    (".function.arguments", ".arguments"), (".function.name", ".name"),
    (".custom.input", ".input"), (".tool_call_id", ".call_id"), (".image_url.url", ".image_url"),
)


def remap_param(text: str, origins: Sequence[Origin], instructions: bool) -> str:
    """`messages[i]...` (the chat side's names) -> the Responses parameter it came from."""
    def one(match: re.Match[str]) -> str:
        index = int(match.group(1))
        if instructions:
            if index == 0:
                return "instructions"
            index -= 1
        if index >= len(origins):
            return "input"
        origin = origins[index]
        rest = match.group(4)
        if match.group(3) is not None and int(match.group(3)) < len(origin.calls):
            base = origin.calls[int(match.group(3))]
        else:
            base = origin.item
            if origin.tool and rest.startswith(".content"):
                rest = ".output" + rest[len(".content"):]
        for old, new in _RENAMES:
            if rest.startswith(old):
                rest = new + rest[len(old):]
        return base + rest
    return _MESSAGE.sub(one, text)

