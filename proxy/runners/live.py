"""The live runner: spawns the real `claude` for each request.

Each run gets its own empty working directory and TMPDIR under the server's work root, runs in
its own process group (so SIGTERM/SIGKILL reach everything it started), dies with the server
(PR_SET_PDEATHSIG on Linux), and is ended and cleaned up by `close()` whatever happened.
"""

from __future__ import annotations

import ctypes
import errno
import os
import selectors
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path
from typing import Callable, Mapping

from proxy.claude.invocation import DROPPED_ENV, FIXED_ENV, Invocation
from proxy.conversations.session import SessionStore
from proxy.tools.bridge import BridgedProcess
from proxy.errors import ProxyError
from proxy.runners.base import ExitStatus

TERMINATE_GRACE = 2.0   # seconds between SIGTERM and SIGKILL
SPAWN_WAIT = 10.0       # seconds close() waits for spawns under way (each ends its process)
_STDERR_CAP = 64 * 1024
_READ_SIZE = 256 * 1024
_SELECT_SLICE = 0.1     # longest a reader holds a process's pipes (close() waits for it)
_ROOT_NAME = "claude-max-api"


def find_claude(explicit: str = "", environ: Mapping[str, str] | None = None) -> str | None:
    """`--claude-bin`, then CLAUDE_BIN, then PATH."""
    environ = os.environ if environ is None else environ
    for candidate in (explicit, environ.get("CLAUDE_BIN", "")):
        if candidate:
            found = shutil.which(candidate) if os.sep not in candidate else candidate
            if found and os.access(found, os.X_OK) and os.path.isfile(found):
                return found
            return None  # an explicit choice that does not work is not silently replaced
    return shutil.which("claude", path=environ.get("PATH"))


class WorkRoot:
    """The server's directory of per-request directories: `<base>/claude-max-api-<uid>/<pid>/`.

    At start, directories of server processes that no longer exist (a crash, a SIGKILL) are
    removed, so leftovers never pile up.
    """

    def __init__(self, base: str = "") -> None:
        # Per user: another account's directory in a shared /tmp must neither block nor host ours.
        self.parent = Path(base or tempfile.gettempdir()) / f"{_ROOT_NAME}-{os.getuid()}"
        self.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
        if self.parent.lstat().st_uid != os.getuid() or self.parent.is_symlink():
            raise OSError(f"{self.parent} is not a directory of this user; set --work-dir")
        self.parent.chmod(0o700)  # prompts are written below it
        self.path = self.parent / str(os.getpid())
        self.removed_stale = self._remove_stale()
        self.path.mkdir(exist_ok=True, mode=0o700)

    def _remove_stale(self) -> list[str]:
        removed = []
        for entry in self.parent.iterdir():
            if entry.name.isdigit() and int(entry.name) != os.getpid() \
                    and not _pid_alive(int(entry.name)):
                shutil.rmtree(entry, ignore_errors=True)
                removed.append(entry.name)
        return removed

    def new_request_dir(self) -> Path:
        return Path(tempfile.mkdtemp(prefix="req-", dir=self.path))

    def active(self) -> list[Path]:
        return sorted(self.path.iterdir()) if self.path.exists() else []

    def remove(self) -> None:
        shutil.rmtree(self.path, ignore_errors=True)


def _pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def _die_with_parent() -> Callable[[], None] | None:
    """A preexec function that makes the child get SIGKILL when the spawning thread ends.

    Linux ties PR_SET_PDEATHSIG to the *thread* that forked, so spawn only from threads that
    live as long as the server (waitress workers, the warm pool's filler), never from
    short-lived helper threads.
    """
    if not sys.platform.startswith("linux"):
        return None
    libc = ctypes.CDLL(None, use_errno=True)
    pr_set_pdeathsig = 1
    parent = os.getpid()

    def preexec() -> None:
        libc.prctl(pr_set_pdeathsig, signal.SIGKILL)
        # The server may have died between fork() and prctl(): then no signal will come.
        if os.getppid() != parent:
            os._exit(1)

    return preexec


class LiveRunner:
    def __init__(self, claude_bin: str = "", *, work_root: WorkRoot | None = None,
                 max_retries: int = 1, environ: Mapping[str, str] | None = None,
                 sessions: SessionStore | None = None) -> None:
        self._explicit_bin = claude_bin
        self._environ = dict(os.environ if environ is None else environ)
        self.work_root = work_root or WorkRoot()
        self.sessions = sessions or SessionStore(self.work_root.parent, self._environ)
        self.sessions.sweep()  # session files a crashed server left behind
        self.max_retries = max_retries
        self._preexec = _die_with_parent()
        self._live: set[LiveProcess] = set()
        self._lock = threading.Lock()
        self._spawns_done = threading.Condition(self._lock)
        self._spawning = 0    # spawns in progress: close() waits for them
        self._closed = False  # once closed (shutdown), nothing new is spawned
        self.spawned = 0      # CLI start-ups, for /metrics and the benchmarks

    @property
    def claude_bin(self) -> str | None:
        return find_claude(self._explicit_bin, self._environ)

    def base_env(self, tmpdir: str, cwd: str) -> dict[str, str]:
        env = {k: v for k, v in self._environ.items() if k not in DROPPED_ENV}
        env.update(FIXED_ENV)
        env["CLAUDE_CODE_MAX_RETRIES"] = str(self.max_retries)
        env["TMPDIR"] = tmpdir
        env["PWD"] = cwd
        return env

    def spawn(self, invocation: Invocation | None, argv_for: Callable[[str], list[str]] | None = None,
              ) -> "LiveProcess":
        """Starts the CLI; `invocation=None` pre-spawns one that waits for its stdin (warm pool)."""
        with self._lock:
            if self._closed:
                raise _shutting_down()
            self._spawning += 1
        try:
            return self._spawn(invocation, argv_for)
        finally:
            with self._lock:
                self._spawning -= 1
                self._spawns_done.notify_all()

    def _spawn(self, invocation: Invocation | None,
               argv_for: Callable[[str], list[str]] | None) -> "LiveProcess":
        binary = self.claude_bin
        if binary is None:
            raise ProxyError(503, "The Claude Code CLI (`claude`) was not found. Install it with "
                                  "`npm install -g @anthropic-ai/claude-code`, or point --claude-bin "
                                  "or CLAUDE_BIN at it.",
                             code="claude_cli_not_found")
        # One shared, empty, read-only working directory for every run: the CLI's environment
        # note (which names it) is then the same in every process, so the prompt cache holds
        # across processes, and a resumed session is found (proxy/conversations/session.py).
        cwd = self.sessions.prepare_cwd()
        req_dir = self.work_root.new_request_dir()
        tmp = req_dir / "tmp"
        tmp.mkdir()
        session_file: Path | None = None
        try:
            env = self.base_env(str(tmp), str(cwd))
            if invocation is not None:
                env.update(invocation.env())
            system_file = req_dir / "system-prompt.txt"
            # The CLI reads this file at start-up; a pre-spawned process gets an empty one and
            # its request's system prompt later (the warm pool sends it in `initialize`).
            system_file.write_text(invocation.system_prompt if invocation is not None else "",
                                   encoding="utf-8")
            if invocation is not None and invocation.history:
                calibration = self.sessions.calibration(invocation.model, binary, env)
                session_id, session_file, last = self.sessions.write(
                    invocation.history, calibration, into=req_dir)
                argv = invocation.argv(str(system_file), session_id=session_id, resume_at=last)
            elif invocation is not None:
                argv = invocation.argv(str(system_file))
            else:
                argv = argv_for(str(system_file))
            popen = subprocess.Popen(
                [binary, *argv], stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                stderr=subprocess.PIPE, cwd=cwd, env=env, start_new_session=True,
                preexec_fn=self._preexec, close_fds=True)
        except OSError as exc:
            shutil.rmtree(req_dir, ignore_errors=True)
            if session_file is not None:
                session_file.unlink(missing_ok=True)
            raise ProxyError(503, f"The Claude Code CLI could not be started: {exc.strerror or exc}",
                             code="claude_cli_not_found") from None
        except BaseException:
            shutil.rmtree(req_dir, ignore_errors=True)
            if session_file is not None:
                session_file.unlink(missing_ok=True)
            raise
        process = LiveProcess(popen, req_dir, on_close=self._forget, session_file=session_file)
        with self._lock:
            self.spawned += 1
            self._live.add(process)
            closed_meanwhile = self._closed
        if closed_meanwhile:  # close() ran while this one was starting: end it too
            process.close()
            raise _shutting_down()
        return process

    def start(self, invocation: Invocation) -> "LiveProcess | BridgedProcess":
        process: LiveProcess | BridgedProcess = self.spawn(invocation)
        if invocation.tools:  # its MCP requests are answered as its output is read
            process = BridgedProcess(process, invocation.tools)
        process.send(invocation.stdin_lines(), close_stdin=not invocation.keeps_stdin)
        return process

    def _forget(self, process: "LiveProcess") -> None:
        with self._lock:
            self._live.discard(process)

    def live_processes(self) -> list["LiveProcess"]:
        with self._lock:
            return list(self._live)

    def close(self) -> None:
        with self._lock:
            self._closed = True
            # A spawn under way finishes first (it sees `_closed` and ends its process), so
            # no request directory is created after the work root is removed below.
            self._spawns_done.wait_for(lambda: self._spawning == 0, timeout=SPAWN_WAIT)
        processes = self.live_processes()
        # SIGTERM every group first, so the grace periods run side by side, not one by one.
        for process in processes:
            process.terminate()
        for process in processes:
            process.close()
        self.work_root.remove()


def _shutting_down() -> ProxyError:
    return ProxyError(503, "The server is shutting down.", code="server_shutting_down")


class LiveProcess:
    """A running `claude`: non-blocking line reads over stdout, stderr drained alongside."""

    def __init__(self, popen: subprocess.Popen, req_dir: Path,
                 on_close: Callable[["LiveProcess"], None] | None = None,
                 session_file: Path | None = None) -> None:
        self.popen = popen
        self.pid = popen.pid
        self.req_dir = req_dir
        # The link to the session this run resumes: removed once the CLI has read it (its
        # first output line; measured: the CLI reads the file only at start-up), and in any
        # case at close (the file itself is in req_dir).
        self.session_file = session_file
        self.started_at = time.monotonic()
        self._on_close = on_close
        self._buffer = bytearray()
        self._stderr = bytearray()
        self._eof = False
        self._closed = False
        self._close_lock = threading.Lock()
        self._stdin_lock = threading.Lock()
        # Held while reading the pipes, and by close() to close them: a close() from another
        # thread (shutdown) must never close file descriptors a reader is selecting on, or a
        # descriptor number reused by a newer process would have its output read here.
        self._io_lock = threading.RLock()
        self._selector = selectors.DefaultSelector()
        for stream in (popen.stdout, popen.stderr):
            os.set_blocking(stream.fileno(), False)
            self._selector.register(stream, selectors.EVENT_READ)

    # -- input -------------------------------------------------------------------------
    def send(self, lines: list[str], close_stdin: bool = True) -> None:
        """Writes stdin lines; big payloads go through a thread so a slow reader blocks nobody."""
        payload = "".join(line + "\n" for line in lines).encode("utf-8")
        if len(payload) <= 32 * 1024:
            self._write(payload, close_stdin)
        else:
            threading.Thread(target=self._write, args=(payload, close_stdin),
                             name=f"claude-stdin-{self.pid}", daemon=True).start()

    def _write(self, payload: bytes, close_stdin: bool) -> None:
        stdin = self.popen.stdin
        # One payload at a time, whole: the tool bridge answers control requests while a big
        # message may still be on its way in another thread, and lines must not interleave.
        with self._stdin_lock:
            try:
                stdin.write(payload)
                stdin.flush()
                if close_stdin:
                    stdin.close()
            except (BrokenPipeError, ValueError, OSError):
                pass  # the process ended early; its exit status tells why

    # -- output ------------------------------------------------------------------------
    def read_line(self, timeout: float) -> str | None:
        deadline = time.monotonic() + max(0.0, timeout)
        while True:
            newline = self._buffer.find(b"\n")
            if newline >= 0:
                if self.session_file is not None:
                    self._drop_session_file()
                line = bytes(self._buffer[:newline])
                del self._buffer[:newline + 1]
                return line.decode("utf-8", errors="replace").rstrip("\r")
            if self._eof:
                if self._buffer:
                    line = bytes(self._buffer)
                    self._buffer.clear()
                    return line.decode("utf-8", errors="replace")
                raise EOFError
            remaining = deadline - time.monotonic()
            if remaining <= 0 and timeout > 0:
                return None
            if not self._pump(max(0.0, remaining)) and timeout <= 0:
                return None

    def _pump(self, timeout: float) -> bool:
        """Reads whatever is ready; False if nothing was."""
        with self._io_lock:
            return self._pump_locked(min(timeout, _SELECT_SLICE))

    def _pump_locked(self, timeout: float) -> bool:
        if self._closed:
            self._eof = True
            return True
        ready = self._selector.select(timeout)
        got = False
        for key, _ in ready:
            try:
                data = os.read(key.fd, _READ_SIZE)
            except BlockingIOError:
                continue
            except OSError as exc:
                if exc.errno != errno.EAGAIN:
                    data = b""
                else:
                    continue
            got = True
            if key.fileobj is self.popen.stdout:
                if data:
                    self._buffer += data
                else:
                    self._eof = True
                    self._selector.unregister(key.fileobj)
            else:
                if data:
                    room = _STDERR_CAP - len(self._stderr)
                    if room > 0:
                        self._stderr += data[:room]
                else:
                    self._selector.unregister(key.fileobj)
        return got

    def exit_status(self, timeout: float | None = None) -> ExitStatus:
        try:
            code = self.popen.wait(timeout)
        except subprocess.TimeoutExpired:
            code = None
        if self.popen.stderr and not self._closed:
            while self._selector.get_map() and self._pump(0):
                pass
        return ExitStatus(code, self._stderr.decode("utf-8", errors="replace"))

    @property
    def alive(self) -> bool:
        return self.popen.poll() is None

    def _drop_session_file(self) -> None:
        path, self.session_file = self.session_file, None
        if path is not None:
            try:
                path.unlink()
            except OSError:
                pass

    def detach(self) -> "LiveProcess":
        """The process itself, to be kept past its request (a conversation's next turn)."""
        return self

    # -- ending ------------------------------------------------------------------------
    def close(self) -> None:
        # The lock is held to the end: a second caller (shutdown racing a request) returns
        # only once the process is really gone and its directory removed.
        with self._close_lock:
            if self._closed:
                return
            self._closed = True
            try:
                self._end_group()
            finally:
                with self._io_lock:  # a reader in select() returns within _SELECT_SLICE
                    self._selector.close()
                    for stream in (self.popen.stdin, self.popen.stdout, self.popen.stderr):
                        try:
                            if stream:
                                stream.close()
                        except OSError:
                            pass
                shutil.rmtree(self.req_dir, ignore_errors=True)
                self._drop_session_file()
        if self._on_close:
            self._on_close(self)

    def terminate(self) -> None:
        """Sends SIGTERM to the process group without waiting (close() finishes the job)."""
        if not self._closed and self.popen.poll() is None:
            _signal_group(self.pid, signal.SIGTERM)

    def _end_group(self) -> None:
        """SIGTERM to the whole group, then SIGKILL after a grace period."""
        pgid = self.pid  # start_new_session made the child its group's leader
        if self.popen.poll() is None:
            _signal_group(pgid, signal.SIGTERM)
            try:
                self.popen.wait(TERMINATE_GRACE)
            except subprocess.TimeoutExpired:
                pass
        # Whatever the leader left behind in its group goes too.
        _signal_group(pgid, signal.SIGKILL)
        try:
            self.popen.wait(TERMINATE_GRACE)
        except subprocess.TimeoutExpired:  # pragma: no cover - a process that survives SIGKILL
            pass


def _signal_group(pgid: int, sig: int) -> None:
    try:
        os.killpg(pgid, sig)
    except (ProcessLookupError, PermissionError):
        pass
