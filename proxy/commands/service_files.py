"""The files `claude-max-api service install` writes: a systemd user unit (Linux) or a
LaunchAgent (macOS), both running `<absolute path of claude-max-api> serve <your settings>`.

The settings that came from flags or the environment at install time are written as flags
(the service will not see your shell's environment); a TOML file in use is passed with an
absolute --config, so editing that file and restarting the service is enough. API keys are
never written into these files or the command line (anyone who can list processes could read
them): they have to come from --api-key-file or the TOML file.
"""

from __future__ import annotations

import dataclasses
import os
import plistlib
import shutil
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Mapping

from proxy.settings import Settings, flag_name

UNIT_NAME = "claude-max-api.service"
LAUNCHD_LABEL = "io.github.claude-max-api"
_PATH_FIELDS = ("api_key_file", "work_dir", "replay")
_SYSTEM_PATHS = {"linux": ("/usr/local/bin", "/usr/bin", "/bin"),
                 "macos": ("/opt/homebrew/bin", "/usr/local/bin", "/usr/bin", "/bin")}


class ServiceError(Exception):
    """A service file cannot be made from these settings; the message says what to do."""


@dataclass(frozen=True)
class ServiceFile:
    platform: str     # "linux" or "macos"
    path: Path
    content: bytes
    start_help: str


def current_platform() -> str:
    if sys.platform.startswith("linux"):
        return "linux"
    if sys.platform == "darwin":
        return "macos"
    raise ServiceError(f"No service manager support for {sys.platform}; run `claude-max-api "
                       f"serve` from your own service manager.")


def console_script() -> list[str]:
    """How to run this installed claude-max-api, by absolute path."""
    argv0 = sys.argv[0] if sys.argv else ""
    if os.path.basename(argv0) == "claude-max-api" and os.path.isfile(argv0):
        return [os.path.abspath(argv0)]
    # Not resolved: a virtualenv's interpreter is a symlink that must stay one.
    beside = Path(os.path.abspath(sys.executable)).parent / "claude-max-api"
    if beside.is_file():
        return [str(beside)]
    found = shutil.which("claude-max-api")
    if found:
        return [os.path.abspath(found)]
    return [os.path.abspath(sys.executable), "-m", "proxy"]


def serve_arguments(settings: Settings, sources: Mapping[str, str],
                    config_file: str | None) -> list[str]:
    """`serve` plus the flags that reproduce the settings that did not come from the TOML
    file or the defaults."""
    if sources.get("api_keys", "default").split()[0] in ("flag", "env"):
        raise ServiceError(
            "API keys given with --api-key or CLAUDE_MAX_API_KEY would end up in the service "
            "file and on the command line, where other programs can read them. Put them in a "
            "file instead (one per line) and pass that:\n"
            "  install -m 600 /dev/null ~/.config/claude-max-api/api-keys\n"
            "  echo 'YOUR-KEY' >> ~/.config/claude-max-api/api-keys\n"
            "  claude-max-api service install --api-key-file ~/.config/claude-max-api/api-keys ...")
    args = ["serve"]
    if config_file:
        args += ["--config", os.path.abspath(os.path.expanduser(config_file))]
    for f in dataclasses.fields(Settings):
        if sources.get(f.name, "default").split()[0] not in ("flag", "env"):
            continue
        value = getattr(settings, f.name)
        if f.name in _PATH_FIELDS and value:
            value = os.path.abspath(os.path.expanduser(value))
        if f.name == "claude_bin" and value and os.sep in value:
            value = os.path.abspath(os.path.expanduser(value))
        flag = flag_name(f)
        if isinstance(value, bool):
            args.append(flag if value else "--no-" + flag[2:])
        elif isinstance(value, list):
            for item in value:
                args += [flag, str(item)]
        else:
            args += [flag, str(value)]
    return args


def service_path_env(platform: str, claude: str | None) -> str:
    """PATH for the service: where the CLI and node are now, then the usual places."""
    dirs = []
    for tool in (claude, shutil.which("node")):
        if tool:
            dirs.append(os.path.dirname(os.path.abspath(tool)))
    dirs += _SYSTEM_PATHS[platform]
    return ":".join(dict.fromkeys(dirs))


# --- systemd ---------------------------------------------------------------------------------

def _systemd_quote(arg: str) -> str:
    # systemd expands %specifiers and $VARIABLES in ExecStart; both must stay literal here.
    arg = arg.replace("%", "%%").replace("$", "$$")
    if arg and not any(c.isspace() or c in "\"'\\;" for c in arg):
        return arg
    return '"' + arg.replace("\\", "\\\\").replace('"', '\\"') + '"'


def systemd_unit(argv: list[str], path_env: str) -> str:
    exec_start = " ".join(_systemd_quote(a) for a in argv)
    return f"""\
# Written by `claude-max-api service install`; run it again to change the settings.
[Unit]
Description=claude-max-api: OpenAI-compatible API served by the Claude Code CLI
Documentation=https://github.com/claude-max-api/claude-max-api

[Service]
Type=simple
ExecStart={exec_start}
Environment={_systemd_quote("PATH=" + path_env)}
# Optional: variables such as CLAUDE_CODE_OAUTH_TOKEN=... (keep this file private: chmod 600).
EnvironmentFile=-%h/.config/claude-max-api/environment
Restart=on-failure
RestartSec=5
# Stopping ends the server and every CLI process it started (they share the unit's cgroup).
KillMode=control-group
TimeoutStopSec=20
NoNewPrivileges=yes
UMask=0077

[Install]
WantedBy=default.target
"""


def systemd_unit_path(home: Path, environ: Mapping[str, str]) -> Path:
    config_home = environ.get("XDG_CONFIG_HOME") or str(home / ".config")
    return Path(config_home) / "systemd" / "user" / UNIT_NAME


def systemd_help(path: Path, health_url: str) -> str:
    name = UNIT_NAME.removesuffix(".service")
    return f"""\
Start it now and at every login:
  systemctl --user daemon-reload
  systemctl --user enable --now {name}
Check it:    systemctl --user status {name}   (and curl {health_url})
Logs:        journalctl --user -u {name} -f
Restart:     systemctl --user restart {name}
Stop:        systemctl --user disable --now {name}
Keep it running while you are logged out: loginctl enable-linger "$USER"
Remove:      claude-max-api service uninstall"""


# --- launchd ---------------------------------------------------------------------------------

def launchd_plist(argv: list[str], path_env: str, log_path: Path) -> bytes:
    return plistlib.dumps({
        "Label": LAUNCHD_LABEL,
        "ProgramArguments": argv,
        "EnvironmentVariables": {"PATH": path_env},
        "RunAtLoad": True,
        "KeepAlive": {"SuccessfulExit": False},  # restart after a crash, not after a clean stop
        "ThrottleInterval": 10,
        "ExitTimeOut": 20,
        "Umask": 0o077,
        "StandardOutPath": str(log_path),
        "StandardErrorPath": str(log_path),
    })


def launchd_paths(home: Path) -> tuple[Path, Path]:
    return (home / "Library" / "LaunchAgents" / f"{LAUNCHD_LABEL}.plist",
            home / "Library" / "Logs" / "claude-max-api.log")


def launchd_help(path: Path, log_path: Path, health_url: str) -> str:
    target = f"gui/$(id -u)/{LAUNCHD_LABEL}"
    return f"""\
Start it now and at every login:
  launchctl bootstrap gui/$(id -u) {path}
Check it:    launchctl print {target}   (and curl {health_url})
Logs:        tail -f {log_path}
Restart:     launchctl kickstart -k {target}
Stop:        launchctl bootout {target}
Remove:      claude-max-api service uninstall"""


# --- both ------------------------------------------------------------------------------------

def service_file(platform: str, argv: list[str], claude: str | None, home: Path,
                 environ: Mapping[str, str], health_url: str) -> ServiceFile:
    path_env = service_path_env(platform, claude)
    if platform == "linux":
        path = systemd_unit_path(home, environ)
        return ServiceFile(platform, path, systemd_unit(argv, path_env).encode("utf-8"),
                           systemd_help(path, health_url))
    if platform == "macos":
        path, log_path = launchd_paths(home)
        return ServiceFile(platform, path, launchd_plist(argv, path_env, log_path),
                           launchd_help(path, log_path, health_url))
    raise ServiceError(f"unknown platform {platform!r}")


def service_file_path(platform: str, home: Path, environ: Mapping[str, str]) -> Path:
    return systemd_unit_path(home, environ) if platform == "linux" else launchd_paths(home)[0]
