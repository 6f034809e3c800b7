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
        effective = settings_mod.load_settings(args)
    except (ValueError, OSError) as exc:
        print(f"claude-max-api: {exc}", file=sys.stderr)
        return 2
    values = effective.public_dict()
    if args.as_json:
        print(json.dumps(values, indent=2))
    else:
        for name, value in values.items():
            print(f"{name} = {json.dumps(value)}")
    return 0
