"""Which cassette answers a request: matchers over the normalised invocation, as in vcrpy.

A request is compared with a cassette through its *match view*: the invocation as the
cassette file's `invocation` section shows it (what `claude-max-api cassettes show` prints):

    model              the CLI model (`sonnet`; the served ids that map to it are equal)
    system_prompt      the leading system and developer messages, joined
    history            the earlier turns: [{"role", "content": [content blocks]}]
    tool_results       the tool results that open the last user turn: [tool_result blocks]
    blocks             the last user message's text blocks
    images             its images: [{"before": <block index>, "source": <JSON text>}]
    max_output_tokens  max_completion_tokens, else max_tokens
    effort, thinking, thinking_display   the reasoning settings (reasoning_effort, the ask)
    tools              the tools offered: [{"name", "alias", "description", "schema", ...}]
    json_schema        the structured-output schema (response_format)
    extra_env, argv, stdin   the exact CLI invocation (strict matching only)

`match_on` names the matchers that must agree (or gives functions of its own). The default
compares what decides the answer: the model, the system prompt, the earlier turns (what the
resumed session or the kept process held), the user turn (`blocks`: its tool results, texts
and images), the output limit, the reasoning settings, the tools offered and the
structured-output schema. Everything else a client sends (`temperature`, `user`, `metadata`, `stream`,
`stop`, ...) never reaches the CLI and never takes part. `argv`, `stdin` and `extra_env` can be
added for a strict check that the proxy still invokes the CLI exactly as when recorded.

`ignore` (`serve --match-ignore`) takes parts out of the comparison, for what varies between
runs: a JSON pointer into the match view (`/system_prompt`, `/history/0/content/1`, `*` for
every item: `/history/*/content/0/text`), a part's name (`system_prompt`), or an OpenAI request
field (`max_tokens` is `/max_output_tokens`; fields that never reach the CLI are accepted and
change nothing). Texts longer than 16 KiB are stored as a digest and compared whole.

A miss names the closest cassettes and the first difference in words, with the pointer that
would ignore it: `history[1].content[0].text (an assistant turn) differs: "Chess is fun."
here, "Chess is a fine game." in the cassette`.
"""

from __future__ import annotations

import difflib
import json
from dataclasses import dataclass
from typing import Any, Callable, Mapping, Sequence, Union

from proxy.cassettes.cassette import Cassette, RecordedInvocation, Text
from proxy.claude.invocation import Invocation

MatcherFn = Callable[[Invocation, RecordedInvocation], bool]

# The parts of the match view, in the order a difference is looked for.
PARTS = ("model", "system_prompt", "history", "tool_results", "blocks", "images",
         "max_output_tokens", "effort", "thinking", "thinking_display", "tools", "json_schema",
         "extra_env", "argv", "stdin")
# Each named matcher compares these parts (`blocks` is the whole user turn, images included).
MATCHER_PARTS: dict[str, tuple[str, ...]] = {
    "model": ("model",),
    "system_prompt": ("system_prompt",),
    "history": ("history",),
    "blocks": ("tool_results", "blocks", "images"),
    "max_output_tokens": ("max_output_tokens",),
    "reasoning": ("effort", "thinking", "thinking_display"),
    "tools": ("tools",),
    "json_schema": ("json_schema",),
    "extra_env": ("extra_env",),
    "argv": ("argv",),
    "stdin": ("stdin",),
}
DEFAULT_MATCH_ON: tuple[str, ...] = ("model", "system_prompt", "history", "blocks",
                                     "max_output_tokens", "reasoning", "tools", "json_schema")
STRICT_MATCH_ON: tuple[str, ...] = tuple(MATCHER_PARTS)

# OpenAI request fields, for --match-ignore: those that become a part, and those that never
# reach the CLI (ignoring them changes nothing; they are accepted so nobody has to know).
REQUEST_FIELD_PARTS = {"model": "/model", "max_tokens": "/max_output_tokens",
                       "max_completion_tokens": "/max_output_tokens",
                       "reasoning_effort": "/effort", "tools": "/tools",
                       "functions": "/tools", "response_format": "/json_schema"}
NEVER_MATCHED = frozenset({
    "user", "metadata", "temperature", "top_p", "seed", "stream", "stream_options", "stop", "n",
    "presence_penalty", "frequency_penalty", "logit_bias", "store", "service_tier",
    "parallel_tool_calls", "prompt_cache_key", "safety_identifier", "logprobs", "top_logprobs"})
IGNORED = "<ignored>"
_ROLES = {"user": "a user turn", "assistant": "an assistant turn"}


# -- the match view -----------------------------------------------------------------------------

def _text(text: Text) -> Any:
    if text.full is not None:
        return text.full
    return {"sha256": text.sha256, "chars": text.chars, "head": text.head}


def _block(block: Text) -> Any:
    if block.full is not None:
        try:
            return json.loads(block.full)
        except ValueError:
            return block.full
    return _text(block)


class _ToolIds:
    """Renumbers the tool-use ids of a conversation's blocks in order of appearance: a
    replayed call reaches the client with its recorded id redacted (`<TOOL_USE_ID_1>`), so the
    client sends that back, never the id the recording client had. Compared by their order,
    the two conversations are the same."""

    def __init__(self) -> None:
        self.numbers: dict[str, str] = {}

    def __call__(self, block: Any) -> Any:
        if isinstance(block, dict) and block.get("type") in ("tool_use", "tool_result"):
            key = "id" if block["type"] == "tool_use" else "tool_use_id"
            if isinstance(block.get(key), str):
                number = self.numbers.setdefault(block[key], f"<tool use {len(self.numbers) + 1}>")
                block = {**block, key: number}
        return block


def view(rec: RecordedInvocation) -> dict[str, Any]:
    """The match view of an invocation (the cassette file's `invocation` section), with the
    tool-use ids of its conversation numbered in order of appearance (see _ToolIds)."""
    ids = _ToolIds()
    return {
        "model": rec.model,
        "system_prompt": _text(rec.system_prompt),
        "history": [{"role": role, "content": [ids(_block(b)) for b in blocks]}
                    for role, blocks in rec.history],
        "tool_results": [ids(_block(r)) for r in rec.tool_results],
        "blocks": [_text(b) for b in rec.blocks],
        "images": [{"before": i, "source": _text(t)} for i, t in rec.images],
        "max_output_tokens": rec.max_output_tokens,
        "effort": rec.effort, "thinking": rec.thinking, "thinking_display": rec.thinking_display,
        "tools": [_block(t) for t in rec.tools],
        "json_schema": None if rec.json_schema is None else _block(rec.json_schema),
        "extra_env": dict(rec.extra_env),
        "argv": list(rec.argv),
        "stdin": [_text(s) for s in rec.stdin],
    }


# -- ignore rules -------------------------------------------------------------------------------

def parse_pointer(pointer: str) -> tuple[str, ...]:
    """A JSON pointer (RFC 6901) as its tokens; `*` stands for every item."""
    if not pointer.startswith("/"):
        raise ValueError(f"{pointer!r} is not a JSON pointer (it starts with /)")
    return tuple(t.replace("~1", "/").replace("~0", "~") for t in pointer[1:].split("/"))


def ignore_rule(spec: str) -> tuple[str, ...] | None:
    """One --match-ignore value as pointer tokens; None for a request field that never takes
    part in matching. ValueError (naming what is accepted) for anything else."""
    spec = spec.strip()
    if not spec.startswith("/"):
        if spec in PARTS:
            spec = "/" + spec
        elif spec in REQUEST_FIELD_PARTS:
            spec = REQUEST_FIELD_PARTS[spec]
        elif spec in NEVER_MATCHED:
            return None
        elif spec == "messages":
            raise ValueError("--match-ignore messages: name the part of the conversation "
                             "instead: /system_prompt, /history (the earlier turns, e.g. "
                             "/history/0), /blocks or /images (the last user message)")
        else:
            raise ValueError(f"--match-ignore {spec!r}: not a part of the match view "
                             f"({', '.join(PARTS)}), a JSON pointer into it (/history/0), or an "
                             f"OpenAI request field")
    tokens = parse_pointer(spec)
    if tokens[0] not in PARTS:
        raise ValueError(f"--match-ignore {spec!r}: the match view has no {tokens[0]!r}; its "
                         f"parts are {', '.join(PARTS)}")
    return tokens


def _blank(value: Any, tokens: Sequence[str]) -> None:
    """Replaces what `tokens` points at inside `value` with IGNORED (where it exists)."""
    head, rest = tokens[0], tokens[1:]
    if isinstance(value, dict):
        keys = list(value) if head == "*" else [head] if head in value else []
    elif isinstance(value, list):
        if head == "*":
            keys = list(range(len(value)))
        elif head.isdigit() and int(head) < len(value):
            keys = [int(head)]
        else:
            keys = []
    else:
        keys = []
    for key in keys:
        if rest:
            _blank(value[key], rest)
        else:
            value[key] = IGNORED


# -- differences in words -----------------------------------------------------------------------

@dataclass(frozen=True)
class Difference:
    path: tuple[Any, ...]  # part name, then keys and indexes
    words: str

    @property
    def pointer(self) -> str:
        return "/" + "/".join(str(p).replace("~", "~0").replace("/", "~1") for p in self.path)

    @property
    def where(self) -> str:
        out = str(self.path[0])
        for step in self.path[1:]:
            out += f"[{step}]" if isinstance(step, int) else f".{step}"
        return out


def _quote(text: str, at: int, width: int = 40) -> str:
    """The text, or (when long) `width` characters of it around position `at`."""
    if len(text) <= width + 20:
        return json.dumps(text, ensure_ascii=False)
    start = max(0, at - width // 3)
    shown = text[start:start + width]
    return json.dumps(("…" if start else "") + shown + ("…" if start + width < len(text) else ""),
                      ensure_ascii=False)


def _value_words(value: Any) -> str:
    if value is None:
        return "none"
    if isinstance(value, dict) and "sha256" in value:
        return f"a {value['chars']}-character text starting {_quote(value['head'], 0)}"
    text = json.dumps(value, ensure_ascii=False)
    return text if len(text) <= 40 else text[:37] + "…"


def _describe(path: tuple[Any, ...], asked: Any, recorded: Any) -> str:
    if isinstance(asked, str) and isinstance(recorded, str):
        at = next((i for i, (a, b) in enumerate(zip(asked, recorded)) if a != b),
                  min(len(asked), len(recorded)))
        return f"{_quote(asked, at)} here, {_quote(recorded, at)} in the cassette"
    if isinstance(asked, list) and isinstance(recorded, list):
        what = "turns" if path == ("history",) else "items"
        return f"{len(asked)} {what} here, {len(recorded)} in the cassette"
    return f"{_value_words(asked)} here, {_value_words(recorded)} in the cassette"


def _first(asked: Any, recorded: Any, path: tuple[Any, ...]) -> tuple[tuple[Any, ...], Any, Any]:
    """The deepest path where the two first differ."""
    if isinstance(asked, list) and isinstance(recorded, list):
        for i, (a, r) in enumerate(zip(asked, recorded)):
            if a != r:
                return _first(a, r, path + (i,))
        return path, asked, recorded
    if isinstance(asked, dict) and isinstance(recorded, dict) and "sha256" not in asked \
            and "sha256" not in recorded:
        for key in [*recorded, *(k for k in asked if k not in recorded)]:
            if asked.get(key) != recorded.get(key):
                if key in asked and key in recorded:
                    return _first(asked[key], recorded[key], path + (key,))
                return path + (key,), asked.get(key), recorded.get(key)
        return path, asked, recorded
    return path, asked, recorded


def difference(asked: Mapping[str, Any], recorded: Mapping[str, Any],
               parts: Sequence[str]) -> Difference | None:
    """The first difference between two match views over `parts`, in words."""
    for part in parts:
        if asked[part] == recorded[part]:
            continue
        path, a, r = _first(asked[part], recorded[part], (part,))
        role = ""
        turns = recorded["history"]
        if path[0] == "history" and len(path) > 2 and isinstance(path[1], int) \
                and path[1] < len(turns) and isinstance(turns[path[1]], dict):
            role = _ROLES.get(turns[path[1]].get("role", ""), "")
        where = Difference(path, "").where + (f" ({role})" if role else "")
        return Difference(path, f"{where} differs: {_describe(path, a, r)}")
    return None


# -- the matcher --------------------------------------------------------------------------------

@dataclass(frozen=True)
class Near:
    """A cassette that did not match, and how far it was."""
    name: str
    differs_in: tuple[str, ...]   # the matchers that said no
    similarity: float             # of the prompt text, 0..1
    first: Difference | None = None

    def describe(self, pointer: bool = False) -> str:
        """`name: <first difference in words>`; with `pointer`, also the JSON pointer of the
        difference (what --match-ignore would take, were it something that varies)."""
        if self.first is not None:
            return f"{self.name}: {self.first.words}" + \
                (f" (at {self.first.pointer})" if pointer else "")
        return (f"{self.name}: differs in {', '.join(self.differs_in) or 'nothing'} (prompt "
                f"{self.similarity:.0%} similar)")


def _named(name: str) -> MatcherFn:
    def check(inv: Invocation, rec: RecordedInvocation) -> bool:
        return Matcher([name]).matches(inv, rec)
    check.__name__ = name
    return check


# The named matchers as functions (inv, recorded) -> bool, as vcrpy offers them.
MATCHERS: dict[str, MatcherFn] = {name: _named(name) for name in MATCHER_PARTS}


class Matcher:
    def __init__(self, match_on: Sequence[Union[str, MatcherFn]] = DEFAULT_MATCH_ON,
                 custom: Mapping[str, MatcherFn] | None = None,
                 ignore: Sequence[str] = ()) -> None:
        self._named: list[str] = []
        # In order: (name, None) for a named matcher, (name, function) for a function.
        self._checks: list[tuple[str, MatcherFn | None]] = []
        for item in match_on:
            if callable(item):
                self._checks.append((getattr(item, "__name__", "custom"), item))
            elif item in MATCHER_PARTS:
                self._named.append(item)
                self._checks.append((item, None))
            elif custom and item in custom:
                self._checks.append((item, custom[item]))
            else:
                known = sorted({*MATCHER_PARTS, *(custom or {})})
                raise ValueError(f"unknown matcher {item!r}; known: {', '.join(known)}")
        if not self._checks:
            raise ValueError("match_on needs at least one matcher")
        rules = [ignore_rule(spec) for spec in ignore]
        self.ignore: tuple[str, ...] = tuple(ignore)
        self._rules = [r for r in rules if r is not None]
        dropped = {r[0] for r in self._rules if len(r) == 1}
        self._parts = tuple(p for p in PARTS if p not in dropped and any(
            p in MATCHER_PARTS[n] for n in self._named))
        self._asked: tuple[Invocation, dict[str, Any]] | None = None

    @property
    def match_on(self) -> tuple[str, ...]:
        return tuple(name for name, _ in self._checks)

    @property
    def parts(self) -> tuple[str, ...]:
        """The parts of the match view that are compared (after --match-ignore)."""
        return self._parts

    @property
    def keyed(self) -> bool:
        """Whether a request's cassettes can be found by key (no matcher functions)."""
        return all(check is None for _, check in self._checks)

    # -- views ------------------------------------------------------------------------------
    def recorded_view(self, recorded: RecordedInvocation) -> dict[str, Any]:
        out = view(recorded)
        for rule in self._rules:
            if len(rule) > 1:
                _blank(out, rule)
        return out

    def asked_view(self, invocation: Invocation) -> dict[str, Any]:
        cached = self._asked
        if cached is not None and cached[0] is invocation:
            return cached[1]
        out = self.recorded_view(RecordedInvocation.of(invocation))
        self._asked = (invocation, out)
        return out

    def key(self, view_: Mapping[str, Any]) -> str:
        """The compared parts of a view as one string: equal keys are equal views."""
        return json.dumps([view_[p] for p in self._parts], sort_keys=True, ensure_ascii=False,
                          separators=(",", ":"))

    # -- matching ---------------------------------------------------------------------------
    def failures(self, invocation: Invocation, recorded: RecordedInvocation) -> list[str]:
        """The names of the matchers that say no."""
        if self._named:
            asked, rec = self.asked_view(invocation), self.recorded_view(recorded)
        out = []
        for name, check in self._checks:
            if check is None:
                if any(asked[p] != rec[p] for p in MATCHER_PARTS[name] if p in self._parts):
                    out.append(name)
            elif not check(invocation, recorded):
                out.append(name)
        return out

    def matches(self, invocation: Invocation, recorded: RecordedInvocation) -> bool:
        return not self.failures(invocation, recorded)

    def first_difference(self, invocation: Invocation,
                         recorded: RecordedInvocation) -> Difference | None:
        return difference(self.asked_view(invocation), self.recorded_view(recorded),
                          self._parts)

    def nearest(self, invocation: Invocation, cassettes: Sequence[Cassette], n: int = 3
                ) -> list[Near]:
        """The `n` closest cassettes: fewest differing matchers, then the most similar prompt;
        each with its first difference."""
        asked = _prompt_sample(invocation.system_prompt, invocation.blocks)
        scored = []
        for cassette in cassettes:
            rec = cassette.invocation
            recorded = _prompt_sample(rec.system_prompt.preview(2000),
                                      [b.preview(2000) for b in rec.blocks])
            ratio = difflib.SequenceMatcher(None, asked, recorded).ratio()
            scored.append((cassette, tuple(self.failures(invocation, rec)), ratio))
        scored.sort(key=lambda s: (len(s[1]), -s[2], s[0].name))
        return [Near(c.name, failures, ratio, self.first_difference(invocation, c.invocation))
                for c, failures, ratio in scored[:n]]


def _prompt_sample(system: str, blocks: Sequence[str]) -> str:
    return (system[:2000] + "\n" + "\n".join(b[:2000] for b in blocks))[:4000]


def describe(invocation: Invocation) -> str:
    """A one-line summary of a request's invocation, for messages and logs."""
    text = "\n".join(invocation.blocks)
    preview = text[:60].replace("\n", " ") + ("…" if len(text) > 60 else "")
    return (f"model `{invocation.model}`, system prompt {len(invocation.system_prompt)} chars, "
            + (f"{len(invocation.history)} earlier turn(s), " if invocation.history else "") +
            f"{len(invocation.blocks)} block(s) of {len(text)} chars starting {preview!r}, "
            + (f"{len(invocation.images)} image(s), " if invocation.images else "")
            + (f"{len(invocation.tool_results)} tool result(s), " if invocation.tool_results
               else "")
            + (f"{len(invocation.tools)} tool(s), " if invocation.tools else "")
            + ("a response format, " if invocation.json_schema is not None else "")
            + f"max_output_tokens {invocation.max_output_tokens}"
            + "".join(f", {name} {getattr(invocation, name)}"
                      for name in ("effort", "thinking", "thinking_display")
                      if getattr(invocation, name) is not None))
