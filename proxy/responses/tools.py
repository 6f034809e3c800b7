"""Responses `tools` and `tool_choice` -> the chat completion tools the backend offers.

* A `function` tool is a chat function; a `custom` tool a chat custom tool. A `namespace`
  groups functions (Codex CLI sends one): each member becomes a chat function named
  `<namespace>__<name>`, and a call of it comes back as a `function_call` item with the
  spec's own `namespace` and `name` fields, exactly as the client declared them. The
  namespace's description is not sent (the API has no place for it; each member keeps its
  own description).
* A name the chat side cannot carry (longer than 64 characters, as namespaced names and the
  Responses API's 128-character names can be) gets a short, fixed alias with a hash: the same
  names always map the same way, so history items map as the tools do.
* Hosted tools (web_search, file_search, computer use, code_interpreter, mcp, ...) cannot be
  provided through the CLI: they are not offered to the model, the response's `tools` leaves
  them out, and the `x-claude-tools-not-offered` header names them. A `tool_choice` that
  forces one is a 400: it cannot be honoured.
"""

from __future__ import annotations

import hashlib
import re
from dataclasses import dataclass, field
from typing import Any, Iterable

from proxy.errors import ProxyError

CHAT_NAME = re.compile(r"^[A-Za-z0-9_-]{1,64}$")
CLIENT_NAME = re.compile(r"^[A-Za-z0-9_-]{1,128}$")  # the Responses API's limit
NAMESPACE_SEPARATOR = "__"
OFFERED_TYPES = ("function", "custom", "namespace")


@dataclass(frozen=True)
class ToolNames:
    """Chat tool names <-> the client's (namespace, name)."""
    to_client: dict[str, tuple[str | None, str]] = field(default_factory=dict)

    def chat_name(self, namespace: str | None, name: str) -> str:
        return chat_name(namespace, name)

    def client(self, chat: str) -> tuple[str | None, str]:
        return self.to_client.get(chat, (None, chat))


def chat_name(namespace: str | None, name: str) -> str:
    """The chat function name for a client's tool (a fixed rule, never state)."""
    joined = f"{namespace}{NAMESPACE_SEPARATOR}{name}" if namespace else name
    if CHAT_NAME.match(joined):
        return joined
    digest = hashlib.sha256(f"{namespace or ''}\0{name}".encode("utf-8", "surrogatepass"))
    stem = re.sub(r"[^A-Za-z0-9_-]", "_", name)[:48] or "tool"
    return f"{stem}_{digest.hexdigest()[:12]}"


@dataclass(frozen=True)
class ToolMapping:
    chat_tools: tuple[dict[str, Any], ...]   # chat completion `tools` entries
    origins: tuple[str, ...]                 # per chat tool: its Responses param path
    names: ToolNames
    offered: tuple[dict[str, Any], ...]      # the client's entries that were offered (echoed)
    not_offered: tuple[str, ...]             # hosted tool types, in order, once each


def _function(entry: dict[str, Any], name: str) -> dict[str, Any]:
    function: dict[str, Any] = {"name": name}
    if entry.get("description") is not None:
        function["description"] = entry["description"]
    if entry.get("parameters") is not None:
        function["parameters"] = entry["parameters"]
    if entry.get("strict") is not None:
        function["strict"] = entry["strict"]
    return {"type": "function", "function": function}


def _custom(entry: dict[str, Any], name: str) -> dict[str, Any]:
    custom: dict[str, Any] = {"name": name}
    if entry.get("description") is not None:
        custom["description"] = entry["description"]
    fmt = entry.get("format")
    if isinstance(fmt, dict) and fmt.get("type") == "grammar":
        custom["format"] = {"type": "grammar", "grammar": {
            "syntax": fmt.get("syntax"), "definition": fmt.get("definition", "")}}
    return {"type": "custom", "custom": custom}


def map_tools(tools: Iterable[dict[str, Any]] | None) -> ToolMapping:
    chat: list[dict[str, Any]] = []
    origins: list[str] = []
    names: dict[str, tuple[str | None, str]] = {}
    where_of: dict[str, str] = {}
    offered: list[dict[str, Any]] = []
    hosted: list[str] = []

    def add(entry: dict[str, Any], namespace: str | None, where: str) -> None:
        if not CLIENT_NAME.match(entry["name"]):
            raise ProxyError(400, f"Invalid '{where}.name': string does not match pattern. "
                                  f"Expected a string that matches the pattern "
                                  f"'^[a-zA-Z0-9_-]+$' of at most 128 characters, got "
                                  f"{entry['name']!r}.", param=f"{where}.name",
                             code="invalid_function_name")
        name = chat_name(namespace, entry["name"])
        if name in names:
            raise ProxyError(400, f"Duplicate tool name '{entry['name']}'"
                                  + (f" in namespace '{namespace}'" if namespace else "")
                                  + f" ({where_of[name]} has it too).",
                             param=f"{where}.name", code="duplicate_tool_name")
        names[name] = (namespace, entry["name"])
        where_of[name] = where
        chat.append(_custom(entry, name) if entry["type"] == "custom" else _function(entry, name))
        origins.append(where)

    for i, entry in enumerate(tools or ()):
        kind = entry["type"]
        where = f"tools[{i}]"
        if kind == "namespace":
            if not CLIENT_NAME.match(entry["name"]):
                raise ProxyError(400, f"Invalid '{where}.name': a namespace name must match "
                                      f"'^[a-zA-Z0-9_-]+$', got {entry['name']!r}.",
                                 param=f"{where}.name", code="invalid_value")
            for j, member in enumerate(entry["tools"]):
                add(member, entry["name"], f"{where}.tools[{j}]")
            offered.append(entry)
        elif kind in ("function", "custom"):
            add(entry, None, where)
            offered.append(entry)
        elif kind not in hosted:
            hosted.append(kind)
    return ToolMapping(tuple(chat), tuple(origins), ToolNames(names), tuple(offered),
                       tuple(hosted))


def map_tool_choice(choice: Any, mapping: ToolMapping) -> Any:
    """The chat `tool_choice` for a Responses one (None: not given)."""
    if choice is None or isinstance(choice, str):
        if choice == "required" and not mapping.chat_tools:
            raise ProxyError(400, "tool_choice 'required' needs a function or custom tool: "
                                  "hosted tools are not offered by this server"
                             + (f" ({', '.join(mapping.not_offered)})"
                                if mapping.not_offered else "") + ".",
                             param="tool_choice", code="unsupported_parameter")
        return choice
    kind = choice.get("type")
    if kind in ("function", "custom"):
        name = _resolve(choice["name"], mapping, kind)
        return {"type": kind, kind: {"name": name}}
    if kind == "allowed_tools":
        allowed = []
        for entry in choice.get("tools") or ():
            entry_kind = entry.get("type")
            if entry_kind in ("function", "custom") and isinstance(entry.get("name"), str):
                name = _resolve(entry["name"], mapping, entry_kind)
                allowed.append({"type": entry_kind, entry_kind: {"name": name}})
        if not allowed:
            raise ProxyError(400, "tool_choice.tools allows no function or custom tool: hosted "
                                  "tools are not offered by this server.",
                             param="tool_choice.tools", code="unsupported_parameter")
        return {"type": "allowed_tools",
                "allowed_tools": {"mode": choice["mode"], "tools": allowed}}
    raise ProxyError(400, f"tool_choice forces the hosted tool '{kind}', which this server does "
                          f"not offer (it serves function and custom tools).",
                     param="tool_choice", code="unsupported_parameter")


def _resolve(name: str, mapping: ToolMapping, kind: str) -> str:
    """A name in tool_choice: a top-level tool's, else a namespace member's if only one has it."""
    top = chat_name(None, name)
    if top in mapping.names.to_client and mapping.names.to_client[top] == (None, name):
        return top
    members = [chat for chat, (ns, own) in mapping.names.to_client.items()
               if ns is not None and own == name]
    if len(members) == 1:
        return members[0]
    return top  # not among the tools: the chat side answers that with a 400 naming it
