"""Stateful property: however streams are started, read, cancelled (the client leaves) and
finished, interleaved, no CLI child process and no temporary directory outlives its request.

The real waitress server runs the real live runner (process groups, per-request directories,
SIGTERM then SIGKILL), whose `claude` is a tiny shell script: it waits for its stdin line like
the CLI, starts a grandchild in its process group (as the CLI's node does), writes a file into
its TMPDIR, then prints a recorded cassette's stdout slowly. Every process it starts carries a
marker in its environment, so a leaked one is found in /proc even after it was re-parented.
"""

from __future__ import annotations

import os
import stat
import uuid
from pathlib import Path

import hypothesis.strategies as st
import pytest
from hypothesis.stateful import (Bundle, RuleBasedStateMachine, consumes, invariant, rule,
                                 run_state_machine_as_test)

from proxy.runners.live import LiveRunner, WorkRoot
from proxy.settings import Settings
from tests.lifecycle.support import RawClient, split_response, wait_until
from tests.properties.budget import budget
from tests.support.runners import load_cassette
from tests.support.servers import running_proxy
from tests.support.stream_rules import check_stream

SLOW_CLI = """#!/bin/sh
# A stand-in for `claude -p`: reads its prompt line, then plays recorded stdout slowly.
IFS= read -r prompt
sleep 600 &
echo scratch > "$TMPDIR/scratch"
while IFS= read -r line; do
  printf '%s\\n' "$line"
  sleep "$SLOW_CLI_DELAY"
done < "$SLOW_CLI_LINES"
wait
"""
# The CLI's own grandchild (`sleep 600`) keeps the script waiting at `wait`, so a run only ends
# when the proxy ends its process group; the script exiting on its own would not test that.
BODY = {"model": "claude-sonnet-4", "messages": [{"role": "user", "content": "What is 2 + 2?"}],
        "stream": True, "stream_options": {"include_usage": True}}
SETTLE = 15.0  # seconds a cancelled or finished request may take to be cleaned up


def marked_processes(marker: str) -> list[int]:
    """Every live process whose environment carries `marker` (zombies excluded)."""
    found = []
    needle = f"SLOW_CLI_MARKER={marker}".encode()
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            if needle not in Path(f"/proc/{entry}/environ").read_bytes().split(b"\0"):
                continue
            state = Path(f"/proc/{entry}/stat").read_text().rsplit(")", 1)[1].split()[0]
        except OSError:
            continue
        if state != "Z":
            found.append(int(entry))
    return found


@pytest.fixture
def slow_cli(tmp_path):
    """`make(work_dir, marker)`: a live runner whose `claude` is the slow script, and whose
    processes carry `marker`."""
    script = tmp_path / "claude"
    script.write_text(SLOW_CLI)
    script.chmod(script.stat().st_mode | stat.S_IXUSR)
    lines = tmp_path / "stdout.jsonl"
    lines.write_text("".join(line + "\n" for line in load_cassette("plain_question").stdout))

    def make(work: Path, marker: str) -> LiveRunner:
        environ = {"PATH": os.environ.get("PATH", "/usr/bin:/bin"), "HOME": str(tmp_path),
                   "SLOW_CLI_LINES": str(lines), "SLOW_CLI_DELAY": "0.05",
                   "SLOW_CLI_MARKER": marker}
        return LiveRunner(str(script), work_root=WorkRoot(str(work)), max_retries=0,
                          environ=environ)

    return make


class Streams(RuleBasedStateMachine):
    """Clients against one server; the model is the set of requests still open."""

    make_runner = None  # set by the test
    base = Path()

    def __init__(self) -> None:
        super().__init__()
        # Each example its own marker: what one example leaks cannot fail the next.
        self.marker = uuid.uuid4().hex
        self.runner = type(self).make_runner(self.base / self.marker[:12], self.marker)
        self.serving = running_proxy(Settings(max_concurrent=3, queue_size=8,
                                              queue_timeout=60.0), self.runner)
        self.proxy = self.serving.__enter__()
        self.open: set[int] = set()

    clients = Bundle("clients")

    @rule(target=clients)
    def start(self) -> RawClient:
        client = RawClient(self.proxy.url, BODY, timeout=60)
        self.open.add(id(client))
        return client

    @rule(client=clients)
    def read_first_chunk(self, client: RawClient) -> None:
        if id(client) in self.open:
            client.read_until(b'"role":"assistant"', timeout=30)

    @rule(client=consumes(clients), wait=st.sampled_from([0.0, 0.05, 0.3]))
    def cancel(self, client: RawClient, wait: float) -> None:
        if wait:
            client.read_until(b"\0never\0", timeout=wait)  # let it run a little first
        client.close()
        self.open.discard(id(client))

    @rule(client=consumes(clients))
    def finish(self, client: RawClient) -> None:
        raw = client.read_all(timeout=60)
        client.close()
        self.open.discard(id(client))
        status, headers, body = split_response(raw)
        assert status == 200, raw[:300]
        assert headers["content-type"].startswith("text/event-stream")
        report = check_stream(body, include_usage=True).assert_ok()
        assert report.text == "2 + 2 = 4."

    @invariant()
    def nothing_outlives_its_request(self) -> None:
        # Requests still open may hold a process and a directory each; the rest must go.
        def settled() -> bool:
            return (len(self.runner.live_processes()) <= len(self.open)
                    and len(self.runner.work_root.active()) <= len(self.open)
                    and len(marked_processes(self.marker)) <= 3 * len(self.open))
        assert wait_until(settled, SETTLE), (
            f"{len(self.open)} open requests, but {len(self.runner.live_processes())} CLI "
            f"processes, {len(self.runner.work_root.active())} request directories and "
            f"{len(marked_processes(self.marker))} marked processes")

    def teardown(self) -> None:
        try:
            self.serving.__exit__(None, None, None)
        finally:
            assert wait_until(lambda: not marked_processes(self.marker), SETTLE), \
                f"processes outlived the server: {marked_processes(self.marker)}"
            assert not self.runner.work_root.path.exists() or \
                not list(self.runner.work_root.path.iterdir())


def test_no_process_or_directory_outlives_its_request(slow_cli, tmp_path):
    Streams.make_runner, Streams.base = staticmethod(slow_cli), tmp_path
    run_state_machine_as_test(Streams, settings=budget(8, stateful_step_count=12))


def test_the_slow_cli_is_seen_and_plays_the_cassette(slow_cli, tmp_path):
    """The detector sees the script and its grandchild while a stream runs, and a finished
    stream is the recorded answer."""
    marker = uuid.uuid4().hex
    runner = slow_cli(tmp_path / "work", marker)
    with running_proxy(Settings(), runner) as proxy:
        client = RawClient(proxy.url, BODY, timeout=60)
        assert client.read_until(b'"role":"assistant"', timeout=30)
        assert len(marked_processes(marker)) >= 2  # the script, its `sleep 600` (and a pause)
        [request_dir] = runner.work_root.active()
        assert (request_dir / "tmp" / "scratch").exists()
        status, _, body = split_response(client.read_all(timeout=60))
        client.close()
    assert status == 200
    report = check_stream(body, include_usage=True).assert_ok()
    assert report.text == "2 + 2 = 4."
    assert report.usage["prompt_tokens"] == 21
    assert wait_until(lambda: not marked_processes(marker), SETTLE)
    assert not request_dir.exists()
