"""The conversations benchmark's machinery (bench/conversations.py), run for 3 turns so that
`python -m bench --only conversations` cannot rot: every path answers, start-ups and tokens are
counted where they happen, and the table reads those counts. Nothing here is timed; the speed
targets are ratios the benchmark measures in one run (docs/performance.md)."""

from __future__ import annotations

import os
import shutil

import pytest

from bench import servers
from bench.conversations import (REPLY, USAGE_KEYS, rows_for, run_length, system_prompt,
                                 user_text)


def test_the_content_is_deterministic_and_of_the_stated_sizes() -> None:
    assert 2048 <= len(system_prompt().encode()) <= 4096
    for n in range(30):
        a, b = user_text(n, "A"), user_text(n, "B")
        assert 1500 <= len(a.encode()) <= 1800
        assert a == user_text(n, "A")
        # The second conversation differs, at the same length: the same token estimate.
        assert a != b and len(a) == len(b)
    assert len({user_text(n) for n in range(30)}) == 30


@pytest.mark.live
def test_three_turns_through_every_path_are_counted() -> None:
    before = set(servers.children(os.getpid()))
    results = run_length(3, shutil.which("claude"), quiet=lambda: None)
    assert set(servers.children(os.getpid())) <= before  # every CLI of every path has ended

    session, proxy, resume, two, agent = (
        results[k] for k in ("session", "proxy", "resume", "two", "agent"))
    for path in results.values():
        assert sum(t.startups for t in path.turns) == path.startups, path.name
        assert all(t.answer_chars == len(REPLY) for t in path.turns), path.name
        assert all(t.first_token is not None and 0 < t.first_token <= t.total
                   for t in path.turns), path.name
        # Each turn's usage is what its upstream calls reported; the totals are their sum.
        assert sum(t.calls for t in path.turns) == path.totals["requests"] == len(path.turns)
        for key in USAGE_KEYS:
            assert sum(t.usage[key] for t in path.turns) == path.totals[key], (path.name, key)
        assert path.uncached == path.totals["input_tokens"] \
            + path.totals["cache_creation_input_tokens"] > 0
        assert path.cache_reads > 0
    assert [t.index for t in two.turns] == [0, 0, 1, 1, 2, 2]
    # The SDK's share of a proxy turn is noted when its request leaves; the baseline has none.
    assert all(t.client_build is None for t in session.turns)
    for path in (proxy, resume, two):
        assert all(0 <= t.client_build < t.first_token for t in path.turns), path.name

    # Start-ups, where they happened.
    assert [t.startups for t in session.turns] == [1, 0, 0] and session.startups == 1
    assert [t.startups for t in proxy.turns] == [1, 0, 0] and proxy.startups == 1
    assert proxy.continued_startups == 0
    # Without kept processes every turn starts a CLI; the first resumed one also calibrates.
    assert [t.startups for t in resume.turns] == [1, 2, 1]
    assert (resume.startups, resume.calibrations, resume.continued_startups) == (4, 1, 3)
    assert [t.startups for t in two.turns] == [1, 1, 0, 0, 0, 0] and two.startups == 2
    assert (proxy.state["hits"], two.state["hits"], resume.state) == (2, 4, {})
    # The agent loop may race the kept process's return (docs/performance.md); either way
    # every continued turn is a hit or a counted miss, and a miss is a start-up.
    assert agent.turns[0].startups == 1 and agent.state["new"] == 1
    missed = sum(agent.state["misses"].values())
    # (a kept process that does not answer counts as a hit and then a `stale` miss)
    assert agent.state["hits"] - agent.state["misses"]["stale"] + missed == 2
    assert agent.continued_startups >= missed

    # The table shows these numbers.
    rows = {row.metric: row for row in rows_for(3, results)}
    tokens = rows["3 turns: uncached input tokens"]
    assert (tokens.ours, tokens.baseline) == (proxy.uncached, session.uncached)
    assert tokens.met is (proxy.uncached <= 1.05 * session.uncached)
    first = rows["3 turns: median first token, turns 2+"]
    assert first.ours == pytest.approx(proxy.median_first_token() * 1000)
    assert first.baseline == pytest.approx(session.median_first_token() * 1000)
    sent = rows["3 turns: median first token, turns 2+, from the request leaving the SDK"]
    assert sent.ours == pytest.approx(proxy.median_after_client()[1] * 1000)
    assert sent.ours < first.ours
    assert rows["3 turns: CLI start-ups on continued turns"].met is True
    assert rows["3 turns, keep_conversations=0: uncached input tokens"].ours == resume.uncached
    assert rows["3 turns, two conversations: uncached input tokens"].baseline \
        == 2 * session.uncached
