"""Bounded concurrency over real sockets: the cap, the wait queue, 429s, and spare threads.

The slots are held by real CLI processes waiting on a stand-in upstream that never answers
(`hang`), so every number below is about processes that really exist.
"""

from __future__ import annotations

import os
import time

import httpx
import pytest

from proxy.settings import Settings
from proxy.standin.scenario import Scenario
from tests.lifecycle.support import RawClient, all_dead, chat_body, claude_children, wait_until
from tests.support.servers import running_proxy

pytestmark = pytest.mark.live


class CountingRunner:
    """The live runner, counting the processes it was asked to start."""

    def __init__(self, runner) -> None:
        self.runner = runner
        self.starts = 0

    def start(self, invocation):
        self.starts += 1
        return self.runner.start(invocation)

    def close(self) -> None:
        self.runner.close()


@pytest.fixture
def hanging_runner(standin, live_runner_for):
    standin.add_scenario("lc-conc-hang", Scenario(hang=True))
    return live_runner_for("lc-conc-hang")


def _settings(**overrides) -> Settings:
    values = dict(max_concurrent=1, queue_size=1, queue_timeout=30.0, timeout=120.0,
                  idle_timeout=120.0)
    values.update(overrides)
    return Settings(**values)


def _wait_stats(proxy, **want) -> bool:
    limiter = proxy.parts.limiter
    return wait_until(lambda: all(limiter.stats()[k] == v for k, v in want.items()), 30)


def test_full_cap_and_queue_answer_429_with_retry_after(hanging_runner):
    with running_proxy(_settings(), hanging_runner) as proxy:
        holder = RawClient(proxy.url, chat_body(stream=True))
        assert _wait_stats(proxy, active=1)
        queued = RawClient(proxy.url, chat_body())
        assert _wait_stats(proxy, waiting=1)
        try:
            answer = httpx.post(proxy.base_url + "/chat/completions", json=chat_body(), timeout=30)
            assert answer.status_code == 429
            assert int(answer.headers["retry-after"]) >= 1
            error = answer.json()["error"]
            assert error["code"] == "rate_limit_exceeded" and error["type"] == "rate_limit_error"
            assert proxy.parts.limiter.stats()["rejected"] == 1
        finally:
            holder.close()
            queued.close()
        assert wait_until(lambda: proxy.parts.limiter.stats()["active"] == 0, 30)
        assert wait_until(lambda: not claude_children(os.getpid()), 30)


def test_queue_timeout_is_a_429(hanging_runner):
    with running_proxy(_settings(queue_timeout=1.0), hanging_runner) as proxy:
        holder = RawClient(proxy.url, chat_body(stream=True))
        try:
            assert _wait_stats(proxy, active=1)
            started = time.monotonic()
            answer = httpx.post(proxy.base_url + "/chat/completions", json=chat_body(), timeout=30)
            assert answer.status_code == 429
            assert time.monotonic() - started >= 0.9
            assert "within 1 s" in answer.json()["error"]["message"]
            assert "retry-after" in answer.headers
        finally:
            holder.close()


def test_a_queued_request_whose_client_leaves_never_starts_a_process(standin, hanging_runner):
    runner = CountingRunner(hanging_runner)
    with running_proxy(_settings(queue_size=4), runner) as proxy:
        holder = RawClient(proxy.url, chat_body(stream=True))
        assert _wait_stats(proxy, active=1)
        leavers = [RawClient(proxy.url, chat_body(stream=bool(i % 2))) for i in range(3)]
        assert _wait_stats(proxy, waiting=3)
        for client in leavers:
            client.close()
        # Dropped from the queue while the slot is still taken...
        assert _wait_stats(proxy, waiting=0, active=1)
        holder.close()
        assert _wait_stats(proxy, active=0)
        time.sleep(0.5)  # a wrongly kept waiter would get the slot now
        assert runner.starts == 1
        assert proxy.parts.limiter.stats()["active"] == 0
    assert len(standin.requests_for("lc-conc-hang")) >= 1
    assert wait_until(lambda: not claude_children(os.getpid()), 30)


def test_streams_and_a_full_queue_do_not_starve_health_or_models(hanging_runner):
    # Default thread sizing (threads=0): max_concurrent + queue_size + spares.
    settings = _settings(max_concurrent=3, queue_size=3)
    with running_proxy(settings, hanging_runner) as proxy:
        clients = [RawClient(proxy.url, chat_body(stream=True)) for _ in range(3)]
        try:
            assert _wait_stats(proxy, active=3)
            clients += [RawClient(proxy.url, chat_body(stream=True)) for _ in range(3)]
            assert _wait_stats(proxy, waiting=3)
            # A child forked a moment ago may not have exec'd `claude` yet: wait for all three.
            assert wait_until(lambda: len(claude_children(os.getpid())) == 3, 10)
            time.sleep(0.3)
            pids = claude_children(os.getpid())
            assert len(pids) == 3  # the cap: queued requests hold no process
            with httpx.Client(timeout=10) as http:
                for _ in range(5):
                    started = time.monotonic()
                    assert http.get(proxy.url + "/health").status_code == 200
                    assert http.get(proxy.base_url + "/models").status_code == 200
                    # Starved, these would wait for a stream to end (two minutes away).
                    assert time.monotonic() - started < 5
                assert http.post(proxy.base_url + "/chat/completions",
                                 json=chat_body()).status_code == 429
        finally:
            for client in clients:
                client.close()
        assert wait_until(lambda: all_dead(pids), 30)
