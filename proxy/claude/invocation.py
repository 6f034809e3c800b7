"""How the CLI is invoked: flags, environment and the stdin line, for one request.

The flags are the safe set measured with CLI 2.1.332:
* `--tools ""` is the only thing that stops tool execution (the default mode runs read-only
  Bash commands), and `--strict-mcp-config` keeps the user's MCP servers out;
* `--setting-sources ""` stops user and project settings, so their hooks never run and
  CLAUDE.md files never reach the prompt;
* `--no-session-persistence` writes no transcript files; `--disable-slash-commands` makes
  `/text` plain text;
* the prompt goes on stdin in stream-json mode: no argv length limit, and text beginning with
  `-` is only text. The system prompt goes through a file for the same reason.
"""

from __future__ import annotations

import dataclasses
import json
from dataclasses import dataclass, field

from proxy.conversations.turns import Turn, cli_order
from proxy.tools.spec import SERVER, Tool

SAFE_FLAGS: tuple[str, ...] = (
    "-p",
    "--input-format", "stream-json",
    "--output-format", "stream-json",
    "--verbose",
    "--include-partial-messages",
    "--tools", "",
    "--setting-sources", "",
    "--strict-mcp-config",
    "--no-session-persistence",
    "--disable-slash-commands",
)

# Stand for the per-request system prompt file and session id in the normalised argv
# (cassettes, logs).
SYSTEM_PROMPT_FILE_TOKEN = "<SYSTEM_PROMPT_FILE>"
SESSION_ID_TOKEN = "<SESSION_ID>"
RESUME_AT_TOKEN = "<LAST_ENTRY_UUID>"

# The smallest thinking budget the CLI asks for (measured: budget = max(max_tokens-1, 1024)).
THINKING_MIN_BUDGET = 1024

# Environment every run gets, whatever the user's shell has.
FIXED_ENV: dict[str, str] = {
    "CLAUDE_CODE_DISABLE_NONESSENTIAL_TRAFFIC": "1",  # only the model call, nothing else
    # An `@/path` in the prompt's last block would attach that file (measured: `@/etc/hostname`
    # sent the file to the model, despite `--tools ""`); render.py also keeps `@` out of it.
    "CLAUDE_CODE_DISABLE_FILE_MENTIONS": "1",
    "CLAUDE_CODE_DISABLE_ULTRATHINK": "1",  # "ultrathink" in a prompt would add a system note
    "DISABLE_AUTOUPDATER": "1",
    "DISABLE_TELEMETRY": "1",
}
# The tool bridge's MCP server, over the CLI's control channel (measured: no idle limit).
MCP_CONFIG = json.dumps({"mcpServers": {SERVER: {"type": "sdk", "name": SERVER}}},
                        separators=(",", ":"))
TOOL_ENV: dict[str, str] = {
    # No DeferredToolPlaceholder next to the client's tools (5.x models get one otherwise).
    "ENABLE_TOOL_SEARCH": "false",
    # A held call waits for the client as long as the proxy keeps the process (the keeper's
    # idle bound ends it first); the CLI's own default hard limit is 27.8 h.
    "MCP_TOOL_TIMEOUT": str(24 * 3600 * 1000),
}

# Variables that would change what the CLI does in ways the proxy must control itself.
DROPPED_ENV: tuple[str, ...] = ("CLAUDECODE", "CLAUDE_CODE_ENTRYPOINT", "CLAUDE_CODE_SSE_PORT")


_CONVERSATION_FIELDS = frozenset({"blocks", "images", "history", "tool_results"})


@dataclass(frozen=True)
class Invocation:
    """Everything that decides what one CLI run does; the matcher keys of a cassette."""

    model: str
    system_prompt: str = ""
    blocks: tuple[str, ...] = ()
    max_output_tokens: int | None = None
    extra_env: tuple[tuple[str, str], ...] = field(default=())
    fallback_model: str | None = None  # the CLI's --fallback-model (used when overloaded)
    # Image blocks: (index of the text block each comes before, its source as JSON text).
    images: tuple[tuple[int, str], ...] = ()
    # The conversation before this user turn, as native turns: the run resumes a session
    # file that holds them (proxy/conversations/session.py).
    history: tuple[Turn, ...] = ()
    # The client's tools, offered through the run's MCP bridge (proxy/tools/), and the tool
    # results that open this user turn (canonical tool_result blocks).
    tools: tuple[Tool, ...] = ()
    tool_results: tuple[str, ...] = ()
    # Structured output: the schema of the CLI's StructuredOutput tool (proxy/chat/
    # response_format.py), canonical JSON.
    json_schema: str | None = None
    # Reasoning (proxy/chat/reasoning.py): the CLI's --effort (low|medium|high|xhigh|max),
    # --thinking (disabled) and --thinking-display (summarized); None leaves the CLI's default.
    effort: str | None = None
    thinking: str | None = None
    thinking_display: str | None = None
    # -- not part of what the run does; how the proxy manages it ----------------------------
    owner: str = field(default="", compare=False)  # the API key the conversation belongs to
    # The conversation is native, so the process may be kept to continue it.
    continuable: bool = field(default=False, compare=False)
    # Keep stdin open after the message, so the process can take a next turn.
    stay_open: bool = field(default=False, compare=False)
    # The client takes one call an answer (parallel_tool_calls false, legacy functions).
    parallel_calls: bool = field(default=True, compare=False)
    # How the client asked ((key, value) pairs: the served model id, whether it streamed), for
    # recordings only: the answer does not depend on it.
    request: tuple[tuple[str, object], ...] | None = field(default=None, compare=False)

    def settings_key(self) -> tuple:
        """Everything that shapes the run apart from the conversation itself: a kept process
        may only continue a request whose settings are equal."""
        return tuple((f.name, getattr(self, f.name)) for f in dataclasses.fields(self)
                     if f.compare and f.name not in _CONVERSATION_FIELDS)

    def argv(self, system_prompt_file: str = SYSTEM_PROMPT_FILE_TOKEN,
             session_id: str = SESSION_ID_TOKEN, resume_at: str = RESUME_AT_TOKEN) -> list[str]:
        """The CLI arguments after the executable; the defaults give the normalised form."""
        argv = [*SAFE_FLAGS, "--model", self.model, "--system-prompt-file", system_prompt_file]
        if self.history:
            # The earlier turns come from a session file (proxy/conversations/session.py);
            # without the snapshot setting a prompt recorded in a session would win over ours.
            argv += [f"--resume={session_id}", "--system-prompt-snapshot", "off"]
            if self.tool_results:
                # The session ends with the model's calls; resumed as it is, the CLI would
                # answer them itself ("Tool call interrupted") before our results. Resuming at
                # the call's own entry lets the results on stdin answer them (measured).
                argv.append(f"--resume-session-at={resume_at}")
        if self.json_schema is not None:
            argv += ["--json-schema", self.json_schema]
        if self.tools:
            # The bridge speaks MCP over the CLI's own control channel (proxy/tools/bridge.py):
            # no process, no port. `--tools ""` and `--strict-mcp-config` still hold, so the
            # client's functions are all the model is offered.
            argv += ["--mcp-config", MCP_CONFIG, "--allowedTools", f"mcp__{SERVER}"]
        # The CLI refuses a fallback equal to the model; then there is simply none.
        if self.fallback_model and self.fallback_model != self.model:
            argv += ["--fallback-model", self.fallback_model]
        for flag, value in (("--effort", self.effort), ("--thinking", self.thinking),
                            ("--thinking-display", self.thinking_display)):
            if value:
                argv += [flag, value]
        return argv

    @property
    def keeps_stdin(self) -> bool:
        """stdin stays open after the message: to take a next turn, or to answer the tool
        bridge's requests (which come over the CLI's control channel)."""
        return self.stay_open or bool(self.tools)

    def user_message(self) -> dict:
        content: list[dict] = [cli_order(json.loads(block)) for block in self.tool_results]
        images = iter(self.images)
        image = next(images, None)
        for i, text in enumerate((*self.blocks, None)):
            while image is not None and image[0] == i:
                content.append({"type": "image", "source": json.loads(image[1])})
                image = next(images, None)
            if text is not None:
                content.append({"type": "text", "text": text})
        return {"type": "user", "message": {"role": "user", "content": content},
                "parent_tool_use_id": None, "session_id": ""}

    def stdin_lines(self) -> list[str]:
        # JSON escapes every control character, so text the client sent can never split the
        # one line; ASCII escapes also carry any string JSON allows (even a lone surrogate).
        return [json.dumps(self.user_message(), separators=(",", ":"))]

    def env(self) -> dict[str, str]:
        """Per-run variables (on top of the inherited environment and FIXED_ENV)."""
        out = dict(self.extra_env)
        if self.tools or self.json_schema is not None:
            out.update(TOOL_ENV)
        if self.max_output_tokens is not None:
            out["CLAUDE_CODE_MAX_OUTPUT_TOKENS"] = str(self.max_output_tokens)
            if self.max_output_tokens <= THINKING_MIN_BUDGET:
                # For models with budgeted thinking (4.x) the CLI would ask for a 1024-token
                # budget above max_tokens, which the API refuses; this turns it off (measured:
                # `thinking: disabled`). Adaptive thinking (5.x) is not affected by it.
                out["MAX_THINKING_TOKENS"] = "0"
        return out
