"""The scenario catalogue: what `claude-max-api record` turns into cassettes.

A JSON file, `{"format": "claude-max-api-catalogue", "entries": {name: entry}}`. An entry is
an OpenAI chat completion request plus what the recording needs around it:

    request      the OpenAI request body, sent through the proxy's own request path
    endpoint     what `request` is: "chat/completions" (default), "completions" (a legacy
                 completions request of one prompt, which the proxy runs as one chat request)
                 or "responses" (a Responses API body, translated as POST /v1/responses does)
    description  one line for humans (copied into the cassette)
    scenario     what the stand-in upstream plays (proxy.standin.Scenario fields)
    env          CLI environment overrides (CLAUDE_CODE_MAX_RETRIES, ...)
    upstream     "stand-in" (default) or "closed-port" (nothing listens: unreachable)
    credentials  "api-key" (default, a dummy key), "oauth-token" (a dummy subscription token:
                 the CLI then behaves as under a Pro/Max login, e.g. reports plan limits) or
                 "none" (not logged in: no key, empty HOME)
    extra_args   CLI arguments the proxy does not produce itself (["--fallback-model", "haiku"])
    interrupt    {"signal": "SIGTERM", "after": "first_text"}: the recorder signals the CLI
    cli          a fake CLI script, relative to the catalogue file (for what the real CLI
                 cannot produce, such as garbage on stdout)
    login        true/false: whether the entry means something against a real login (default:
                 derived; failures, hangs, tool requests and fakes need the stand-in)
    stable       false when the CLI's lines for this entry vary from run to run (a race inside
                 the CLI): the drift check then compares the proxy's answer, not the lines
    turns        instead of `request`: a conversation, `[{"request": ..., "process": ...}]`,
                 recorded in order through one conversation runner (proxy/conversations), so a
                 turn whose history is the previous turn's plus the answer it got is written to
                 the CLI process kept from that turn. `process` says how the recorder must have
                 run it: "new" (no history), "resumed" (a new process resuming a session file)
                 or "continued" (the kept process); a turn that ran otherwise fails the
                 recording. Each turn is a cassette, `<entry>/turn-<n>`.

Long strings can be written as `{"$repeat": "text", "count": n}` anywhere in a request.
"""

from __future__ import annotations

import json
import signal
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from proxy.standin.scenario import Scenario

CATALOGUE_FORMAT = "claude-max-api-catalogue"
UPSTREAMS = ("stand-in", "closed-port")
CREDENTIALS = ("api-key", "oauth-token", "none")
INTERRUPT_POINTS = ("first_text",)
PROCESSES = ("new", "resumed", "continued")
ENDPOINTS = ("chat/completions", "completions", "responses")
# Scenario fields that only shape the answer; a real model answers such requests meaningfully.
_ANSWER_FIELDS = frozenset({"reply_text", "split", "input_tokens", "output_tokens",
                            "cache_creation_input_tokens", "cache_read_input_tokens",
                            "chunk_delay"})
_ENTRY_FIELDS = frozenset({"description", "request", "scenario", "env", "upstream",
                           "credentials", "extra_args", "interrupt", "cli", "login",
                           "stable", "turns", "endpoint"})


@dataclass(frozen=True)
class Interrupt:
    signal: str
    after: str

    def describe(self) -> str:
        return f"{self.signal} after the first text delta"


@dataclass(frozen=True)
class Turn:
    """One request of a conversation entry, and how the recorder must have run it."""
    request: dict[str, Any]
    process: str   # "new", "resumed" or "continued" (PROCESSES)


@dataclass(frozen=True)
class Entry:
    name: str
    request: dict[str, Any]   # a conversation's last request
    description: str = ""
    scenario: dict[str, Any] = field(default_factory=dict)  # as written (`$repeat` kept)
    env: dict[str, str] = field(default_factory=dict)
    upstream: str = "stand-in"
    credentials: str = "api-key"
    extra_args: tuple[str, ...] = ()
    interrupt: Interrupt | None = None
    cli: Path | None = None  # absolute path of a fake CLI
    cli_label: str | None = None  # the fake CLI as the catalogue names it
    login: bool | None = None
    stable: bool = True
    turns: tuple[Turn, ...] = ()  # a conversation; empty for a one-request entry

    @property
    def requests(self) -> list[tuple[str, dict[str, Any]]]:
        """(cassette name, request) for each request the entry records, in order."""
        if not self.turns:
            return [(self.name, self.request)]
        return [(f"{self.name}/turn-{i}", t.request) for i, t in enumerate(self.turns, 1)]

    @property
    def cassette_names(self) -> list[str]:
        return [name for name, _ in self.requests]
    endpoint: str = "chat/completions"

    @property
    def needs_stand_in(self) -> bool:
        """Whether only the stand-in upstream (or a fake CLI) can produce this behaviour."""
        if self.login is not None:
            return not self.login
        if self.turns:
            return True  # later turns carry the stand-in's answers to the earlier ones
        stop = self.scenario.get("stop_reason", "end_turn")
        return (self.upstream != "stand-in" or self.credentials != "api-key"
                or self.cli is not None or self.interrupt is not None or bool(self.extra_args)
                or stop not in ("end_turn", "max_tokens")
                or bool(set(self.scenario) - _ANSWER_FIELDS - {"stop_reason"}))


    def standin_scenario(self) -> Scenario:
        return Scenario.from_dict(expand(self.scenario))


@dataclass(frozen=True)
class Catalogue:
    path: Path
    entries: dict[str, Entry]


def expand(value: Any) -> Any:
    """Resolves `{"$repeat": text, "count": n}` anywhere in a value."""
    if isinstance(value, dict):
        if set(value) == {"$repeat", "count"}:
            return str(value["$repeat"]) * int(value["count"])
        return {k: expand(v) for k, v in value.items()}
    if isinstance(value, list):
        return [expand(v) for v in value]
    return value


def load(path: str | Path) -> Catalogue:
    path = Path(path)
    data = json.loads(path.read_text(encoding="utf-8"))
    if not isinstance(data, dict) or data.get("format") != CATALOGUE_FORMAT:
        raise ValueError(f"{path}: not a catalogue (no \"format\": \"{CATALOGUE_FORMAT}\")")
    entries = {}
    for name, raw in (data.get("entries") or {}).items():
        entries[name] = _entry(name, raw, path.parent)
    return Catalogue(path, entries)


def _entry(name: str, raw: Any, base: Path) -> Entry:
    where = f"catalogue entry {name!r}"
    if not isinstance(raw, dict):
        raise ValueError(f"{where}: needs a `request` object")
    turns = _turns(where, raw.get("turns"))
    if turns and "request" in raw:
        raise ValueError(f"{where}: has both `request` and `turns`; a conversation's requests "
                         f"are its turns")
    if not turns and not isinstance(raw.get("request"), dict):
        raise ValueError(f"{where}: needs a `request` object")
    unknown = sorted(set(raw) - _ENTRY_FIELDS)
    if unknown:
        raise ValueError(f"{where}: unknown field(s) {', '.join(unknown)}")
    upstream = raw.get("upstream", "stand-in")
    credentials = raw.get("credentials", "api-key")
    if upstream not in UPSTREAMS:
        raise ValueError(f"{where}: upstream must be one of {UPSTREAMS}")
    if credentials not in CREDENTIALS:
        raise ValueError(f"{where}: credentials must be one of {CREDENTIALS}")
    endpoint = raw.get("endpoint", "chat/completions")
    endpoint = "chat/completions" if endpoint == "chat.completions" else endpoint
    if endpoint not in ENDPOINTS:
        raise ValueError(f"{where}: endpoint must be one of {ENDPOINTS}")
    interrupt = None
    if raw.get("interrupt") is not None:
        spec = raw["interrupt"]
        known_signal = hasattr(signal, str(spec.get("signal")))
        if not known_signal or spec.get("after") not in INTERRUPT_POINTS:
            raise ValueError(f"{where}: interrupt needs a signal name and after: first_text")
        interrupt = Interrupt(spec["signal"], spec["after"])
    cli = (base / raw["cli"]).resolve() if raw.get("cli") else None
    if cli is not None and not cli.is_file():
        raise ValueError(f"{where}: no fake CLI at {raw['cli']}")
    scenario = dict(raw.get("scenario") or {})
    Scenario.from_dict(expand(scenario))  # a typo fails at load time, not mid-recording
    request = turns[-1].request if turns else expand(raw["request"])
    return Entry(name=name, request=request, description=raw.get("description", ""),
                 scenario=scenario, env={str(k): str(v) for k, v in (raw.get("env") or {}).items()},
                 upstream=upstream, credentials=credentials,
                 extra_args=tuple(map(str, raw.get("extra_args") or ())), interrupt=interrupt,
                 cli=cli, cli_label=raw.get("cli"), login=raw.get("login"),
                 stable=bool(raw.get("stable", True)), turns=turns,
                 endpoint=endpoint)


def _turns(where: str, raw: Any) -> tuple[Turn, ...]:
    if raw is None:
        return ()
    if not isinstance(raw, list) or not raw:
        raise ValueError(f"{where}: `turns` must be a non-empty list")
    turns = []
    for i, turn in enumerate(raw, 1):
        if not isinstance(turn, dict) or not isinstance(turn.get("request"), dict) \
                or turn.get("process") not in PROCESSES or set(turn) - {"request", "process"}:
            raise ValueError(f"{where}: turn {i} must be {{\"request\": {{...}}, \"process\": "
                             f"one of {', '.join(PROCESSES)}}}")
        turns.append(Turn(expand(turn["request"]), turn["process"]))
    if turns[0].process == "continued":
        raise ValueError(f"{where}: turn 1 cannot continue a process: nothing ran before it")
    return tuple(turns)
