"""OpenAI tools -> the tools of one run, and what `tool_choice` asks for.

Each client function becomes a tool of the run's MCP bridge, server `c`: the model sees
`mcp__c__<alias>` (the CLI's naming), where the alias is the client's own name unless that
would pass the API's 64-character limit with the 8-character prefix (then a shortened name
with a hash). Names are mapped back on the way out, so the client only ever sees its own.

The description and the JSON Schema reach the API exactly (measured: the CLI passes both
verbatim), with two exceptions the CLI forces, both documented: a description over 4,096
characters would be cut by the CLI, so the full text moves into the schema's own
`description` (when it has none); and a schema must have an object root (OpenAI requires that
too), else the CLI would silently drop every tool of the run.

What the API would refuse is a 400 naming the tool: a name outside `[A-Za-z0-9_-]{1,64}`, two
tools of one name, a schema that is not a valid JSON Schema or not of type object.
"""

from __future__ import annotations

import hashlib
import json
import re
from dataclasses import dataclass
from typing import Any, Iterable

from proxy.errors import ProxyError

SERVER = "c"
PREFIX = f"mcp__{SERVER}__"
API_NAME_LIMIT = 64
NAME = re.compile(r"^[A-Za-z0-9_-]{1,64}$")
DESCRIPTION_LIMIT = 4096          # the CLI cuts longer tool descriptions
EMPTY_SCHEMA = {"type": "object", "properties": {}}
CUSTOM_SCHEMA = {"type": "object", "properties": {"input": {"type": "string"}},
                 "required": ["input"], "additionalProperties": False}


def _canonical(value: Any) -> str:
    return json.dumps(value, separators=(",", ":"), sort_keys=True, ensure_ascii=False)


@dataclass(frozen=True)
class Tool:
    """One client function (or custom tool) as the run offers it."""
    name: str             # the client's name
    alias: str            # the model's name after the prefix
    description: str
    schema: str           # canonical JSON of the input schema
    strict: bool = False
    kind: str = "function"  # or "custom": free-form text input, carried as {"input": text}

    @property
    def upstream_name(self) -> str:
        return PREFIX + self.alias

    def mcp_entry(self) -> dict[str, Any]:
        """The entry of the bridge's `tools/list`."""
        return {"name": self.alias, "description": self.description,
                "inputSchema": json.loads(self.schema),
                # the CLI then asks for every call of an answer at once (measured), so the
                # bridge holds them all when the client gets them
                "annotations": {"readOnlyHint": True},
                # results up to this size reach the model verbatim (measured: 400 K chars);
                # without it the CLI saves long results to a file the model cannot read
                "_meta": {"anthropic/maxResultSizeChars": 400_000}}


@dataclass(frozen=True)
class ToolChoice:
    mode: str = "auto"            # auto | none | required | named
    name: str | None = None       # the client's tool name, for `named`

    @property
    def forces_a_call(self) -> bool:
        return self.mode in ("required", "named")


@dataclass(frozen=True)
class ToolRequest:
    """What a request asks of tools: the tools offered, the choice, and the answer's form."""
    tools: tuple[Tool, ...] = ()
    choice: ToolChoice = ToolChoice("none")
    parallel: bool = True
    legacy: bool = False          # `functions` / `function_call`: answered as `function_call`
    every: tuple[Tool, ...] = ()  # all the client's tools (history may name any of them)

    def by_upstream_name(self, name: str) -> Tool | None:
        for tool in self.every or self.tools:
            if tool.upstream_name == name:
                return tool
        return None

    def by_name(self, name: str) -> Tool | None:
        for tool in self.every or self.tools:
            if tool.name == name:
                return tool
        return None


def alias_for(name: str) -> str:
    if len(PREFIX) + len(name) <= API_NAME_LIMIT:
        return name
    digest = hashlib.sha256(name.encode()).hexdigest()[:8]
    return f"{name[:API_NAME_LIMIT - len(PREFIX) - 9]}_{digest}"


def _bad(param: str, message: str, code: str = "invalid_value") -> ProxyError:
    return ProxyError(400, message, param=param, code=code)


def _schema(parameters: Any, param: str, name: str) -> dict[str, Any]:
    if parameters is None:
        return dict(EMPTY_SCHEMA)
    schema = dict(parameters)
    if not schema:
        return dict(EMPTY_SCHEMA)
    kind = schema.get("type")
    if kind is None and "properties" in schema:
        schema = {"type": "object", **schema}
    elif kind != "object":
        raise _bad(param, f"Invalid schema for function '{name}': schema must be a JSON Schema "
                          f"of 'type: \"object\"', got 'type: {json.dumps(kind)}'.",
                   "invalid_function_parameters")
    from jsonschema import exceptions, validators
    try:
        validators.validator_for(schema).check_schema(schema)
    except exceptions.SchemaError as exc:
        raise _bad(param, f"Invalid schema for function '{name}': {exc.message}",
                   "invalid_function_parameters") from None
    return schema


def _tool(index: int, entry: dict[str, Any], where: str) -> Tool:
    kind = entry.get("type", "function")
    spec = entry.get("custom") if kind == "custom" else entry.get("function", entry)
    name = spec["name"]
    if not NAME.match(name):
        raise _bad(f"{where}.name", f"Invalid '{where}.name': string does not match pattern. "
                                    f"Expected a string that matches the pattern "
                                    f"'^[a-zA-Z0-9_-]+$' of at most 64 characters, got "
                                    f"{name!r}.", "invalid_function_name")
    description = spec.get("description") or ""
    if kind == "custom":
        schema = dict(CUSTOM_SCHEMA)
        fmt = spec.get("format")
        if isinstance(fmt, dict) and fmt.get("type") == "grammar":
            grammar = fmt.get("grammar") or {}
            description += (f"\n\nThe input must follow this {grammar.get('syntax', '')} "
                            f"grammar:\n{grammar.get('definition', '')}").rstrip()
    else:
        schema = _schema(spec.get("parameters"), f"{where}.parameters", name)
    if len(description) > DESCRIPTION_LIMIT:
        if "description" not in schema:
            schema = {**schema, "description": description}
            description = description[:DESCRIPTION_LIMIT - 80].rstrip() + \
                " ... (the full description is the input schema's description)"
        else:
            description = description[:DESCRIPTION_LIMIT]
    return Tool(name=name, alias=alias_for(name), description=description,
                schema=_canonical(schema), strict=bool(spec.get("strict")), kind=kind)


def _tools(entries: Iterable[dict[str, Any]], field: str) -> tuple[Tool, ...]:
    tools: list[Tool] = []
    seen: dict[str, int] = {}
    for i, entry in enumerate(entries):
        where = f"{field}[{i}]" if field == "functions" else \
            f"{field}[{i}].{'custom' if entry.get('type') == 'custom' else 'function'}"
        tool = _tool(i, entry, where)
        if tool.name in seen:
            raise _bad(f"{where}.name", f"Duplicate tool name '{tool.name}' "
                                        f"({field}[{seen[tool.name]}] has it too).",
                       "duplicate_tool_name")
        seen[tool.name] = i
        tools.append(tool)
    aliases = [t.alias for t in tools]
    if len(set(aliases)) != len(aliases):  # two long names with one prefix and hash prefix
        raise _bad(field, "Two tool names are too alike once shortened to the API's limit.")
    return tuple(tools)


def _choice(value: Any, tools: tuple[Tool, ...], param: str) -> tuple[ToolChoice, tuple[Tool, ...]]:
    """The choice, and the tools it leaves on offer."""
    if value is None:
        return ToolChoice("auto" if tools else "none"), tools
    if isinstance(value, str):
        return ToolChoice(value), tools   # none, auto, required (the contract checked it)
    kind = value.get("type")
    if kind == "allowed_tools":
        allowed = value["allowed_tools"]
        names = [t.get("function", t.get("custom", t)).get("name") for t in allowed["tools"]]
        unknown = [n for n in names if not any(tool.name == n for tool in tools)]
        if unknown:
            raise _bad(f"{param}.allowed_tools.tools",
                       f"tool_choice allows {unknown[0]!r}, which is not among the tools.",
                       "tool_not_found")
        return ToolChoice(allowed["mode"]), tuple(t for t in tools if t.name in names)
    spec = value.get("custom") if kind == "custom" else value.get("function", value)
    name = spec.get("name")
    if not any(tool.name == name for tool in tools):
        raise _bad(param, f"tool_choice names {name!r}, which is not among the tools.",
                   "tool_not_found")
    return ToolChoice("named", name), tools


def tool_request(body: dict[str, Any]) -> ToolRequest:
    """The tools a chat completion request offers; ProxyError(400) for what the API refuses."""
    legacy = not body.get("tools") and bool(body.get("functions"))
    if legacy:
        every = _tools(body["functions"], "functions")
        choice, offered = _choice(body.get("function_call"), every, "function_call")
    else:
        every = _tools(body.get("tools") or (), "tools")
        choice, offered = _choice(body.get("tool_choice"), every, "tool_choice")
    if choice.mode == "none":
        offered = ()
    parallel = body.get("parallel_tool_calls")
    return ToolRequest(tools=offered, choice=choice, parallel=parallel is not False,
                       legacy=legacy, every=every)
