"""Server memory (RSS of the proxy process alone): idle, and with 200 streams open at once.

Replay mode with recorded timing (fixtures/cassettes/slow_stream.json, about 2.8 s per
stream), so 200 streams are really open together. CLI processes are not part of this number:
each live one is a separate process of its own (about 190 MB, see docs/performance.md).
"""

from __future__ import annotations

import json
import threading
import time
from typing import Any

from bench import servers
from bench.http_client import Connection
from bench.stats import Row

BODY = {"model": "sonnet", "stream": True,
        "messages": [{"role": "user", "content": "Answer slowly, please."}]}


def run(streams: int) -> tuple[list[Row], dict[str, Any]]:
    args = ("--replay", str(servers.CASSETTES), "--replay-timing", "recorded",
            "--max-concurrent", str(streams), "--queue-size", "0",
            "--max-connections", str(streams + 50))
    with servers.ours(*args, name="ours, replay (recorded timing)") as server:
        warm = Connection(server.url)
        assert warm.post_json("/v1/chat/completions", BODY, keep_alive=False).status == 200
        warm.close()
        time.sleep(0.5)
        idle = servers.rss_mb(server.pid)
        peak = [idle]
        active_peak = [0]
        done = threading.Event()

        def sample() -> None:
            probe = Connection(server.url)
            while not done.is_set():
                peak[0] = max(peak[0], servers.rss_mb(server.pid))
                try:
                    stats = json.loads(probe.get("/health/ready").body).get("pool", {})
                    active_peak[0] = max(active_peak[0], stats.get("active", 0))
                except (OSError, ValueError):
                    probe.close()
                time.sleep(0.02)
            probe.close()

        gate = threading.Barrier(streams)
        statuses: list[int] = []

        def client() -> None:
            conn = Connection(server.url)
            gate.wait(60)
            statuses.append(conn.post_json("/v1/chat/completions", BODY, keep_alive=False).status)
            conn.close()

        sampler = threading.Thread(target=sample, daemon=True)
        sampler.start()
        threads = [threading.Thread(target=client) for _ in range(streams)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join(120)
        done.set()
        sampler.join()
        after = servers.rss_mb(server.pid)
    ok = statuses.count(200)
    raw = {"idle_mb": idle, "peak_mb": peak[0], "after_mb": after, "streams": streams,
           "completed": ok, "peak_active": active_peak[0]}
    rows = [Row("memory", "server RSS, idle", idle, None, "", "MB"),
            Row("memory", f"server RSS, {streams} concurrent streams (peak)", peak[0], idle,
                "idle", "MB", note=f"{ok}/{streams} streams complete, peak {active_peak[0]} "
                                   f"open at once; {after:.0f} MB after")]
    return rows, raw
