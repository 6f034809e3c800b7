"""The `claude-max-api` command. Without a subcommand it serves (`claude-max-api --port 8080`).

Each subcommand is a module in proxy/commands/ with `describe`, `add_arguments(parser)` and
`run(args) -> int`, imported only when used so `serve` starts without loading test tools.
"""

from __future__ import annotations

import argparse
import importlib
import logging
import sys
from typing import Sequence

from proxy import __version__

COMMANDS = {
    "serve": "proxy.commands.serve",
    "config": "proxy.commands.config",
    "doctor": "proxy.commands.doctor",
    "service": "proxy.commands.service",
    "record": "proxy.commands.record",
    "cassettes": "proxy.commands.cassettes",
    "conformance": "proxy.commands.conformance",
}


def _parser(command: str) -> argparse.ArgumentParser:
    module = importlib.import_module(COMMANDS[command])
    parser = argparse.ArgumentParser(prog=f"claude-max-api {command}", description=module.describe)
    module.add_arguments(parser)
    parser.set_defaults(_run=module.run)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    if argv and argv[0] in ("-V", "--version"):
        print(f"claude-max-api {__version__}")
        return 0
    if argv and argv[0] in ("-h", "--help"):
        print("usage: claude-max-api [COMMAND] [options]\n\ncommands (default: serve):")
        for name, path in COMMANDS.items():
            print(f"  {name:<12} {importlib.import_module(path).describe}")
        print("\n`claude-max-api COMMAND --help` shows a command's options.")
        return 0
    command = argv.pop(0) if argv and argv[0] in COMMANDS else "serve"
    args = _parser(command).parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s %(message)s",
                        stream=sys.stderr)
    return int(args._run(args) or 0)


if __name__ == "__main__":
    raise SystemExit(main())
