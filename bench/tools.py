"""The tool round trip: from the client sending a tool's result to the first token of the answer.

Three paths, each against its own stand-in (a model that calls `get_weather`, then answers with
the result), their rounds interleaved so a shared machine's load falls on each alike:

* **Claude Code's own tool loop** (the baseline): one `claude` process with the proxy's flags
  and the same MCP bridge; the bridge answers each call after the same time the client's tool
  takes (TOOL_SECONDS), as Claude Code's loop answers a tool that ran that long, measured from
  the answer to the first text delta on stdout (a CLI that waited answers a little slower than
  one whose tool returned at once: the comparison is only fair with equal waits);
* **the pending-call path**: the proxy with kept conversations (the default): the first request
  gets the call, the second brings the result to the process that waits on it (measured from
  the SDK call to the first streamed content); each round is the next turn of one conversation,
  as the own loop's rounds are turns of one process;
* **a cold resume**: the proxy with `keep_conversations=0`: the result request starts a new CLI
  that resumes a session ending with the call.

Target (issue 11): the pending-call path's median within 1.3x of Claude Code's own loop.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import tempfile
import time
from typing import Any

from bench.stats import Row, median

MODEL = "sonnet"
TOOL = {"type": "function", "function": {
    "name": "get_weather", "description": "The weather of a city, now.",
    "parameters": {"type": "object", "properties": {"city": {"type": "string"}},
                   "required": ["city"]}}}
TIMEOUT = 60.0
TOOL_SECONDS = 0.2   # how long the tool runs, on every path


def _scenario():
    from proxy.standin.scenario import Scenario, ToolUse
    return Scenario(tool_use=ToolUse("mcp__c__get_weather", {"city": "Paris"}, "Let me check."),
                    after_tool_text="In Paris it is {tool_result} today; enjoy your walk.",
                    split=8)


class OwnLoop:
    """One CLI process with the bridge, as Claude Code runs its own tools."""

    def __init__(self, base_url: str, home: str) -> None:
        from proxy.claude.invocation import Invocation
        from proxy.runners.live import LiveRunner, WorkRoot
        from proxy.tools.spec import tool_request
        from tests.support.servers import cli_environ
        self.request = tool_request({"tools": [TOOL]})
        self.runner = LiveRunner(work_root=WorkRoot(tempfile.mkdtemp(prefix="bench-tools-")),
                                 max_retries=0, environ=cli_environ(base_url, home))
        self.invocation = Invocation(model=MODEL, blocks=("What's the weather in Paris? 0",),
                                     tools=self.request.tools, stay_open=True)
        self.process = self.runner.start(self.invocation)
        self.turn = 0

    def round(self) -> float:
        """Asks, waits for the held call, answers it; the seconds to the first text delta."""
        if self.turn:
            line = {"type": "user", "message": {"role": "user", "content": [
                {"type": "text", "text": f"What's the weather in Paris? {self.turn}"}]},
                "parent_tool_use_id": None, "session_id": ""}
            self.process.send([json.dumps(line)], close_stdin=False)
        self.turn += 1
        deadline = time.monotonic() + TIMEOUT
        answered_at = None
        while time.monotonic() < deadline:
            if answered_at is None and self.process.bridge.pending():
                (use_id,) = self.process.bridge.pending()
                time.sleep(TOOL_SECONDS)
                answered_at = time.monotonic()
                self.process.bridge.answer(use_id, "sunny")
            line = self.process.read_line(0.01)
            if line is None:
                continue
            if answered_at is not None and '"text_delta"' in line:
                first = time.monotonic() - answered_at
                self._drain()
                return first
        raise TimeoutError("no answer from the CLI's own loop")

    def _drain(self) -> None:
        while True:
            line = self.process.read_line(TIMEOUT)
            if line is not None and '"type":"result"' in line:
                return

    def close(self) -> None:
        self.process.close()
        self.runner.close()


class ProxyPath:
    def __init__(self, base_url: str, home: str, keep: int) -> None:
        import openai
        from proxy.app import build_runner
        from proxy.settings import Settings
        from tests.support.servers import cli_environ, running_proxy
        settings = Settings(keep_conversations=keep, cli_max_retries=0,
                            work_dir=tempfile.mkdtemp(prefix="bench-tools-"))
        self.runner = build_runner(settings, environ=cli_environ(base_url, home))
        self.context = running_proxy(settings, self.runner)
        self.proxy = self.context.__enter__()
        # The SDK's own HTTP client, with a hook that notes when a request leaves the SDK: the
        # SDK's time to build a request grows with the history, and it is the client's.
        self.sent_at: float | None = None
        self.after_sdk: list[float] = []
        http = openai.DefaultHttpxClient(event_hooks={"request": [self._sent]})
        self.client = openai.OpenAI(base_url=self.proxy.base_url, api_key="x", max_retries=0,
                                    timeout=TIMEOUT, http_client=http)
        self.turn = 0
        self.history: list[dict[str, Any]] = []

    def round(self) -> float:
        """One turn of one continuing conversation, as an agent runs it and as the own loop's
        process lives on: a fresh process per round would time a CLI not yet warmed up."""
        ask = self.history + [
            {"role": "user", "content": f"What's the weather in Paris? {self.turn}"}]
        self.turn += 1
        first = self.client.chat.completions.create(model=MODEL, messages=ask, tools=[TOOL])
        message = first.choices[0].message
        messages = ask + [message.model_dump(exclude_none=True)] + [
            {"role": "tool", "tool_call_id": c.id, "content": "sunny"}
            for c in message.tool_calls]
        time.sleep(TOOL_SECONDS)  # the client runs its tool
        started = time.monotonic()
        self.sent_at = None
        elapsed, text = None, ""
        for chunk in self.client.chat.completions.create(model=MODEL, messages=messages,
                                                         tools=[TOOL], stream=True):
            if chunk.choices and chunk.choices[0].delta.content:
                if elapsed is None:
                    now = time.monotonic()
                    elapsed = now - started
                    self.after_sdk.append(now - (self.sent_at or started))
                text += chunk.choices[0].delta.content
        if elapsed is None:
            raise RuntimeError("no content in the answer")
        self.history = messages + [{"role": "assistant", "content": text}]
        return elapsed

    def _sent(self, request: Any) -> None:
        if self.sent_at is None:
            self.sent_at = time.monotonic()

    def close(self) -> None:
        self.context.__exit__(None, None, None)


def run(rounds: int = 10) -> tuple[list[Row], dict[str, Any]]:
    from proxy.standin.server import StandInUpstream
    home = tempfile.mkdtemp(prefix="bench-tools-home-")
    raw: dict[str, list[float]] = {"own": [], "pending": [], "resume": []}
    with StandInUpstream() as upstream:
        for name in raw:
            upstream.add_scenario(f"bench-tools-{name}", _scenario())
        own = OwnLoop(upstream.base_url_for("bench-tools-own"), home)
        pending = ProxyPath(upstream.base_url_for("bench-tools-pending"), home, keep=4)
        resume = ProxyPath(upstream.base_url_for("bench-tools-resume"), home, keep=0)
        paths = {"own": own, "pending": pending, "resume": resume}
        try:
            for i in range(rounds + 1):  # the first round warms each path up, unmeasured
                order = list(paths)[i % 3:] + list(paths)[:i % 3]
                for name in order:
                    value = paths[name].round()
                    if i:
                        raw[name].append(value)
                    time.sleep(0.2)
        finally:
            for path in paths.values():
                path.close()
            shutil.rmtree(home, ignore_errors=True)
    # The warm-up round is not measured; its SDK figure goes too.
    raw["pending_from_sdk"] = pending.after_sdk[1:]
    own_median, pending_median = median(raw["own"]), median(raw["pending"])
    rows = [
        Row("tools", "tool round trip, median: result sent -> first token, pending call",
            pending_median, own_median, "Claude Code's own tool loop", "s",
            "<= 1.3x", pending_median <= 1.3 * own_median),
        Row("tools", "tool round trip, median: pending call, from the request leaving the SDK",
            median(raw["pending_from_sdk"]), own_median, "Claude Code's own tool loop", "s",
            note="the openai SDK's time to build the request left out"),
        Row("tools", "tool round trip, median: cold resume (keep_conversations=0)",
            median(raw["resume"]), own_median, "Claude Code's own tool loop", "s"),
    ]
    return rows, {k: [round(v, 4) for v in values] for k, values in raw.items()}


if __name__ == "__main__":
    rows, raw = run()
    for row in rows:
        print(row)
    print(json.dumps(raw))
