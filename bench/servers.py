"""The servers a benchmark drives, each a child process: ours (the real `claude-max-api`
command), the bare waitress ceiling, and the npm `claude-max-api-proxy`."""

from __future__ import annotations

import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Mapping, Sequence

REPO = Path(__file__).resolve().parents[1]
CASSETTES = REPO / "fixtures" / "cassettes"
NPM_PACKAGE = "claude-max-api-proxy@1.0.0"


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def wait_for_port(port: int, timeout: float = 60.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            socket.create_connection(("127.0.0.1", port), timeout=1).close()
            return
        except OSError:
            time.sleep(0.05)
    raise TimeoutError(f"nothing listens on port {port} after {timeout} s")


def rss_mb(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return 0.0


def command() -> list[str]:
    script = Path(sys.executable).parent / "claude-max-api"
    return [str(script)] if script.exists() else [sys.executable, "-m", "proxy"]


class Child:
    """A server process on a loopback port; `stop()` ends it (SIGTERM, then SIGKILL)."""

    def __init__(self, name: str, argv: Sequence[str], port: int, *,
                 env: Mapping[str, str] | None = None, cwd: str | None = None,
                 cpus: set[int] | None = None) -> None:
        self.name = name
        self.port = port
        self.url = f"http://127.0.0.1:{port}"
        self.log = tempfile.TemporaryFile()
        self.popen = subprocess.Popen(list(argv), env=dict(env) if env else None, cwd=cwd,
                                      stdout=self.log, stderr=subprocess.STDOUT,
                                      stdin=subprocess.DEVNULL)
        if cpus:
            try:
                os.sched_setaffinity(self.popen.pid, cpus)  # threads started later inherit it
            except OSError:
                pass
        try:
            wait_for_port(port)
        except TimeoutError:
            self.stop()
            raise RuntimeError(f"{name} did not start: {self.output()[-2000:]}") from None

    @property
    def pid(self) -> int:
        return self.popen.pid

    def output(self) -> str:
        self.log.seek(0)
        return self.log.read().decode(errors="replace")

    def stop(self) -> None:
        if self.popen.poll() is None:
            self.popen.send_signal(signal.SIGTERM)
            try:
                self.popen.wait(20)
            except subprocess.TimeoutExpired:
                self.popen.kill()
                self.popen.wait(10)
        self.log.close()

    def __enter__(self) -> "Child":
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()


def cli_env(upstream_url: str, home: str) -> dict[str, str]:
    """The environment the real CLI needs to talk to the stand-in with a throwaway HOME."""
    env = {k: v for k, v in os.environ.items()
           if not k.startswith(("ANTHROPIC_", "CLAUDE_CODE_", "CLAUDE_MAX_API_"))}
    env.update(HOME=home, ANTHROPIC_BASE_URL=upstream_url, ANTHROPIC_API_KEY="sk-ant-bench",
               CLAUDE_CODE_DISABLE_NONESSENTIAL_TRAFFIC="1", LANG="C.UTF-8")
    return env


def ours(*args: str, env: Mapping[str, str] | None = None, cpus: set[int] | None = None,
         name: str = "claude-max-api") -> Child:
    port = free_port()
    work = tempfile.mkdtemp(prefix="bench-work-")
    child = Child(name, [*command(), "--port", str(port), "--work-dir", work,
                         "--log-format", "json", *args], port, env=env, cpus=cpus)
    child.cleanup = lambda: shutil.rmtree(work, ignore_errors=True)  # type: ignore[attr-defined]
    return child


def ceiling(body_file: str, stream: bool, threads: int, cpus: set[int] | None = None) -> Child:
    port = free_port()
    argv = [sys.executable, "-m", "bench.ceiling", "--port", str(port), "--body-file", body_file,
            "--threads", str(threads)] + (["--stream"] if stream else [])
    return Child("waitress ceiling", argv, port, cwd=str(REPO), cpus=cpus,
                 env={**os.environ, "PYTHONPATH": str(REPO)})


def npm_proxy_dir(cache: str | None = None) -> Path:
    base = Path(cache or os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache")
    return base / "claude-max-api-bench" / "npm"


def install_npm_proxy(cache: str | None = None) -> tuple[Path | None, str]:
    """Installs the npm proxy into a bench-owned directory; (entry script, why not)."""
    if not shutil.which("node") or not shutil.which("npm"):
        return None, "Node.js/npm not found"
    prefix = npm_proxy_dir(cache)
    entry = prefix / "node_modules" / "claude-max-api-proxy" / "dist" / "server" / "standalone.js"
    if not entry.exists():
        prefix.mkdir(parents=True, exist_ok=True)
        done = subprocess.run(["npm", "install", "--prefix", str(prefix), "--no-audit", "--no-fund",
                               "--loglevel", "error", NPM_PACKAGE],
                              capture_output=True, text=True, timeout=300)
        if done.returncode != 0 or not entry.exists():
            return None, f"npm install {NPM_PACKAGE} failed: {done.stderr.strip()[-300:]}"
    return entry, ""


def npm_proxy(entry: Path, env: Mapping[str, str]) -> Child:
    """It spawns `claude` from PATH with its own environment, listens on 127.0.0.1:argv[2]."""
    port = free_port()
    cwd = tempfile.mkdtemp(prefix="bench-npm-cwd-")
    return Child("claude-max-api-proxy 1.0.0 (npm)", ["node", str(entry), str(port)], port,
                 env=env, cwd=cwd)


def children(pid: int) -> list[int]:
    out = []
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            try:
                text = Path(f"/proc/{entry}/stat").read_text()
            except OSError:
                continue
            if int(text[text.rfind(")") + 2:].split()[1]) == pid:
                out.append(int(entry))
    return out


def cpu_seconds(pids: list[int]) -> float:
    total = 0
    for pid in pids:
        try:
            fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        total += int(fields[11]) + int(fields[12])
    return total / os.sysconf("SC_CLK_TCK")


def wait_quiet(pid: int, timeout: float = 30.0, window: float = 0.5) -> float:
    """Waits until the children of `pid` use (almost) no CPU; returns the seconds waited.

    A pre-spawned CLI keeps working for a while after it starts (about 1 s of CPU), so a
    benchmark sample taken meanwhile would be slowed down by it."""
    started = time.monotonic()
    before = cpu_seconds(children(pid))
    while time.monotonic() - started < timeout:
        time.sleep(window)
        now = cpu_seconds(children(pid))
        if now - before < 0.03:
            break
        before = now
    return time.monotonic() - started
