"""The warm pool: pre-spawned CLI processes, so a request's first token skips CLI start-up.

A `claude -p --input-format stream-json` process does its start-up work (about 0.35 s of CPU)
before it reads stdin, and then waits. The pool keeps such processes ready per model and wraps
a `LiveRunner` behind the same Runner seam, so the HTTP layer cannot tell it is there.

What makes one pre-spawned process fit any request (measured with CLI 2.1.332, see
docs/performance.md):
* the system prompt: the CLI reads `--system-prompt-file` at start-up, but the `initialize`
  control request's `systemPrompt` replaces it, giving the same upstream request as a cold
  spawn. Only the first `initialize` counts, so it is sent when the request arrives;
* the output limit: `CLAUDE_CODE_MAX_OUTPUT_TOKENS` is read per model call, and the
  `apply_flag_settings` control request can set it through the settings' `env`.
Both are sent and acknowledged before the user's message, so a process that does not accept
them is closed and the request falls back to a cold spawn. Anything else a warm process cannot
take (per-request extra environment) also gets a cold spawn.

Rules:
* a pooled process serves exactly one request and is then retired (the CLI keeps a
  conversation's history, which must never leak into an unrelated request);
* `max_processes` (the server's max_concurrent) bounds every live CLI process, serving and warm
  alike: warm processes only fill the room requests leave, and a request that needs a cold
  spawn when the room is full of warm processes of other models retires one first;
* processes idle longer than `max_idle` are recycled; dead ones are replaced;
* one long-lived filler thread spawns everything: PR_SET_PDEATHSIG is tied to the spawning
  *thread*, so a short-lived thread would take its children with it when it ends.
"""

from __future__ import annotations

import json
import logging
import threading
import time
from collections import deque
from dataclasses import dataclass
from typing import Any, Callable, Iterable

from proxy.claude.invocation import Invocation
from proxy.errors import ProxyError
from proxy.runners.base import ExitStatus
from proxy.runners.live import LiveProcess, LiveRunner

log = logging.getLogger("claude_max_api.pool")

BEGIN_TIMEOUT = 15.0   # for a warm process to acknowledge its request's settings
FILL_TICK = 0.5        # how often the filler looks for expired or dead processes
MAX_BACKOFF = 30.0     # between spawn attempts after failures


class WarmStartFailed(Exception):
    """A warm process did not accept its request's settings; the pool falls back to a cold spawn."""


@dataclass
class _Warm:
    process: LiveProcess
    model: str
    ready_since: float


# What a warm process can still be given per request (apply_flag_settings); measured: the
# CLI applies CLAUDE_CODE_MAX_OUTPUT_TOKENS this way but not MAX_THINKING_TOKENS.
_LATE_ENV = frozenset({"CLAUDE_CODE_MAX_OUTPUT_TOKENS"})


def warm_can_serve(invocation: Invocation, fallback_model: str | None = None) -> bool:
    """Whether a process pre-spawned with `fallback_model` can take this request, or it needs
    a cold spawn."""
    started_with = Invocation(model=invocation.model, fallback_model=fallback_model)
    return not invocation.extra_env and set(invocation.env()) <= _LATE_ENV \
        and invocation.argv() == started_with.argv()


def control_request(request_id: str, subtype: str, **fields: Any) -> str:
    return json.dumps({"type": "control_request", "request_id": request_id,
                       "request": {"subtype": subtype, **fields}}, separators=(",", ":"))


def setup_lines(invocation: Invocation) -> tuple[list[str], list[str]]:
    """The control requests that give a warm process this request's settings, and their ids."""
    lines = [control_request("pool-init", "initialize", systemPrompt=invocation.system_prompt)]
    if invocation.max_output_tokens is not None:
        lines.append(control_request("pool-env", "apply_flag_settings", settings={
            "env": {"CLAUDE_CODE_MAX_OUTPUT_TOKENS": str(invocation.max_output_tokens)}}))
    return lines, [json.loads(line)["request_id"] for line in lines]


def begin(process: LiveProcess, invocation: Invocation, timeout: float = BEGIN_TIMEOUT) -> None:
    """Hands a waiting process its request: settings first (acknowledged), then the message."""
    lines, pending = setup_lines(invocation)
    process.send(lines, close_stdin=False)
    deadline = time.monotonic() + timeout
    waiting = set(pending)
    while waiting:
        left = deadline - time.monotonic()
        if left <= 0:
            raise WarmStartFailed(f"no answer to {sorted(waiting)} within {timeout:g} s")
        try:
            line = process.read_line(min(left, 0.5))
        except EOFError:
            status = process.exit_status(timeout=1.0)
            raise WarmStartFailed(f"the process ended (exit {status.returncode}): "
                                  f"{status.stderr.strip()[:200]}") from None
        if line is None:
            continue
        try:
            message = json.loads(line)
            response = message["response"]
            request_id = response["request_id"]
        except (ValueError, KeyError, TypeError):
            raise WarmStartFailed(f"unexpected output before the request: {line[:200]}") from None
        if message.get("type") != "control_response" or request_id not in waiting:
            raise WarmStartFailed(f"unexpected output before the request: {line[:200]}")
        if response.get("subtype") != "success":
            raise WarmStartFailed(f"{request_id} refused: {response.get('error')}")
        waiting.discard(request_id)
    process.send(invocation.stdin_lines(), close_stdin=not invocation.keeps_stdin)


class PoolHandle:
    """A process handed to one request (warm or cold); closing it frees its room in the pool."""

    def __init__(self, process: LiveProcess, warm: bool, on_close: Callable[[], None]) -> None:
        self.process = process
        self.warm = warm
        self._on_close: Callable[[], None] | None = on_close
        self._lock = threading.Lock()

    @property
    def pid(self) -> int:
        return self.process.pid

    @property
    def req_dir(self):
        return self.process.req_dir

    def read_line(self, timeout: float) -> str | None:
        return self.process.read_line(timeout)

    def exit_status(self, timeout: float | None = None) -> ExitStatus:
        return self.process.exit_status(timeout)

    @property
    def alive(self) -> bool:
        return self.process.alive

    def detach(self) -> LiveProcess:
        """Frees this request's room in the pool but leaves the process running: it is kept
        for its conversation's next turn (proxy/conversations/), outside the pool."""
        with self._lock:
            on_close, self._on_close = self._on_close, None
        if on_close is not None:
            on_close()
        return self.process

    def close(self) -> None:
        try:
            self.process.close()
        finally:
            with self._lock:
                on_close, self._on_close = self._on_close, None
            if on_close is not None:
                on_close()


class WarmPool:
    """A Runner that serves requests from pre-spawned processes of a LiveRunner.

    `models` are CLI model names kept warm (`size` each); with none given the pool learns them:
    a model requested within the last `max_idle` seconds is kept warm.
    """

    def __init__(self, live: LiveRunner, *, size: int, max_processes: int,
                 models: Iterable[str] = (), max_idle: float = 600.0,
                 begin_timeout: float = BEGIN_TIMEOUT, fallback_model: str | None = None,
                 clock: Callable[[], float] = time.monotonic) -> None:
        if size < 1:
            raise ValueError("a warm pool needs size >= 1 (size 0 means: no pool)")
        self.live = live
        self.size = size
        self.max_processes = max(1, max_processes)
        self.fixed_models = tuple(dict.fromkeys(m for m in models if m))
        self.max_idle = max_idle
        self.begin_timeout = begin_timeout
        self.fallback_model = fallback_model
        self._clock = clock
        self._cond = threading.Condition()
        self._idle: dict[str, deque[_Warm]] = {}
        self._demand: dict[str, float] = {}     # model -> last request (learning mode)
        self._serving = 0                       # handed-out processes not yet closed
        self._spawning = 0
        self._closed = False
        self._retry_at = 0.0
        self._failures_in_row = 0
        self.counts = {"hits": 0, "misses": 0, "spawned": 0, "recycled": 0, "evicted": 0,
                       "died": 0, "spawn_failures": 0, "warm_start_failures": 0}
        self.last_error: str | None = None
        self._to_close: list[_Warm] = []        # dead idle processes found by requests
        self._thread = threading.Thread(target=self._fill_loop, name="warm-pool-filler",
                                        daemon=True)
        self._thread.start()

    # -- the Runner seam ---------------------------------------------------------------
    def start(self, invocation: Invocation) -> PoolHandle:
        victims: list[_Warm] = []
        with self._cond:
            if self._closed:
                raise ProxyError(503, "The server is shutting down.", code="server_shutting_down")
            self._serving += 1
            self._demand[invocation.model] = self._clock()
            warm = self._take(invocation.model) if self._can_serve(invocation) else None
            while warm is None and self._serving + self._idle_count() + self._spawning \
                    > self.max_processes:
                victim = self._oldest_idle()
                if victim is not None:  # room for a cold spawn: retire a warm one of another model
                    victims.append(victim)
                    self.counts["evicted"] += 1
                else:                   # only a spawn in flight holds the room: it lands in ms
                    self._cond.wait(0.05)
                    warm = self._take(invocation.model) if self._can_serve(invocation) else None
            self.counts["hits" if warm else "misses"] += 1
            self._cond.notify_all()  # the filler replaces what was taken
        for victim in victims:
            victim.process.close()
        try:
            if warm is not None:
                try:
                    begin(warm.process, invocation, self.begin_timeout)
                except WarmStartFailed as exc:
                    warm.process.close()
                    with self._cond:
                        self.counts["warm_start_failures"] += 1
                        self.last_error = f"warm start failed: {exc}"
                    log.warning("warm pool: %s; starting a cold process", exc)
                except BaseException:
                    warm.process.close()
                    raise
                else:
                    return PoolHandle(warm.process, True, self._released)
            return PoolHandle(self.live.start(invocation), False, self._released)
        except BaseException:
            self._released()
            raise

    def close(self) -> None:
        with self._cond:
            self._closed = True
            idle = [w for queue in self._idle.values() for w in queue]
            self._idle.clear()
            self._cond.notify_all()
        for warm in idle:
            warm.process.terminate()
        for warm in idle:
            warm.process.close()
        self.live.close()  # serving processes too, and the work directory
        if threading.current_thread() is not self._thread:
            self._thread.join(10)

    # -- for the rest of the server ------------------------------------------------------
    @property
    def claude_bin(self) -> str | None:
        return self.live.claude_bin

    def base_env(self, tmpdir: str, cwd: str) -> dict[str, str]:
        return self.live.base_env(tmpdir, cwd)

    @property
    def work_root(self):
        return self.live.work_root

    def live_processes(self) -> list[LiveProcess]:
        return self.live.live_processes()

    def state(self) -> dict[str, Any]:
        """For /health/ready and /metrics: numbers at the top level, details per model."""
        with self._cond:
            targets = self._targets(self._clock())
            models = {m: {"target": targets.get(m, 0), "idle": len(self._idle.get(m, ()))}
                      for m in sorted(set(targets) | set(self._idle))}
            return {"size": self.size, "idle": self._idle_count(), "serving": self._serving,
                    "spawning": self._spawning, "max_processes": self.max_processes,
                    **self.counts, "models": models, "learning": not self.fixed_models,
                    "last_error": self.last_error}

    pool_state = state  # the name create_app looks for

    def wait_ready(self, timeout: float = 30.0) -> bool:
        """Waits until every targeted model has its warm processes (tests, benchmarks)."""
        deadline = self._clock() + timeout
        with self._cond:
            while True:
                targets = self._targets(self._clock())
                room = self.max_processes - self._serving
                want = min(room, sum(targets.values()))
                if self._idle_count() >= want and self._spawning == 0:
                    return True
                left = deadline - self._clock()
                if left <= 0:
                    return False
                self._cond.wait(min(left, 0.1))

    # -- internals (call with the lock held) ---------------------------------------------
    def _idle_count(self) -> int:
        return sum(len(q) for q in self._idle.values())

    def _take(self, model: str) -> _Warm | None:
        queue = self._idle.get(model)
        while queue:
            warm = queue.popleft()  # the oldest: surely done with its start-up
            if warm.process.alive:
                return warm
            self._discard(warm)
        return None

    def _discard(self, warm: _Warm) -> None:
        # A dead idle process: the filler closes it (removes its directory) and replaces it.
        self.counts["died"] += 1
        self._to_close.append(warm)

    def _oldest_idle(self) -> _Warm | None:
        oldest: _Warm | None = None
        for queue in self._idle.values():
            if queue and (oldest is None or queue[0].ready_since < oldest.ready_since):
                oldest = queue[0]
        if oldest is not None:
            self._idle[oldest.model].popleft()
        return oldest

    def _targets(self, now: float) -> dict[str, int]:
        if self.fixed_models:
            return {m: self.size for m in self.fixed_models}
        return {m: self.size for m, seen in self._demand.items() if now - seen <= self.max_idle}

    def _next_model(self, now: float) -> str | None:
        """The model that most needs a process, if there is room for one."""
        if now < self._retry_at:
            return None
        if self._serving + self._idle_count() + self._spawning >= self.max_processes:
            return None
        # Fewest warm first; among equals the most recently requested (when the room cannot
        # hold every model, the ones clients use now win).
        wanting = [(len(self._idle.get(m, ())), -self._demand.get(m, 0.0), m)
                   for m, n in self._targets(now).items() if len(self._idle.get(m, ())) < n]
        return min(wanting)[2] if wanting else None

    def _expired(self, now: float) -> list[_Warm]:
        out = []
        for queue in self._idle.values():
            for warm in list(queue):
                if not warm.process.alive:
                    self.counts["died"] += 1
                elif now - warm.ready_since > self.max_idle:
                    self.counts["recycled"] += 1
                else:
                    continue
                queue.remove(warm)
                out.append(warm)
        return out

    # -- the filler thread -------------------------------------------------------------
    def _fill_loop(self) -> None:
        while True:
            try:
                if not self._fill_once():
                    return
            except Exception:  # never let the filler die: its children would die with it
                log.exception("warm pool: filler error")
                time.sleep(FILL_TICK)

    def _fill_once(self) -> bool:
        with self._cond:
            if self._closed:
                return False
            now = self._clock()
            stale = self._expired(now) + self._to_close
            self._to_close = []
            model = self._next_model(now)
            if model is not None:
                self._spawning += 1
            elif not stale:
                self._cond.wait(FILL_TICK)
                return True
        for warm in stale:
            warm.process.close()
        if model is not None:
            self._spawn(model)
        return True

    def _can_serve(self, invocation: Invocation) -> bool:
        return warm_can_serve(invocation, self.fallback_model)

    def _spawn(self, model: str) -> None:
        process: LiveProcess | None = None
        error: str | None = None
        try:
            process = self.live.spawn(None, argv_for=Invocation(
                model=model, fallback_model=self.fallback_model).argv)
        except ProxyError as exc:
            error = exc.message
        except OSError as exc:
            error = f"{type(exc).__name__}: {exc}"
        surplus = None
        with self._cond:
            self._spawning -= 1
            if process is None:
                self.counts["spawn_failures"] += 1
                self._failures_in_row += 1
                self.last_error = f"spawn failed: {error}"
                self._retry_at = self._clock() + min(MAX_BACKOFF, 0.5 * 2 ** self._failures_in_row)
                log.warning("warm pool: could not spawn a `%s` process: %s", model, error)
            elif self._closed or self._serving + self._idle_count() >= self.max_processes:
                surplus = process  # a request took the room meanwhile
            else:
                self.counts["spawned"] += 1
                self._failures_in_row = 0
                self._idle.setdefault(model, deque()).append(_Warm(process, model, self._clock()))
            self._cond.notify_all()
        if surplus is not None:
            surplus.close()

    def _released(self) -> None:
        with self._cond:
            self._serving -= 1
            self._cond.notify_all()
