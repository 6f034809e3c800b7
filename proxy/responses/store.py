"""Stored responses: what `previous_response_id`, GET, DELETE and `input_items` read.

In memory, private to the API key that made them, and bounded three ways: a count
(`--responses-max`), a memory budget (`--responses-memory-mb`, the bytes of the JSON strings the
store holds) and a lifetime (`--responses-ttl`, from creation). The least recently used go
first; an expired one is gone at once. A restart forgets them all (a follow-up then gets a 404
and must send its whole input again); disk would keep prompts on disk, and the kept CLI
processes a stored conversation would continue do not survive a restart either.

Each record holds its response object and the whole conversation up to and including its own
output, as compact JSON text, one string per item. A follow-up's conversation is its
previous response's tuple plus its own items: the strings are shared, never copied, and the
memory budget counts every record's whole conversation, so what it counts is never less than
what is held.

A record is written before its id reaches the client (a stream's `response.created`, or the
JSON body) and its final state before the client learns that it is final (the terminal event,
or the body): a follow-up sent the moment the client has the answer always finds it.
"""

from __future__ import annotations

import json
import sys
import threading
import time
from collections import OrderedDict
from dataclasses import dataclass
from typing import Any, Callable, Iterator

POINTER = 8  # a tuple slot


@dataclass
class Stored:
    id: str
    owner: str
    response: str                    # the response object, as JSON text
    input_items: tuple[str, ...]     # this response's own input items
    conversation: tuple[str, ...]    # every item up to and including this response's output
    expires: float
    finished: bool

    @property
    def size(self) -> int:
        """Bytes held: each string's own size (non-ASCII text takes 2 or 4 bytes a character
        in CPython) and the tuples' slots; a string shared with another record counts again."""
        return sys.getsizeof(self.response) + sum(sys.getsizeof(i) for i in self.conversation) \
            + POINTER * (len(self.conversation) + len(self.input_items))

    def response_object(self) -> dict[str, Any]:
        return json.loads(self.response)

    def items(self) -> Iterator[dict[str, Any]]:
        for text in self.conversation:
            yield json.loads(text)


class ResponseStore:
    def __init__(self, *, max_responses: int = 1000, memory_budget: int = 128 << 20,
                 ttl: float = 86400.0, clock: Callable[[], float] = time.monotonic) -> None:
        self.max_responses = max_responses
        self.memory_budget = memory_budget
        self.ttl = ttl
        self._clock = clock
        self._records: OrderedDict[str, Stored] = OrderedDict()
        self._bytes = 0
        self._lock = threading.Lock()
        self.evictions: dict[str, int] = {"count": 0, "memory": 0, "expired": 0}

    @property
    def enabled(self) -> bool:
        return self.max_responses > 0 and self.memory_budget > 0 and self.ttl > 0

    # -- writing ----------------------------------------------------------------------------
    def put(self, response_id: str, owner: str, response: dict[str, Any],
            input_items: tuple[str, ...], conversation: tuple[str, ...],
            finished: bool) -> bool:
        """Stores (or replaces) a record; False if it cannot fit at all (then nothing is
        kept under that id)."""
        if not self.enabled:
            return False
        text = json.dumps(response, ensure_ascii=False, separators=(",", ":"))
        with self._lock:
            old = self._records.pop(response_id, None)
            expires = old.expires if old is not None else self._clock() + self.ttl
            if old is not None:
                self._bytes -= old.size
            record = Stored(response_id, owner, text, input_items, conversation, expires,
                            finished)
            if record.size > self.memory_budget:
                return False
            self._records[response_id] = record
            self._bytes += record.size
            self._expire_locked()
            self._evict_locked(keep=response_id)
            return response_id in self._records

    def delete(self, response_id: str, owner: str) -> bool:
        with self._lock:
            record = self._records.get(response_id)
            if record is None or record.owner != owner or self._expired(record):
                return False
            del self._records[response_id]
            self._bytes -= record.size
            return True

    # -- reading ----------------------------------------------------------------------------
    def get(self, response_id: str, owner: str) -> Stored | None:
        """The record, if it exists, has not expired and belongs to `owner`."""
        with self._lock:
            record = self._records.get(response_id)
            if record is None:
                return None
            if self._expired(record):
                self._drop_locked(response_id, "expired")
                return None
            if record.owner != owner:
                return None
            self._records.move_to_end(response_id)
            return record

    def find_item(self, item_id: str, owner: str) -> str | None:
        """The JSON text of a stored item with this id, made or given by `owner`."""
        with self._lock:
            records = [r for r in reversed(self._records.values())
                       if r.owner == owner and not self._expired(r)]
        for record in records:
            for text in reversed(record.conversation):
                if f'"id":{json.dumps(item_id)}' in text and json.loads(text).get("id") == item_id:
                    return text
        return None

    def state(self) -> dict[str, Any]:
        with self._lock:
            self._expire_locked()
            return {"stored": len(self._records), "max": self.max_responses,
                    "bytes": self._bytes, "memory_budget": self.memory_budget,
                    "evictions": dict(self.evictions)}

    # -- internals --------------------------------------------------------------------------
    def _expired(self, record: Stored) -> bool:
        return self._clock() >= record.expires

    def _drop_locked(self, response_id: str, reason: str) -> None:
        record = self._records.pop(response_id)
        self._bytes -= record.size
        self.evictions[reason] += 1

    def _expire_locked(self) -> None:
        for response_id in [k for k, r in self._records.items() if self._expired(r)]:
            self._drop_locked(response_id, "expired")

    def _evict_locked(self, keep: str) -> None:
        while len(self._records) > self.max_responses or self._bytes > self.memory_budget:
            reason = "count" if len(self._records) > self.max_responses else "memory"
            victim = next((k for k in self._records if k != keep), None)
            if victim is None:
                break
            self._drop_locked(victim, reason)
