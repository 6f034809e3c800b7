"""First-token and total latency with the real CLI against the stand-in upstream.

Three servers answer the same streamed request in turn, sample after sample: ours with the warm
pool, ours with the pool off (a cold `claude` per request), and, when Node.js is present, the
npm `claude-max-api-proxy` 1.0.0, which also spawns `claude` per request. Requests are
sequential and paced, as a person or an agent loop sends them; before each warm sample the pool
has refilled and its new process has finished its start-up work (about 1 s of CPU, measured from
/proc) before *every* sample, so the refill's CPU burst never lands on another contender's
request. The wait is reported, not hidden: it is the pool's refill time.
"""

from __future__ import annotations

import json
import shutil
import tempfile
import time
from typing import Any

from bench import servers
from bench.http_client import Connection
from bench.stats import Row, median, percentile

MODEL = "claude-sonnet-4"   # known to both proxies; the CLI gets `sonnet`
BODY = {"model": MODEL, "stream": True, "messages": [
    {"role": "system", "content": "You are a benchmark. Answer briefly."},
    {"role": "user", "content": "Say hello."}]}
PACE = 0.5  # seconds between samples


def _wait_pool_ready(server: servers.Child, timeout: float = 15.0) -> float:
    started = time.monotonic()
    conn = Connection(server.url)
    try:
        while time.monotonic() - started < timeout:
            ready = conn.get("/health/ready")
            try:
                warm = json.loads(ready.body)["pool"]["warm"]
                if warm["idle"] >= 1:
                    break
            except (ValueError, KeyError):
                break
            time.sleep(0.05)
    finally:
        conn.close()
    return time.monotonic() - started


def run(samples: int, npm_cache: str | None = None) -> tuple[list[Row], dict[str, Any]]:
    from proxy.standin.scenario import Scenario
    from proxy.standin.server import StandInUpstream

    home = tempfile.mkdtemp(prefix="bench-home-")
    reply = Scenario(reply_text="Hello! This is a short answer streamed in a few deltas.", split=8)
    raw: dict[str, Any] = {"samples": samples}
    started: list[servers.Child] = []
    try:
        with StandInUpstream(reply) as upstream:
            env = servers.cli_env(upstream.base_url, home)
            contenders = {
                "warm": servers.ours("--pool-size", "1", "--pool-model", "sonnet",
                                     "--cli-max-retries", "0", env=env, name="ours, warm pool"),
                "cold": servers.ours("--pool-size", "0", "--cli-max-retries", "0", env=env,
                                     name="ours, pool off"),
            }
            started += contenders.values()
            entry, why_not = servers.install_npm_proxy(npm_cache)
            if entry is not None:
                try:
                    contenders["npm"] = servers.npm_proxy(entry, env)
                    started.append(contenders["npm"])
                except RuntimeError as exc:
                    why_not = str(exc)
            raw["npm_unavailable"] = why_not or None
            results: dict[str, dict[str, list[float]]] = {
                k: {"first": [], "total": [], "waited": []} for k in contenders}
            for name, server in contenders.items():  # one unmeasured request each
                _one(server)
            names = list(contenders)
            for n in range(samples):
                # Rotated order; and the warm pool's refill (a CLI start-up, CPU-heavy) is over
                # before any sample, so it never slows down another contender's request.
                for name in names[n % len(names):] + names[:n % len(names)]:
                    server = contenders[name]
                    waited = _wait_pool_ready(contenders["warm"])
                    waited += servers.wait_quiet(contenders["warm"].pid)
                    time.sleep(PACE)
                    response = _one(server)
                    results[name]["first"].append(response.first_token)
                    results[name]["total"].append(response.total)
                    results[name]["waited"].append(waited)
            raw["results"] = results
    finally:
        for server in started:
            server.stop()
            getattr(server, "cleanup", lambda: None)()
        shutil.rmtree(home, ignore_errors=True)

    rows = []
    med = {k: {m: median(v[m]) for m in ("first", "total")} for k, v in raw["results"].items()}
    base, base_name = (med["npm"], "npm proxy (cold spawn)") if "npm" in med else \
        (med["cold"], "ours, pool off")
    rows.append(Row("latency", "median first token, warm pool", med["warm"]["first"],
                    base["first"], base_name, "s", "<= 1/3 of the cold-spawn proxy",
                    med["warm"]["first"] <= base["first"] / 3,
                    extra={"p90": percentile(raw["results"]["warm"]["first"], 0.9)}))
    rows.append(Row("latency", "median first token, pool off", med["cold"]["first"],
                    base["first"] if "npm" in med else None, base_name if "npm" in med else "", "s"))
    rows.append(Row("latency", "warm vs cold (ours)", med["warm"]["first"], med["cold"]["first"],
                    "ours, pool off", "s"))
    rows.append(Row("latency", "median total, warm pool", med["warm"]["total"], base["total"],
                    base_name, "s"))
    if "npm" in med:
        rows.append(Row("latency", "median first token, npm proxy", med["npm"]["first"], None,
                        "", "s"))
    else:
        rows.append(Row("latency", "npm claude-max-api-proxy", None, note=raw["npm_unavailable"]))
    return rows, raw


def _one(server: servers.Child):
    conn = Connection(server.url)
    try:
        response = conn.post_json("/v1/chat/completions", BODY, parse_sse=True, keep_alive=False)
    finally:
        conn.close()
    if response.status != 200 or response.first_token is None:
        raise RuntimeError(f"{server.name}: status {response.status}, body {response.body[:300]!r}")
    return response
