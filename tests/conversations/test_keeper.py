"""The keeper of CLI processes between turns: exact keys, bounds, eviction, miss reasons."""

from __future__ import annotations

import itertools

from proxy.conversations.keeper import ConversationKey, Keeper

_pids = itertools.count(1000)


class FakeProcess:
    def __init__(self) -> None:
        self.pid = next(_pids)
        self.alive = True
        self.closed = False

    def close(self) -> None:
        self.closed = True
        self.alive = False


class Clock:
    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


def key(owner="k1", settings=("sonnet", ""), history="h1") -> ConversationKey:
    return ConversationKey(owner, settings, history)


def keeper(**kw) -> Keeper:
    kw.setdefault("measure", lambda pid: 100)
    return Keeper(watch=False, **kw)


def test_a_kept_process_is_taken_only_by_exactly_its_key_and_only_once():
    k = keeper()
    process = FakeProcess()
    assert k.offer(key(), process)
    assert k.take(key(owner="k2")) is None
    assert k.take(key(settings=("opus", ""))) is None
    assert k.take(key(history="h2")) is None
    assert k.take(key()) is process
    assert k.take(key()) is None  # taken: a second request gets a fresh process
    assert not process.closed
    state = k.state()
    assert state["hits"] == 1 and state["kept"] == 0
    assert state["misses"]["no_conversation"] == 1     # owner k2 has nothing kept
    assert state["misses"]["settings_differ"] == 1
    assert state["misses"]["history_differs"] == 1
    assert state["misses"]["in_use"] == 1


def test_in_use_ends_when_the_request_is_served():
    k = keeper()
    k.offer(key(), FakeProcess())
    assert k.take(key()) is not None
    k.served(key())
    k.take(key())
    assert k.state()["misses"]["in_use"] == 0 and k.state()["misses"]["no_conversation"] == 1


def test_a_new_conversation_is_not_a_miss():
    k = keeper()
    assert k.take(key(history="empty"), new=True) is None
    assert k.state()["new"] == 1 and sum(k.state()["misses"].values()) == 0


def test_the_count_bound_evicts_the_least_recently_kept():
    k = keeper(max_processes=2)
    a, b, c = FakeProcess(), FakeProcess(), FakeProcess()
    k.offer(key(history="a"), a)
    k.offer(key(history="b"), b)
    k.offer(key(history="c"), c)
    assert a.closed and not b.closed and not c.closed
    assert k.state()["evictions"]["count"] == 1 and k.state()["kept"] == 2
    assert k.take(key(history="a")) is None and k.take(key(history="c")) is c


def test_the_memory_budget_evicts_oldest_first():
    k = keeper(max_processes=10, memory_budget=250, measure=lambda pid: 100)
    processes = [FakeProcess() for _ in range(3)]
    for i, p in enumerate(processes):
        k.offer(key(history=str(i)), p)
    assert [p.closed for p in processes] == [True, False, False]
    assert k.state()["evictions"]["memory"] == 1 and k.state()["memory_bytes"] == 200


def test_idle_and_dead_processes_are_swept():
    clock = Clock()
    k = keeper(idle_timeout=60, clock=clock)
    old, dead, fresh = FakeProcess(), FakeProcess(), FakeProcess()
    k.offer(key(history="old"), old)
    clock.now = 50
    k.offer(key(history="dead"), dead)
    k.offer(key(history="fresh"), fresh)
    dead.alive = False
    clock.now = 61
    k.sweep()
    assert old.closed and dead.closed and not fresh.closed
    assert k.state()["evictions"]["idle"] == 1 and k.state()["evictions"]["died"] == 1


def test_a_dead_process_found_at_take_is_a_stale_miss():
    k = keeper()
    p = FakeProcess()
    k.offer(key(), p)
    p.alive = False
    assert k.take(key()) is None and p.closed
    assert k.state()["misses"]["stale"] == 1


def test_offering_the_same_conversation_twice_keeps_the_newer():
    k = keeper()
    first, second = FakeProcess(), FakeProcess()
    k.offer(key(), first)
    k.offer(key(), second)
    assert first.closed and k.take(key()) is second
    assert k.state()["evictions"]["replaced"] == 1


def test_disabled_or_closed_keepers_close_what_they_are_offered():
    off = keeper(max_processes=0)
    p = FakeProcess()
    assert not off.offer(key(), p) and p.closed
    k = keeper()
    kept = FakeProcess()
    k.offer(key(), kept)
    k.close()
    assert kept.closed and k.state()["evictions"]["shutdown"] == 1
    late = FakeProcess()
    assert not k.offer(key(history="late"), late) and late.closed


def test_a_process_holding_tool_calls_has_its_own_bound():
    clock = Clock()
    k = keeper(idle_timeout=600, tool_call_timeout=30, clock=clock)
    waiting, chatting = FakeProcess(), FakeProcess()
    k.offer(key(history="calls"), waiting, holding_calls=True)
    k.offer(key(history="chat"), chatting)
    clock.now = 31
    k.sweep()
    assert waiting.closed and not chatting.closed
    state = k.state()
    assert state["evictions"]["tool_call_timeout"] == 1 and state["holding_calls"] == 0


def test_under_pressure_a_process_waiting_on_calls_goes_before_a_chat():
    k = keeper(max_processes=2)
    chat, waiting, newer = FakeProcess(), FakeProcess(), FakeProcess()
    k.offer(key(history="chat"), chat)
    k.offer(key(history="calls"), waiting, holding_calls=True)
    k.offer(key(history="newer"), newer)
    assert waiting.closed and not chat.closed and not newer.closed


def test_a_full_keeper_keeps_the_process_that_has_just_made_calls():
    """Its client is running the calls now and sends the results next: when the keeper is full
    of chats, the least recently used chat goes, never the process just offered (found by the
    client tier: every tool loop after four kept chats lost its process at once)."""
    k = keeper(max_processes=2)
    old_chat, chat, waiting = FakeProcess(), FakeProcess(), FakeProcess()
    k.offer(key(history="old chat"), old_chat)
    k.offer(key(history="chat"), chat)
    assert k.offer(key(history="calls"), waiting, holding_calls=True)
    assert not waiting.closed and old_chat.closed and not chat.closed
    assert k.take(key(history="calls")) is waiting


def test_a_process_waiting_on_calls_gives_way_to_the_next_one():
    """Only one process that may never hear back (a forced call that extracted arguments)
    pushes a chat out: the next process with calls replaces it, not another chat."""
    k = keeper(max_processes=2)
    chat, first, second = FakeProcess(), FakeProcess(), FakeProcess()
    k.offer(key(history="chat"), chat)
    k.offer(key(history="calls 1"), first, holding_calls=True)
    k.offer(key(history="calls 2"), second, holding_calls=True)
    assert first.closed and not chat.closed and not second.closed


def test_the_memory_budget_spares_the_process_just_offered_while_others_can_go():
    k = keeper(max_processes=10, memory_budget=250, measure=lambda pid: 100)
    chats = [FakeProcess() for _ in range(2)]
    for i, p in enumerate(chats):
        k.offer(key(history=str(i)), p)
    waiting = FakeProcess()
    k.offer(key(history="calls"), waiting, holding_calls=True)
    assert [p.closed for p in chats] == [True, False] and not waiting.closed
    alone = keeper(max_processes=10, memory_budget=50, measure=lambda pid: 100)
    too_big = FakeProcess()
    alone.offer(key(), too_big, holding_calls=True)
    assert too_big.closed, "a process over the budget on its own is not kept"
