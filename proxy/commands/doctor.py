"""`claude-max-api doctor`: check the CLI, its login, the bind and the port; `--live` sends one
tiny request through the CLI. Exits 1 if a check fails."""

from __future__ import annotations

import argparse
import json
import sys

from proxy import settings as settings_mod

describe = ("Check the setup (CLI, version, login, port; --live: one tiny request; the plan's "
            "state when known) and say how to fix it.")

_MARKS = {"ok": "ok  ", "warn": "WARN", "fail": "FAIL", "skip": "skip"}


def add_arguments(parser: argparse.ArgumentParser) -> None:
    settings_mod.add_arguments(parser)
    parser.add_argument("--live", action="store_true",
                        help="Also send one tiny request through the CLI (uses your plan).")
    parser.add_argument("--model", default="haiku", dest="live_model",
                        help="Model for --live (default: haiku, the cheapest).")
    parser.add_argument("--json", action="store_true", dest="as_json", help="Print JSON.")


def run(args: argparse.Namespace) -> int:
    from proxy.chat.models import ModelCatalogue
    from proxy.claude.invocation import Invocation
    from proxy.claude.probe import CLIProbe
    from proxy.claude.run import CLIRun, Limits
    from proxy.doctor import LIVE_PROMPT, Check, live_check, run_checks
    from proxy.plan import PlanTracker
    from proxy.runners.live import LiveRunner, WorkRoot

    try:
        settings = settings_mod.load_settings(args)
    except (ValueError, OSError) as exc:
        print(f"claude-max-api: {exc}", file=sys.stderr)
        return 2
    runner = LiveRunner(settings.claude_bin, work_root=WorkRoot(settings.work_dir),
                        max_retries=settings.cli_max_retries)
    plan = PlanTracker(logger=None)
    try:
        probe = CLIProbe(lambda: runner.claude_bin, lambda tmp: runner.base_env(tmp, tmp))

        def start() -> CLIRun:
            model = ModelCatalogue(settings.extra_models).get(args.live_model)  # 404 if unknown
            invocation = Invocation(model=model.cli_model, blocks=(LIVE_PROMPT,))
            return CLIRun(runner.start(invocation), limits=Limits(total=120.0, idle=90.0),
                          plan=plan)

        def live() -> Check:
            return live_check(start, args.live_model)

        checks = run_checks(settings, probe, live if args.live else None,
                            live_plan=lambda: plan.snapshot())
    finally:
        runner.close()
    failed = [c for c in checks if c.status == "fail"]
    if args.as_json:
        print(json.dumps({"ok": not failed, "checks": [c.to_dict() for c in checks]}, indent=2))
    else:
        for check in checks:
            print(f"{_MARKS[check.status]}  {check.summary}")
            if check.fix and check.status in ("fail", "warn"):
                print(f"      fix: {check.fix}")
        print(f"\n{len(failed)} problem(s) found." if failed else "\nAll checks passed.")
    return 1 if failed else 0
