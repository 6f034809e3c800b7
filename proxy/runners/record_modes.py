"""`serve --record DIR`: serve live through the CLI and keep every run as a cassette, with
vcrpy's record modes deciding what is replayed and what is recorded.

    once          record everything if DIR holds no cassette yet; otherwise replay only
    new_episodes  replay what DIR answers, record (live) what it does not
    none          replay only: a request DIR does not answer is a 503 `fixture_not_found`
    all           record everything; a new recording replaces the cassettes that answered
                  the same request

Recording goes through the same runners as live serving (the conversation runner that continues
kept CLI processes, the warm pool if configured), wrapped by the `RecordingRunner`, so a
multi-turn app records continued turns as such. Each cassette is written (redacted, scanned for
leaks) as soon as its run ends, and is replayable at once: a request asked twice is recorded
once under `new_episodes`. Cassette names say what was asked and end in a digest of the
request's match view, so one request is one file.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import re
import threading
from pathlib import Path
from typing import Any, Callable

from proxy.cassettes.cassette import Cassette, RecordedInvocation
from proxy.cassettes.matcher import Matcher, view
from proxy.cassettes.persister import CassetteDirectory
from proxy.claude.invocation import Invocation
from proxy.runners.base import CLIProcess, Runner
from proxy.runners.recording import RecordingRunner
from proxy.runners.replay import ReplayRunner

log = logging.getLogger("claude_max_api.recording")

RECORD_MODES = ("once", "new_episodes", "none", "all")
_WORD = re.compile(r"[A-Za-z0-9]+")


def cassette_name(invocation: Invocation) -> str:
    """`<first words of the user's last text>-<digest of the whole match view>`."""
    texts = [*invocation.blocks] or [""]
    words = [w.lower() for w in _WORD.findall(" ".join(texts))][:6]
    slug = "-".join(words)[:40].strip("-") or "turn"
    seen = view(RecordedInvocation.of(invocation))
    digest = hashlib.sha256(json.dumps(
        {k: seen[k] for k in ("model", "system_prompt", "history", "blocks", "images",
                              "max_output_tokens")},
        sort_keys=True, ensure_ascii=False).encode("utf-8", "surrogatepass")).hexdigest()
    return f"{slug}-{digest[:12]}"


class CassetteRunner:
    """The runner of `serve --record DIR --record-mode MODE` (and of the pytest plugin)."""

    def __init__(self, path: str | os.PathLike[str], mode: str, *,
                 live: Callable[[], RecordingRunner] | None, matcher: Matcher | None = None,
                 timing: str = "fast", miss_hint: str = "") -> None:
        """`live` builds the recording stack (a RecordingRunner around the live runners) when
        the mode records at all; replay-only modes never start it, so no CLI is needed."""
        if mode not in RECORD_MODES:
            raise ValueError(f"record mode must be one of {', '.join(RECORD_MODES)}, not "
                             f"{mode!r}")
        self.directory = CassetteDirectory(path)
        self.requested_mode = mode
        existing = self.directory.load_all() if Path(path).is_dir() else []
        # vcrpy's `once`: record into an empty cassette, replay a recorded one.
        self.mode = ("all" if not existing else "none") if mode == "once" else mode
        if self.mode == "none" and not existing:  # as `serve --replay` refuses it
            raise ValueError(f"cannot replay: no cassettes below {path} (record mode none "
                             f"only replays)")
        self.replay = ReplayRunner(existing, timing=timing, matcher=matcher or Matcher(),
                                   source=str(path), miss_hint=miss_hint or self._hint())
        self._lock = threading.Lock()
        self.recorded: list[str] = []   # names written while serving, in order
        self.replaced: list[str] = []   # names removed because a new recording replaced them
        self.recorder: RecordingRunner | None = None
        if self.mode != "none":
            if live is None:
                raise ValueError(f"record mode {mode} records, but no live runner was given")
            self.recorder = live()
            self.recorder.on_cassette = self._save
            self.recorder.name_for = cassette_name

    def _hint(self) -> str:
        if self.requested_mode == "once":
            return ("The cassette directory was not empty, so record mode `once` only replays; "
                    "record new requests with record mode new_episodes.")
        if self.requested_mode == "none":
            return "Record it with record mode new_episodes (or all)."
        return ""

    @property
    def replay_only(self) -> bool:
        return self.recorder is None

    # -- the Runner seam ------------------------------------------------------------------
    def start(self, invocation: Invocation) -> CLIProcess:
        if self.mode == "none":
            return self.replay.start(invocation)
        if self.mode == "new_episodes" and self.replay.matching(invocation):
            return self.replay.start(invocation)
        assert self.recorder is not None
        return self.recorder.start(invocation)

    def close(self) -> None:
        try:
            self.replay.close()
        finally:
            if self.recorder is not None:
                self.recorder.close()

    def __getattr__(self, name: str) -> Any:
        # claude_bin, base_env, pool_state, conversation_state: the live stack's, if any; a
        # replay-only runner has none (no CLI probe, as in replay mode).
        if name.startswith("__") or name in ("recorder", "replay"):
            raise AttributeError(name)
        recorder = self.__dict__.get("recorder")
        if recorder is None:
            raise AttributeError(name)
        return getattr(recorder, name)

    # -- cassettes ------------------------------------------------------------------------
    def _save(self, cassette: Cassette) -> None:
        """Writes a new recording and makes it replayable; in `all` mode the cassettes that
        answered the same request before are removed (the new one replaces them)."""
        with self._lock:
            self.directory.save(cassette, overwrite=True)
            replaced = self.replay.add(cassette, replace_equal=self.mode == "all")
            for old in replaced:
                try:
                    self.directory.path_for(old.name).unlink()
                except OSError as exc:
                    log.warning("record: could not remove the replaced cassette %s: %s",
                                old.name, exc)
            self.recorded.append(cassette.name)
            self.replaced += [c.name for c in replaced]
        log.info("record: wrote %s%s", self.directory.path_for(cassette.name),
                 f" (replacing {', '.join(c.name for c in replaced)})" if replaced else "")

    def failures(self) -> list[tuple[str, str]]:
        return list(self.recorder.failures) if self.recorder is not None else []
