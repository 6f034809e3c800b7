"""The warm pool with the real CLI: a pooled run is the cold run, one request per process,
the process cap holds, idle and dead processes are replaced, failures fall back to cold."""

from __future__ import annotations

import json
import os
import signal
import threading
import time

import openai
import pytest

from proxy.claude.invocation import Invocation
from proxy.runners.pool import WarmPool
from proxy.settings import Settings
from proxy.standin.scenario import Scenario
from tests.lifecycle.support import alive, claude_children, wait_until
from tests.support.servers import running_proxy

pytestmark = pytest.mark.live


def _drain(process) -> list[str]:
    lines = []
    while True:
        try:
            line = process.read_line(1.0)
        except EOFError:
            break
        if line is not None:
            lines.append(line)
    assert process.exit_status(10).returncode == 0
    process.close()
    return lines


def _shape(lines: list[str]) -> list[tuple]:
    """What a run printed, without the values that differ between any two runs."""
    out = []
    for line in lines:
        obj = json.loads(line)
        event = obj.get("event") or {}
        out.append((obj.get("type"), obj.get("subtype"), event.get("type"),
                    (event.get("delta") or {}).get("text")))
    return out


def _normalised(body: dict, cwd: str) -> str:
    body = {k: v for k, v in body.items() if k != "metadata"}
    return json.dumps(body, sort_keys=True).replace(cwd, "<CWD>")


@pytest.fixture
def pool_for(standin, live_runner_for):
    pools = []

    def make(scenario_name: str, scenario: Scenario | None = None, **options) -> WarmPool:
        standin.add_scenario(scenario_name, scenario or Scenario(reply_text="pooled {echo}"))
        options.setdefault("size", 1)
        options.setdefault("max_processes", 4)
        pool = WarmPool(live_runner_for(scenario_name), **options)
        pools.append(pool)
        return pool

    yield make
    for pool in pools:
        pool.close()


INVOCATIONS = [
    Invocation(model="sonnet", system_prompt="Be terse.\nSecond line: ünïcödé, \"quotes\", \\",
               blocks=("Hello there",)),
    Invocation(model="sonnet", system_prompt="", blocks=("No system prompt",),
               max_output_tokens=1234),
    Invocation(model="sonnet", system_prompt="A long system prompt. " * 5000,
               blocks=("first block", "second block"), max_output_tokens=64000),
]


@pytest.mark.parametrize("invocation", INVOCATIONS, ids=["system", "max-tokens", "large"])
def test_a_pooled_run_sends_what_a_cold_run_sends(standin, pool_for, invocation):
    pool = pool_for("lc-pool-same", models=["sonnet"])
    assert pool.wait_ready(60)
    warm = pool.start(invocation)
    assert warm.warm
    warm_cwd = str(warm.req_dir / "cwd")
    warm_lines = _drain(warm)
    warm_body = standin.requests_for("lc-pool-same")[-1].body

    cold = pool.live.start(invocation)
    cold_cwd = str(cold.req_dir / "cwd")
    cold_lines = _drain(cold)
    cold_body = standin.requests_for("lc-pool-same")[-1].body

    assert _normalised(warm_body, warm_cwd) == _normalised(cold_body, cold_cwd)
    assert warm_body["system"][-1]["text"] == invocation.system_prompt or \
        (not invocation.system_prompt and len(warm_body["system"]) == len(cold_body["system"]))
    if invocation.max_output_tokens:
        assert warm_body["max_tokens"] == invocation.max_output_tokens
    assert _shape(warm_lines) == _shape(cold_lines)  # no control_response leaks into the output


def test_a_pooled_process_serves_exactly_one_request(standin, pool_for):
    pool = pool_for("lc-pool-once", models=["sonnet"])
    pids = []
    for text in ("first", "second"):
        assert pool.wait_ready(60)
        process = pool.start(Invocation(model="sonnet", blocks=(text,)))
        assert process.warm
        pids.append(process.pid)
        _drain(process)
        assert not alive(process.pid)
        messages = standin.requests_for("lc-pool-once")[-1].body["messages"]
        user_turns = [m for m in messages if m["role"] == "user"]
        assert len(user_turns) == 1 and text in json.dumps(user_turns)  # no earlier history
    assert pids[0] != pids[1]
    assert pool.state()["hits"] == 2


def test_the_cap_bounds_warm_and_serving_processes_together(standin, pool_for):
    pool = pool_for("lc-pool-cap", models=["sonnet", "haiku"], size=2, max_processes=2)
    assert pool.wait_ready(60)
    state = pool.state()
    assert state["idle"] == 2 and state["max_processes"] == 2
    most = []
    stop = threading.Event()

    def sample() -> None:
        while not stop.is_set():
            most.append(len(claude_children(os.getpid())))
            time.sleep(0.02)

    sampler = threading.Thread(target=sample, daemon=True)
    sampler.start()
    try:
        # opus is not warm: the room is full of warm processes, so one is retired first.
        first = pool.start(Invocation(model="opus", blocks=("cold one",)))
        assert not first.warm
        second = pool.start(Invocation(model="opus", blocks=("cold two",)))
        assert not second.warm
        _drain(first)
        _drain(second)
        time.sleep(1.0)  # the filler refills the freed room
    finally:
        stop.set()
        sampler.join()
    assert max(most) <= 2, f"{max(most)} CLI processes with a cap of 2"
    assert pool.state()["evicted"] == 2
    assert pool.wait_ready(60) and pool.state()["idle"] == 2


def test_idle_processes_are_recycled(pool_for):
    pool = pool_for("lc-pool-idle", models=["sonnet"], max_idle=1.0)
    assert pool.wait_ready(60)
    first = {w.process.pid: w.process for q in pool._idle.values() for w in q}
    assert wait_until(lambda: pool.state()["recycled"] >= 1, 30)
    for pid, process in first.items():
        assert wait_until(lambda: not alive(pid), 10)
        assert wait_until(lambda: not process.req_dir.exists(), 10)
    assert pool.wait_ready(60)


def test_a_dead_warm_process_is_replaced_and_the_request_still_succeeds(standin, pool_for):
    pool = pool_for("lc-pool-dead", models=["sonnet"])
    assert pool.wait_ready(60)
    (victim,) = [w.process for q in pool._idle.values() for w in q]
    os.kill(victim.pid, signal.SIGKILL)
    assert wait_until(lambda: not victim.alive, 10)
    lines = _drain(pool.start(Invocation(model="sonnet", blocks=("still fine",))))
    assert json.loads(lines[-1])["result"] == "pooled still fine"
    assert pool.state()["died"] >= 1
    assert wait_until(lambda: not victim.req_dir.exists(), 10)


def test_a_warm_process_that_does_not_acknowledge_falls_back_to_a_cold_spawn(pool_for):
    pool = pool_for("lc-pool-slow", models=["sonnet"], begin_timeout=0.0)
    assert pool.wait_ready(60)
    (refused,) = [w.process for q in pool._idle.values() for w in q]
    process = pool.start(Invocation(model="sonnet", blocks=("cold after all",)))
    assert not process.warm and process.pid != refused.pid
    assert json.loads(_drain(process)[-1])["result"] == "pooled cold after all"
    assert not alive(refused.pid)
    state = pool.state()
    assert state["warm_start_failures"] == 1 and "warm start failed" in state["last_error"]


def test_without_a_model_list_the_pool_learns_the_models_clients_use(pool_for):
    pool = pool_for("lc-pool-learn")
    assert pool.state()["idle"] == 0 and pool.state()["learning"]
    first = pool.start(Invocation(model="haiku", blocks=("one",)))
    assert not first.warm  # nothing was known to be wanted yet
    _drain(first)
    assert wait_until(lambda: pool.state()["models"].get("haiku", {}).get("idle") == 1, 60)
    second = pool.start(Invocation(model="haiku", blocks=("two",)))
    assert second.warm
    _drain(second)


def test_the_http_layer_is_served_by_the_pool_unawares(standin, pool_for):
    pool = pool_for("lc-pool-http", Scenario(reply_text="warm hello"), models=["sonnet"])
    assert pool.wait_ready(60)
    with running_proxy(Settings(max_concurrent=4), pool) as proxy:
        client = openai.OpenAI(base_url=proxy.base_url, api_key="unused", max_retries=0)
        stream = client.chat.completions.create(model="claude-sonnet-4", stream=True,
                                                messages=[{"role": "user", "content": "hi"}])
        assert "".join(c.choices[0].delta.content or "" for c in stream if c.choices) == "warm hello"
        reply = client.chat.completions.create(model="sonnet", max_tokens=2077, messages=[
            {"role": "system", "content": "You are pooled."}, {"role": "user", "content": "hi"}])
        assert reply.choices[0].message.content == "warm hello"
        assert pool.state()["hits"] == 2
        body = standin.requests_for("lc-pool-http")[-1].body
        assert body["system"][-1]["text"] == "You are pooled." and body["max_tokens"] == 2077
        import httpx
        ready = httpx.get(proxy.url + "/health/ready", timeout=30).json()
        assert ready["pool"]["warm"]["hits"] == 2


def test_a_small_output_limit_gets_a_cold_process():
    # MAX_THINKING_TOKENS (set for limits under the CLI's 1024-token thinking budget) cannot be
    # given to a running CLI: measured, apply_flag_settings leaves `thinking` as it was.
    from proxy.runners.pool import warm_can_serve
    assert warm_can_serve(Invocation(model="sonnet", max_output_tokens=2000))
    assert not warm_can_serve(Invocation(model="sonnet", max_output_tokens=100))
    assert not warm_can_serve(Invocation(model="sonnet", extra_env=(("X", "1"),)))


def test_a_warm_process_serves_only_requests_with_its_fallback_model():
    from proxy.runners.pool import warm_can_serve
    with_fallback = Invocation(model="opus", fallback_model="sonnet")
    assert warm_can_serve(with_fallback, "sonnet")
    assert not warm_can_serve(with_fallback, None)
    assert not warm_can_serve(Invocation(model="opus"), "sonnet")
    # A model equal to the fallback runs without one, warm or cold alike.
    assert warm_can_serve(Invocation(model="sonnet", fallback_model="sonnet"), None)
