"""`claude-max-api service install|uninstall`, run as the real command with a throwaway HOME:
the systemd unit (its keys, its ExecStart as systemd will split it, `systemd-analyze verify`)
and the LaunchAgent plist (parsed with plistlib)."""

from __future__ import annotations

import configparser
import os
import plistlib
import shlex
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

SCRIPT = Path(sys.executable).parent / "claude-max-api"
pytestmark = pytest.mark.skipif(not SCRIPT.exists(), reason="the console script is not installed")


def service(home: Path, *argv: str, env: dict | None = None) -> subprocess.CompletedProcess:
    environ = {k: v for k, v in os.environ.items()
               if not k.startswith(("CLAUDE_MAX_API_", "XDG_CONFIG_HOME"))}
    environ["HOME"] = str(home)
    environ.update(env or {})
    return subprocess.run([str(SCRIPT), "service", *argv], env=environ, capture_output=True,
                          text=True, timeout=60)


def read_unit(path: Path) -> configparser.ConfigParser:
    unit = configparser.ConfigParser(interpolation=None, strict=False)
    unit.optionxform = str  # systemd keys are case-sensitive
    unit.read_string(path.read_text())
    return unit


def exec_argv(exec_start: str) -> list[str]:
    """ExecStart split the way systemd does for what the generator writes (quotes, %%, $$)."""
    return [a.replace("%%", "%").replace("$$", "$") for a in shlex.split(exec_start)]


@pytest.fixture
def home(tmp_path) -> Path:
    path = tmp_path / "home dir"   # a space, as on many Macs
    path.mkdir()
    return path


@pytest.fixture
def key_file(home) -> Path:
    path = home / "keys"
    path.write_text("k\n")
    path.chmod(0o600)
    return path


def test_install_writes_a_systemd_user_unit(home, key_file, tmp_path):
    work = tmp_path / "odd 100%$HOME"
    done = service(home, "install", "--platform", "linux", "--port", "8123",
                   "--api-key-file", str(key_file), "--work-dir", str(work),
                   "--allowed-origin", "https://app.example", "--log-format", "json",
                   env={"CLAUDE_MAX_API_MAX_CONCURRENT": "2"})
    assert done.returncode == 0, done.stderr
    path = home / ".config" / "systemd" / "user" / "claude-max-api.service"
    assert f"Wrote {path}" in done.stdout
    assert "systemctl --user enable --now claude-max-api" in done.stdout     # how to start
    assert "systemctl --user disable --now claude-max-api" in done.stdout    # how to stop
    assert "journalctl --user -u claude-max-api" in done.stdout
    assert "http://127.0.0.1:8123/health" in done.stdout

    unit = read_unit(path)
    assert unit["Install"]["WantedBy"] == "default.target"
    service_section = unit["Service"]
    assert service_section["Restart"] == "on-failure"
    assert service_section["KillMode"] == "control-group"
    argv = exec_argv(service_section["ExecStart"])
    assert argv[0] == str(SCRIPT) and os.path.isabs(argv[0]) and os.access(argv[0], os.X_OK)
    assert argv[1] == "serve"
    pairs = dict(zip(argv[2::2], argv[3::2]))
    assert pairs == {"--port": "8123", "--max-concurrent": "2", "--api-key-file": str(key_file),
                     "--allowed-origin": "https://app.example", "--work-dir": str(work),
                     "--log-format": "json"}
    path_env = service_section["Environment"].strip('"')
    assert path_env.startswith("PATH=")
    claude = shutil.which("claude")
    if claude:
        assert os.path.dirname(claude) in path_env.split("=", 1)[1].split(":")


@pytest.mark.skipif(shutil.which("systemd-analyze") is None, reason="systemd-analyze not found")
def test_systemd_accepts_the_unit(home, key_file):
    assert service(home, "install", "--platform", "linux", "--api-key-file", str(key_file),
                   "--work-dir", str(home / "a b")).returncode == 0
    path = home / ".config" / "systemd" / "user" / "claude-max-api.service"
    done = subprocess.run(["systemd-analyze", "verify", str(path)], capture_output=True,
                          text=True, timeout=60)
    assert done.returncode == 0 and done.stderr.strip() == "", done.stderr


def test_config_file_is_passed_by_absolute_path(home, tmp_path):
    config = tmp_path / "cma.toml"
    config.write_text("port = 9999\n")
    done = service(home, "install", "--platform", "linux", "--print",
                   env={"CLAUDE_MAX_API_CONFIG": str(config)})
    assert done.returncode == 0, done.stderr
    unit = configparser.ConfigParser(interpolation=None, strict=False)
    unit.read_string(done.stdout)
    argv = exec_argv(unit["Service"]["ExecStart"])
    assert argv[1:] == ["serve", "--config", str(config)]   # the port stays in the file


def test_launch_agent_plist(home, key_file):
    done = service(home, "install", "--platform", "macos", "--host", "0.0.0.0",
                   "--api-key-file", str(key_file))
    assert done.returncode == 0, done.stderr
    path = home / "Library" / "LaunchAgents" / "io.github.claude-max-api.plist"
    plist = plistlib.loads(path.read_bytes())
    assert plist["Label"] == "io.github.claude-max-api"
    assert plist["ProgramArguments"] == [str(SCRIPT), "serve", "--host", "0.0.0.0",
                                         "--api-key-file", str(key_file)]
    assert plist["RunAtLoad"] is True and plist["KeepAlive"] == {"SuccessfulExit": False}
    assert plist["EnvironmentVariables"]["PATH"].startswith("/")
    assert plist["StandardErrorPath"] == str(home / "Library" / "Logs" / "claude-max-api.log")
    assert plist["Umask"] == 0o077
    assert f"launchctl bootstrap gui/$(id -u) {path}" in done.stdout
    assert "launchctl bootout gui/$(id -u)/io.github.claude-max-api" in done.stdout


def test_print_and_dry_run_write_nothing(home):
    printed = service(home, "install", "--platform", "macos", "--print")
    assert printed.returncode == 0
    assert plistlib.loads(printed.stdout.encode())["ProgramArguments"][1] == "serve"
    dry = service(home, "install", "--platform", "linux", "--dry-run", "--port", "7777")
    assert dry.returncode == 0 and "Would write" in dry.stdout and "--port 7777" in dry.stdout
    assert "systemctl --user enable --now" in dry.stdout
    assert list(home.iterdir()) == []


def test_keys_on_the_command_line_are_refused(home):
    for argv, env in ((["--api-key", "secret-1"], {}), ([], {"CLAUDE_MAX_API_KEY": "secret-1"})):
        done = service(home, "install", "--platform", "linux", *argv, env=env)
        assert done.returncode == 2
        assert "--api-key-file" in done.stderr and "secret-1" not in done.stderr + done.stdout
    assert list(home.iterdir()) == []


def test_unsafe_settings_are_refused(home):
    done = service(home, "install", "--platform", "linux", "--host", "0.0.0.0")
    assert done.returncode == 2 and "Refusing to listen on 0.0.0.0" in done.stderr
    assert list(home.iterdir()) == []


def test_reinstall_and_uninstall(home):
    assert service(home, "install", "--platform", "linux").returncode == 0
    again = service(home, "install", "--platform", "linux")
    assert again.returncode == 0 and "unchanged" in again.stdout
    changed = service(home, "install", "--platform", "linux", "--port", "4000")
    assert changed.returncode == 1 and "--force" in changed.stderr
    assert service(home, "install", "--platform", "linux", "--port", "4000",
                   "--force").returncode == 0
    path = home / ".config" / "systemd" / "user" / "claude-max-api.service"
    assert "--port 4000" in path.read_text()
    removed = service(home, "uninstall", "--platform", "linux")
    assert removed.returncode == 0 and not path.exists()
    assert "systemctl --user disable --now claude-max-api" in removed.stdout
    assert "nothing to remove" in service(home, "uninstall", "--platform", "linux").stdout


def test_xdg_config_home_is_honoured(home, tmp_path):
    xdg = tmp_path / "xdg"
    done = service(home, "install", "--platform", "linux", env={"XDG_CONFIG_HOME": str(xdg)})
    assert done.returncode == 0
    assert (xdg / "systemd" / "user" / "claude-max-api.service").is_file()
