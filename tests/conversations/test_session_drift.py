"""The drift check for session files: the CLI writes its own session for a short conversation,
and what the proxy writes for the same conversation must be made of the same entries.

A CLI bump that changes the session format (entry types, keys, the attachments its environment
message is built from) fails here, loudly, instead of quietly degrading resumed conversations.
"""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest

from proxy.conversations.session import SessionStore, session_entries, slug
from proxy.conversations.turns import Turn
from proxy.standin.scenario import Scenario
from tests.standin.clirun import SAFE_ARGS, run_claude, user_line
from tests.support.servers import cli_environ

pytestmark = pytest.mark.live

USERS = ["My name is Ada.", "What is my name?"]


def test_the_proxys_sessions_are_made_of_what_the_cli_writes_itself(standin, tmp_path):
    standin.add_scenario("drift-session", Scenario(reply_text="Reply to: {echo}"))
    home, proxy_home = tmp_path / "home", tmp_path / "proxy-home"
    home.mkdir()
    proxy_home.mkdir()
    # The proxy's store links its own config's folder for the cwd; the CLI's own session
    # (below) is written in another HOME, where that folder is a real one.
    proxy_env = cli_environ(standin.base_url, str(proxy_home))
    store = SessionStore(tmp_path / "proxy", proxy_env)
    cwd = str(store.prepare_cwd())
    persisting = [a for a in SAFE_ARGS if a != "--no-session-persistence"]
    blocks = [[{"type": "text", "text": u}] for u in USERS]
    run = run_claude(standin.base_url_for("drift-session"), [user_line(b) for b in blocks],
                     args=persisting, one_turn_at_a_time=True, cwd=cwd,
                     env={"HOME": str(home)}, timeout=120)
    assert len(run.of_type("result")) == 2, run.stderr[-500:]
    (own_file,) = (home / ".claude" / "projects" / slug(os.path.realpath(cwd))).glob("*.jsonl")
    theirs = [json.loads(line) for line in own_file.read_text().splitlines()]

    calibration = store.calibration("sonnet", run.argv[0], proxy_env)
    answer = [e for e in theirs if e["type"] == "assistant"][0]["message"]["content"]
    history = (Turn.of("user", blocks[0]), Turn.of("assistant", answer))
    ours = session_entries(history, calibration, session_id="s", cwd=os.path.realpath(cwd),
                           today=_date_of(theirs))

    # The same kinds of entry, each with keys the CLI itself writes for that kind.
    kinds = {e["type"] for e in theirs}
    for entry in ours:
        assert entry["type"] in kinds
        same_kind = [e for e in theirs if e["type"] == entry["type"]]
        assert set(entry) <= set().union(*(set(e) for e in same_kind)), entry["type"]
        assert entry["version"] == same_kind[0]["version"]
    # The attachments the CLI builds its environment message from: exactly as it writes them.
    theirs_attached = {e["attachment"]["type"]: e["attachment"] for e in theirs
                       if e["type"] == "attachment"}
    for entry in ours:
        if entry["type"] == "attachment":
            kind = entry["attachment"]["type"]
            assert entry["attachment"] == theirs_attached[kind], kind
    # The order the CLI writes them in: user, its attachments, then the answer.
    order = [e["type"] if e["type"] != "attachment" else e["attachment"]["type"] for e in theirs
             if e["type"] in ("user", "assistant")
             or (e["type"] == "attachment" and e["attachment"]["type"] in theirs_attached
                 and any(o.get("attachment", {}).get("type") == e["attachment"]["type"]
                         for o in ours))]
    ours_order = [e["type"] if e["type"] != "attachment" else e["attachment"]["type"]
                  for e in ours]
    assert order[:len(ours_order)] == ours_order
    # The messages themselves, as the CLI keeps them.
    their_user = [e for e in theirs if e["type"] == "user"][0]["message"]
    assert ours[0]["message"] == {"role": "user", "content": their_user["content"]}
    # A chain, like the CLI's.
    assert [e["parentUuid"] for e in ours[1:]] == [e["uuid"] for e in ours[:-1]]


def _date_of(entries: list[dict]) -> str:
    return next(e["attachment"]["date"] for e in entries
                if e["type"] == "attachment" and e["attachment"]["type"] == "date")


def test_calibration_fails_loudly_when_the_cli_writes_no_session(tmp_path):
    fake = tmp_path / "claude"
    fake.write_text("#!/bin/sh\ncat >/dev/null\nexit 1\n")
    fake.chmod(0o755)
    store = SessionStore(tmp_path / "proxy", {"HOME": str(tmp_path)})
    from proxy.conversations.session import SessionUnavailable
    with pytest.raises(SessionUnavailable, match="session format"):
        store.calibration("sonnet", str(fake), {"PATH": os.environ.get("PATH", ""),
                                                "HOME": str(tmp_path)})
    assert store.last_error and list(Path(store.directory).iterdir()) == []
