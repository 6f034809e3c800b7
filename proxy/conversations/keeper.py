"""CLI processes kept after a turn, so the next turn of the same conversation skips start-up.

A `claude -p --input-format stream-json` process whose stdin stays open takes the next user
message after its `result` line, with the whole history and the prompt cache intact (measured:
the next turn's first token in 40-70 ms). The keeper holds such processes, idle, under a key
that says exactly which request may continue them:

* the owner (the API key the conversation belongs to: two keys never share a process);
* the settings of the run (model, system prompt, output limit, everything else that shapes it);
* the fingerprint of the conversation as the process holds it: the earlier turns, the user
  turn it answered, and the answer the proxy gave.

A request continues a process only when its own key is equal: the same owner and settings,
and a history that is exactly the kept one plus that answer. Anything else (an edited,
truncated or branched history) is a miss, with its reason counted, and the request gets a
fresh process that resumes a session instead: never a wrong one. Taking a process removes it,
so a kept process serves one request at a time.

Bounds, each a setting: the number of kept processes, how long one may idle, and a memory
budget (the processes' resident memory, sampled). The least recently used go first. A
watcher thread closes processes that died, idled too long or exceed the budget.
"""

from __future__ import annotations

import logging
import os
import threading
import time
from collections import Counter, OrderedDict
from dataclasses import dataclass
from typing import Any, Callable, Protocol

log = logging.getLogger("claude_max_api.conversations")

WATCH_TICK = 1.0          # how often the watcher looks at idle processes
RSS_SAMPLE_EVERY = 5.0    # seconds between memory samples of a kept process
ASSUMED_RSS = 200 << 20   # where resident memory cannot be read (no /proc)

MISS_REASONS = ("no_conversation", "history_differs", "settings_differ", "in_use", "stale",
                "results_with_message")
EVICTION_REASONS = ("count", "memory", "idle", "tool_call_timeout", "died", "shutdown",
                    "replaced")


class KeptProcess(Protocol):
    """What the keeper needs of a process (proxy.runners.live.LiveProcess has it)."""
    pid: int

    @property
    def alive(self) -> bool: ...

    def close(self) -> None: ...


@dataclass(frozen=True)
class ConversationKey:
    owner: str          # who may continue it (a digest or name of the API key; "" for none)
    settings: Any       # hashable: what shaped the run apart from the conversation itself
    history: str        # fingerprint of the turns the process holds

    def describe(self) -> str:
        return f"owner {self.owner or '-'}, history {self.history[:12]}"


@dataclass
class _Entry:
    key: ConversationKey
    process: KeptProcess
    since: float            # idle since
    turns: int              # turns this process has served
    rss: int = 0
    rss_at: float = float("-inf")
    holding_calls: bool = False  # it waits on tool calls the client is running


def resident_bytes(pid: int) -> int | None:
    """Resident memory of a process (Linux /proc), or None where it cannot be read."""
    try:
        with open(f"/proc/{pid}/statm", "rb") as fh:
            return int(fh.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")
    except (OSError, ValueError, IndexError):
        return None


class Keeper:
    def __init__(self, *, max_processes: int = 4, idle_timeout: float = 600.0,
                 memory_budget: int = 2 << 30, tool_call_timeout: float | None = None,
                 clock: Callable[[], float] = time.monotonic,
                 measure: Callable[[int], int | None] = resident_bytes,
                 watch: bool = True) -> None:
        self.max_processes = max(0, max_processes)
        self.idle_timeout = idle_timeout
        # How long a process waits for the results of the calls it made (the client runs
        # them); then it is ended, and the results, when they come, resume a session.
        self.tool_call_timeout = idle_timeout if tool_call_timeout is None else tool_call_timeout
        self.memory_budget = memory_budget
        self._clock = clock
        self._measure = measure
        self._lock = threading.Condition()
        self._entries: OrderedDict[ConversationKey, _Entry] = OrderedDict()  # LRU first
        self._in_use: Counter[ConversationKey] = Counter()  # keys being served right now
        self._closed = False
        self.counts: dict[str, int] = {"hits": 0, "stored": 0, "new": 0}
        self.misses: Counter[str] = Counter()
        self.evictions: Counter[str] = Counter()
        self._thread: threading.Thread | None = None
        if watch and self.max_processes:
            self._thread = threading.Thread(target=self._watch, name="conversation-keeper",
                                            daemon=True)
            self._thread.start()

    @property
    def enabled(self) -> bool:
        return self.max_processes > 0

    # -- the two operations ---------------------------------------------------------------
    def take(self, key: ConversationKey, *, new: bool = False) -> KeptProcess | None:
        """The kept process for exactly this key, removed from the keeper; None is a miss
        (counted with its reason), or a new conversation when `new` (nothing to continue)."""
        with self._lock:
            entry = self._entries.pop(key, None)
            if entry is not None and not entry.process.alive:
                self.evictions["died"] += 1
                dead, entry = entry, None
            else:
                dead = None
            if entry is not None:
                self.counts["hits"] += 1
                self._in_use[key] += 1
            elif new:
                self.counts["new"] += 1
            else:
                self.misses[self._miss_reason(key) if dead is None else "stale"] += 1
        if dead is not None:
            dead.process.close()
        return entry.process if entry is not None else None

    def served(self, key: ConversationKey) -> None:
        """A request that took the process under `key` is done with it (kept again or not)."""
        with self._lock:
            self._in_use[key] -= 1
            if self._in_use[key] <= 0:
                del self._in_use[key]

    def offer(self, key: ConversationKey, process: KeptProcess, turns: int = 1,
              holding_calls: bool = False) -> bool:
        """Keeps a process that has just answered; False (and the process closed) if it cannot
        be kept. May close the least recently used ones to stay within the bounds."""
        closing: list[KeptProcess] = []
        kept = False
        with self._lock:
            if not self._closed and self.max_processes and process.alive:
                old = self._entries.pop(key, None)
                if old is not None:  # the same conversation answered twice the same way
                    self.evictions["replaced"] += 1
                    closing.append(old.process)
                self._entries[key] = _Entry(key, process, self._clock(), turns,
                                            holding_calls=holding_calls)
                self.counts["stored"] += 1
                kept = True
                while len(self._entries) > self.max_processes:
                    closing.append(self._evict_oldest("count", spare=key))
                self._lock.notify_all()
            else:
                closing.append(process)
        for victim in closing:
            victim.close()
        if kept:
            self._enforce_memory(spare=key)
        return kept

    # -- state ---------------------------------------------------------------------------
    def state(self) -> dict[str, Any]:
        """For /health/ready and /metrics."""
        with self._lock:
            return {"kept": len(self._entries), "max": self.max_processes,
                    "idle_timeout_seconds": self.idle_timeout,
                    "tool_call_timeout_seconds": self.tool_call_timeout,
                    "holding_calls": sum(e.holding_calls for e in self._entries.values()),
                    "memory_bytes": sum(e.rss for e in self._entries.values()),
                    "memory_budget_bytes": self.memory_budget,
                    "serving": sum(self._in_use.values()),
                    **self.counts,
                    "misses": {r: self.misses.get(r, 0) for r in MISS_REASONS},
                    "evictions": {r: self.evictions.get(r, 0) for r in EVICTION_REASONS}}

    def pids(self) -> list[int]:
        with self._lock:
            return [e.process.pid for e in self._entries.values()]

    def close(self) -> None:
        with self._lock:
            self._closed = True
            entries = list(self._entries.values())
            self._entries.clear()
            self.evictions["shutdown"] += len(entries)
            self._lock.notify_all()
        for entry in entries:
            entry.process.close()
        if self._thread is not None and threading.current_thread() is not self._thread:
            self._thread.join(5)

    # -- internals -----------------------------------------------------------------------
    def _miss_reason(self, key: ConversationKey) -> str:
        if key in self._in_use:
            return "in_use"
        mine = [k for k in self._entries if k.owner == key.owner]
        if any(k.history == key.history for k in mine):
            return "settings_differ"
        if any(k.settings == key.settings for k in mine):
            return "history_differs"
        return "no_conversation"

    def _evict_oldest(self, reason: str, spare: ConversationKey | None = None) -> KeptProcess:
        """The least recently kept process, preferring one that waits on tool calls: a client
        that forced a call to extract its arguments never sends results, and such processes
        must not push live chats out. `spare` (the process just offered) goes last: its client
        is likely to continue it next (a tool loop's results), so at most one process waiting
        on calls holds a chat's place."""
        others = [k for k in self._entries if k != spare] or [spare]
        victim = next((k for k in others if self._entries[k].holding_calls), others[0])
        entry = self._entries.pop(victim)
        self.evictions[reason] += 1
        log.info("conversations: closed a kept CLI process (pid %s, %s)", entry.process.pid,
                 reason)
        return entry.process

    def _enforce_memory(self, spare: ConversationKey | None = None) -> None:
        now = self._clock()
        with self._lock:
            entries = list(self._entries.values())
        for entry in entries:  # measured outside the lock: reading /proc takes a moment
            if now - entry.rss_at >= RSS_SAMPLE_EVERY:
                measured = self._measure(entry.process.pid)
                entry.rss = measured if measured is not None else ASSUMED_RSS
                entry.rss_at = now
        closing = []
        with self._lock:
            while self._entries and sum(e.rss for e in self._entries.values()) \
                    > self.memory_budget:
                closing.append(self._evict_oldest("memory", spare))
        for process in closing:
            process.close()

    def sweep(self) -> None:
        """Closes kept processes that died or idled too long, then enforces the memory budget
        (the watcher thread calls this every WATCH_TICK seconds)."""
        with self._lock:
            now = self._clock()
            closing = []
            for key, entry in list(self._entries.items()):
                limit = self.tool_call_timeout if entry.holding_calls else self.idle_timeout
                if not entry.process.alive:
                    reason = "died"
                elif now - entry.since > limit:
                    reason = "tool_call_timeout" if entry.holding_calls else "idle"
                else:
                    continue
                del self._entries[key]
                self.evictions[reason] += 1
                closing.append(entry.process)
        for process in closing:
            try:
                process.close()
            except Exception:  # never let the watcher die
                log.exception("conversations: closing a kept process failed")
        self._enforce_memory()

    def _watch(self) -> None:
        while True:
            with self._lock:
                if self._closed:
                    return
                self._lock.wait(WATCH_TICK)
                if self._closed:
                    return
            try:
                self.sweep()
            except Exception:
                log.exception("conversations: sweeping kept processes failed")
