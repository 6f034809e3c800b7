"""The Runner of live mode: continue a kept CLI process, or start one that may be kept.

    ConversationRunner(inner=LiveRunner or WarmPool, keeper=Keeper(...))

`start(invocation)` looks for a kept process whose conversation the request continues exactly
(proxy/conversations/keeper.py says what "exactly" means). On a hit the new user message is
written to that process's stdin, and the request is served from it with no start-up and no
history re-sent: the upstream request is the one Claude Code's own session would send. On a
miss the inner runner starts a process (resuming a session file when there is a history),
with stdin left open so that it can be kept.

Either way the request gets a `TurnHandle`: a CLIProcess whose output ends at the turn's
`result` line. A turn that ends cleanly (a successful result that ended the model's turn,
nothing abandoned, no fallback model, the process alive) gives its process to the keeper at
that line, under the key of the conversation it now holds: before the client has the end of
the answer, so a client that sends its next turn the moment it has it (an agent loop) finds the
process kept. Anything else ends the process when the handle is closed.
"""

from __future__ import annotations

import dataclasses
import json
import logging
import threading
import time
from typing import Any, Callable

from proxy.claude.invocation import Invocation
from proxy.conversations.keeper import ConversationKey, Keeper
from proxy.conversations.turns import Turn, fingerprint
from proxy.runners.base import CLIProcess, ExitStatus, Runner

log = logging.getLogger("claude_max_api.conversations")

FIRST_OUTPUT_TIMEOUT = 5.0  # a continued process prints `system/init` at once; else it is stale
# Turn endings after which the process holds exactly the answer the client got.
KEEPABLE_STOPS = frozenset({"end_turn"})


def conversation_key(invocation: Invocation, history: tuple[Turn, ...]) -> ConversationKey:
    return ConversationKey(invocation.owner, invocation.settings_key(), fingerprint(history))


def user_turn(invocation: Invocation) -> Turn:
    return Turn.of("user", invocation.user_message()["message"]["content"])


class ConversationRunner:
    def __init__(self, inner: Runner, keeper: Keeper, *,
                 first_output_timeout: float = FIRST_OUTPUT_TIMEOUT,
                 clock: Callable[[], float] = time.monotonic) -> None:
        self.inner = inner
        self.keeper = keeper
        self.first_output_timeout = first_output_timeout
        self._clock = clock
        self._lock = threading.Lock()
        self.continued = 0   # turns served by a kept process
        self.started = 0     # turns that needed a new process

    # -- the Runner seam ------------------------------------------------------------------
    def start(self, invocation: Invocation) -> CLIProcess:
        if not self.keeper.enabled or not invocation.continuable:
            return self.inner.start(invocation)
        key = conversation_key(invocation, invocation.history)
        kept = self.keeper.take(key, new=not invocation.history)
        if kept is not None:
            handle = self._continue(kept, invocation, key)
            if handle is not None:
                return handle
        process = self.inner.start(dataclasses.replace(invocation, stay_open=True))
        with self._lock:
            self.started += 1
        return TurnHandle(process, invocation, self._keep, self._end)

    def close(self) -> None:
        self.keeper.close()
        self.inner.close()

    # -- for the rest of the server (what the inner runner offers) ------------------------
    def __getattr__(self, name: str) -> Any:
        # claude_bin, base_env, work_root, live_processes, pool_state...: the inner runner's
        if name.startswith("__") or name in ("inner", "keeper"):
            raise AttributeError(name)
        return getattr(self.inner, name)

    def conversation_state(self) -> dict[str, Any]:
        state = {**self.keeper.state(), "continued": self.continued, "started": self.started}
        spawned = getattr(self.inner, "spawned", None)
        if spawned is None:  # a warm pool: its live runner counts
            spawned = getattr(getattr(self.inner, "live", None), "spawned", None)
        if isinstance(spawned, int):
            state["spawned"] = spawned
        return state

    # -- internals ------------------------------------------------------------------------
    def _continue(self, process: Any, invocation: Invocation,
                  key: ConversationKey) -> "TurnHandle | None":
        """Writes the new user message to a kept process; None if the process does not answer
        at once (it is then ended, and the request gets a new one)."""
        first: str | None = None
        try:
            process.send(invocation.stdin_lines(), close_stdin=False)
            deadline = self._clock() + self.first_output_timeout
            while first is None and self._clock() < deadline:
                first = process.read_line(min(0.1, max(0.0, deadline - self._clock())))
        except (EOFError, OSError):
            first = None
        if first is None:
            log.warning("conversations: a kept CLI process (pid %s) did not answer within "
                        "%.1f s; starting a new one", process.pid, self.first_output_timeout)
            process.close()
            self.keeper.served(key)
            self.keeper.misses["stale"] += 1
            return None
        with self._lock:
            self.continued += 1
        return TurnHandle(process, invocation, self._keep, self._end, taken=key,
                          prefetched=first, turns=getattr(process, "turns_served", 1))

    def _keep(self, handle: "TurnHandle") -> bool:
        """At a turn's `result` line: keeps the process if the turn ended cleanly."""
        live = handle.keepable_process()
        if live is None:
            return False
        answer = Turn.of("assistant", [{"type": "text", "text": handle.answer_text()}])
        history = (*handle.invocation.history, user_turn(handle.invocation), answer)
        live.turns_served = handle.turns + 1
        self.keeper.offer(conversation_key(handle.invocation, history), live,
                          turns=handle.turns + 1)
        return True

    def _end(self, handle: "TurnHandle") -> None:
        """When the request is done with its turn: a process not kept at its result ends."""
        try:
            if not handle.kept:
                handle.process.close()
        finally:
            if handle.taken is not None:
                self.keeper.served(handle.taken)


class TurnHandle:
    """One turn of a CLI process that may be kept: its stdout ends at the turn's `result`."""

    def __init__(self, process: Any, invocation: Invocation,
                 on_result: Callable[["TurnHandle"], bool],
                 on_end: Callable[["TurnHandle"], None], *, taken: ConversationKey | None = None,
                 prefetched: str | None = None, turns: int = 0) -> None:
        self.process = process
        self.invocation = invocation
        self.taken = taken          # the key this turn's process was taken under (a hit)
        self.turns = turns          # turns the process served before this one
        self.kept = False           # the process went to the keeper at the turn's result
        self._on_result = on_result
        self._on_end = on_end
        self._prefetched = prefetched
        self._blocks: dict[str, list[dict[str, Any]]] = {}  # assistant content per message id
        self.result: dict[str, Any] | None = None
        self.anomaly: str | None = None
        self._closed = False
        self._lock = threading.Lock()

    @property
    def pid(self) -> int | None:
        return getattr(self.process, "pid", None)

    @property
    def req_dir(self):
        return getattr(self.process, "req_dir", None)

    @property
    def continued(self) -> bool:
        return self.taken is not None

    # -- CLIProcess -------------------------------------------------------------------------
    def read_line(self, timeout: float) -> str | None:
        if self._prefetched is not None:
            line, self._prefetched = self._prefetched, None
            self._watch(line)
            return line
        if self.result is not None:
            raise EOFError  # the turn is over; the process waits for the next one
        try:
            line = self.process.read_line(timeout)
        except EOFError:
            self.anomaly = self.anomaly or "the process ended"
            raise
        if line is not None:
            self._watch(line)
        return line

    def exit_status(self, timeout: float | None = None) -> ExitStatus:
        if self.result is not None and self.process.alive:
            return ExitStatus(0, "")  # the turn ended; the process itself lives on
        return self.process.exit_status(timeout)

    def close(self) -> None:
        with self._lock:
            if self._closed:
                return
            self._closed = True
        self._on_end(self)

    # -- what the turn did ---------------------------------------------------------------------
    def _watch(self, line: str) -> None:
        if '"type":"assistant"' in line:
            try:
                message = json.loads(line).get("message") or {}
            except ValueError:
                return
            if message.get("model") == "<synthetic>":
                self.anomaly = self.anomaly or "a synthetic message"
                return
            self._blocks.setdefault(str(message.get("id")), []).extend(
                b for b in message.get("content") or [] if isinstance(b, dict))
        elif '"type":"result"' in line:
            try:
                result = json.loads(line)
            except ValueError:
                return
            if result.get("type") == "result":
                self.result = result
                with self._lock:
                    if not self._closed:
                        self.kept = self._on_result(self)
        elif '"abandoned_blocks"' in line:
            self.anomaly = self.anomaly or "an abandoned message (a broken upstream stream)"
        elif '"subtype":"model_fallback"' in line:
            self.anomaly = self.anomaly or "a fallback model answered"

    def answer_text(self) -> str:
        """The answer's text as the client got it: text blocks joined by a blank line."""
        texts = [b.get("text") for blocks in self._blocks.values() for b in blocks
                 if b.get("type") == "text" and isinstance(b.get("text"), str) and b.get("text")]
        return "\n\n".join(texts)

    def keepable_process(self) -> Any | None:
        """The live process, released from its request, if this turn ended so that the process
        holds exactly the answer the client got; else None."""
        result = self.result
        if result is None or self.anomaly is not None or result.get("is_error") \
                or result.get("subtype") != "success" \
                or result.get("stop_reason") not in KEEPABLE_STOPS or not self.answer_text():
            return None
        detach = getattr(self.process, "detach", None)
        if detach is None or not self.process.alive:
            return None
        return detach()
