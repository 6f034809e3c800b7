"""The cassette: one recorded proxy-to-CLI interaction.

What the proxy asked for (the normalised invocation), how the recording was made, every stdout
line with its time offset, stderr and how the run ended. Lines are kept exactly as the replay
must hand them to the proxy (after redaction), so a replayed run parses like a live one.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass, field
from typing import Any

from proxy.claude.invocation import Invocation

FORMAT = "claude-max-api-cassette"
FORMAT_VERSION = 1

# Texts longer than this are stored as a digest, size and head: the 1 MB prompt stays small
# in the repository and still matches exactly.
LARGE_TEXT_CHARS = 16 * 1024
HEAD_CHARS = 160


def digest(text: str) -> str:
    # surrogatepass: a lone surrogate is a legal Python str and must not break hashing.
    return hashlib.sha256(text.encode("utf-8", "surrogatepass")).hexdigest()


@dataclass(frozen=True)
class Text:
    """A text of the invocation: stored in full, or (when long) as its sha256, length and head."""

    full: str | None
    chars: int
    sha256: str | None = None
    head: str = ""

    @classmethod
    def of(cls, text: str, limit: int = LARGE_TEXT_CHARS) -> "Text":
        if len(text) <= limit:
            return cls(text, len(text))
        return cls(None, len(text), digest(text), text[:HEAD_CHARS])

    @property
    def is_digest(self) -> bool:
        return self.full is None

    def matches(self, text: str) -> bool:
        if self.full is not None:
            return self.full == text
        return len(text) == self.chars and digest(text) == self.sha256

    def preview(self, limit: int = 80) -> str:
        """A short form for logs and messages."""
        shown = self.full if self.full is not None else self.head
        more = self.full is None or len(shown) > limit
        return shown[:limit] + ("…" if more else "")


def tool_json(tool: Any) -> str:
    """A tool of the run (proxy.tools.spec.Tool) as canonical JSON: what the model is offered."""
    return json.dumps({"name": tool.name, "alias": tool.alias, "description": tool.description,
                       "schema": json.loads(tool.schema), "strict": tool.strict,
                       "kind": tool.kind}, separators=(",", ":"), sort_keys=True,
                      ensure_ascii=False)


@dataclass(frozen=True)
class RecordedInvocation:
    """`Invocation` as stored: its fields plus the normalised argv and the exact stdin lines."""

    model: str
    system_prompt: Text
    blocks: tuple[Text, ...]
    max_output_tokens: int | None = None
    extra_env: tuple[tuple[str, str], ...] = ()
    argv: tuple[str, ...] = ()
    stdin: tuple[Text, ...] = ()
    images: tuple[tuple[int, Text], ...] = ()  # (the block each comes before, its source)
    # The earlier turns the run resumed: (role, its content blocks as canonical JSON).
    history: tuple[tuple[str, tuple[Text, ...]], ...] = ()
    # Reasoning settings (Invocation.effort, thinking, thinking_display); None: the CLI's own.
    effort: str | None = None
    thinking: str | None = None
    thinking_display: str | None = None
    # Tool calling and structured output (proxy/tools/, proxy/chat/response_format.py): the
    # tools offered (each as canonical JSON), the tool results that open the user turn
    # (canonical tool_result blocks), the structured-output schema.
    tools: tuple[Text, ...] = ()
    tool_results: tuple[Text, ...] = ()
    json_schema: Text | None = None

    @classmethod
    def of(cls, invocation: Invocation, argv: list[str] | None = None) -> "RecordedInvocation":
        """`argv` overrides the invocation's normalised argv (a recording with extra flags)."""
        return cls(model=invocation.model,
                   system_prompt=Text.of(invocation.system_prompt),
                   blocks=tuple(Text.of(b) for b in invocation.blocks),
                   max_output_tokens=invocation.max_output_tokens,
                   extra_env=tuple(invocation.extra_env),
                   argv=tuple(invocation.argv() if argv is None else argv),
                   stdin=tuple(Text.of(line) for line in invocation.stdin_lines()),
                   images=tuple((i, Text.of(source)) for i, source in invocation.images),
                   history=tuple((t.role, tuple(Text.of(b) for b in t.blocks))
                                 for t in invocation.history),
                   effort=invocation.effort, thinking=invocation.thinking,
                   thinking_display=invocation.thinking_display,
                   tools=tuple(Text.of(tool_json(t)) for t in invocation.tools),
                   tool_results=tuple(Text.of(r) for r in invocation.tool_results),
                   json_schema=None if invocation.json_schema is None
                   else Text.of(invocation.json_schema))


@dataclass(frozen=True)
class Recording:
    """How the cassette was made, so anyone can tell (and redo) what produced it."""

    description: str = ""
    cli: str = "claude"            # "claude", or the repository path of a fake CLI script
    upstream: str = "stand-in"     # "stand-in", "closed-port" (nothing listening) or "login"
    credentials: str = "api-key"   # "api-key" (a dummy key), "none" (not logged in), "login"
    scenario: dict[str, Any] | None = None  # what the stand-in played (Scenario.to_dict())
    env: tuple[tuple[str, str], ...] = ()   # CLI environment the recorder set on top
    extra_args: tuple[str, ...] = ()        # CLI arguments beyond the invocation's own
    interrupt: str | None = None            # e.g. "SIGTERM after the first text delta"
    # "continued": the user turn was written to a CLI process kept from the conversation's
    # previous turn (no start-up, no session file); None: the run started its own process
    # (resuming a session file when the invocation has a history).
    process: str | None = None
    # How the client asked, for people reading the cassette (never matched on): the served
    # model id, whether it streamed, the names of its tools. Written by `serve --record`.
    request: dict[str, Any] | None = None


@dataclass(frozen=True)
class Ending:
    """How the run ended."""

    returncode: int | None          # as the live runner reported it (143 after SIGTERM)
    stderr: str = ""
    # True when the proxy closed the run before the CLI had finished (a max_tokens stop); the
    # recorded stdout then ends where the proxy stopped reading.
    closed_by_proxy: bool = False


@dataclass(frozen=True)
class Cassette:
    name: str
    invocation: RecordedInvocation
    stdout: tuple[str, ...]
    ending: Ending
    offsets: tuple[float, ...] = ()  # seconds from the start to each stdout line
    exit_offset: float = 0.0         # seconds from the start to the exit (or the proxy's close)
    recording: Recording = field(default_factory=Recording)
    cli_version: str | None = None   # None: not the real CLI (a fake one)
    format_version: int = FORMAT_VERSION

    def __post_init__(self) -> None:
        if not self.offsets:
            object.__setattr__(self, "offsets", (0.0,) * len(self.stdout))
        if len(self.offsets) != len(self.stdout):
            raise ValueError(f"cassette {self.name}: {len(self.stdout)} stdout lines but "
                             f"{len(self.offsets)} offsets")
