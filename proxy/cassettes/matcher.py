"""Which cassette answers a request: matchers over the normalised invocation, as in vcrpy.

`match_on` names the fields that must be equal (or gives matcher functions of its own). The
default compares what decides the answer: the model, the system prompt, the earlier turns (what
the resumed session held), the user turn's text blocks and the output token limit. `argv`, `stdin` and `extra_env` can be added for a strict
check that the proxy still invokes the CLI exactly as when the cassette was recorded.
"""

from __future__ import annotations

import difflib
import json
from dataclasses import dataclass
from typing import Callable, Mapping, Sequence, Union

from proxy.cassettes.cassette import Cassette, RecordedInvocation
from proxy.claude.invocation import Invocation

MatcherFn = Callable[[Invocation, RecordedInvocation], bool]


def _model(inv: Invocation, rec: RecordedInvocation) -> bool:
    return inv.model == rec.model


def _system_prompt(inv: Invocation, rec: RecordedInvocation) -> bool:
    return rec.system_prompt.matches(inv.system_prompt)


def _blocks(inv: Invocation, rec: RecordedInvocation) -> bool:
    """The user turn: its text blocks, and its images where they stand."""
    return len(inv.blocks) == len(rec.blocks) and all(
        r.matches(b) for r, b in zip(rec.blocks, inv.blocks)) \
        and len(inv.images) == len(rec.images) and all(
            i == j and r.matches(source) for (j, r), (i, source) in zip(rec.images, inv.images))


def _history(inv: Invocation, rec: RecordedInvocation) -> bool:
    """The earlier turns the run resumed: roles and every block, in order. Tool-use ids
    are compared by their order of appearance: a replayed call reaches the client with its
    recorded id redacted (`<TOOL_USE_ID_1>`), so the client sends that back, never the id the
    recording client had."""
    if len(inv.history) != len(rec.history) or any(
            turn.role != role or len(turn.blocks) != len(blocks)
            for turn, (role, blocks) in zip(inv.history, rec.history)):
        return False
    pairs = [(r, b) for turn, (_, blocks) in zip(inv.history, rec.history)
             for r, b in zip(blocks, turn.blocks)]
    if all(r.matches(b) for r, b in pairs):
        return True
    asked, recorded = _ToolIds(), _ToolIds()
    return all(r.matches(b) or (r.full is not None
                                and recorded.renumbered(r.full) == asked.renumbered(b))
               for r, b in pairs)


class _ToolIds:
    """Renumbers the tool-use ids of a conversation's blocks in order of appearance."""

    def __init__(self) -> None:
        self.numbers: dict[str, int] = {}

    def renumbered(self, block: str) -> object:
        try:
            value = json.loads(block)
        except ValueError:
            return block
        if isinstance(value, dict):
            for key in ("id", "tool_use_id") if value.get("type") in ("tool_use",
                                                                        "tool_result") else ():
                if isinstance(value.get(key), str):
                    value[key] = self.numbers.setdefault(value[key], len(self.numbers) + 1)
        return value


def _max_output_tokens(inv: Invocation, rec: RecordedInvocation) -> bool:
    return inv.max_output_tokens == rec.max_output_tokens


def _extra_env(inv: Invocation, rec: RecordedInvocation) -> bool:
    return dict(inv.extra_env) == dict(rec.extra_env)


def _argv(inv: Invocation, rec: RecordedInvocation) -> bool:
    return tuple(inv.argv()) == rec.argv


def _stdin(inv: Invocation, rec: RecordedInvocation) -> bool:
    lines = inv.stdin_lines()
    return len(lines) == len(rec.stdin) and all(r.matches(s) for r, s in zip(rec.stdin, lines))


MATCHERS: dict[str, MatcherFn] = {
    "model": _model,
    "system_prompt": _system_prompt,
    "blocks": _blocks,
    "history": _history,
    "max_output_tokens": _max_output_tokens,
    "extra_env": _extra_env,
    "argv": _argv,
    "stdin": _stdin,
}
DEFAULT_MATCH_ON: tuple[str, ...] = ("model", "system_prompt", "history", "blocks",
                                     "max_output_tokens")
STRICT_MATCH_ON: tuple[str, ...] = tuple(MATCHERS)


@dataclass(frozen=True)
class Near:
    """A cassette that did not match, and how far it was."""
    name: str
    differs_in: tuple[str, ...]
    similarity: float  # of the prompt text, 0..1

    def describe(self) -> str:
        return (f"{self.name} (differs in {', '.join(self.differs_in) or 'nothing'}; prompt "
                f"{self.similarity:.0%} similar)")


class Matcher:
    def __init__(self, match_on: Sequence[Union[str, MatcherFn]] = DEFAULT_MATCH_ON,
                 custom: Mapping[str, MatcherFn] | None = None) -> None:
        known = {**MATCHERS, **(custom or {})}
        self._checks: list[tuple[str, MatcherFn]] = []
        for item in match_on:
            if callable(item):
                self._checks.append((getattr(item, "__name__", "custom"), item))
            elif item in known:
                self._checks.append((item, known[item]))
            else:
                raise ValueError(f"unknown matcher {item!r}; known: {', '.join(sorted(known))}")
        if not self._checks:
            raise ValueError("match_on needs at least one matcher")

    @property
    def match_on(self) -> tuple[str, ...]:
        return tuple(name for name, _ in self._checks)

    def failures(self, invocation: Invocation, recorded: RecordedInvocation) -> list[str]:
        """The names of the matchers that say no."""
        return [name for name, check in self._checks if not check(invocation, recorded)]

    def matches(self, invocation: Invocation, recorded: RecordedInvocation) -> bool:
        return all(check(invocation, recorded) for _, check in self._checks)

    def nearest(self, invocation: Invocation, cassettes: Sequence[Cassette], n: int = 3
                ) -> list[Near]:
        """The `n` closest cassettes: fewest differing fields, then the most similar prompt."""
        asked = _prompt_sample(invocation.system_prompt, invocation.blocks)
        scored = []
        for cassette in cassettes:
            rec = cassette.invocation
            recorded = _prompt_sample(rec.system_prompt.preview(2000),
                                      [b.preview(2000) for b in rec.blocks])
            ratio = difflib.SequenceMatcher(None, asked, recorded).ratio()
            near = Near(cassette.name, tuple(self.failures(invocation, rec)), ratio)
            scored.append(near)
        scored.sort(key=lambda m: (len(m.differs_in), -m.similarity, m.name))
        return scored[:n]


def _prompt_sample(system: str, blocks: Sequence[str]) -> str:
    return (system[:2000] + "\n" + "\n".join(b[:2000] for b in blocks))[:4000]


def describe(invocation: Invocation) -> str:
    """A one-line summary of a request's invocation, for messages and logs."""
    text = "\n".join(invocation.blocks)
    preview = text[:60].replace("\n", " ") + ("…" if len(text) > 60 else "")
    return (f"model `{invocation.model}`, system prompt {len(invocation.system_prompt)} chars, "
            + (f"{len(invocation.history)} earlier turn(s), " if invocation.history else "") +
            f"{len(invocation.blocks)} block(s) of {len(text)} chars starting {preview!r}, "
            + (f"{len(invocation.images)} image(s), " if invocation.images else "") +
            f"max_output_tokens {invocation.max_output_tokens}")
