"""The run's MCP server, spoken over the CLI's own control channel (`"type": "sdk"`).

Measured with CLI 2.1.332: with `--mcp-config {"mcpServers":{"c":{"type":"sdk","name":"c"}}}`
the CLI prints each MCP message as a `control_request` (`subtype: mcp_message`) on stdout and
takes the answer as a `control_response` on stdin. No process, no port, nothing another local
user could reach; the handshake takes about 30 ms; and a `tools/call` may be held without any
idle limit (held 1,900 s), where stdio gives up after 30 min and HTTP after 5.

The bridge offers exactly the run's tools and never executes anything: a `tools/call` is held
until the client's result for that call (matched by `_meta["claudecode/toolUseId"]`, the id of
the model's `tool_use` block) is given to `answer()`, when the next request brings it. Calls are
answered in the order the model made them (the CLI asks for them one at a time), so the
`tool_result` blocks reach the API in call order, as Claude Code's own loop sends them.

`BridgedProcess` wraps a CLI process: it answers the control requests as they are read, and
passes every other line on.
"""

from __future__ import annotations

import json
import threading
import time
from dataclasses import dataclass
from typing import Any, Callable, Sequence

from proxy import __version__
from proxy.runners.base import ExitStatus
from proxy.tools.spec import Tool

TOOL_USE_ID = "claudecode/toolUseId"


@dataclass
class _Held:
    request_id: str      # the control request's id
    rpc_id: Any          # the JSON-RPC request's id
    name: str            # the tool's name on the bridge (alias)


def _response(request_id: str, mcp_response: dict[str, Any]) -> str:
    return json.dumps({"type": "control_response", "response": {
        "subtype": "success", "request_id": request_id,
        "response": {"mcp_response": mcp_response}}}, separators=(",", ":"),
        ensure_ascii=False)


def mcp_content(content: Any) -> list[dict[str, Any]]:
    """A client's tool result (a string, or text parts) as MCP content items."""
    if isinstance(content, str):
        return [{"type": "text", "text": content}]
    return [{"type": "text", "text": part.get("text", "")} for part in content
            if isinstance(part, dict)]


class ToolBridge:
    def __init__(self, tools: Sequence[Tool], write: Callable[[list[str]], None]) -> None:
        self.tools = tuple(tools)
        self._write = write
        self._lock = threading.Lock()
        self.held: dict[str, _Held] = {}            # tool_use id -> the call waiting
        self._answers: dict[str, tuple[list[dict[str, Any]], bool]] = {}
        self.calls: list[str] = []                  # tool_use ids, in the order called
        self.listed = False                         # the CLI has the tool list

    # -- from the CLI ------------------------------------------------------------------------
    def handle(self, request: dict[str, Any]) -> None:
        """One `control_request` of subtype `mcp_message`."""
        request_id = request.get("request_id")
        message = (request.get("request") or {}).get("message") or {}
        method = message.get("method")
        rpc_id = message.get("id")
        if rpc_id is None:  # a notification: acknowledged, nothing else
            self._write([_response(request_id, {"jsonrpc": "2.0", "result": {}})])
            return
        if method == "initialize":
            params = message.get("params") or {}
            result: dict[str, Any] = {
                "protocolVersion": params.get("protocolVersion", "2025-11-25"),
                "capabilities": {"tools": {}},
                "serverInfo": {"name": "claude-max-api", "version": __version__}}
        elif method == "tools/list":
            result = {"tools": [tool.mcp_entry() for tool in self.tools]}
            self.listed = True
        elif method == "tools/call":
            self._call(request_id, rpc_id, message.get("params") or {})
            return
        elif method == "ping":
            result = {}
        else:
            self._write([_response(request_id, {"jsonrpc": "2.0", "id": rpc_id, "error": {
                "code": -32601, "message": f"Method not found: {method}"}})])
            return
        self._write([_response(request_id, {"jsonrpc": "2.0", "id": rpc_id, "result": result})])

    def _call(self, request_id: str, rpc_id: Any, params: dict[str, Any]) -> None:
        use_id = str((params.get("_meta") or {}).get(TOOL_USE_ID) or "")
        with self._lock:
            self.calls.append(use_id)
            answer = self._answers.pop(use_id, None)
            if answer is None:
                self.held[use_id] = _Held(request_id, rpc_id, str(params.get("name")))
                return
        self._write([self._result(request_id, rpc_id, *answer)])

    @staticmethod
    def _result(request_id: str, rpc_id: Any, content: list[dict[str, Any]],
                is_error: bool) -> str:
        result: dict[str, Any] = {"content": content}
        if is_error:
            result["isError"] = True
        return _response(request_id, {"jsonrpc": "2.0", "id": rpc_id, "result": result})

    # -- from the client -----------------------------------------------------------------------
    def answer(self, use_id: str, content: Any, is_error: bool = False) -> None:
        """The result of the call `use_id`: given now if the CLI waits for it, else as soon as
        it asks."""
        items = mcp_content(content)
        with self._lock:
            held = self.held.pop(use_id, None)
            if held is None:
                self._answers[use_id] = (items, is_error)
                return
        self._write([self._result(held.request_id, held.rpc_id, items, is_error)])

    def pending(self) -> list[str]:
        with self._lock:
            return list(self.held)


class BridgedProcess:
    """A CLI process whose tool bridge answers its control requests as its lines are read."""

    def __init__(self, inner: Any, tools: Sequence[Tool]) -> None:
        self.inner = inner
        self.bridge = ToolBridge(tools, self._send)
        self._write_lock = threading.Lock()

    def _send(self, lines: list[str]) -> None:
        with self._write_lock:
            self.inner.send(lines, close_stdin=False)

    def send(self, lines: list[str], close_stdin: bool = False) -> None:
        with self._write_lock:
            self.inner.send(lines, close_stdin=close_stdin)

    # -- CLIProcess -------------------------------------------------------------------------
    def read_line(self, timeout: float) -> str | None:
        deadline = time.monotonic() + timeout
        while True:
            line = self.inner.read_line(max(0.0, deadline - time.monotonic()))
            if line is None or '"mcp_message"' not in line or '"control_request"' not in line:
                return line
            try:
                request = json.loads(line)
            except ValueError:
                return line
            if request.get("type") != "control_request" or \
                    (request.get("request") or {}).get("subtype") != "mcp_message":
                return line
            self.bridge.handle(request)
            if time.monotonic() >= deadline:
                return None

    def exit_status(self, timeout: float | None = None) -> ExitStatus:
        return self.inner.exit_status(timeout)

    def close(self) -> None:
        self.inner.close()

    # -- what the runners and the keeper use -----------------------------------------------
    @property
    def pid(self) -> int | None:
        return getattr(self.inner, "pid", None)

    @property
    def req_dir(self):
        return getattr(self.inner, "req_dir", None)

    @property
    def alive(self) -> bool:
        return self.inner.alive

    def terminate(self) -> None:
        terminate = getattr(self.inner, "terminate", None)
        if terminate is not None:
            terminate()

    def detach(self) -> "BridgedProcess":
        self.inner = self.inner.detach()
        return self
