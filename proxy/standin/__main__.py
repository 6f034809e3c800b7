"""`python -m proxy.standin [--port N] [--scenario-file F]`: serve the stand-in until Ctrl-C."""

from __future__ import annotations

import argparse
import signal
import sys
import threading

from .scenario import Scenario, load_catalogue
from .server import DEFAULT, StandInUpstream


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m proxy.standin", description=__doc__)
    parser.add_argument("--port", type=int, default=0, help="port on 127.0.0.1 (default: any free port)")
    parser.add_argument(
        "--scenario-file",
        help='JSON/YAML mapping of scenario name to scenario; "default" serves the root URL',
    )
    parser.add_argument("--prompt-caching", action="store_true",
                        help="model Anthropic's prompt caching for every scenario (usage then depends on the request)")
    args = parser.parse_args(argv)

    scenarios = load_catalogue(args.scenario_file) if args.scenario_file else {}
    default = scenarios.pop(DEFAULT, Scenario())
    stop = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    with StandInUpstream(default, scenarios=scenarios, port=args.port, prompt_caching=args.prompt_caching) as up:
        print(up.base_url, flush=True)
        for name in scenarios:
            print(f"  {name}: {up.base_url_for(name)}", flush=True)
        try:
            stop.wait()
        except KeyboardInterrupt:
            pass
    return 0


if __name__ == "__main__":
    sys.exit(main())
