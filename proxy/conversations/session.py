"""Session files: a conversation's earlier turns, written for the CLI to resume.

`claude -p --resume <id>` reads `<config dir>/projects/<slug of its cwd>/<id>.jsonl` at start-up
and sends the turns in it as native messages (measured with CLI 2.1.332; docs/architecture.md
has the details). What the proxy does with that:

* **Where.** Every run uses one working directory, `<work base>/claude-max-api-<uid>/cwd`:
  empty, read-only, ours. The CLI's folder for it in the user's config,
  `projects/<slug>`, is a symlink to `<work base>/claude-max-api-<uid>/sessions` (0700), so the
  session files (0600) live in a directory only the proxy uses and never in the user's Claude
  history, while the CLI keeps the user's own config directory and so their login (a private
  CLAUDE_CONFIG_DIR also works on Linux with CLAUDE_SECURESTORAGE_CONFIG_DIR, but it cannot be
  checked against a real subscription profile here, so it is not used). One shared cwd also
  makes the CLI's environment note identical across processes, so the prompt cache holds.
* **What.** The entries the CLI writes itself, reduced to what it reads back: `user` and
  `assistant` entries chained by `parentUuid`, and after the first user entry the three
  attachments from which the CLI builds its environment message (`environment`, `model`,
  `date`). Their values must equal what the CLI computes now, or it appends a change note; so
  they are taken from a calibration run of the CLI itself (below), not guessed.
* **When.** A file is written just before its run starts, into the run's own request
  directory (so it goes with that directory: when the run ends, and at the next start-up after
  a crash), and the session directory holds only a symlink to it, removed as soon as the CLI
  has read the file (its first output line) or the run ends; dangling links are swept at
  start-up. The runs themselves keep `--no-session-persistence`: the CLI writes nothing back.

Calibration: once per model (and CLI binary), the CLI runs with persistence on against a
loopback port the proxy holds bound but never listens on, so the run fails at once without
sending anything anywhere (0.7 s); the session it wrote holds the exact `environment` and
`model` attachments, which are kept. The date attachment is today's date.
"""

from __future__ import annotations

import datetime
import json
import logging
import os
import shutil
import socket
import subprocess
import threading
import time
import uuid
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable, Mapping, Sequence

from proxy.conversations.turns import Turn, cli_order

log = logging.getLogger("claude_max_api.conversations")

SLUG_LIMIT = 200
CALIBRATION_TIMEOUT = 30.0
# Entry keys the CLI writes on every user/assistant/attachment entry that the proxy copies.
ENTRY_KEYS = ("parentUuid", "isSidechain", "userType", "cwd", "sessionId", "version", "type",
              "uuid", "timestamp")
ATTACHMENTS = ("environment", "model")  # taken from calibration; `date` is today's


class SessionUnavailable(Exception):
    """A history cannot be carried as a session now (calibration failed, no config dir...);
    the request goes as a transcript instead."""


def slug(path: str) -> str:
    """The CLI's folder name for a working directory (every UTF-16 unit that is not an ASCII
    letter or digit becomes `-`; long ones are cut and get a hash of the path)."""
    units = path.encode("utf-16-le")
    out = []
    for i in range(0, len(units), 2):
        unit = int.from_bytes(units[i:i + 2], "little")
        out.append(chr(unit) if unit < 128 and chr(unit).isalnum() else "-")
    text = "".join(out)
    if len(text) <= SLUG_LIMIT:
        return text
    return f"{text[:SLUG_LIMIT]}-{_base36(abs(_java_hash(units)))}"


def _java_hash(units: bytes) -> int:
    h = 0
    for i in range(0, len(units), 2):
        h = (h * 31 + int.from_bytes(units[i:i + 2], "little")) & 0xFFFFFFFF
    return h - (1 << 32) if h >= 1 << 31 else h


def _base36(n: int) -> str:
    digits = "0123456789abcdefghijklmnopqrstuvwxyz"
    out = ""
    while True:
        n, r = divmod(n, 36)
        out = digits[r] + out
        if n == 0:
            return out


def cli_config_dir(environ: Mapping[str, str]) -> Path:
    """The CLI's config directory, as the CLI finds it."""
    explicit = environ.get("CLAUDE_CONFIG_DIR")
    if explicit:
        return Path(explicit).expanduser()
    return Path(environ.get("HOME") or os.path.expanduser("~")) / ".claude"


def _now_iso() -> str:
    return datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="milliseconds") \
        .replace("+00:00", "Z")


@dataclass(frozen=True)
class Calibration:
    """The attachment values the CLI computes for a model on this machine."""
    attachments: tuple[tuple[str, str], ...]   # (type, canonical JSON of the attachment)
    version: str

    def attachment(self, kind: str) -> dict[str, Any]:
        return json.loads(dict(self.attachments)[kind])


def session_entries(history: Sequence[Turn], calibration: Calibration, *, session_id: str,
                    cwd: str, today: str, new_uuid: Callable[[], str] = lambda: str(uuid.uuid4()),
                    now: Callable[[], str] = _now_iso) -> list[dict[str, Any]]:
    """The JSONL entries of a session holding `history` (alternating turns, user first)."""
    entries: list[dict[str, Any]] = []
    parent: str | None = None

    def add(kind: str, **body: Any) -> None:
        nonlocal parent
        entry = {"parentUuid": parent, "isSidechain": False, "userType": "external", "cwd": cwd,
                 "sessionId": session_id, "version": calibration.version, "type": kind,
                 **body, "uuid": new_uuid(), "timestamp": now()}
        entries.append(entry)
        parent = entry["uuid"]

    for i, turn in enumerate(history):
        content = [cli_order(json.loads(b)) for b in turn.thinking] + \
            [cli_order(b) for b in turn.content()]
        message: dict[str, Any] = {"role": turn.role, "content": content}
        if turn.message:  # an API message of the model's own (its thinking stays with it)
            meta = dict(turn.message)
            message = {"id": meta.get("id"), "type": "message", "role": turn.role,
                       "model": meta.get("model"), "content": message["content"],
                       "stop_reason": meta.get("stop_reason"), "stop_sequence": None,
                       "usage": {"input_tokens": 0, "output_tokens": 0}}
        add(turn.role, message=message)
        if i == 0:
            for kind in ATTACHMENTS:
                add("attachment", attachment=calibration.attachment(kind))
            add("attachment", attachment={"type": "date", "date": today})
    return entries


class SessionStore:
    """The proxy's session directory, the working directory every run uses, and the link that
    lets the CLI find the one from the other."""

    def __init__(self, parent: Path, environ: Mapping[str, str], *,
                 max_age: float = 3600.0) -> None:
        self.parent = parent                    # <work base>/claude-max-api-<uid>
        self.cwd = parent / "cwd"
        self.directory = parent / "sessions"
        self.config_dir = cli_config_dir(environ)
        self.max_age = max_age
        self._calibrations: dict[tuple[str, str], Calibration] = {}
        self._calibrating: dict[tuple[str, str], threading.Lock] = {}
        self._lock = threading.Lock()
        self.calibration_runs = 0
        self.last_error: str | None = None

    # -- directories -----------------------------------------------------------------------
    def prepare_cwd(self) -> Path:
        """The shared working directory: empty, and read-only so nothing can be put in it.
        Several threads spawn at once (requests, the warm pool's filler): one prepares it."""
        with self._lock:
            if not self.cwd.is_dir() or self.cwd.is_symlink():
                if self.cwd.is_symlink() or self.cwd.exists():
                    _remove(self.cwd)
                self.cwd.mkdir(mode=0o700, parents=True, exist_ok=True)
            if any(self.cwd.iterdir()):  # never: nothing can write there; never run in a full one
                self.cwd.chmod(0o700)
                _remove(self.cwd)
                self.cwd.mkdir(mode=0o700, exist_ok=True)
            if self.cwd.stat().st_mode & 0o777 != 0o500:
                self.cwd.chmod(0o500)
            return self.cwd

    @property
    def link(self) -> Path:
        return self.config_dir / "projects" / slug(os.path.realpath(self.cwd))

    def prepare(self) -> None:
        """Creates the session directory and the CLI's link to it; SessionUnavailable if the
        link cannot be made (the user's config holds something else under that name)."""
        self.prepare_cwd()
        with self._lock:
            self._prepare_link()

    def _prepare_link(self) -> None:
        self.directory.mkdir(mode=0o700, parents=True, exist_ok=True)
        self.directory.chmod(0o700)
        link = self.link
        target = str(self.directory)
        try:
            if link.is_symlink():
                if os.readlink(link) == target:
                    return
                link.unlink()
            elif link.exists():
                raise SessionUnavailable(f"{link} exists and is not the proxy's link")
            link.parent.mkdir(parents=True, exist_ok=True)
            link.symlink_to(target, target_is_directory=True)
        except FileExistsError:  # another server of this user made it meanwhile
            if not (link.is_symlink() and os.readlink(link) == target):
                raise SessionUnavailable(f"{link} exists and is not the proxy's link") from None
        except OSError as exc:
            raise SessionUnavailable(f"cannot link {link} to {target}: {exc}") from None

    def sweep(self, now: float | None = None) -> list[str]:
        """Removes what runs that ended without cleaning up (a crash) left in the session
        directory: links whose file is gone, and anything older than max_age (a link another
        server is about to resume is young, and kept)."""
        now = time.time() if now is None else now
        removed = []
        if not self.directory.is_dir():
            return removed
        for entry in self.directory.iterdir():
            try:
                dangling = entry.is_symlink() and not entry.exists()
                if dangling or now - entry.lstat().st_mtime > self.max_age:
                    _remove(entry)
                    removed.append(entry.name)
            except OSError:
                continue
        return removed

    # -- files -----------------------------------------------------------------------------
    def write(self, history: Sequence[Turn], calibration: Calibration,
              into: Path) -> tuple[str, Path, str]:
        """A new session holding `history`, written (0600) into the run's directory `into`:
        its id, the link in the session directory through which the CLI finds it, and the
        uuid of its last entry (for `--resume-session-at`)."""
        self.prepare()
        session_id = str(uuid.uuid4())
        entries = session_entries(history, calibration, session_id=session_id,
                                  cwd=os.path.realpath(self.cwd),
                                  today=datetime.date.today().isoformat())
        path = into / "session.jsonl"
        payload = "".join(json.dumps(e, ensure_ascii=False, separators=(",", ":")) + "\n"
                          for e in entries).encode("utf-8", "surrogatepass")
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        try:
            os.write(fd, payload)
        finally:
            os.close(fd)
        link = self.directory / f"{session_id}.jsonl"
        link.symlink_to(path)
        return session_id, link, entries[-1]["uuid"]

    def files(self) -> list[Path]:
        return sorted(self.directory.iterdir()) if self.directory.is_dir() else []

    # -- calibration -------------------------------------------------------------------------
    def calibration(self, model: str, claude_bin: str, env: Mapping[str, str]) -> Calibration:
        """The attachments the CLI writes for `model`, measured once per model and CLI binary
        (an upgraded binary is measured again); SessionUnavailable if the CLI does not write
        them (a changed session format)."""
        try:
            stat = os.stat(claude_bin)
        except OSError as exc:
            raise SessionUnavailable(f"the CLI cannot be read: {exc}") from None
        key = (model, claude_bin, stat.st_mtime_ns, stat.st_size)
        with self._lock:
            known = self._calibrations.get(key)
            if known is not None:
                return known
            lock = self._calibrating.setdefault(key, threading.Lock())
        with lock:  # one calibration per model at a time; the others wait for its result
            with self._lock:
                known = self._calibrations.get(key)
            if known is not None:
                return known
            try:
                found = self._calibrate(model, claude_bin, env)
            except SessionUnavailable as exc:
                self.last_error = str(exc)
                raise
            with self._lock:
                self._calibrations[key] = found
                self.calibration_runs += 1
            return found

    def _calibrate(self, model: str, claude_bin: str, env: Mapping[str, str]) -> Calibration:
        self.prepare()
        session_id = str(uuid.uuid4())
        dead = socket.socket()  # bound, never listening: connections are refused at once
        dead.bind(("127.0.0.1", 0))
        port = dead.getsockname()[1]
        run_env = dict(env)
        run_env.update({"ANTHROPIC_BASE_URL": f"http://127.0.0.1:{port}",
                        "CLAUDE_CODE_MAX_RETRIES": "0",
                        "CLAUDE_CODE_DISABLE_NONSTREAMING_FALLBACK": "1"})
        prompt_file = self.directory / f"calibration-{session_id}.txt"
        path = self.directory / f"{session_id}.jsonl"
        try:
            prompt_file.write_text("", encoding="utf-8")
            argv = [claude_bin, "-p", "--input-format", "stream-json", "--output-format",
                    "stream-json", "--verbose", "--tools", "", "--setting-sources", "",
                    "--strict-mcp-config", "--disable-slash-commands", "--model", model,
                    "--session-id", session_id, "--system-prompt-file", str(prompt_file)]
            line = json.dumps({"type": "user", "message": {"role": "user", "content": "hi"}})
            try:
                subprocess.run(argv, input=(line + "\n").encode(), capture_output=True,
                               cwd=self.cwd, env=run_env, timeout=CALIBRATION_TIMEOUT,
                               start_new_session=True)
            except (OSError, subprocess.TimeoutExpired) as exc:
                raise SessionUnavailable(f"the calibration run failed: {exc}") from None
            found: dict[str, str] = {}
            version = ""
            try:
                lines = path.read_text(encoding="utf-8").splitlines()
            except OSError:
                raise SessionUnavailable("the CLI wrote no session file in its calibration run "
                                         "(has its session format changed?)") from None
            for text in lines:
                try:
                    entry = json.loads(text)
                except ValueError:
                    continue
                if not isinstance(entry, dict):
                    continue
                if entry.get("type") == "user" and isinstance(entry.get("version"), str):
                    version = entry["version"]
                attachment = entry.get("attachment")
                if isinstance(attachment, dict) and attachment.get("type") in ATTACHMENTS:
                    found.setdefault(attachment["type"], json.dumps(attachment, sort_keys=True))
            missing = [k for k in ATTACHMENTS if k not in found] + ([] if version else ["version"])
            if missing:
                raise SessionUnavailable(f"the CLI's session holds no {', '.join(missing)} "
                                         f"(has its session format changed?)")
            return Calibration(tuple(sorted(found.items())), version)
        finally:
            dead.close()
            for leftover in (prompt_file, path):
                try:
                    leftover.unlink()
                except OSError:
                    pass


def _remove(path: Path) -> None:
    if path.is_symlink() or path.is_file():
        path.unlink(missing_ok=True)
    elif path.is_dir():
        shutil.rmtree(path, ignore_errors=True)
