"""A client that leaves ends its CLI process (SIGTERM, then SIGKILL) and removes its directory,
streaming or not, whether the CLI is silent or writing."""

from __future__ import annotations

import os
import time

import pytest

from proxy.settings import Settings
from proxy.standin.scenario import Scenario
from tests.lifecycle.support import (RawClient, alive, chat_body, claude_children, request_dirs,
                                     wait_until)
from tests.support.servers import running_proxy

pytestmark = pytest.mark.live


def _serving(standin, live_runner_for, name: str, scenario: Scenario):
    standin.add_scenario(name, scenario)
    runner = live_runner_for(name)
    return runner, running_proxy(Settings(timeout=120.0, idle_timeout=120.0), runner)


def _leave_and_check(standin, runner, name: str, client: RawClient, within: float) -> None:
    assert wait_until(lambda: len(runner.live_processes()) == 1, 30)
    process = runner.live_processes()[0]
    assert process.req_dir.exists() and alive(process.pid)
    assert wait_until(lambda: len(standin.requests_for(name)) == 1, 30)
    client.close()
    left = time.monotonic()
    assert wait_until(lambda: not alive(process.pid), within), "the CLI outlived its client"
    assert time.monotonic() - left < within
    assert wait_until(lambda: not process.req_dir.exists(), 10)
    assert request_dirs(runner.work_root.path) == []
    # The CLI was cut off mid-call: the stand-in sees its connection go (on its next write).
    assert wait_until(lambda: all(r.client_aborted for r in standin.requests_for(name)), 10)


@pytest.mark.parametrize("stream", [False, True], ids=["non-streaming", "streaming"])
def test_client_leaving_while_the_cli_waits(standin, live_runner_for, stream):
    name = f"lc-dc-wait-{int(stream)}"
    runner, serving = _serving(standin, live_runner_for, name, Scenario(hang=True))
    with serving as proxy:
        client = RawClient(proxy.url, chat_body(stream=stream))
        _leave_and_check(standin, runner, name, client, within=5)
    assert wait_until(lambda: not claude_children(os.getpid()), 10)


def test_streaming_client_leaving_mid_stream(standin, live_runner_for):
    scenario = Scenario(reply_text="tick " * 600, split=5, chunk_delay=0.05)  # ~30 s
    runner, serving = _serving(standin, live_runner_for, "lc-dc-mid", scenario)
    with serving as proxy:
        client = RawClient(proxy.url, chat_body(stream=True))
        assert client.read_until(b'"content":"tick', timeout=30)
        _leave_and_check(standin, runner, "lc-dc-mid", client, within=5)


def test_non_streaming_client_leaving_while_the_cli_writes_steadily(standin, live_runner_for):
    # Lines arrive every 10 ms, so the run is never idle for a whole poll; the client must still
    # be noticed.
    scenario = Scenario(reply_text="tock " * 3000, split=5, chunk_delay=0.01)  # ~30 s
    runner, serving = _serving(standin, live_runner_for, "lc-dc-busy", scenario)
    with serving as proxy:
        client = RawClient(proxy.url, chat_body())
        assert wait_until(lambda: any(r.events_sent > 20 for r in standin.requests_for("lc-dc-busy")),
                          30)
        _leave_and_check(standin, runner, "lc-dc-busy", client, within=8)
