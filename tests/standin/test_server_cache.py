"""Prompt caching through the stand-in's HTTP API: opt-in, the usage it reports, and what tests read."""

from __future__ import annotations

import json
from typing import Any, Iterator

import pytest

from proxy.standin import Scenario, StandInUpstream, UsageTotals
from proxy.standin.cache import estimate_tokens, prompt_blocks

from .sseclient import Response, post

EPHEMERAL = {"type": "ephemeral"}
SYSTEM = [{"type": "text", "text": "You are a test. " * 20, "cache_control": EPHEMERAL}]


class Clock:
    now = 50.0

    def __call__(self) -> float:
        return self.now


@pytest.fixture
def clock() -> Clock:
    return Clock()


@pytest.fixture
def caching(clock: Clock) -> Iterator[StandInUpstream]:
    with StandInUpstream(Scenario(reply_text="ok", output_tokens=3), prompt_caching=True, clock=clock,
                         min_cacheable_tokens=1) as up:
        yield up


def turn_body(*user_texts: str, stream: bool = True, model: str = "claude-sonnet-5-5") -> dict[str, Any]:
    """A conversation as the CLI sends it: the breakpoint on the last user block."""
    messages: list[dict[str, Any]] = []
    for i, t in enumerate(user_texts):
        if i:
            messages.append({"role": "assistant", "content": [{"type": "text", "text": f"answer {i}"}]})
        messages.append({"role": "user", "content": [{"type": "text", "text": t}]})
    messages[-1]["content"][-1]["cache_control"] = EPHEMERAL
    return {"model": model, "max_tokens": 100, "stream": stream, "system": SYSTEM, "messages": messages}


def total(body: dict[str, Any]) -> int:
    return sum(b.tokens for b in prompt_blocks(body))


def start_usage(r: Response) -> dict[str, Any]:
    assert r.status == 200, r.json
    return r.data("message_start")[0]["message"]["usage"]


def delta_usage(r: Response) -> dict[str, Any]:
    return r.data("message_delta")[0]["usage"]


def test_caching_is_off_by_default_and_usage_stays_the_scenarios(upstream: StandInUpstream) -> None:
    upstream.add_scenario("fixed", Scenario(input_tokens=21, cache_read_input_tokens=4, output_tokens=8))
    for _ in range(2):
        r = post(upstream.base_url_for("fixed"), turn_body("hello"))
        assert start_usage(r) == {"input_tokens": 21, "cache_creation_input_tokens": 0,
                                  "cache_read_input_tokens": 4, "output_tokens": 1}
        assert delta_usage(r) == {"output_tokens": 8}
    assert [q.usage for q in upstream.requests] == [
        {"input_tokens": 21, "cache_creation_input_tokens": 0, "cache_read_input_tokens": 4, "output_tokens": 8}] * 2
    assert len(upstream.prompt_cache) == 0


def test_a_conversation_writes_then_reads_and_both_usage_events_say_so(caching: StandInUpstream) -> None:
    first, second = turn_body("hello"), turn_body("hello", "and now?")
    r1 = post(caching.base_url, first)
    assert start_usage(r1) == {"input_tokens": 0, "cache_creation_input_tokens": total(first),
                               "cache_read_input_tokens": 0, "output_tokens": 1,
                               "cache_creation": {"ephemeral_5m_input_tokens": total(first),
                                                  "ephemeral_1h_input_tokens": 0}}
    # message_delta repeats the cumulative input counts, as the real API's does.
    assert delta_usage(r1) == {**start_usage(r1), "output_tokens": 3}

    r2 = post(caching.base_url, second)
    usage = start_usage(r2)
    assert usage["cache_read_input_tokens"] == total(first)
    assert usage["cache_creation_input_tokens"] == total(second) - total(first)
    assert usage["input_tokens"] == 0

    recorded = [q.usage for q in caching.requests]
    assert recorded == [delta_usage(r1), delta_usage(r2)]
    assert caching.usage_totals() == UsageTotals(
        requests=2, input_tokens=0, cache_creation_input_tokens=total(second),
        cache_read_input_tokens=total(first), output_tokens=6)


def test_uncached_input_is_what_follows_the_last_breakpoint(caching: StandInUpstream) -> None:
    body = turn_body("hello")
    tail = {"type": "text", "text": "an unmarked block after the breakpoint"}
    body["messages"][-1]["content"].append(tail)
    usage = start_usage(post(caching.base_url, body))
    assert usage["input_tokens"] == estimate_tokens(tail)
    assert usage["cache_creation_input_tokens"] == total(body) - estimate_tokens(tail)


def test_the_non_streaming_answer_reports_the_same(caching: StandInUpstream) -> None:
    post(caching.base_url, turn_body("hello"))
    r = post(caching.base_url, turn_body("hello", stream=False))
    assert r.status == 200
    assert r.json["usage"]["cache_read_input_tokens"] == total(turn_body("hello"))
    assert r.json["usage"] == caching.requests[-1].usage


def test_a_scenario_can_opt_in_alone_and_totals_are_per_scenario(upstream: StandInUpstream) -> None:
    upstream.add_scenario("cached", Scenario(prompt_caching=True))
    upstream.add_scenario("plain", Scenario())
    body = turn_body("x" * 5000)  # over the default 1,024-token minimum
    for _ in range(2):
        post(upstream.base_url_for("cached"), body)
        post(upstream.base_url_for("plain"), body)
    cached, plain = upstream.usage_totals("cached"), upstream.usage_totals("plain")
    assert (cached.requests, cached.cache_creation_input_tokens, cached.cache_read_input_tokens) == (
        2, total(body), total(body))
    assert plain == UsageTotals(requests=2, input_tokens=200, output_tokens=24)
    assert Scenario.from_dict({"prompt_caching": True}).to_dict() == {"prompt_caching": True}


def test_api_keys_do_not_share_a_cache(caching: StandInUpstream) -> None:
    body = turn_body("hello")
    post(caching.base_url, body, headers={"x-api-key": "sk-alice"})
    assert start_usage(post(caching.base_url, body, headers={"x-api-key": "sk-bob"}))["cache_read_input_tokens"] == 0
    assert start_usage(post(caching.base_url, body, headers={"x-api-key": "sk-alice"}))[
        "cache_read_input_tokens"] == total(body)


def test_entries_expire_on_the_upstreams_clock(caching: StandInUpstream, clock: Clock) -> None:
    body = turn_body("hello")
    post(caching.base_url, body)
    clock.now += 301
    assert start_usage(post(caching.base_url, body))["cache_read_input_tokens"] == 0


def test_reset_clears_the_cache(caching: StandInUpstream) -> None:
    body = turn_body("hello")
    post(caching.base_url, body)
    caching.reset()
    assert len(caching.prompt_cache) == 0
    assert start_usage(post(caching.base_url, body))["cache_read_input_tokens"] == 0
    assert caching.usage_totals().requests == 1


def test_a_failed_call_neither_reads_nor_writes(caching: StandInUpstream) -> None:
    caching.add_scenario("busy", Scenario(fail_status=529, fail_count=1))
    body = turn_body("hello")
    assert post(caching.base_url_for("busy"), body).status == 529
    assert caching.requests[0].usage is None
    assert start_usage(post(caching.base_url_for("busy"), body))["cache_read_input_tokens"] == 0
    assert caching.usage_totals("busy").requests == 1


def test_breakpoints_the_api_refuses_are_400_when_caching(caching: StandInUpstream,
                                                           upstream: StandInUpstream) -> None:
    body = turn_body("a", "b", "c")
    for message in body["messages"]:
        message["content"][-1]["cache_control"] = EPHEMERAL  # 6 with the system one
    r = post(caching.base_url, json.dumps(body).encode())
    assert (r.status, r.json["error"]["type"]) == (400, "invalid_request_error")
    assert r.json["error"]["message"] == "A maximum of 4 blocks with cache_control may be provided. Found 6."
    assert caching.usage_totals().requests == 0
    # Without caching the stand-in keeps answering as before.
    assert post(upstream.base_url, body).status == 200
