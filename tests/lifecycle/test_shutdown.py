"""The real `claude-max-api` command as a child of the test: SIGTERM ends every CLI child and
removes the work directory; SIGKILL takes the children with it (parent-death signal); the
next start removes what a killed server left behind."""

from __future__ import annotations

import os
import select
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path
from urllib.parse import urlsplit

import pytest

from proxy.standin.scenario import Scenario
from tests.lifecycle.support import (RawClient, all_dead, chat_body, claude_children, is_claude,
                                     wait_until)
from tests.support.servers import cli_environ

pytestmark = pytest.mark.live


def _command() -> list[str]:
    script = Path(sys.executable).parent / "claude-max-api"
    return [str(script)] if script.exists() else [sys.executable, "-m", "proxy"]


class ServerProcess:
    def __init__(self, tmp_path: Path, base_url: str, *args: str) -> None:
        self.work = tmp_path / "work"
        home = tmp_path / "home"
        home.mkdir(exist_ok=True)
        self.log = open(tmp_path / f"server-{time.monotonic_ns()}.log", "wb")
        self.popen = subprocess.Popen(
            [*_command(), "--port", "0", "--work-dir", str(self.work), "--cli-max-retries", "0",
             "--timeout", "120", "--idle-timeout", "120", *args],
            stdout=subprocess.PIPE, stderr=self.log, env=cli_environ(base_url, str(home)))
        self.url = self._wait_for_url()

    def _wait_for_url(self, timeout: float = 60.0) -> str:
        deadline = time.monotonic() + timeout
        buffered = b""
        while time.monotonic() < deadline:
            ready, _, _ = select.select([self.popen.stdout], [], [], 0.2)
            if ready:
                chunk = os.read(self.popen.stdout.fileno(), 4096)
                if not chunk:
                    break
                buffered += chunk
                for line in buffered.decode(errors="replace").splitlines():
                    if line.startswith("Serving on "):
                        return line.split()[-1].removesuffix("/v1")
        self.popen.kill()
        raise AssertionError(f"the server did not start: {buffered!r}")

    @property
    def pid(self) -> int:
        return self.popen.pid

    @property
    def pid_dir(self) -> Path:
        return self.work / f"claude-max-api-{os.getuid()}" / str(self.pid)

    def port_refuses(self) -> bool:
        parts = urlsplit(self.url)
        try:
            socket.create_connection((parts.hostname, parts.port), timeout=2).close()
        except OSError:
            return True
        return False

    def end(self) -> None:
        if self.popen.poll() is None:
            self.popen.kill()
        self.popen.wait(30)
        self.log.close()


@pytest.fixture
def hanging_upstream(standin):
    standin.add_scenario("lc-shut-hang", Scenario(hang=True))
    return standin.base_url_for("lc-shut-hang")


def _busy_server(tmp_path, base_url) -> tuple[ServerProcess, list[RawClient], set[int]]:
    """A server with a warm process and two streams in flight; returns its CLI children."""
    server = ServerProcess(tmp_path, base_url, "--pool-size", "1", "--pool-model", "sonnet",
                           "--max-concurrent", "3")
    clients = [RawClient(server.url, chat_body(stream=True)) for _ in range(2)]
    assert wait_until(lambda: len(claude_children(server.pid)) == 3, 60), \
        f"expected 2 serving + 1 warm CLI, found {claude_children(server.pid)}"
    pids = claude_children(server.pid)
    assert all(is_claude(pid) for pid in pids)
    return server, clients, pids


def test_sigterm_stops_accepting_ends_children_and_removes_the_work_dir(tmp_path,
                                                                         hanging_upstream):
    server, clients, pids = _busy_server(tmp_path, hanging_upstream)
    try:
        assert server.pid_dir.exists()
        server.popen.send_signal(signal.SIGTERM)
        assert server.popen.wait(30) == 0
        assert wait_until(lambda: all_dead(pids), 10), "a CLI child outlived the server"
        assert not server.pid_dir.exists()
        assert server.port_refuses()
        for client in clients:  # the streams were ended, not left hanging
            client.read_all(timeout=10)
    finally:
        for client in clients:
            client.close()
        server.end()


def test_sigkill_takes_the_children_and_the_next_start_cleans_up(tmp_path, hanging_upstream):
    server, clients, pids = _busy_server(tmp_path, hanging_upstream)
    try:
        server.popen.send_signal(signal.SIGKILL)
        server.popen.wait(30)
        assert wait_until(lambda: all_dead(pids), 5), \
            f"CLI children survived SIGKILL of the server: {[p for p in pids if not all_dead([p])]}"
        leftover = server.pid_dir
        assert leftover.exists()  # nobody could clean up...
    finally:
        for client in clients:
            client.close()
        server.end()
    second = ServerProcess(tmp_path, hanging_upstream)
    try:
        assert not leftover.exists()  # ...until the next start
        assert second.pid_dir.exists()
        second.popen.send_signal(signal.SIGINT)
        assert second.popen.wait(30) == 0
        assert not second.pid_dir.exists()
    finally:
        second.end()


def test_sigkill_takes_kept_conversations_and_session_files_go_at_the_next_start(tmp_path,
                                                                                  standin):
    standin.add_scenario("lc-resume-hang", Scenario(hang=True, when_prompt_contains="HANG-NOW"))
    server = ServerProcess(tmp_path, standin.base_url)
    client = None
    try:
        done = RawClient(server.url, chat_body("hello"))
        assert b"Hello from the stand-in." in done.read_all()
        assert wait_until(lambda: len(claude_children(server.pid)) == 1, 10)  # kept for turn 2
        kept = claude_children(server.pid)
        # A conversation with a history resumes a session file; its upstream never answers.
        client = RawClient(server.url, {"model": "sonnet", "messages": [
            {"role": "user", "content": "a"}, {"role": "assistant", "content": "b"},
            {"role": "user", "content": "HANG-NOW"}]})
        # (the first resume also runs the CLI once to calibrate its session format)
        assert wait_until(lambda: list(server.pid_dir.glob("req-*/session.jsonl")), 30)
        assert wait_until(lambda: len(claude_children(server.pid)) == 2, 30)
        sessions = list(server.pid_dir.glob("req-*/session.jsonl"))
        assert len(sessions) == 1 and oct(sessions[0].stat().st_mode & 0o777) == "0o600"
        pids = claude_children(server.pid)
        server.popen.send_signal(signal.SIGKILL)
        server.popen.wait(30)
        assert wait_until(lambda: all_dead(pids | kept), 5), "a CLI outlived the server"
        assert sessions[0].exists()  # nobody could remove it...
    finally:
        if client is not None:
            client.close()
        server.end()
    second = ServerProcess(tmp_path, standin.base_url)
    try:
        assert not sessions[0].exists()  # ...until the next start
        links = server.work / f"claude-max-api-{os.getuid()}" / "sessions"
        assert [p for p in links.iterdir() if not p.exists()] == []  # no dangling link either
    finally:
        second.popen.send_signal(signal.SIGINT)
        second.popen.wait(30)
        second.end()
