"""The prompt-cache model (proxy/standin/cache.py): Anthropic's documented rules, one by one."""

from __future__ import annotations

from typing import Any

import pytest

from proxy.standin.cache import (DEFAULT_MINIMUM, LOOKBACK_BLOCKS, CacheUsage, PromptCache, estimate_tokens,
                                 minimum_for, prompt_blocks, refusal)

MODEL = "claude-sonnet-5-5"
EPHEMERAL = {"type": "ephemeral"}


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def text(t: str, cached: bool | str = False) -> dict[str, Any]:
    block: dict[str, Any] = {"type": "text", "text": t}
    if cached:
        block["cache_control"] = EPHEMERAL if cached is True else {"type": "ephemeral", "ttl": cached}
    return block


def word(i: int, size: int = 40) -> str:
    """A text whose block is `tokens_of(word(i, size))` tokens; distinct for each i."""
    return f"{i:04d}" + "x" * (size - 4)


def tokens_of(t: str) -> int:
    return estimate_tokens(text(t))


def body(*, tools: list[Any] | None = None, system: Any = None, messages: list[Any], model: str = MODEL,
         **extra: Any) -> dict[str, Any]:
    out: dict[str, Any] = {"model": model, "messages": messages, **extra}
    if tools is not None:
        out["tools"] = tools
    if system is not None:
        out["system"] = system
    return out


def chat(turns: int, *, cached_last: bool = True) -> list[dict[str, Any]]:
    """user/assistant turns of one text block each, the last user block marked (as the CLI does)."""
    messages = []
    for i in range(turns):
        messages.append({"role": "user", "content": [text(word(2 * i))]})
        if i < turns - 1:
            messages.append({"role": "assistant", "content": [text(word(2 * i + 1))]})
    if cached_last:
        messages[-1]["content"][-1]["cache_control"] = EPHEMERAL
    return messages


@pytest.fixture
def clock() -> Clock:
    return Clock()


@pytest.fixture
def cache(clock: Clock) -> PromptCache:
    return PromptCache(clock=clock, min_tokens=1)


def total(b: dict[str, Any]) -> int:
    return sum(block.tokens for block in prompt_blocks(b))


# --- token estimate and the prompt as blocks ----------------------------------------------------

def test_the_token_estimate_is_a_quarter_of_the_canonical_json_and_ignores_cache_control() -> None:
    block = {"type": "text", "text": "héllo wörld"}
    canonical = '{"text":"héllo wörld","type":"text"}'
    assert estimate_tokens(block) == (len(canonical) + 3) // 4
    assert estimate_tokens({**block, "cache_control": {"type": "ephemeral", "ttl": "1h"}}) == estimate_tokens(block)
    assert estimate_tokens({"text": "héllo wörld", "type": "text"}) == estimate_tokens(block)  # key order
    assert estimate_tokens({}) == 1


def test_the_prompt_is_tools_then_system_then_messages() -> None:
    b = body(messages=[{"role": "user", "content": "hi"}, {"role": "assistant", "content": [text("a"), text("b")]}],
             system=[text("s0"), text("s1", cached=True)], tools=[{"name": "t0", "input_schema": {}}])
    assert [p.where for p in prompt_blocks(b)] == [
        "tools[0]", "system[0]", "system[1]", "messages[0].user[0]", "messages[1].assistant[0]",
        "messages[1].assistant[1]"]
    assert [p.ttl for p in prompt_blocks(b)] == [None, None, "5m", None, None, None]


def test_a_string_is_the_same_prompt_as_one_text_block_and_cache_control_is_not_part_of_it() -> None:
    as_string = body(system="sys", messages=[{"role": "user", "content": "hi"}])
    as_blocks = body(system=[text("sys", cached=True)], messages=[{"role": "user", "content": [text("hi", True)]}])
    assert [p.key for p in prompt_blocks(as_string)] == [p.key for p in prompt_blocks(as_blocks)]
    # The same text in another role or another message is another prompt.
    other_role = body(system="sys", messages=[{"role": "assistant", "content": "hi"}])
    assert prompt_blocks(other_role)[1].key != prompt_blocks(as_string)[1].key
    split = body(messages=[{"role": "user", "content": [text("a"), text("b")]}])
    apart = body(messages=[{"role": "user", "content": "a"}, {"role": "user", "content": "b"}])
    assert [p.key for p in prompt_blocks(split)] != [p.key for p in prompt_blocks(apart)]


def test_the_clis_billing_header_block_is_not_part_of_the_prompt() -> None:
    # Its 3-hex suffix follows the first user message; the cached system prompt must not.
    b = body(system=[text("x-anthropic-billing-header: cc_version=2.1.332.bd3; cc_entrypoint=sdk-cli;"),
                     text("identity", cached=True)], messages=[{"role": "user", "content": "hi"}])
    assert [p.where for p in prompt_blocks(b)] == ["system[1]", "messages[0].user[0]"]


# --- writes and reads ---------------------------------------------------------------------------

def test_a_breakpoint_writes_its_prefix_and_the_next_request_reads_it(cache: PromptCache) -> None:
    system = [text(word(100)), text(word(101), cached=True)]
    prefix = tokens_of(word(100)) + tokens_of(word(101))
    first = body(system=system, messages=[{"role": "user", "content": "first question"}])
    usage = cache.use(first)
    assert usage == CacheUsage(input_tokens=total(first) - prefix, cache_creation_input_tokens=prefix,
                               cache_read_input_tokens=0, ephemeral_5m_input_tokens=prefix)
    second = body(system=system, messages=[{"role": "user", "content": "another question"}])
    usage = cache.use(second)
    assert usage.cache_read_input_tokens == prefix and usage.cache_creation_input_tokens == 0
    assert usage.input_tokens == total(second) - prefix
    assert usage.total_input_tokens == total(second)


def test_no_breakpoint_no_cache(cache: PromptCache) -> None:
    b = body(system=[text(word(1))], messages=[{"role": "user", "content": "hi"}])
    for _ in range(2):
        assert cache.use(b) == CacheUsage(total(b), 0, 0)
    assert len(cache) == 0


def test_a_changed_block_before_the_breakpoint_misses_and_tools_come_first(cache: PromptCache) -> None:
    tools = [{"name": "calc", "description": "adds", "input_schema": {"type": "object"}}]
    system = [text(word(1), cached=True)]
    cache.use(body(tools=tools, system=system, messages=[{"role": "user", "content": "q"}]))
    # The system breakpoint covers the tools before it: change a tool and it misses.
    changed = [{**tools[0], "description": "multiplies"}]
    assert cache.use(body(tools=changed, system=system, messages=[{"role": "user", "content": "q"}])) \
        .cache_read_input_tokens == 0
    # A change after the breakpoint does not matter.
    usage = cache.use(body(tools=tools, system=system, messages=[{"role": "user", "content": "other"}]))
    assert usage.cache_read_input_tokens == tokens_of(word(1)) + estimate_tokens(tools[0])


def test_a_tool_definition_can_carry_the_breakpoint(cache: PromptCache) -> None:
    tools = [{"name": "a", "input_schema": {}}, {"name": "b", "input_schema": {}, "cache_control": EPHEMERAL}]
    cache.use(body(tools=tools, messages=[{"role": "user", "content": "q"}]))
    usage = cache.use(body(tools=tools, system="new system", messages=[{"role": "user", "content": "q"}]))
    assert usage.cache_read_input_tokens == sum(estimate_tokens(t) for t in tools)


def test_a_conversation_reads_the_previous_turn_and_writes_the_new_one(cache: PromptCache) -> None:
    system = [text(word(900), cached=True)]
    previous_total = 0
    for turns in (1, 2, 3):
        b = body(system=system, messages=chat(turns))
        usage = cache.use(b)
        assert usage.cache_read_input_tokens == previous_total  # all of the last request's prompt
        assert usage.cache_creation_input_tokens == total(b) - previous_total
        assert usage.input_tokens == 0  # the breakpoint is on the last block
        previous_total = total(b)


def test_a_read_takes_the_longest_entry(cache: PromptCache) -> None:
    system = [text(word(1), cached=True)]
    cache.use(body(system=system, messages=chat(1)))  # entries: system, system+u0
    cache.use(body(system=system, messages=chat(2)))  # and system+u0+a1+u2
    longest = total(body(system=system, messages=chat(2)))
    usage = cache.use(body(system=system, messages=chat(3)))
    assert usage.cache_read_input_tokens == longest


@pytest.mark.parametrize("gap, hit", [(LOOKBACK_BLOCKS, True), (LOOKBACK_BLOCKS + 1, False)])
def test_the_lookback_reaches_20_block_boundaries_before_a_breakpoint(cache: PromptCache, gap: int,
                                                                      hit: bool) -> None:
    head = [text(word(i)) for i in range(3)]
    head[-1]["cache_control"] = EPHEMERAL
    cache.use(body(messages=[{"role": "user", "content": head}]))
    cached = sum(tokens_of(word(i)) for i in range(3))
    # The same head (unmarked), `gap` new blocks, the breakpoint on the last of them.
    tail = [text(word(100 + i)) for i in range(gap)]
    tail[-1]["cache_control"] = EPHEMERAL
    head[-1].pop("cache_control")
    b = body(messages=[{"role": "user", "content": head + tail}])
    usage = cache.use(b)
    assert usage.cache_read_input_tokens == (cached if hit else 0)
    assert usage.cache_creation_input_tokens == total(b) - usage.cache_read_input_tokens


def test_a_second_breakpoint_bridges_a_long_gap(cache: PromptCache) -> None:
    head = [text(word(i)) for i in range(3)]
    head[-1]["cache_control"] = EPHEMERAL
    cache.use(body(messages=[{"role": "user", "content": head}]))
    tail = [text(word(100 + i)) for i in range(30)]
    tail[-1]["cache_control"] = EPHEMERAL
    tail[10]["cache_control"] = EPHEMERAL  # 11 blocks after the head: inside the lookback
    usage = cache.use(body(messages=[{"role": "user", "content": head + tail}]))
    assert usage.cache_read_input_tokens == sum(tokens_of(word(i)) for i in range(3))


# --- minimum length, models, accounts -------------------------------------------------------------

def test_the_documented_minimums() -> None:
    assert minimum_for("claude-opus-4-6") == minimum_for("claude-haiku-4-5-20251001") == 4096
    assert minimum_for("claude-3-5-haiku-20241022") == 2048
    assert minimum_for("claude-sonnet-4-5") == DEFAULT_MINIMUM == 1024
    assert minimum_for("claude-sonnet-5-5") == minimum_for("claude-opus-5-5") == 1024


def test_below_the_minimum_nothing_is_cached(clock: Clock) -> None:
    small = body(system=[text(word(1), cached=True)], messages=[{"role": "user", "content": "q"}])
    at_minimum = PromptCache(clock=clock, min_tokens=tokens_of(word(1)))
    assert at_minimum.use(small).cache_creation_input_tokens == tokens_of(word(1))
    above = PromptCache(clock=clock, min_tokens=tokens_of(word(1)) + 1)
    for _ in range(2):
        assert above.use(small) == CacheUsage(total(small), 0, 0)
    assert len(above) == 0


def test_the_minimum_applies_per_breakpoint(clock: Clock) -> None:
    cache = PromptCache(clock=clock, min_tokens=tokens_of(word(1)) + 1)
    b = body(system=[text(word(1), cached=True), text(word(2), cached=True)], messages=[{"role": "user", "content": "q"}])
    usage = cache.use(b)  # the first prefix is too short, the second is long enough
    assert usage.cache_creation_input_tokens == tokens_of(word(1)) + tokens_of(word(2))
    assert len(cache) == 1


def test_the_default_minimum_is_the_models(clock: Clock) -> None:
    cache = PromptCache(clock=clock)
    short = body(system=[text("x" * 4000, cached=True)], messages=[{"role": "user", "content": "q"}])  # ~1006
    long = body(system=[text("x" * 4200, cached=True)], messages=[{"role": "user", "content": "q"}])  # ~1056
    assert cache.use(short).cache_creation_input_tokens == 0
    assert cache.use(long).cache_creation_input_tokens > 1024
    assert cache.use({**long, "model": "claude-haiku-4-5"}).cache_creation_input_tokens == 0


def test_entries_are_per_model_and_per_account(cache: PromptCache) -> None:
    b = body(system=[text(word(1), cached=True)], messages=[{"role": "user", "content": "q"}])
    cache.use(b, account="alice")
    assert cache.use(b, account="alice").cache_read_input_tokens > 0
    assert cache.use({**b, "model": "claude-opus-5-5"}, account="alice").cache_read_input_tokens == 0
    assert cache.use(b, account="bob").cache_read_input_tokens == 0


# --- time to live ---------------------------------------------------------------------------------

def test_entries_expire_after_five_minutes_unless_read(cache: PromptCache, clock: Clock) -> None:
    b = body(system=[text(word(1), cached=True)], messages=[{"role": "user", "content": "q"}])
    cache.use(b)
    clock.now += 299
    assert cache.use(b).cache_read_input_tokens > 0  # read: refreshed for another 5 minutes
    clock.now += 299
    assert cache.use(b).cache_read_input_tokens > 0
    clock.now += 300
    usage = cache.use(b)
    assert usage.cache_read_input_tokens == 0 and usage.cache_creation_input_tokens > 0


def test_a_read_refreshes_the_entry_it_read(cache: PromptCache, clock: Clock) -> None:
    head = [text(word(1)), text(word(2), cached=True)]
    cache.use(body(messages=[{"role": "user", "content": head}]))
    unmarked = [text(word(1)), text(word(2))]

    def extended(n: int) -> dict[str, Any]:
        # The head unmarked, then a new block carrying the breakpoint: reads the head's entry.
        return body(messages=[{"role": "user", "content": unmarked + [text(word(n), cached=True)]}])

    clock.now += 299
    assert cache.use(extended(3)).cache_read_input_tokens == tokens_of(word(1)) + tokens_of(word(2))
    clock.now += 299  # 598 s after the write, 299 s after the read
    assert cache.use(extended(4)).cache_read_input_tokens == tokens_of(word(1)) + tokens_of(word(2))


def test_a_one_hour_entry_outlives_five_minutes(cache: PromptCache, clock: Clock) -> None:
    b = body(system=[text(word(1), cached="1h")], messages=[{"role": "user", "content": "q"}])
    usage = cache.use(b)
    assert (usage.ephemeral_1h_input_tokens, usage.ephemeral_5m_input_tokens) == (tokens_of(word(1)), 0)
    clock.now += 3599
    assert cache.use(b).cache_read_input_tokens == tokens_of(word(1))
    clock.now += 3600
    assert cache.use(b).cache_read_input_tokens == 0


def test_written_tokens_are_split_by_ttl(cache: PromptCache) -> None:
    b = body(system=[text(word(1), cached="1h")], messages=[{"role": "user", "content": [text(word(2), True)]}])
    usage = cache.use(b)
    assert usage.ephemeral_1h_input_tokens == tokens_of(word(1))
    assert usage.ephemeral_5m_input_tokens == tokens_of(word(2))
    assert usage.cache_creation_input_tokens == tokens_of(word(1)) + tokens_of(word(2))


def test_automatic_caching_marks_the_last_block(cache: PromptCache) -> None:
    b = body(system="s", messages=chat(2, cached_last=False), cache_control=EPHEMERAL)
    assert prompt_blocks(b)[-1].ttl == "5m"
    assert cache.use(b).cache_creation_input_tokens == total(b)


def test_entries_are_bounded_least_recently_used_first(clock: Clock) -> None:
    cache = PromptCache(clock=clock, min_tokens=1, max_entries=2)
    bodies = [body(system=[text(word(i), cached=True)], messages=[{"role": "user", "content": "q"}]) for i in range(3)]
    for b in bodies:
        cache.use(b)
    assert len(cache) == 2
    assert cache.use(bodies[0]).cache_read_input_tokens == 0  # evicted
    assert cache.use(bodies[2]).cache_read_input_tokens > 0


def test_clear_forgets_everything(cache: PromptCache) -> None:
    b = body(system=[text(word(1), cached=True)], messages=[{"role": "user", "content": "q"}])
    cache.use(b)
    cache.clear()
    assert len(cache) == 0 and cache.use(b).cache_read_input_tokens == 0


# --- what the API refuses ---------------------------------------------------------------------------

def test_more_than_four_breakpoints_and_unknown_ttls_are_refused() -> None:
    four = body(system=[text(str(i), cached=True) for i in range(4)], messages=[{"role": "user", "content": "q"}])
    assert refusal(four) is None
    five = body(system=[text(str(i), cached=True) for i in range(4)],
                messages=[{"role": "user", "content": [text("q", True)]}])
    assert refusal(five) == "A maximum of 4 blocks with cache_control may be provided. Found 5."
    assert refusal({**four, "cache_control": EPHEMERAL}) is not None  # automatic caching counts too
    bad_ttl = body(system=[text("s", cached="2h")], messages=[{"role": "user", "content": "q"}])
    assert refusal(bad_ttl) == "cache_control.ttl: Input should be '5m' or '1h'"
    bad_type = body(system=[{"type": "text", "text": "s", "cache_control": {"type": "permanent"}}],
                    messages=[{"role": "user", "content": "q"}])
    assert "ephemeral" in (refusal(bad_type) or "")
