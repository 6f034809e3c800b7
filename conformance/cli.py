"""The `conformance` command (`claude-max-api conformance`, or `python -m conformance`).

Exit status: 0 when no must-level check failed (with `--baseline`: none failed that passed in
the baseline), 1 when one did, 2 for a usage error (bad arguments, missing recording).
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Sequence

describe = "Check any OpenAI-compatible server against the OpenAI API, check by check."

EXIT_OK, EXIT_MUST_FAILED, EXIT_USAGE = 0, 1, 2


def add_arguments(parser: argparse.ArgumentParser) -> None:
    target = parser.add_argument_group("servers under test")
    target.add_argument("--base-url", action="append", default=[], metavar="URL",
                        help="OpenAI base URL of a server, e.g. http://127.0.0.1:3456/v1 "
                             "(repeatable: several build one matrix)")
    target.add_argument("--api-key", metavar="KEY",
                        help="API key for the --base-url servers (env:NAME reads a variable)")
    target.add_argument("--model", metavar="M",
                        help="model for the --base-url servers (default: the first one GET "
                             "/models lists)")
    target.add_argument("--server", action="append", default=[], metavar="SPEC",
                        help="name=URL,model=M,key=K,version=V,skip=GLOB:REASON;GLOB:REASON "
                             "(repeatable)")
    what = parser.add_argument_group("what to run")
    what.add_argument("--only", metavar="PATTERN",
                      help="comma-separated globs over check ids, or area names "
                           "(e.g. 'stream.*,errors' )")
    what.add_argument("--list", action="store_true", help="print the catalogue and exit")
    what.add_argument("--fuzz-examples", type=int, default=20, metavar="N",
                      help="generated requests per operation and mode in the fuzz phase "
                           "(0 turns it off; default 20)")
    what.add_argument("--oversized-mib", type=float, default=16.0, metavar="MIB",
                      help="size of the oversized-body probe (default 16)")
    what.add_argument("--timeout", type=float, default=120.0, metavar="S",
                      help="per-request read timeout in seconds (default 120)")
    evidence = parser.add_argument_group("evidence and reports")
    evidence.add_argument("--record", type=Path, metavar="DIR",
                          help="write every exchange to DIR/<server>.yaml (vcrpy) and "
                               "DIR/<server>.json")
    evidence.add_argument("--from-cassettes", type=Path, metavar="DIR",
                          help="re-run the checks offline on the recordings in DIR (every "
                               "server recorded there, or those named with --server NAME)")
    evidence.add_argument("--report", action="append", default=[], type=Path, metavar="FILE",
                          help="write a report: .json (everything) or .md (matrix and "
                               "findings); repeatable")
    evidence.add_argument("--doc", type=Path, metavar="FILE",
                          help="replace the conformance-matrix section of FILE (docs) with "
                               "the matrix")
    evidence.add_argument("--baseline", type=Path, metavar="REPORT.json",
                          help="fail only on must-level checks that did not fail in this "
                               "earlier JSON report (known deviations stay green)")
    evidence.add_argument("--quiet", action="store_true", help="no progress lines")


def _targets(args: argparse.Namespace) -> list:
    from conformance.runner import target_from_recording
    from conformance.recording import recorded_servers
    from conformance.target import Target, default_name, parse_server_spec, resolve_key

    if args.from_cassettes:
        names = [s.split("=")[0] for s in args.server] or list(recorded_servers(args.from_cassettes))
        if not names:
            raise ValueError(f"no recordings (<server>.yaml with <server>.json) in "
                             f"{args.from_cassettes}")
        return [target_from_recording(args.from_cassettes, name) for name in names]
    targets = [Target(default_name(url), url, args.model, resolve_key(args.api_key))
               for url in args.base_url]
    targets += [parse_server_spec(spec) for spec in args.server]
    if not targets:
        raise ValueError("name a server: --base-url URL or --server name=URL,...")
    names = [t.name for t in targets]
    duplicate = {n for n in names if names.count(n) > 1}
    if duplicate:
        raise ValueError(f"two servers are named {sorted(duplicate)}: use --server name=URL")
    return targets


def _progress(stream=sys.stderr):
    def show(number: int, total: int, target, check, result) -> None:
        detail = "" if result.outcome.value == "pass" else f"  {result.message[:90]}"
        print(f"[{number:>3}/{total}] {target.name}  {check.id:<36} {result.outcome.value:<5}"
              f" {result.duration:6.2f}s{detail}", file=stream, flush=True)
    return show


def run(args: argparse.Namespace) -> int:
    from conformance import report
    from conformance.checks import catalogue, select
    from conformance.checks.base import RunOptions
    from conformance.runner import Recording, run_target

    checks = select(catalogue(), args.only)
    if args.list:
        print(report.catalogue_table(checks))
        return EXIT_OK
    if not checks:
        print(f"conformance: --only {args.only!r} selects no check", file=sys.stderr)
        return EXIT_USAGE
    if args.record and args.from_cassettes:
        print("conformance: --record and --from-cassettes exclude each other", file=sys.stderr)
        return EXIT_USAGE
    try:
        targets = _targets(args)
        baseline = _baseline_failures(args.baseline) if args.baseline else None
    except (ValueError, OSError) as exc:
        print(f"conformance: {exc}", file=sys.stderr)
        return EXIT_USAGE
    options = RunOptions(oversized_bytes=int(args.oversized_mib * 1024 * 1024),
                         fuzz_examples=args.fuzz_examples, timeout=args.timeout)
    recording = (Recording(args.record, "record") if args.record else
                 Recording(args.from_cassettes, "replay") if args.from_cassettes else None)
    runs = []
    for target in targets:
        if not args.quiet:
            print(f"conformance: {target.name} at {target.base_url}"
                  f"{' (from the recording)' if args.from_cassettes else ''}",
                  file=sys.stderr, flush=True)
        try:
            runs.append(run_target(target, checks, options, recording=recording,
                                   progress=None if args.quiet else _progress()))
        except FileNotFoundError as exc:
            print(f"conformance: {exc}", file=sys.stderr)
            return EXIT_USAGE

    print(report.terminal_table(runs, checks))
    print()
    for line in report.summary_lines(runs, checks):
        print(line)
    for path in args.report:
        path.parent.mkdir(parents=True, exist_ok=True)
        if path.suffix == ".json":
            path.write_text(json.dumps(report.to_json(runs, checks), indent=1,
                                       ensure_ascii=False) + "\n", encoding="utf-8")
        else:
            path.write_text(report.to_markdown(runs, checks, title="Conformance report", level=2),
                            encoding="utf-8")
    if args.doc:
        report.splice(args.doc, report.to_markdown(runs, checks, with_catalogue=True, level=3))
    return _exit_status(runs, checks, baseline)


def _baseline_failures(path: Path) -> dict[str, set[str]]:
    from conformance.report import load_json
    from conformance.results import Outcome

    runs, _ = load_json(path)
    return {r.name: {cid for cid, res in r.results.items()
                     if res.outcome in (Outcome.FAIL, Outcome.ERROR)} for r in runs}


def _exit_status(runs: list, checks: list, baseline: dict[str, set[str]] | None) -> int:
    levels = {c.id: c.level for c in checks}
    status = EXIT_OK
    for run in runs:
        failed = {r.check_id for r in run.must_failures(levels)}
        if baseline is not None:
            new = failed - baseline.get(run.name, set())
            if new:
                print(f"{run.name}: must-level checks that failed and did not fail in the "
                      f"baseline: {', '.join(sorted(new))}", file=sys.stderr)
                status = EXIT_MUST_FAILED
        elif failed:
            status = EXIT_MUST_FAILED
    return status


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m conformance", description=describe)
    add_arguments(parser)
    return run(parser.parse_args(argv))
