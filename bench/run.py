"""`python -m bench` (or `python bench/run.py`): every benchmark, one table, optional JSON.

    python -m bench              # about 6-7 minutes on 2 cores
    python -m bench --quick      # about 2 minutes: fewer samples, shorter windows
    python -m bench --only latency,forwarding --json results.json
    python -m bench --only conversations     # about 3 minutes: 10 and 30 turns

Each section measures its baseline in the same run, so ratios hold even on a busy machine.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import sys
import time
import traceback
from pathlib import Path
from typing import Any, Callable

if __package__ in (None, ""):  # `python bench/run.py`
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bench.stats import Row  # noqa: E402

SECTIONS = ("latency", "throughput", "forwarding", "memory", "conversations", "tools")


def machine() -> dict[str, Any]:
    info: dict[str, Any] = {"cpus": os.cpu_count(), "python": platform.python_version(),
                            "platform": platform.platform()}
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                info["cpu"] = line.split(":", 1)[1].strip()
                break
        mem = Path("/proc/meminfo").read_text().splitlines()[0].split()[1]
        info["memory_gb"] = round(int(mem) / 1024 / 1024, 1)
        info["load_average"] = os.getloadavg()
    except OSError:
        pass
    from proxy.claude.version import cli_version
    info["claude_cli"] = cli_version("claude", timeout=20)
    return info


def _fmt(value: float | None, unit: str) -> str:
    if value is None:
        return "-"
    if unit == "s":
        return f"{value:.3f} s"
    if unit == "ms":
        return f"{value:.2f} ms"
    if unit == "MB":
        return f"{value:.0f} MB"
    return f"{value:.0f} {unit}".strip()


def table(rows: list[Row]) -> str:
    header = ("metric", "ours", "baseline", "ratio", "target", "met")
    lines = [header]
    for row in rows:
        base = f"{_fmt(row.baseline, row.unit)} ({row.baseline_name})" if row.baseline else ""
        ratio = f"{row.ratio:.2f}" if row.ratio is not None else ""
        met = {True: "yes", False: "NO", None: ""}[row.met]
        lines.append((f"[{row.section}] {row.metric}", _fmt(row.ours, row.unit), base, ratio,
                      row.target, met))
        if row.note:
            lines.append(("    " + row.note, "", "", "", "", ""))
    widths = [max(len(line[i]) for line in lines) for i in range(len(header))]
    out = []
    for n, line in enumerate(lines):
        out.append("  ".join(cell.ljust(widths[i]) for i, cell in enumerate(line)).rstrip())
        if n == 0:
            out.append("  ".join("-" * w for w in widths))
    return "\n".join(out)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench", description=__doc__.split("\n")[0])
    parser.add_argument("--quick", action="store_true", help="fewer samples, shorter windows")
    parser.add_argument("--json", metavar="FILE", help="also write every number to FILE")
    parser.add_argument("--only", default=",".join(SECTIONS),
                        help=f"comma-separated sections ({', '.join(SECTIONS)})")
    parser.add_argument("--samples", type=int, help="latency samples per server (default 10, "
                                                    "quick 4)")
    parser.add_argument("--npm-cache", help="where to install the npm proxy "
                                            "(default ~/.cache/claude-max-api-bench)")
    args = parser.parse_args(argv)
    chosen = [s.strip() for s in args.only.split(",") if s.strip()]
    unknown = set(chosen) - set(SECTIONS)
    if unknown:
        parser.error(f"unknown section(s): {', '.join(sorted(unknown))}")

    quick = args.quick
    plans: dict[str, Callable[[], tuple[list[Row], dict[str, Any]]]] = {
        "latency": lambda: __import__("bench.latency", fromlist=["run"]).run(
            args.samples or (4 if quick else 10), args.npm_cache),
        "throughput": lambda: __import__("bench.throughput", fromlist=["run"]).run(
            seconds=1.5 if quick else 4.0, warmup=0.3 if quick else 0.7),
        "forwarding": lambda: __import__("bench.forwarding", fromlist=["run"]).run(
            deltas=50 if quick else 200, concurrent=8),
        "memory": lambda: __import__("bench.memory", fromlist=["run"]).run(streams=200),
        "conversations": lambda: __import__("bench.conversations", fromlist=["run"]).run(
            lengths=(10,) if quick else (10, 30)),
        "tools": lambda: __import__("bench.tools", fromlist=["run"]).run(
            rounds=5 if quick else 12),
    }
    report: dict[str, Any] = {"machine": machine(), "quick": quick, "sections": {}}
    rows: list[Row] = []
    started = time.monotonic()
    for name in chosen:
        print(f"running {name}...", file=sys.stderr, flush=True)
        t0 = time.monotonic()
        try:
            section_rows, raw = plans[name]()
        except Exception as exc:  # one broken section must not hide the others
            traceback.print_exc()
            section_rows, raw = [Row(name, "failed", None, note=f"{type(exc).__name__}: {exc}")], {}
        rows += section_rows
        report["sections"][name] = {"rows": [r.as_dict() for r in section_rows], "raw": raw,
                                    "seconds": round(time.monotonic() - t0, 1)}
    report["seconds"] = round(time.monotonic() - started, 1)
    m = report["machine"]
    print(f"\nclaude-max-api benchmarks: {m.get('cpus')} CPUs ({m.get('cpu', '?')}), "
          f"{m.get('memory_gb', '?')} GB, Python {m['python']}, CLI {m.get('claude_cli')}, "
          f"load average at start {tuple(round(x, 1) for x in m.get('load_average', ()))}, "
          f"{report['seconds']:.0f} s{' (quick)' if quick else ''}\n")
    print(table(rows))
    if args.json:
        Path(args.json).write_text(json.dumps(report, indent=2, default=str) + "\n")
        print(f"\nwrote {args.json}")
    return 1 if any(r.metric == "failed" for r in rows) else 0


if __name__ == "__main__":
    raise SystemExit(main())
