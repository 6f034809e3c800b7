"""`claude-max-api serve`: the OpenAI-compatible server."""

from __future__ import annotations

import argparse
import sys

from proxy import settings as settings_mod

describe = "Start the OpenAI-compatible server (the default command)."


def add_arguments(parser: argparse.ArgumentParser) -> None:
    settings_mod.add_arguments(parser)


def run(args: argparse.Namespace) -> int:
    from proxy.server import serve
    try:
        settings = settings_mod.load_settings(args)
    except (ValueError, OSError) as exc:
        print(f"claude-max-api: {exc}", file=sys.stderr)
        return 2
    return serve(settings, on_ready=lambda url: print(f"Serving on {url}/v1", flush=True))
