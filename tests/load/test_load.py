"""Load and fault tests over real sockets.

* 200 concurrent streaming clients against replay mode (recorded timing, so the streams really
  overlap) all receive complete, correct streams.
* 100 clients that walk away (mid-stream, mid-request, while queued) from real CLI processes
  leave no process and no directory behind: every pid the runner spawned is checked.
"""

from __future__ import annotations

import json
import os
import random
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest

from proxy.runners.replay import ReplayRunner
from proxy.settings import Settings
from proxy.standin.scenario import Scenario
from tests.lifecycle.support import (RawClient, alive, chat_body, claude_children, request_dirs,
                                     split_response, sse_payloads, wait_until)
from tests.support.servers import running_proxy

CASSETTES = Path(__file__).resolve().parents[2] / "fixtures" / "cassettes"
SLOW_PROMPT = "Answer slowly, please."  # fixtures/cassettes/slow_stream.json: ~2.8 s recorded


def _stream_text(raw: bytes) -> tuple[str, list[dict]]:
    status, headers, body = split_response(raw)
    assert status == 200, raw[:300]
    payloads = sse_payloads(body)
    assert payloads[-1] == "[DONE]", payloads[-3:]
    chunks = [json.loads(p) for p in payloads[:-1]]
    text = "".join(c["choices"][0]["delta"].get("content") or "" for c in chunks if c["choices"])
    return text, chunks


class Peak:
    """Samples a number in the background and keeps its maximum."""

    def __init__(self, read) -> None:
        self.read, self.most, self._stop = read, 0, threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def _run(self) -> None:
        while not self._stop.is_set():
            self.most = max(self.most, self.read())
            time.sleep(0.02)

    def __enter__(self) -> "Peak":
        self._thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self._stop.set()
        self._thread.join()


def test_200_concurrent_streams_in_replay_mode_are_complete_and_correct():
    runner = ReplayRunner.from_directory(CASSETTES, timing="recorded")
    settings = Settings(max_concurrent=200, queue_size=0, max_connections=260)
    with running_proxy(settings, runner) as proxy:
        body = chat_body(SLOW_PROMPT, stream=True)
        expected, _ = _stream_text(RawClient(proxy.url, body).read_all())
        assert len(expected) > 20
        gate = threading.Barrier(200)

        def one(_: int) -> tuple[str, list[dict]]:
            gate.wait(60)
            return _stream_text(RawClient(proxy.url, body, timeout=120).read_all(timeout=120))

        with Peak(lambda: proxy.parts.limiter.stats()["active"]) as peak, \
                ThreadPoolExecutor(200) as pool:
            results = list(pool.map(one, range(200)))
    assert peak.most >= 50, f"the streams did not overlap (peak {peak.most})"
    ids = set()
    for text, chunks in results:
        assert text == expected
        assert chunks[0]["choices"][0]["delta"]["role"] == "assistant"
        assert [c["choices"][0]["finish_reason"] for c in chunks if c["choices"]][-1] == "stop"
        assert len({c["id"] for c in chunks}) == 1
        ids.add(chunks[0]["id"])
    assert len(ids) == 200
    assert runner.open_processes() == []


class SpawnRecorder:
    """The live runner, recording every process it spawns (pid and directory)."""

    def __init__(self, runner) -> None:
        self.runner = runner
        self.spawned: list = []
        self._lock = threading.Lock()

    def start(self, invocation):
        process = self.runner.start(invocation)
        with self._lock:
            self.spawned.append(process)
        return process

    def close(self) -> None:
        self.runner.close()


@pytest.mark.live
def test_100_clients_that_leave_leave_no_process_and_no_directory(standin, live_runner_for):
    standin.add_scenario("ld-leave", Scenario(reply_text="drip " * 400, split=5,
                                              chunk_delay=0.05))  # ~20 s per answer
    live = live_runner_for("ld-leave")
    runner = SpawnRecorder(live)
    cap = 6
    settings = Settings(max_concurrent=cap, queue_size=100, queue_timeout=120.0, timeout=120.0,
                        idle_timeout=120.0)
    rng = random.Random(6)

    def client(i: int) -> str:
        kind = ("mid-stream", "mid-request", "right-away")[i % 3]
        c = RawClient(proxy.url, chat_body(f"leaver {i}", stream=kind != "mid-request"))
        try:
            if kind == "mid-stream":
                assert c.read_until(b'"content":"drip', timeout=120)
            elif kind == "mid-request":
                time.sleep(rng.uniform(0.2, 2.0))  # queued or running, without an answer yet
        finally:
            c.close()
        return kind

    with running_proxy(settings, runner) as proxy, \
            Peak(lambda: len(claude_children(os.getpid()))) as peak:
        with ThreadPoolExecutor(100) as pool:
            kinds = list(pool.map(client, range(100)))
        limiter = proxy.parts.limiter
        assert wait_until(lambda: limiter.stats()["active"] == 0 and
                          limiter.stats()["waiting"] == 0, 60)
        assert wait_until(lambda: not claude_children(os.getpid()), 30)
        survivors = [p.pid for p in runner.spawned if alive(p.pid)]
        assert survivors == [], f"processes outlived their clients: {survivors}"
        assert request_dirs(live.work_root.path) == []
        assert all(not p.req_dir.exists() for p in runner.spawned)
    assert kinds.count("mid-stream") == 34
    assert 34 <= len(runner.spawned) < 100  # every mid-stream client ran; most others never did
    assert peak.most <= cap
    # Every upstream call that a CLI made was cut off with it, none ran to its end.
    assert len(standin.requests_for("ld-leave")) <= len(runner.spawned)
    assert wait_until(lambda: all(r.client_aborted for r in standin.requests_for("ld-leave")), 30)
