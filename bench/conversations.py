"""A multi-turn chat through the proxy against the same chat in Claude Code's own session.

Each path talks to its own stand-in upstream with prompt caching on (docs/standin.md), so its
usage totals are its own:

* **Claude Code's own session** (the baseline): one `claude` process with the proxy's safe
  flags, the same `--system-prompt-file` and model, each user message written to its stdin
  after the `result` line of the one before;
* **the proxy, default settings** (kept conversations on): the real waitress server in this
  process, the official `openai` SDK streaming, the client resending the whole history each
  turn as OpenAI clients do;
* for insight, the proxy with `keep_conversations=0` (every later turn a resumed session),
  the proxy holding two conversations at once, their turns interleaved, and (alone, after the
  others, untimed) a tight agent loop that sends the next turn over plain HTTP the moment
  `data: [DONE]` arrives, which shows whether a kept process is back in the keeper by then.

The turns of all paths are interleaved (turn n of every path, in rotating order, then turn
n+1), each after the CLI processes of this benchmark have gone quiet, so the load of a shared
machine falls on every path alike. Content is deterministic: a system prompt of about 3 KB, user
turns of about 1.6 KB, and the stand-in's fixed answer of about 0.7 KB.

Definitions:
* uncached input tokens: `input_tokens + cache_creation_input_tokens`, summed over every
  upstream call: what the API did not read from the cache. Cache writes count because they
  cost at least full input price (1.25x); the issue measured "uncached" the same way;
* first token: from the stdin write (baseline) or the SDK call (proxy) to the first text
  delta (the baseline's first `text_delta` line on stdout, the proxy's first streamed chunk
  with content, as the SDK yields it). Turn 1 includes the CLI's start-up on every path. The
  SDK's own time to build the request (it grows with the history) is also noted apart, from
  its HTTP client's request hook, so the proxy's share can be told from the client's;
* CLI start-ups: processes spawned (`LiveRunner.spawned`, plus the session store's calibration
  runs of the CLI, which are start-ups too); the baseline has exactly one.
"""

from __future__ import annotations

import contextlib
import http.client
import json
import os
import random
import shutil
import signal
import subprocess
import tempfile
import threading
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, Iterator, Mapping, Sequence
from urllib.parse import urlsplit

from bench import servers
from bench.stats import Row, median, percentile

MODEL = "sonnet"            # the CLI's name; the proxy serves it under the same id
LENGTHS = (10, 30)
PACE = 0.3                  # seconds between a turn and the next measurement, after quiet
TURN_TIMEOUT = 120.0

# -- deterministic content ------------------------------------------------------------------

_RULES = (
    "Answer the question that was asked, then stop; do not pad the answer with a summary.",
    "When a customer quotes an order number, repeat it back exactly as written.",
    "Prefer short paragraphs and plain words over bullet lists, unless steps must be followed "
    "in order.",
    "If a request needs a refund above the limit in section four, say that a person will "
    "review it and do not promise an outcome.",
    "Never guess delivery dates; quote the carrier's estimate and say where it came from.",
    "Keep the customer's own terms for products, even when the catalogue uses another name.",
    "When two policies conflict, the newer one wins; name both so the customer can check.",
    "Do not ask for passwords, card numbers or one-time codes, and say so if offered one.",
)
_WORDS = (
    "order parcel carrier warehouse invoice refund delivery address label customer account "
    "tracking shipment return exchange voucher receipt schedule courier depot pallet batch "
    "supplier backorder stock inventory discount policy window weekday morning evening "
    "afternoon damaged missing late early partial complete pending confirmed cancelled box "
    "envelope signature neighbour locker pickup dropoff region postcode street building floor "
    "reception weight size fragile insurance claim photo report note reference update").split()


def system_prompt() -> str:
    """About 3 KB of instructions, as a support desk's client would send."""
    lines = ["You are the support assistant of a mail-order company that ships household goods. "
             "You answer customers' questions about orders, deliveries, returns and refunds.",
             "", "Rules:"]
    for i in range(3):
        for j, rule in enumerate(_RULES, 1):
            lines.append(f"{i * len(_RULES) + j}. {rule}")
    lines += ["", "Section four: refunds up to 150 EUR may be confirmed directly; anything above "
              "goes to a person. Returns are accepted within 30 days of delivery, unused, in the "
              "original packaging. Damaged goods are replaced first and refunded only if no "
              "replacement exists.", "",
              "Tone: friendly, direct, no exclamation marks, no emoji. Address the customer by "
              "name when they give one."]
    return "\n".join(lines) + "\n"


def user_text(turn: int, conversation: str = "A") -> str:
    """User turn `turn` (0-based) of a conversation: about 1.6 KB, different every turn. The
    conversations differ only in their letter, so their turns have the same length and token
    estimate (the stand-in counts characters)."""
    rng = random.Random(f"bench-conversations-{turn}")
    sentences = []
    size = 0
    while size < 1480:
        words = [rng.choice(_WORDS) for _ in range(rng.randint(8, 16))]
        sentence = " ".join(words).capitalize() + "."
        sentences.append(sentence)
        size += len(sentence) + 1
    body = " ".join(sentences)
    return f"[conversation {conversation}, turn {turn + 1}] Hello, my name is Sam. {body}\n" \
           f"Could you tell me what happens next with my order?"


REPLY = ("Thank you, Sam. I have looked at your order and the notes you sent. The parcel left "
         "the warehouse and is with the carrier, whose current estimate is the date shown on "
         "your tracking page; I cannot promise an earlier one. If anything arrives damaged, "
         "keep the packaging and send a photo: we replace damaged goods first and refund them "
         "only when no replacement exists. A refund up to 150 EUR I can confirm directly; "
         "anything above that goes to a colleague, who will review it and write to you. "
         "Returns are accepted within 30 days of delivery, unused and in the original "
         "packaging. Is there anything else about this order I should look at?")


def scenario():
    from proxy.standin.scenario import Scenario
    return Scenario(reply_text=REPLY, split=48, output_tokens=(len(REPLY) + 3) // 4)


# -- what a path measured -------------------------------------------------------------------

@dataclass
class TurnStats:
    index: int                  # the turn's place in its conversation (0 = the first)
    first_token: float | None   # seconds from the write / request to the first text delta
    total: float                # seconds from the write / request to the end of the answer
    startups: int               # CLI processes started during this turn
    calls: int = 0              # upstream calls during this turn
    usage: dict[str, int] = field(default_factory=dict)   # summed over those calls
    answer_chars: int = 0
    # proxy only: seconds the openai SDK took to build the request before sending it
    client_build: float | None = None


@dataclass
class PathResult:
    name: str
    turns: list[TurnStats]
    startups: int               # CLI start-ups in all (calibration runs included)
    calibrations: int = 0
    totals: dict[str, int] = field(default_factory=dict)
    state: dict[str, Any] = field(default_factory=dict)   # the keeper's, for the proxy

    @property
    def uncached(self) -> int:
        return self.totals["input_tokens"] + self.totals["cache_creation_input_tokens"]

    @property
    def cache_reads(self) -> int:
        return self.totals["cache_read_input_tokens"]

    def median_first_token(self) -> float:
        """The median first token of the continued turns (2+ of every conversation)."""
        return median([t.first_token for t in self.turns
                       if t.index > 0 and t.first_token is not None])

    def median_after_client(self) -> tuple[float, float]:
        """Continued turns: (median seconds the SDK took to build the request, median first
        token counted from when the request left the SDK)."""
        later = [t for t in self.turns if t.index > 0 and t.first_token is not None
                 and t.client_build is not None]
        return (median([t.client_build for t in later]),
                median([t.first_token - t.client_build for t in later]))

    @property
    def continued_startups(self) -> int:
        """Start-ups on turns after the first of each conversation."""
        return sum(t.startups for t in self.turns if t.index > 0)

    def as_dict(self) -> dict[str, Any]:
        out = asdict(self)
        out.update(uncached=self.uncached, cache_reads=self.cache_reads)
        return out


USAGE_KEYS = ("input_tokens", "cache_creation_input_tokens", "cache_read_input_tokens",
              "output_tokens")


def _usage_since(upstream: Any, seen: int) -> tuple[int, dict[str, int]]:
    """Upstream calls after the first `seen`, and their usage summed."""
    calls = [r for r in upstream.requests[seen:] if r.usage is not None]
    return len(calls), {k: sum(int(r.usage.get(k) or 0) for r in calls) for k in USAGE_KEYS}


def _totals(upstream: Any) -> dict[str, int]:
    totals = upstream.usage_totals()
    return {"requests": totals.requests, **{k: getattr(totals, k) for k in USAGE_KEYS}}


# -- Claude Code's own session ----------------------------------------------------------------

def cli_environ(base_url: str, home: str) -> dict[str, str]:
    """What the proxy's CLI runs get (FIXED_ENV, its default retries), pointed at the stand-in
    with a throwaway HOME."""
    from proxy.claude.invocation import DROPPED_ENV, FIXED_ENV
    from proxy.settings import Settings
    env = {k: v for k, v in servers.cli_env(base_url, home).items() if k not in DROPPED_ENV}
    env.update(FIXED_ENV)
    env["CLAUDE_CODE_MAX_RETRIES"] = str(Settings().cli_max_retries)
    return env


def path_dirs(root: Path, index: int) -> tuple[Path, Path]:
    """(HOME, work dir) of path `index`. The proxy runs every CLI in `<work dir>/claude-max-api-
    <uid>/cwd`; the baseline gets a cwd of that shape too, so the CLI's environment note (which
    names the cwd) has the same length on every path and no path pays for a longer name."""
    base = root / f"p{index}"
    home, work = base / "home", base / "work"
    home.mkdir(parents=True)
    work.mkdir()
    return home, work


class ClaudeSession:
    """One `claude` process kept open: a user message a turn, each after the last `result`."""

    def __init__(self, claude: str, system_prompt_file: str, env: Mapping[str, str], cwd: str,
                 model: str = MODEL) -> None:
        from proxy.claude.invocation import SAFE_FLAGS
        self.argv = [claude, *SAFE_FLAGS, "--model", model,
                     "--system-prompt-file", system_prompt_file]
        self._lines: list[tuple[float, str]] = []
        self._cond = threading.Condition()
        self._eof = False
        self._stderr = tempfile.TemporaryFile()
        self.proc = subprocess.Popen(self.argv, stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                                     stderr=self._stderr, cwd=cwd, env=dict(env),
                                     start_new_session=True)
        self.startups = 1
        self._reader = threading.Thread(target=self._read, name="bench-claude-session",
                                        daemon=True)
        self._reader.start()

    def _read(self) -> None:
        assert self.proc.stdout is not None
        for raw in self.proc.stdout:  # stamped as they arrive, as the proxy's reader does
            stamp = time.monotonic()
            with self._cond:
                self._lines.append((stamp, raw.decode("utf-8", "replace").rstrip("\n")))
                self._cond.notify_all()
        with self._cond:
            self._eof = True
            self._cond.notify_all()

    def turn(self, text: str, timeout: float = TURN_TIMEOUT, since: float | None = None
             ) -> tuple[float | None, float, str]:
        """Writes one user message; (first text delta, result, answer text), in seconds from
        the write (or from `since`, a time.monotonic() before it)."""
        line = json.dumps({"type": "user", "message": {"role": "user", "content": [
            {"type": "text", "text": text}]}, "parent_tool_use_id": None, "session_id": ""})
        with self._cond:
            seen = len(self._lines)
        assert self.proc.stdin is not None
        started = time.monotonic() if since is None else since
        self.proc.stdin.write((line + "\n").encode())
        self.proc.stdin.flush()
        first: float | None = None
        deadline = started + timeout
        while True:
            with self._cond:
                while len(self._lines) <= seen and not self._eof:
                    if not self._cond.wait(max(0.0, deadline - time.monotonic())):
                        raise TimeoutError(f"no answer within {timeout} s: {self.stderr()}")
                if len(self._lines) <= seen:
                    raise RuntimeError(f"the CLI ended (rc {self.proc.poll()}): {self.stderr()}")
                stamp, out = self._lines[seen]
            seen += 1
            event = _json(out)
            if first is None and _is_text_delta(event):
                first = stamp - started
            if event.get("type") == "result":
                if event.get("is_error"):
                    raise RuntimeError(f"the CLI answered an error: {out[:500]}")
                return first, stamp - started, str(event.get("result") or "")

    def stderr(self) -> str:
        self._stderr.seek(0)
        return self._stderr.read().decode("utf-8", "replace")[-2000:]

    def close(self) -> None:
        try:
            if self.proc.stdin:
                self.proc.stdin.close()
            self.proc.wait(10)
        except (OSError, subprocess.TimeoutExpired):
            pass
        if self.proc.poll() is None:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(self.proc.pid, signal.SIGKILL)
            self.proc.wait(10)
        self._reader.join(5)
        self._stderr.close()


def _json(line: str) -> dict[str, Any]:
    try:
        value = json.loads(line)
    except ValueError:
        return {}
    return value if isinstance(value, dict) else {}


def _is_text_delta(event: dict[str, Any]) -> bool:
    inner = event.get("event") if event.get("type") == "stream_event" else None
    return isinstance(inner, dict) and inner.get("type") == "content_block_delta" \
        and (inner.get("delta") or {}).get("type") == "text_delta"


# -- the proxy ------------------------------------------------------------------------------

@contextlib.contextmanager
def proxy_server(settings: Any, environ: Mapping[str, str]) -> Iterator[tuple[str, Any]]:
    """The real waitress server (the command's create_server) in this process, as the tests
    run it, its live runner built from `settings` as the command builds it; yields (base URL,
    runner)."""
    from proxy.app import build_runner
    from tests.support.servers import running_proxy

    runner = build_runner(settings, environ)
    with running_proxy(settings, runner) as proxy:
        yield proxy.base_url, runner


class ChatClient:
    """An OpenAI client's conversation: the whole history resent each turn, streamed."""

    def __init__(self, client: Any, system: str, model: str = MODEL) -> None:
        self.client = client
        self.model = model
        self.messages: list[dict[str, Any]] = [{"role": "system", "content": system}]
        self.started = 0.0                  # time.monotonic() of the current turn's call
        self.sent_at: float | None = None   # set by the HTTP client's request hook

    def turn(self, text: str) -> tuple[float | None, float, str]:
        self.messages.append({"role": "user", "content": text})
        self.sent_at = None
        started = self.started = time.monotonic()
        stream = self.client.chat.completions.create(model=self.model, messages=self.messages,
                                                     stream=True)
        first: float | None = None
        parts = []
        for chunk in stream:
            if chunk.choices and chunk.choices[0].delta.content:
                if first is None:
                    first = time.monotonic() - started
                parts.append(chunk.choices[0].delta.content)
        total = time.monotonic() - started
        answer = "".join(parts)
        self.messages.append({"role": "assistant", "content": answer})
        return first, total, answer


class RawChatClient:
    """A tight agent loop: plain HTTP, the whole history resent, and the next turn sent the
    moment `data: [DONE]` arrives (no SDK in between to take a few milliseconds)."""

    def __init__(self, base_url: str, system: str, model: str = MODEL) -> None:
        parts = urlsplit(base_url)
        self.host, self.port = parts.hostname or "127.0.0.1", parts.port or 80
        self.path = parts.path.rstrip("/") + "/chat/completions"
        self.model = model
        self.messages: list[dict[str, Any]] = [{"role": "system", "content": system}]
        self.started = 0.0
        self.sent_at: float | None = None
        self._open: list[http.client.HTTPConnection] = []

    def turn(self, text: str) -> tuple[float | None, float, str]:
        self.messages.append({"role": "user", "content": text})
        body = json.dumps({"model": self.model, "stream": True, "messages": self.messages})
        started = self.started = time.monotonic()
        conn = http.client.HTTPConnection(self.host, self.port, timeout=TURN_TIMEOUT)
        self._open.append(conn)  # closed later: an agent does not wait for the server's close
        conn.request("POST", self.path, body.encode(), {"Content-Type": "application/json"})
        self.sent_at = time.monotonic()
        response = conn.getresponse()
        if response.status != 200:
            raise RuntimeError(f"status {response.status}: {response.read()[:300]!r}")
        first: float | None = None
        parts = []
        while True:
            line = response.readline()
            if not line:
                raise RuntimeError("the stream ended before data: [DONE]")
            if not line.startswith(b"data: "):
                continue
            data = line[6:].strip()
            if data == b"[DONE]":
                break
            for choice in json.loads(data).get("choices") or []:
                content = (choice.get("delta") or {}).get("content")
                if content:
                    first = time.monotonic() - started if first is None else first
                    parts.append(content)
        total = time.monotonic() - started
        answer = "".join(parts)
        self.messages.append({"role": "assistant", "content": answer})
        while len(self._open) > 1:
            self._open.pop(0).close()
        return first, total, answer

    def close(self) -> None:
        for conn in self._open:
            conn.close()


def raw(chat: Any) -> bool:
    return isinstance(chat, RawChatClient)


def startups_of(runner: Any) -> tuple[int, int]:
    """(CLI processes the live runner spawned, calibration runs of its session store)."""
    return runner.spawned, runner.sessions.calibration_runs


# -- paths ----------------------------------------------------------------------------------

class ChatPath:
    """A way to hold the conversation; each owns its stand-in upstream."""
    name: str
    upstream: Any

    def turn(self, n: int, quiet: Any) -> None: ...
    def result(self) -> PathResult: ...
    def close(self) -> None: ...


class SessionPath(ChatPath):
    def __init__(self, claude: str, root: Path, index: int, system_file: Path) -> None:
        from proxy.standin.server import StandInUpstream
        self.name = "Claude Code's own session"
        self.upstream = StandInUpstream(scenario(), prompt_caching=True)
        home, work = path_dirs(root, index)
        cwd = work / f"claude-max-api-{os.getuid()}" / "cwd"
        cwd.mkdir(parents=True)
        self.session: ClaudeSession | None = None
        self._args = (claude, str(system_file), cli_environ(self.upstream.base_url, str(home)),
                      str(cwd))
        self.turns: list[TurnStats] = []

    def turn(self, n: int, quiet: Any) -> None:
        quiet()
        seen = len(self.upstream.requests)
        startups, since = 0, None
        if self.session is None:  # turn 1 is timed from the spawn, as on the proxy
            since = time.monotonic()
            self.session = ClaudeSession(*self._args)
            startups = 1
        first, total, answer = self.session.turn(user_text(n), since=since)
        calls, usage = _usage_since(self.upstream, seen)
        self.turns.append(TurnStats(n, first, total, startups, calls, usage, len(answer)))

    def result(self) -> PathResult:
        return PathResult(self.name, self.turns, 1 if self.session else 0, 0,
                          _totals(self.upstream))

    def close(self) -> None:
        if self.session is not None:
            self.session.close()
        self.upstream.close()


class ProxyPath(ChatPath):
    def __init__(self, name: str, claude: str, root: Path, index: int, *,
                 conversations: Sequence[str] = ("A",), raw_client: bool = False,
                 **settings: Any) -> None:
        import openai

        from proxy.settings import Settings
        from proxy.standin.server import StandInUpstream
        self.name = name
        self.upstream = StandInUpstream(scenario(), prompt_caching=True)
        home, work = path_dirs(root, index)
        self._context = proxy_server(
            Settings(claude_bin=claude, work_dir=str(work), **settings),
            servers.cli_env(self.upstream.base_url, str(home)))
        try:
            base_url, self.runner = self._context.__enter__()
        except BaseException:
            self.upstream.close()
            raise
        # The SDK's own HTTP client, with a hook that notes when a request leaves the SDK.
        self._current: ChatClient | None = None
        http = openai.DefaultHttpxClient(event_hooks={"request": [self._sent]})
        self.client = openai.OpenAI(base_url=base_url, api_key="unused", max_retries=0,
                                    timeout=TURN_TIMEOUT, http_client=http)
        self.chats: dict[str, Any] = {
            c: RawChatClient(base_url, system_prompt()) if raw_client
            else ChatClient(self.client, system_prompt()) for c in conversations}
        self.turns: list[TurnStats] = []

    def turn(self, n: int, quiet: Any) -> None:
        for letter, chat in self.chats.items():
            quiet()
            seen = len(self.upstream.requests)
            before = sum(startups_of(self.runner))
            self._current = chat
            first, total, answer = chat.turn(user_text(n, letter))
            calls, usage = _usage_since(self.upstream, seen)
            build = None if chat.sent_at is None or raw(chat) else chat.sent_at - chat.started
            self.turns.append(TurnStats(n, first, total, sum(startups_of(self.runner)) - before,
                                        calls, usage, len(answer), build))

    def _sent(self, request: Any) -> None:
        if self._current is not None and self._current.sent_at is None:
            self._current.sent_at = time.monotonic()

    def result(self) -> PathResult:
        spawned, calibrations = startups_of(self.runner)
        state = getattr(self.runner, "conversation_state", None)
        return PathResult(self.name, self.turns, spawned + calibrations, calibrations,
                          _totals(self.upstream), state() if callable(state) else {})

    def close(self) -> None:
        for chat in self.chats.values():
            if raw(chat):
                chat.close()
        self.client.close()
        self._context.__exit__(None, None, None)
        self.upstream.close()


# -- the section ----------------------------------------------------------------------------

def converse(paths: Sequence[ChatPath], turns: int, quiet: Any) -> None:
    """Turn n of every path (rotating which goes first), then turn n+1."""
    for n in range(turns):
        for path in list(paths[n % len(paths):]) + list(paths[:n % len(paths)]):
            path.turn(n, quiet)


def quiet_children(timeout: float = 10.0, window: float = 0.3) -> float:
    """Waits until this process's children (every CLI of the benchmark) use no more CPU than
    idle CLI processes do (about 1.5% of a core each, their housekeeping timers); returns the
    seconds waited. A CLI keeps working for a moment after a turn or a start-up, and that must
    not land on the next path's measurement."""
    started = time.monotonic()
    kids = servers.children(os.getpid())
    before = servers.cpu_seconds(kids)
    while time.monotonic() - started < timeout:
        time.sleep(window)
        kids = servers.children(os.getpid())
        now = servers.cpu_seconds(kids)
        if now - before <= 0.02 + 0.02 * window * len(kids):
            break
        before = now
    return time.monotonic() - started


def run_length(turns: int, claude: str, *, extras: bool = True, quiet: Any = None
               ) -> dict[str, PathResult]:
    """One conversation of `turns` turns through every path; their results by key."""
    root = Path(tempfile.mkdtemp(prefix="bench-conv-"))
    system_file = root / "system-prompt.txt"
    system_file.write_text(system_prompt(), encoding="utf-8")
    if quiet is None:
        def quiet() -> None:
            quiet_children()
            time.sleep(PACE)
    paths: dict[str, ChatPath] = {}
    try:
        paths["session"] = SessionPath(claude, root, len(paths), system_file)
        paths["proxy"] = ProxyPath("proxy, default settings", claude, root, len(paths))
        if extras:
            paths["resume"] = ProxyPath("proxy, keep_conversations=0", claude, root, len(paths),
                                        keep_conversations=0)
            paths["two"] = ProxyPath("proxy, two conversations interleaved", claude, root,
                                     len(paths), conversations=("A", "B"))
        converse(list(paths.values()), turns, quiet)
        if extras:  # alone and unpaced, after the others: it measures no time
            paths["agent"] = ProxyPath("proxy, agent loop", claude, root, len(paths),
                                       raw_client=True)
            converse([paths["agent"]], turns, lambda: None)
        return {key: path.result() for key, path in paths.items()}
    finally:
        for path in paths.values():
            path.close()
        shutil.rmtree(root, ignore_errors=True)


def rows_for(turns: int, results: Mapping[str, PathResult]) -> list[Row]:
    base, ours = results["session"], results["proxy"]
    own = "Claude Code's own session"
    s = f"{turns} turns"

    def ms(path: PathResult) -> float:
        return path.median_first_token() * 1000

    def spread(path: PathResult) -> str:
        later = [t.first_token * 1000 for t in path.turns if t.index and t.first_token is not None]
        return f"{min(later):.0f}-{max(later):.0f} ms, p90 {percentile(later, 0.9):.0f}"

    rows = [
        Row("conversations", f"{s}: uncached input tokens", ours.uncached, base.uncached, own,
            "tok", "<= 1.05x", ours.uncached <= 1.05 * base.uncached,
            note=f"input + cache writes, over {ours.totals['requests']} upstream calls "
                 f"(baseline {base.totals['requests']})"),
        Row("conversations", f"{s}: cache reads", ours.cache_reads, base.cache_reads, own, "tok"),
        Row("conversations", f"{s}: median first token, turns 2+", ms(ours), ms(base), own, "ms",
            "<= 1.3x", ours.median_first_token() <= 1.3 * base.median_first_token(),
            note=f"ours {spread(ours)}; own {spread(base)}"),
        Row("conversations", f"{s}: median first token, turns 2+, from the request leaving the "
            f"SDK", ours.median_after_client()[1] * 1000, ms(base), own, "ms",
            note=f"the openai SDK took a median {ours.median_after_client()[0] * 1000:.1f} ms "
                 f"to build the request"),
        Row("conversations", f"{s}: first token, turn 1", ours.turns[0].first_token * 1000,
            base.turns[0].first_token * 1000, own, "ms", note="both start a CLI"),
        Row("conversations", f"{s}: CLI start-ups on continued turns", ours.continued_startups,
            None, "", "", "0", ours.continued_startups == 0,
            note=f"in all {ours.startups} (own 1); kept hits {ours.state.get('hits')}, "
                 f"misses {_misses(ours)}"),
    ]
    if "resume" in results:
        r = results["resume"]
        rows += [
            Row("conversations", f"{s}, keep_conversations=0: uncached input tokens", r.uncached,
                base.uncached, own, "tok", note=f"cache reads {r.cache_reads}"),
            Row("conversations", f"{s}, keep_conversations=0: median first token, turns 2+",
                ms(r), ms(base), own, "ms",
                note=f"start-ups {r.startups}, {r.continued_startups} on continued turns "
                     f"({r.calibrations} calibration)"),
        ]
    if "two" in results:
        t = results["two"]
        rows += [
            Row("conversations", f"{s}, two conversations: uncached input tokens", t.uncached,
                2 * base.uncached, "2x " + own, "tok", note=f"cache reads {t.cache_reads}"),
            Row("conversations", f"{s}, two conversations: median first token, turns 2+",
                ms(t), ms(base), own, "ms",
                note=f"start-ups {t.startups}, {t.continued_startups} on continued turns; "
                     f"kept hits {t.state.get('hits')}, misses {_misses(t)}"),
        ]
    if "agent" in results:
        a = results["agent"]
        rows.append(Row(
            "conversations", f"{s}, agent loop: CLI start-ups on continued turns",
            a.continued_startups, None, "", "", "0", a.continued_startups == 0,
            note=f"next request on [DONE]; kept hits {a.state.get('hits')}, misses "
                 f"{_misses(a)}; kept at the end {a.state.get('kept')}"))
    return rows


def _misses(path: PathResult) -> str:
    misses = {k: v for k, v in (path.state.get("misses") or {}).items() if v}
    return ", ".join(f"{k} {v}" for k, v in misses.items()) or "0"


def run(lengths: Sequence[int] = LENGTHS, extras: bool = True
        ) -> tuple[list[Row], dict[str, Any]]:
    claude = shutil.which("claude")
    if claude is None:
        return [Row("conversations", "skipped", None,
                    note="the claude CLI is not on PATH")], {}
    rows: list[Row] = []
    raw: dict[str, Any] = {"model": MODEL, "system_prompt_chars": len(system_prompt()),
                           "user_turn_chars": len(user_text(0)), "reply_chars": len(REPLY)}
    for turns in lengths:
        load = os.getloadavg()
        results = run_length(turns, claude, extras=extras)
        raw[f"{turns}_turns"] = {"load_average_before": load, "load_average_after": os.getloadavg(),
                                 **{k: v.as_dict() for k, v in results.items()}}
        rows += rows_for(turns, results)
    return rows, raw
