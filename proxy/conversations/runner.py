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
from collections import OrderedDict
from typing import Any, Callable

from proxy.claude.invocation import Invocation
from proxy.conversations.keeper import ConversationKey, Keeper
from proxy.conversations.turns import Turn, as_sent, cli_order, fingerprint
from proxy.runners.base import CLIProcess, ExitStatus, Runner

log = logging.getLogger("claude_max_api.conversations")

THINKING_KEPT = 256           # tool turns whose thinking is remembered (LRU)
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
        # The model's thinking before the calls of a tool turn, by (owner, call ids): put back
        # when those calls' results resume a session (see _with_thinking).
        self._thinking: OrderedDict[tuple[str, tuple[str, ...]],
                                    tuple[tuple[str, ...], tuple[tuple[str, str], ...]]] = \
            OrderedDict()

    # -- the Runner seam ------------------------------------------------------------------
    def start(self, invocation: Invocation) -> CLIProcess:
        if not self.keeper.enabled or not invocation.continuable:
            if not invocation.tools:
                return self.inner.start(invocation)
            # Nothing is kept, but a tool turn's thinking is remembered for its resume.
            started = dataclasses.replace(invocation, history=self._with_thinking(invocation))
            return TurnHandle(self.inner.start(started), invocation, self._keep, self._end)
        key = conversation_key(invocation, invocation.history)
        # Tool results continue a process only alone: the CLI makes their turn itself, so a
        # user message sent along with them would be lost.
        deliverable = not invocation.tool_results or not (invocation.blocks or invocation.images)
        kept = self.keeper.take(key, new=not invocation.history)
        if kept is not None and not deliverable:
            # The process waits on these calls, but the client sent a message with the results
            # (OpenClaw does): it can only resume; the waiting process is of no more use.
            kept.close()
            self.keeper.served(key)
            self.keeper.misses["results_with_message"] += 1
            kept = None
        if kept is not None:
            handle = self._continue(kept, invocation, key)
            if handle is not None:
                return handle
        started = dataclasses.replace(invocation, stay_open=True,
                                      history=self._with_thinking(invocation))
        process = self.inner.start(started)
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
            bridge = getattr(process, "bridge", None)
            if invocation.tool_results and bridge is not None:
                # The process waits on the calls the client now answers: the bridge gives each
                # result to its held `tools/call` (or to the call when the CLI makes it).
                for text in invocation.tool_results:
                    result = json.loads(text)
                    bridge.answer(result["tool_use_id"], result["content"])
            elif invocation.tool_results:
                raise EOFError  # a process without a bridge cannot take tool results
            else:
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

    def _with_thinking(self, invocation: Invocation) -> tuple[Turn, ...]:
        """The history, with the model's own thinking put back before the calls it made, when
        the results of those calls resume a session: the API wants a tool loop's last
        assistant turn as the model wrote it, thinking (signed) first. Only blocks this server
        received are put back; none is ever made up (after a restart there are none). A turn
        that already carries its thinking (a Responses client gave it back as a reasoning
        item's encrypted_content, proxy/responses/reasoning.py) keeps it."""
        history = invocation.history
        if not invocation.tool_results or not history or history[-1].role != "assistant" \
                or history[-1].thinking:
            return history
        ids = tuple(b["id"] for b in history[-1].content() if b.get("type") == "tool_use")
        with self._lock:
            found = self._thinking.get((invocation.owner, ids))
        if not found:
            return history
        thinking, message = found
        last = history[-1]
        return (*history[:-1], Turn("assistant", last.blocks, message, thinking=thinking))

    def _remember_thinking(self, handle: "TurnHandle") -> None:
        blocks, message = handle.thinking_blocks()
        ids = tuple(b.get("id") for b in handle.answer_blocks() if b.get("type") == "tool_use")
        if not blocks or not ids:
            return
        with self._lock:
            self._thinking[(handle.invocation.owner, ids)] = (
                tuple(as_sent(b) for b in blocks), message)
            self._thinking.move_to_end((handle.invocation.owner, ids))
            while len(self._thinking) > THINKING_KEPT:
                self._thinking.popitem(last=False)

    def _keep(self, handle: "TurnHandle") -> bool:
        """At a turn's `result` line: keeps the process if the turn ended cleanly."""
        if handle.stopped_for_tools:
            self._remember_thinking(handle)
        if not self.keeper.enabled or not handle.invocation.continuable:
            return False
        live = handle.keepable_process()
        if live is None:
            return False
        answer = Turn.of("assistant", handle.answer_blocks())
        history = (*handle.invocation.history, user_turn(handle.invocation), answer)
        live.turns_served = handle.turns + 1
        self.keeper.offer(conversation_key(handle.invocation, history), live,
                          turns=handle.turns + 1, holding_calls=handle.stopped_for_tools)
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
        self.vetoed = False         # the proxy said not to keep it (see veto())
        self.deferred = False       # keep only when the proxy says (see defer_keep())
        self._on_result = on_result
        self._on_end = on_end
        self._prefetched = prefetched
        self._blocks: dict[str, list[dict[str, Any]]] = {}  # assistant content per message id
        self._models: dict[str, str] = {}                    # the model of each message
        self.result: dict[str, Any] | None = None
        self.stopped_for_tools = False   # the turn ended with calls of the client's tools
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

    @property
    def continues_turn(self) -> bool:
        """The kept process waits on the calls this request's tool results answer: its CLI
        turn began with an earlier request (which got the calls and their usage)."""
        return self.continued and bool(self.invocation.tool_results)

    # -- CLIProcess -------------------------------------------------------------------------
    def read_line(self, timeout: float) -> str | None:
        if self._prefetched is not None:
            line, self._prefetched = self._prefetched, None
            self._watch(line)
            return line
        if self.ended:
            raise EOFError  # the turn is over; the process waits for the next one
        try:
            line = self.process.read_line(timeout)
        except EOFError:
            self.anomaly = self.anomaly or "the process ended"
            raise
        if line is not None:
            self._watch(line)
        return line

    @property
    def ended(self) -> bool:
        return self.result is not None or self.stopped_for_tools

    def exit_status(self, timeout: float | None = None) -> ExitStatus:
        if self.ended and self.process.alive:
            return ExitStatus(0, "")  # the turn ended; the process itself lives on
        return self.process.exit_status(timeout)

    def close(self) -> None:
        with self._lock:
            if self._closed:
                return
            self._closed = True
        self._on_end(self)

    def defer_keep(self) -> None:
        """Keep the process only when settle() says the answer holds (proxy/tools/guard.py),
        not already at the turn's end."""
        self.deferred = True

    def settle(self) -> None:
        """The answer holds: keep the process now, if its turn ended cleanly."""
        with self._lock:
            if self.ended and not self.kept and not self._closed:
                self.kept = self._on_result(self)

    def veto(self) -> None:
        """Never keep this process: the client will not get exactly what it holds (a tool turn
        the proxy corrected or cut). Before the turn's end only: a kept process is gone."""
        self.vetoed = True

    def reopen(self) -> None:
        """The turn goes on past its end (the proxy asked the model again): read on, and never
        keep the process, which now holds more than the client will get."""
        self.vetoed = True
        self.result = None
        self.stopped_for_tools = False

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
            self._models[str(message.get("id"))] = str(message.get("model") or "")
        elif '"type":"result"' in line:
            try:
                result = json.loads(line)
            except ValueError:
                return
            if result.get("type") == "result":
                self.result = result
                with self._lock:
                    if not self._closed and not self.deferred:
                        self.kept = self._on_result(self)
        elif '"stop_reason":"tool_use"' in line and '"message_delta"' in line:
            uses = [b for blocks in self._blocks.values() for b in blocks
                    if b.get("type") == "tool_use"]
            offered = {t.upstream_name for t in self.invocation.tools}
            if uses and all(b.get("name") in offered for b in uses):
                # The client gets these calls; the CLI waits on them, held by the bridge.
                self.stopped_for_tools = True
                single = len(uses) > 1 and not self.invocation.parallel_calls
                if single:  # the client gets only the first call: the process holds more
                    self.anomaly = self.anomaly or "calls the client does not get"
                with self._lock:
                    if not self._closed and not self.deferred:
                        self.kept = self._on_result(self)
            elif uses:
                self.anomaly = self.anomaly or "a call of a tool that was not offered"
        elif '"abandoned_blocks"' in line:
            self.anomaly = self.anomaly or "an abandoned message (a broken upstream stream)"
        elif '"subtype":"model_fallback"' in line:
            self.anomaly = self.anomaly or "a fallback model answered"

    def answer_text(self) -> str:
        """The answer's text as the client got it: text blocks joined by a blank line."""
        texts = [b.get("text") for blocks in self._blocks.values() for b in blocks
                 if b.get("type") == "text" and isinstance(b.get("text"), str) and b.get("text")]
        return "\n\n".join(texts)

    def thinking_blocks(self) -> tuple[list[dict[str, Any]], tuple[tuple[str, str], ...]]:
        """The thinking blocks of the message that made this turn's calls, as received, and
        that API message's id and model."""
        for message_id, blocks in reversed(list(self._blocks.items())):
            if any(b.get("type") == "tool_use" for b in blocks):
                thinking = [cli_order(b) for b in blocks
                            if b.get("type") in ("thinking", "redacted_thinking")]
                meta = (("id", message_id), ("model", self._models.get(message_id, "")),
                        ("stop_reason", "tool_use"))
                return thinking, meta
        return [], ()

    def answer_blocks(self) -> list[dict[str, Any]]:
        """The answer as the client's next request will carry it: its text, then its calls."""
        text = self.answer_text()
        blocks: list[dict[str, Any]] = [{"type": "text", "text": text}] if text else []
        blocks += [{"type": "tool_use", "id": b.get("id"), "name": b.get("name"),
                    "input": b.get("input")} for messages in self._blocks.values()
                   for b in messages if b.get("type") == "tool_use"]
        return blocks

    def keepable_process(self) -> Any | None:
        """The live process, released from its request, if this turn ended so that the process
        holds exactly the answer the client got; else None."""
        result = self.result
        if self.anomaly is not None or self.vetoed:
            return None
        if self.stopped_for_tools:
            pass  # ended at the calls (checked in _watch)
        elif result is None or result.get("is_error") or result.get("subtype") != "success" \
                or result.get("stop_reason") not in KEEPABLE_STOPS or not self.answer_text():
            return None
        detach = getattr(self.process, "detach", None)
        if detach is None or not self.process.alive:
            return None
        return detach()
