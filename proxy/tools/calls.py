"""Tool calls and results between OpenAI's shapes and Claude's blocks.

* A call the model makes keeps Claude's own id (`toolu_...`) on its way to the client, so the
  client's next request names it exactly; an id a client made up (`call_1`) is mapped by a
  fixed rule (never state) to one of Claude's form, so the same history always maps the same
  way. Claude's ids are all of one length; a client's may not be, and the CLI mixes up two
  calls of one message when one id starts with the other (measured with 2.1.332: the second
  call's result is replaced by "[Tool result missing due to internal error]").
* Arguments are the model's JSON as it streamed it; in history they become the block's `input`
  (parsed), and a tool result is a `tool_result` block with the client's text or text parts.
* Legacy `function_call` messages carry no id: theirs is derived from the message's position
  and content, the same on every request.
"""

from __future__ import annotations

import hashlib
import json
import re
from dataclasses import dataclass
from typing import Any

from proxy.tools.spec import PREFIX, alias_for

_CLAUDE_ID = re.compile(r"^toolu_[A-Za-z0-9_]{20,100}$")
# Claude's id with its one `_` taken out: OpenClaw strips every character of a tool call id but
# letters and digits (its `toolCallIdMode: "strict"`), so `toolu_01Ab...` comes back
# `toolu01Ab...`. Restored, the id is the model's again, and the call's process continues.
_STRIPPED_CLAUDE_ID = re.compile(r"^toolu([A-Za-z0-9]{20,100})$")


def block_id(client_id: str) -> str:
    """The id of a tool_use block for an id a client sent: Claude's own ids stay as they are
    (or are restored, when a client took out their `_`)."""
    if _CLAUDE_ID.match(client_id):
        return client_id
    stripped = _STRIPPED_CLAUDE_ID.match(client_id)
    if stripped:
        return "toolu_" + stripped.group(1)
    return "toolu_" + hashlib.sha256(client_id.encode("utf-8", "surrogatepass")).hexdigest()[:24]


def legacy_id(index: int, name: str, arguments: str) -> str:
    digest = hashlib.sha256(f"{index}\0{name}\0{arguments}".encode("utf-8", "surrogatepass"))
    return "toolu_fn_" + digest.hexdigest()[:20]


@dataclass(frozen=True)
class ToolUse:
    """A call in an assistant message of the history."""
    id: str              # the block id
    name: str            # the client's tool name
    input: str           # canonical JSON of the arguments object
    kind: str = "function"

    def block(self) -> dict[str, Any]:
        return {"type": "tool_use", "id": self.id, "name": PREFIX + alias_for(self.name),
                "input": json.loads(self.input)}

    def as_text(self) -> str:
        return f"[called tool {self.name} (call {self.id}) with arguments {self.input}]"


@dataclass(frozen=True)
class ToolResult:
    """A tool message of the history: the result of the call with that id."""
    tool_use_id: str
    content: str          # canonical JSON: a string, or a list of text blocks

    def block(self) -> dict[str, Any]:
        return {"type": "tool_result", "tool_use_id": self.tool_use_id,
                "content": json.loads(self.content)}

    def text(self) -> str:
        content = json.loads(self.content)
        if isinstance(content, str):
            return content
        return "\n".join(b.get("text", "") for b in content)

    def as_text(self) -> str:
        return f"[result of tool call {self.tool_use_id}]\n{self.text()}"


def arguments_object(arguments: str, param: str) -> dict[str, Any]:
    """A call's `arguments` string as the object Claude's blocks hold (400 if not an object)."""
    from proxy.errors import ProxyError
    try:
        value = json.loads(arguments) if arguments.strip() else {}
    except ValueError:
        raise ProxyError(400, f"{param} is not valid JSON; a tool call's arguments must be a "
                              f"JSON object.", param=param, code="invalid_tool_arguments") from None
    if not isinstance(value, dict):
        raise ProxyError(400, f"{param} must be a JSON object, not {type(value).__name__}.",
                         param=param, code="invalid_tool_arguments")
    return value


def canonical(value: Any) -> str:
    return json.dumps(value, separators=(",", ":"), sort_keys=True, ensure_ascii=False)
