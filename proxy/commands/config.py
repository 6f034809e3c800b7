"""`claude-max-api config`: print the effective settings and where each value comes from."""

from __future__ import annotations

import argparse
import json
import sys

from proxy import settings as settings_mod

describe = "Print the effective settings (flags over environment over TOML file over defaults)."


def add_arguments(parser: argparse.ArgumentParser) -> None:
    settings_mod.add_arguments(parser)
    parser.add_argument("--json", action="store_true", dest="as_json", help="Print JSON.")


def run(args: argparse.Namespace) -> int:
    try:
        effective, sources = settings_mod.resolve_settings(args)
    except (ValueError, OSError) as exc:
        print(f"claude-max-api: {exc}", file=sys.stderr)
        return 2
    values = effective.public_dict()
    if args.as_json:
        print(json.dumps(values, indent=2))
    else:
        width = max(len(f"{name} = {json.dumps(value)}") for name, value in values.items())
        for name, value in values.items():
            line = f"{name} = {json.dumps(value)}"
            print(f"{line:<{width}}  # {sources.get(name, 'default')}")
    return 0
