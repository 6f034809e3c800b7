"""`claude-max-api conformance`: run the conformance suite (conformance/) against any
OpenAI-compatible server. It needs the optional extra: pip install 'claude-max-api[conformance]'.
The suite is imported only when this command runs.
"""

from __future__ import annotations

import argparse
import importlib.util
import sys

describe = "Check any OpenAI-compatible server against the OpenAI API, check by check."

_EXTRA = ("httpx", "vcr", "schemathesis", "hypothesis")


def add_arguments(parser: argparse.ArgumentParser) -> None:
    from conformance.cli import add_arguments as suite_arguments  # argparse only: cheap

    suite_arguments(parser)


def run(args: argparse.Namespace) -> int:
    missing = [name for name in _EXTRA if importlib.util.find_spec(name) is None]
    if missing:
        print(f"claude-max-api conformance: {', '.join(missing)} missing; install the extra: "
              f"pip install 'claude-max-api[conformance]'", file=sys.stderr)
        return 2
    from conformance.cli import run as run_suite

    return run_suite(args)
