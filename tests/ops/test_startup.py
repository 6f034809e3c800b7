"""Start-up tells the truth: the real `claude-max-api serve` command, as a process, logs one
warning line per CLI problem (missing, another version than the tested one, no login), with
the fix `doctor` gives, and still starts (replay mode and /health keep working)."""

from __future__ import annotations

import os
import select
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from proxy.claude.version import PINNED_CLI_VERSION
from proxy.doctor import INSTALL_HINT, LOGIN_HINT
from tests.conftest import CLI_VERSION
from tests.support.http import call

needs_cli = pytest.mark.skipif(CLI_VERSION is None, reason="the Claude Code CLI is not installed")


def _environ(tmp_path: Path, path: str, **extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items()
           if not k.startswith(("CLAUDE", "ANTHROPIC_"))}
    home = tmp_path / "home"
    home.mkdir(exist_ok=True)
    env.update(PATH=path, HOME=str(home), PYTHONUNBUFFERED="1", **extra)
    return env


def _start(tmp_path: Path, env: dict[str, str]) -> tuple[list[str], str]:
    """Starts the server, returns (its stderr lines up to `Serving on`, the URL); stops it."""
    process = subprocess.Popen([sys.executable, "-m", "proxy", "serve", "--port", "0",
                                "--work-dir", str(tmp_path / "work")],
                               cwd=tmp_path, env=env, stdout=subprocess.PIPE,
                               stderr=subprocess.PIPE)
    out, err = b"", b""
    try:
        deadline = time.monotonic() + 60
        while b"Serving on " not in out and time.monotonic() < deadline:
            ready, _, _ = select.select([process.stdout, process.stderr], [], [], 0.2)
            for stream in ready:
                chunk = os.read(stream.fileno(), 65536)
                if stream is process.stdout:
                    out += chunk
                else:
                    err += chunk
            if process.poll() is not None and not ready:
                break
        assert b"Serving on " in out, (out + err).decode(errors="replace")
        url = out.decode().split("Serving on ")[1].split()[0].removesuffix("/v1")
        assert call(url, "GET", "/health").status == 200   # it serves despite the warnings
    finally:
        process.send_signal(signal.SIGTERM)
        try:
            rest = process.communicate(timeout=20)[1]
        except subprocess.TimeoutExpired:
            process.kill()
            rest = process.communicate(timeout=10)[1]
    lines = (err + rest).decode(errors="replace").splitlines()
    return lines, url


def _warnings(lines: list[str]) -> list[str]:
    return [line.split(" WARNING claude_max_api ", 1)[1] for line in lines
            if " WARNING claude_max_api " in line]


def test_a_missing_cli_is_one_warning_with_the_fix(tmp_path):
    empty = tmp_path / "bin"
    empty.mkdir()
    lines, _ = _start(tmp_path, _environ(tmp_path, str(empty)))
    assert _warnings(lines) == [
        f"The Claude Code CLI (`claude`) was not found. fix: Install it ({INSTALL_HINT}) or "
        f"point --claude-bin / CLAUDE_BIN at it."]


def test_another_cli_version_is_one_warning(tmp_path):
    fake = tmp_path / "bin" / "claude"
    fake.parent.mkdir()
    fake.write_text('#!/bin/sh\nif [ "$1" = "--version" ]; then echo "2.0.1 (Claude Code)"; '
                    'exit 0; fi\necho \'{"loggedIn": true, "authMethod": "oauth_token"}\'\n')
    fake.chmod(0o755)
    lines, _ = _start(tmp_path, _environ(tmp_path, f"{fake.parent}:/usr/bin:/bin"))
    assert _warnings(lines) == [
        f"CLI version 2.0.1; this release was tested with {PINNED_CLI_VERSION}. It will probably "
        f"work; if answers look wrong, install the tested one. fix: {INSTALL_HINT}"]


@needs_cli
def test_no_login_is_one_warning(tmp_path):
    lines, _ = _start(tmp_path, _environ(tmp_path, os.environ["PATH"]))  # no key, no token
    assert _warnings(lines) == [f"The CLI is not logged in. fix: {LOGIN_HINT}."]


@needs_cli
def test_a_good_setup_starts_without_warnings(tmp_path):
    lines, _ = _start(tmp_path, _environ(tmp_path, os.environ["PATH"],
                                         ANTHROPIC_API_KEY="sk-ant-standin"))
    assert _warnings(lines) == []
    assert any("listening on" in line for line in lines)
