"""Per-chunk forwarding delay: from the CLI writing a line to the client's socket receiving it.

Ours runs the real command with `--claude-bin` pointing at bench/fake_cli.py, which stamps each
text delta with CLOCK_MONOTONIC; the client reads the same clock on arrival. One stream alone,
then several at once (each its own process, as live). The baseline, measured alongside, is the
same fake CLI read straight from its pipe by this process: the machine's own scheduling noise,
which no proxy can go below.
"""

from __future__ import annotations

import os
import stat
import subprocess
import time
import sys
import tempfile
import threading
from pathlib import Path
from typing import Any

from bench import servers
from bench.http_client import Connection
from bench.stats import Row, median, percentile

BODY = {"model": "sonnet", "stream": True, "messages": [{"role": "user", "content": "stamp"}]}


def _fake_cli(directory: str) -> str:
    path = Path(directory) / "claude"
    path.write_text(f'#!/bin/sh\nexec "{sys.executable}" -m bench.fake_cli "$@"\n')
    path.chmod(path.stat().st_mode | stat.S_IXUSR)
    return str(path)


def _delays(response) -> list[float]:
    out = []
    for at, piece in response.pieces:
        for stamp in piece.split(";"):
            if stamp.isdigit():
                out.append(at - int(stamp) / 1e9)
    return out


def _direct(env: dict, deltas: int) -> list[float]:
    """The fake CLI's lines read straight from its pipe: the floor under any forwarding."""
    child = subprocess.Popen([sys.executable, "-m", "bench.fake_cli"], stdin=subprocess.PIPE,
                             stdout=subprocess.PIPE, env=env, cwd=str(servers.REPO))
    child.stdin.write(b'{"type":"user"}\n')
    child.stdin.close()
    out = []
    for line in child.stdout:
        at = time.monotonic()
        if b'"text_delta"' in line:
            stamp = line.split(b'"text":"', 1)[1].split(b";", 1)[0]
            out.append((at - int(stamp) / 1e9) * 1000)
    child.wait()
    return out


def run(deltas: int, concurrent: int) -> tuple[list[Row], dict[str, Any]]:
    work = tempfile.mkdtemp(prefix="bench-fake-")
    env = {**os.environ, "PYTHONPATH": str(servers.REPO), "BENCH_DELTAS": str(deltas),
           "BENCH_INTERVAL": "0.01"}
    raw: dict[str, Any] = {"deltas": deltas}
    rows = []
    with servers.ours("--claude-bin", _fake_cli(work), "--pool-size", "0",
                      "--max-concurrent", str(max(concurrent, 4)), env=env,
                      name="ours, timestamping CLI") as server:
        for clients in (1, concurrent):
            results: list[list[float]] = [[] for _ in range(clients)]

            def one(i: int) -> None:
                conn = Connection(server.url)
                response = conn.post_json("/v1/chat/completions", BODY, parse_sse=True,
                                          keep_alive=False)
                conn.close()
                assert response.status == 200, response.body[:300]
                results[i] = _delays(response)

            threads = [threading.Thread(target=one, args=(i,)) for i in range(clients)]
            for thread in threads:
                thread.start()
            for thread in threads:
                thread.join(120)
            delays = [d * 1000 for per in results for d in per]
            raw[f"{clients}_streams"] = {"count": len(delays), "p50_ms": median(delays),
                                         "p99_ms": percentile(delays, 0.99),
                                         "max_ms": max(delays) if delays else None}
            p99 = percentile(delays, 0.99)
            floor = _direct(env, deltas)
            raw[f"{clients}_streams"]["pipe_only_p99_ms"] = percentile(floor, 0.99)
            rows.append(Row("forwarding", f"CLI line -> client socket, {clients} stream(s), p99",
                            p99, percentile(floor, 0.99), "pipe read directly", "ms",
                            "p99 < 5 ms", p99 < 5.0,
                            note=f"p50 {median(delays):.2f} ms, max {max(delays):.2f} ms, "
                                 f"{len(delays)} chunks"))
    return rows, raw
