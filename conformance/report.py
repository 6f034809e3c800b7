"""Reports: JSON (everything, for machines and `--baseline`), Markdown (the matrix and the
findings, for people and docs/), and the table the command prints at the end."""

from __future__ import annotations

import json
import re
from datetime import datetime, timezone
from pathlib import Path
from typing import Any, Iterable

from conformance import __version__
from conformance.checks.base import AREAS, Check
from conformance.results import Outcome, ServerRun

MARK_START = "<!-- conformance-matrix:start -->"
MARK_END = "<!-- conformance-matrix:end -->"
_CELL = {Outcome.PASS: "pass", Outcome.FAIL: "FAIL", Outcome.SKIP: "skip", Outcome.ERROR: "error"}


# ---------------------------------------------------------------------------- JSON


def to_json(runs: list[ServerRun], checks: list[Check]) -> dict[str, Any]:
    return {
        "suite": {"name": "claude-max-api conformance", "version": __version__,
                  "checks": len(checks)},
        "generated_at": datetime.now(timezone.utc).isoformat(timespec="seconds"),
        "checks": [c.describe() for c in checks],
        "servers": [r.to_dict() for r in runs],
    }


def load_json(path: Path) -> tuple[list[ServerRun], list[dict[str, str]]]:
    data = json.loads(Path(path).read_text(encoding="utf-8"))
    return [ServerRun.from_dict(s) for s in data["servers"]], data["checks"]


# ---------------------------------------------------------------------------- Markdown


def _cell(run: ServerRun, check: Check) -> str:
    result = run.results.get(check.id)
    if result is None:
        return "–"
    text = _CELL[result.outcome]
    return f"**{text}**" if result.outcome in (Outcome.FAIL, Outcome.ERROR) \
        and check.level == "must" else text


def _escape(text: str) -> str:
    return text.replace("|", "\\|").replace("\n", " ")


def _short(text: str, limit: int) -> str:
    text = " ".join(text.split())
    return text if len(text) <= limit else text[:limit - 1] + "…"


def servers_table(runs: list[ServerRun], checks: list[Check]) -> str:
    levels = {c.id: c.level for c in checks}
    lines = ["| server | version | model | base URL | pass | fail | skip | error | must failed |",
             "|---|---|---|---|---:|---:|---:|---:|---:|"]
    for run in runs:
        counts = run.counts()
        version = run.target.get("version") or run.server_header or ""
        lines.append(f"| {run.name} | {_escape(version)} | {_escape(str(run.model))} | "
                     f"{run.target.get('base_url')} | {counts['pass']} | {counts['fail']} | "
                     f"{counts['skip']} | {counts['error']} | {len(run.must_failures(levels))} |")
    return "\n".join(lines)


def matrix(runs: list[ServerRun], checks: list[Check]) -> str:
    head = "| check | level | " + " | ".join(r.name for r in runs) + " |"
    lines = [head, "|---|---|" + "---|" * len(runs)]
    area = None
    for c in checks:
        if c.area != area:
            area = c.area
            lines.append(f"| *{AREAS[area]}* | |" + " |" * len(runs))
        cells = " | ".join(_cell(r, c) for r in runs)
        lines.append(f"| `{c.id}` | {c.level} | {cells} |")
    return "\n".join(lines)


def findings(runs: list[ServerRun], checks: list[Check], evidence: bool = True,
             level: int = 3) -> str:
    by_id = {c.id: c for c in checks}
    out: list[str] = []
    for run in runs:
        failed = [r for r in run.results.values() if r.outcome in (Outcome.FAIL, Outcome.ERROR)]
        skipped = [r for r in run.results.values() if r.outcome is Outcome.SKIP]
        out.append(f"{'#' * level} {run.name}\n")
        if not failed:
            out.append("Every check that ran passed.\n")
        for result in sorted(failed, key=lambda r: (by_id[r.check_id].level != "must",
                                                     list(by_id).index(r.check_id))):
            c = by_id[result.check_id]
            out.append(f"- **{c.id}** ({c.level}, {result.outcome.value}): "
                       f"{_escape(_short(result.message, 600))}")
            if evidence:
                for ev in result.evidence[:2]:
                    if ev.get("method"):
                        answer = ev.get("error") or f"{ev.get('status')} {ev.get('content_type')}"
                        out.append(f"  - evidence `{ev['probe']}`: {ev['method']} {ev['path']} "
                                   f"-> {_escape(str(answer))}")
        if skipped:
            out.append("\nSkipped:\n")
            for result in skipped:
                out.append(f"- `{result.check_id}`: {_escape(_short(result.message, 300))}")
        out.append("")
    return "\n".join(out)


def catalogue_table(checks: list[Check]) -> str:
    lines = ["| check | level | what it checks | protects |", "|---|---|---|---|"]
    for c in checks:
        lines.append(f"| `{c.id}` | {c.level} | {_escape(c.title)} | {_escape(c.protects)} |")
    return "\n".join(lines)


def to_markdown(runs: list[ServerRun], checks: list[Check], *, title: str | None = None,
                with_catalogue: bool = False, level: int = 2) -> str:
    """The report; `level` is the heading level of its sections (3 inside another document)."""
    h = "#" * level
    parts = [f"{'#' * (level - 1)} {title}\n" if title else "",
             f"Suite: claude-max-api conformance {__version__}, {len(checks)} checks. "
             f"`must` failures are in bold.\n",
             f"{h} Servers\n", servers_table(runs, checks), "",
             f"{h} Matrix\n", matrix(runs, checks), "",
             f"{h} Findings\n", findings(runs, checks, level=level + 1)]
    if with_catalogue:
        parts += [f"{h} Checks\n", catalogue_table(checks), ""]
    return "\n".join(p for p in parts if p).strip() + "\n"


def splice(path: Path, markdown: str) -> None:
    """Replace the text between the matrix markers in `path` (they must be there)."""
    text = Path(path).read_text(encoding="utf-8")
    pattern = re.compile(re.escape(MARK_START) + r".*?" + re.escape(MARK_END), re.S)
    if not pattern.search(text):
        raise ValueError(f"{path} has no {MARK_START} ... {MARK_END} section")
    replaced = pattern.sub(lambda _: f"{MARK_START}\n{markdown.rstrip()}\n{MARK_END}", text)
    Path(path).write_text(replaced, encoding="utf-8")


# ---------------------------------------------------------------------------- terminal


def terminal_table(runs: list[ServerRun], checks: list[Check], width: int = 100) -> str:
    if len(runs) == 1:
        run = runs[0]
        rows = [("check", "level", "result", "detail")]
        for c in checks:
            r = run.results.get(c.id)
            if r is None:
                continue
            detail = "" if r.outcome is Outcome.PASS else _short(r.message, 70)
            rows.append((c.id, c.level, _CELL[r.outcome], detail))
    else:
        rows = [("check", "level", *(r.name for r in runs))]
        for c in checks:
            rows.append((c.id, c.level, *(
                _CELL[r.results[c.id].outcome] if c.id in r.results else "-" for r in runs)))
    return _columns(rows)


def summary_lines(runs: list[ServerRun], checks: list[Check]) -> Iterable[str]:
    levels = {c.id: c.level for c in checks}
    for run in runs:
        counts = run.counts()
        must = len(run.must_failures(levels))
        yield (f"{run.name}: {counts['pass']} passed, {counts['fail']} failed, "
               f"{counts['skip']} skipped, {counts['error']} errors; "
               f"{'no must-level failures' if not must else f'{must} must-level failures'} "
               f"({run.duration:.1f}s, model {run.model})")


def _columns(rows: list[tuple[str, ...]]) -> str:
    widths = [max(len(r[i]) for r in rows) for i in range(len(rows[0]))]
    widths[-1] = min(widths[-1], 72)
    lines = []
    for n, row in enumerate(rows):
        lines.append("  ".join(cell.ljust(widths[i]) for i, cell in enumerate(row)).rstrip())
        if n == 0:
            lines.append("  ".join("-" * w for w in widths))
    return "\n".join(lines)
