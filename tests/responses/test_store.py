"""The response store: private to a key, bounded in count, memory and time, and a memory
count that is never below what it holds."""

from __future__ import annotations

import json
import sys

from proxy.responses.items import dumps
from proxy.responses.store import ResponseStore


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def item(text: str) -> str:
    return dumps({"id": "msg_" + text[:8], "type": "message", "role": "user",
                  "content": [{"type": "input_text", "text": text}]})


def put(store, rid, owner="", conversation=(), finished=True):
    return store.put(rid, owner, {"id": rid, "object": "response"}, tuple(conversation[:1]),
                     tuple(conversation), finished)


def test_a_record_is_its_owners_only():
    store = ResponseStore()
    assert put(store, "resp_1", "alice", (item("hello"),))
    assert store.get("resp_1", "alice").response_object() == {"id": "resp_1",
                                                               "object": "response"}
    assert store.get("resp_1", "bob") is None and store.get("resp_1", "") is None
    assert not store.delete("resp_1", "bob")
    assert store.find_item("msg_hello", "bob") is None
    assert json.loads(store.find_item("msg_hello", "alice"))["content"][0]["text"] == "hello"
    assert store.delete("resp_1", "alice") and store.get("resp_1", "alice") is None


def test_the_count_bound_evicts_the_least_recently_used():
    store = ResponseStore(max_responses=2)
    put(store, "a"), put(store, "b")
    store.get("a", "")           # a is now the most recently used
    put(store, "c")
    assert store.get("b", "") is None and store.get("a", "") and store.get("c", "")
    assert store.state()["evictions"]["count"] == 1


def test_the_memory_bound_counts_whole_conversations():
    big = item("x" * 10_000)
    store = ResponseStore(memory_budget=35_000)
    put(store, "a", conversation=(big,))
    put(store, "b", conversation=(big, big))   # a follow-up: the shared item counted again
    assert store.state()["bytes"] > 30_000
    put(store, "c", conversation=(big, big))
    assert store.get("a", "") is None and store.get("c", "") is not None
    assert store.state()["bytes"] <= 35_000 and store.state()["evictions"]["memory"] >= 1


def test_a_record_larger_than_the_budget_is_not_kept():
    store = ResponseStore(memory_budget=1000)
    assert not put(store, "a", conversation=(item("x" * 5000),))
    assert store.get("a", "") is None and store.state()["bytes"] == 0


def test_records_expire_after_their_ttl_from_creation():
    clock = Clock()
    store = ResponseStore(ttl=60, clock=clock)
    put(store, "a", finished=False)
    clock.now += 50
    put(store, "a")              # its final state keeps its creation time
    clock.now += 11
    assert store.get("a", "") is None
    assert store.state()["evictions"]["expired"] == 1 and store.state()["bytes"] == 0


def test_zero_bounds_keep_nothing():
    for store in (ResponseStore(max_responses=0), ResponseStore(ttl=0),
                  ResponseStore(memory_budget=0)):
        assert not put(store, "a") and store.get("a", "") is None


def test_the_counted_bytes_cover_what_is_held():
    """The budget counts the memory of the strings a record holds, whatever their script
    (CPython stores a character in 1, 2 or 4 bytes)."""
    conversation = tuple(item(f"message {i} " + "é漢😀" * i) for i in range(50))
    store = ResponseStore()
    put(store, "a", conversation=conversation)
    record = store.get("a", "")
    held = sum(sys.getsizeof(s) for s in record.conversation) + sys.getsizeof(record.response)
    assert held <= store.state()["bytes"] <= held + 8 * 51
