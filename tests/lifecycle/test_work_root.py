"""The work root: leftovers of dead servers are removed at start, live ones are kept; a closed
runner starts nothing more. (No CLI needed: `/bin/true` stands in for it where one is named.)"""

from __future__ import annotations

import os
import subprocess

import pytest

from proxy.claude.invocation import Invocation
from proxy.errors import ProxyError
from proxy.runners.live import LiveRunner, WorkRoot


def _dead_pid() -> int:
    child = subprocess.Popen(["true"])
    child.wait()
    return child.pid


def test_directories_of_dead_servers_are_removed_and_live_ones_kept(tmp_path):
    parent = tmp_path / f"claude-max-api-{os.getuid()}"
    dead = parent / str(_dead_pid()) / "req-abc" / "tmp"
    dead.mkdir(parents=True)
    (dead / "leftover").write_text("x")
    living = parent / str(os.getppid())
    living.mkdir()
    root = WorkRoot(str(tmp_path))
    assert not dead.parents[1].exists()
    assert living.exists()
    assert root.path == parent / str(os.getpid()) and root.path.is_dir()
    assert oct(parent.stat().st_mode & 0o777) == "0o700"
    root.remove()
    assert not root.path.exists() and living.exists()


def test_a_work_root_owned_by_a_symlink_is_refused(tmp_path):
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    (tmp_path / f"claude-max-api-{os.getuid()}").symlink_to(elsewhere)
    with pytest.raises(OSError):
        WorkRoot(str(tmp_path))


def test_a_closed_runner_starts_nothing(tmp_path):
    runner = LiveRunner("/bin/true", work_root=WorkRoot(str(tmp_path)))
    runner.close()
    with pytest.raises(ProxyError) as caught:
        runner.start(Invocation(model="sonnet", blocks=("hi",)))
    assert caught.value.status == 503 and caught.value.code == "server_shutting_down"
    assert runner.live_processes() == []


def test_closing_while_a_spawn_is_under_way_leaves_no_request_directory(tmp_path):
    # Found by the stateful stream property: a request that was starting its CLI when the
    # server shut down could create its directory after the work root was removed.
    import threading
    import time

    root = WorkRoot(str(tmp_path))
    runner = LiveRunner("/bin/cat", work_root=root, max_retries=0)
    entered, release = threading.Event(), threading.Event()
    make_dir = root.new_request_dir

    def slow_new_request_dir():
        entered.set()
        release.wait(10)
        return make_dir()

    root.new_request_dir = slow_new_request_dir  # type: ignore[method-assign]
    outcome: list[object] = []

    def spawn() -> None:
        try:
            outcome.append(runner.spawn(Invocation(model="sonnet", blocks=("hi",))))
        except ProxyError as exc:
            outcome.append(exc)

    spawning = threading.Thread(target=spawn)
    spawning.start()
    assert entered.wait(10)
    closing = threading.Thread(target=runner.close)
    closing.start()
    time.sleep(0.2)
    assert closing.is_alive(), "close() returned while a spawn was under way"
    release.set()
    closing.join(15)
    spawning.join(15)
    assert isinstance(outcome[0], ProxyError) and outcome[0].code == "server_shutting_down"
    assert not root.path.exists()
    assert runner.live_processes() == []


def test_closing_a_process_another_thread_is_reading_ends_the_read_cleanly(tmp_path):
    # Found by the stateful stream property at ten times its CI budget: shutdown closed the
    # pipes under a thread blocked in select() on them. That thread then failed with
    # ValueError, or read a newer process's output from the reused descriptor numbers.
    import threading
    import time

    runner = LiveRunner("/bin/sh", work_root=WorkRoot(str(tmp_path)), max_retries=0)
    process = runner.spawn(None, argv_for=lambda _file: ["-c", "sleep 30"])
    selecting = threading.Event()
    real_select = process._selector.select

    def slow_select(timeout=None):  # the reader is inside select() while close() runs
        selecting.set()
        time.sleep(0.3)
        return real_select(0)

    process._selector.select = slow_select
    outcome: list[object] = []

    def read() -> None:
        try:
            while True:
                process.read_line(5.0)
        except BaseException as exc:  # noqa: BLE001 - the test reports what it was
            outcome.append(exc)

    reader = threading.Thread(target=read)
    reader.start()
    assert selecting.wait(5)
    process.close()
    reader.join(10)
    assert not reader.is_alive()
    assert len(outcome) == 1 and isinstance(outcome[0], EOFError), outcome
    runner.close()
