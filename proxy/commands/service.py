"""`claude-max-api service install|uninstall`: run the server as a systemd user service (Linux)
or a LaunchAgent (macOS), with the settings given to this command."""

from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path

from proxy import settings as settings_mod

describe = "Install (or uninstall) a systemd user service / macOS LaunchAgent that runs the server."


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("action", choices=["install", "uninstall"])
    parser.add_argument("--print", action="store_true", dest="print_only",
                        help="Only print the service file to stdout.")
    parser.add_argument("--dry-run", action="store_true",
                        help="Show where the file would go and what it would say; write nothing.")
    parser.add_argument("--force", action="store_true",
                        help="Replace an existing service file that differs.")
    parser.add_argument("--platform", choices=["linux", "macos"], default=None,
                        help="Which service manager to write for (default: this machine's).")
    settings_mod.add_arguments(parser)


def run(args: argparse.Namespace) -> int:
    from proxy.runners.live import find_claude
    from proxy.server import UnsafeBind, check_bind, check_origins
    from proxy.commands.service_files import (ServiceError, console_script, current_platform,
                                    serve_arguments, service_file, service_file_path)

    environ = os.environ
    home = Path.home()
    try:
        platform = args.platform or current_platform()
        if args.action == "uninstall":
            return _uninstall(service_file_path(platform, home, environ), platform, args.dry_run)
        settings, sources = settings_mod.resolve_settings(args)
        check_bind(settings)
        check_origins(settings)
        config_file = args.config_file or environ.get(settings_mod.ENV_PREFIX + "CONFIG")
        argv = console_script() + serve_arguments(settings, sources, config_file)
        host = {"": "127.0.0.1", "0.0.0.0": "127.0.0.1", "::": "::1"}.get(settings.host,
                                                                         settings.host)
        host = f"[{host.strip('[]')}]" if ":" in host else host
        made = service_file(platform, argv, find_claude(settings.claude_bin, environ), home,
                            environ, f"http://{host}:{settings.port}/health")
    except (ServiceError, UnsafeBind, ValueError, OSError) as exc:
        print(f"claude-max-api: {exc}", file=sys.stderr)
        return 2

    if args.print_only:
        sys.stdout.write(made.content.decode("utf-8"))
        return 0
    if args.dry_run:
        print(f"Would write {made.path}:\n")
        sys.stdout.write(made.content.decode("utf-8"))
        print(f"\nThen:\n{made.start_help}")
        return 0
    if made.path.exists():
        if made.path.read_bytes() == made.content:
            print(f"{made.path} is already installed and unchanged.\n\n{made.start_help}")
            return 0
        if not args.force:
            print(f"claude-max-api: {made.path} exists and differs; add --force to replace it "
                  f"(or --dry-run to see the new one).", file=sys.stderr)
            return 1
    made.path.parent.mkdir(parents=True, exist_ok=True)
    made.path.write_bytes(made.content)
    print(f"Wrote {made.path}\n\n{made.start_help}")
    if platform == "linux" and os.environ.get("CLAUDE_CODE_OAUTH_TOKEN"):
        print("\nCLAUDE_CODE_OAUTH_TOKEN is set in this shell but the service will not see it: "
              "put `CLAUDE_CODE_OAUTH_TOKEN=...` in ~/.config/claude-max-api/environment "
              "(chmod 600).")
    return 0


def _uninstall(path: Path, platform: str, dry_run: bool) -> int:
    from proxy.commands.service_files import LAUNCHD_LABEL
    stop = ("systemctl --user disable --now claude-max-api" if platform == "linux" else
            f"launchctl bootout gui/$(id -u)/{LAUNCHD_LABEL}")
    if not path.exists():
        print(f"No service file at {path}; nothing to remove.")
        return 0
    if dry_run:
        print(f"Would remove {path} (stop it first: {stop}).")
        return 0
    path.unlink()
    print(f"Removed {path}. If it is still running, stop it: {stop}"
          + ("\nthen: systemctl --user daemon-reload" if platform == "linux" else ""))
    return 0
