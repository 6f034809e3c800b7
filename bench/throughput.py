"""Replay-mode throughput and latency against a bare waitress app as the ceiling.

Ours runs the real `claude-max-api` command with `--replay fixtures/cassettes` (fast timing:
the whole CLI transcript is available at once), so what is measured is the proxy itself:
routing, validation, rendering, the runner seam, event translation and SSE framing. The
ceiling sends the very bytes ours sent for the same request, from the same waitress with the
same threads. Clients are keep-alive connections, one per concurrent client, in this process;
on a multi-core machine the servers and the client are pinned to different cores.
"""

from __future__ import annotations

import os
import resource
import tempfile
import threading
import time
from typing import Any

from bench import servers
from bench.http_client import Connection
from bench.stats import Row, percentile

PROMPT = "What is 2 + 2?"   # fixtures/cassettes/plain_question.json
CONCURRENCY = (1, 8, 64)


def body(stream: bool) -> dict:
    return {"model": "sonnet", "stream": stream, "messages": [{"role": "user", "content": PROMPT}]}


def _cpus() -> tuple[set[int] | None, set[int] | None]:
    cpus = sorted(os.sched_getaffinity(0))
    if len(cpus) < 2:
        return None, None
    return {cpus[-1]}, set(cpus[:-1])   # server, client


def load(url: str, payload: dict, clients: int, seconds: float, warmup: float,
         expect: bytes) -> dict[str, Any]:
    """Keeps `clients` requests in flight for `seconds`; returns rate and latency."""
    stop_at = [0.0]
    latencies: list[list[float]] = [[] for _ in range(clients)]
    errors = [0] * clients
    measuring = threading.Event()
    start = threading.Barrier(clients + 1)

    def worker(i: int) -> None:
        conn = Connection(url)
        start.wait()
        try:
            while True:
                now = time.monotonic()
                if stop_at[0] and now >= stop_at[0]:
                    return
                response = conn.post_json("/v1/chat/completions", payload)
                ok = response.status == 200 and expect in response.body
                if measuring.is_set() and response.done_at <= stop_at[0]:
                    if ok:
                        latencies[i].append(response.total)
                    else:
                        errors[i] += 1
        finally:
            conn.close()

    threads = [threading.Thread(target=worker, args=(i,), daemon=True) for i in range(clients)]
    for thread in threads:
        thread.start()
    start.wait()
    time.sleep(warmup)
    t0 = time.monotonic()
    stop_at[0] = t0 + seconds
    cpu1 = resource.getrusage(resource.RUSAGE_SELF)
    measuring.set()
    for thread in threads:
        thread.join(seconds + 120)
    cpu2 = resource.getrusage(resource.RUSAGE_SELF)
    done = [x for per in latencies for x in per]
    client_cpu = (cpu2.ru_utime + cpu2.ru_stime - cpu1.ru_utime - cpu1.ru_stime) / seconds
    return {"rps": len(done) / seconds, "p50_ms": percentile(done, 0.5) * 1000,
            "p99_ms": percentile(done, 0.99) * 1000, "requests": len(done),
            "errors": sum(errors), "client_cpu": client_cpu}


def run(seconds: float, warmup: float) -> tuple[list[Row], dict[str, Any]]:
    server_cpus, client_cpus = _cpus()
    if client_cpus:
        os.sched_setaffinity(0, client_cpus)
    most = max(CONCURRENCY)
    args = ("--replay", str(servers.CASSETTES), "--replay-timing", "fast",
            "--max-concurrent", str(most), "--queue-size", str(most))
    threads = most + most + 8  # what ours sizes itself to (Settings.effective_threads)
    rows: list[Row] = []
    raw: dict[str, Any] = {"seconds": seconds, "pinned": bool(client_cpus), "cells": []}
    try:
        with servers.ours(*args, cpus=server_cpus, name="ours, replay") as ours:
            for stream in (False, True):
                probe = Connection(ours.url)
                sample = probe.post_json("/v1/chat/completions", body(stream), keep_alive=False)
                probe.close()
                assert sample.status == 200, sample.body[:300]
                expect = b"[DONE]" if stream else b'"finish_reason"'
                with tempfile.NamedTemporaryFile(suffix=".body") as fh:
                    fh.write(sample.body)
                    fh.flush()
                    with servers.ceiling(fh.name, stream, threads, server_cpus) as ceiling:
                        for clients in CONCURRENCY:
                            a = load(ours.url, body(stream), clients, seconds, warmup, expect)
                            b = load(ceiling.url, body(stream), clients, seconds, warmup, expect)
                            mode = "streaming" if stream else "non-streaming"
                            raw["cells"].append({"mode": mode, "clients": clients,
                                                 "ours": a, "ceiling": b})
                            ratio = a["rps"] / b["rps"] if b["rps"] else 0.0
                            rows.append(Row("throughput", f"{mode}, {clients} clients, req/s",
                                            a["rps"], b["rps"], "bare waitress", "req/s",
                                            ">= 1/2 of the ceiling", ratio >= 0.5,
                                            note=f"p50 {a['p50_ms']:.1f} ms / {b['p50_ms']:.1f} ms,"
                                                 f" p99 {a['p99_ms']:.1f} ms / {b['p99_ms']:.1f} ms"
                                                 + (f", {a['errors']} errors" if a["errors"] else ""),
                                            extra={"ours": a, "ceiling": b}))
    finally:
        os.sched_setaffinity(0, set(range(os.cpu_count() or 1)))
    return rows, raw
