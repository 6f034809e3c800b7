"""`claude-max-api cassettes list|show|check DIR`: what a cassette directory can answer, and
whether it is fit to commit.

    list   one line per cassette: the model, the earlier turns, how the client asked (streamed or
           not, when recorded by `serve --record`), the CLI version, leak findings, the first
           user text
    show   a cassette in full: how it was recorded, what it matches on (its match view), what it
           answers, how the run ended
    check  fails (exit 1) on secrets, e-mail addresses or paths of the recording machine the
           redaction missed, on a damaged cassette, and with --strict on a cassette recorded
           with another CLI version than the pinned one (otherwise a warning)
"""

from __future__ import annotations

import argparse
import getpass
import json
import os
import socket
import sys
from pathlib import Path
from typing import Any, Iterable

from proxy.cassettes import serializer
from proxy.cassettes.cassette import Cassette
from proxy.cassettes.matcher import view
from proxy.cassettes.persister import SUFFIX
from proxy.cassettes.redaction import Leak, cassette_leaks
from proxy.claude.version import PINNED_CLI_VERSION

describe = "List, show and check a directory of cassettes (recordings for replay)."

WIDTH = 48  # characters of the first user text in `list`


def add_arguments(parser: argparse.ArgumentParser) -> None:
    actions = parser.add_subparsers(dest="action", required=True, metavar="list|show|check")
    listing = actions.add_parser("list", help="one line per cassette")
    listing.add_argument("directory")
    show = actions.add_parser("show", help="cassettes in full")
    show.add_argument("directory")
    show.add_argument("names", nargs="*", metavar="NAME",
                      help="cassette names as `list` prints them (default: all)")
    check = actions.add_parser("check", help="fail on leaks and, with --strict, on other CLI "
                                             "versions than the pinned one")
    check.add_argument("directory")
    check.add_argument("--strict", action="store_true",
                       help=f"a cassette recorded with another CLI version than "
                            f"{PINNED_CLI_VERSION} is an error, not a warning")


# -- reading ------------------------------------------------------------------------------------

class Found:
    """A cassette file: the cassette, or why it cannot be read; and its leak findings."""

    def __init__(self, name: str, path: Path, cassette: Cassette | None, error: str | None,
                 leaks: list[Leak]) -> None:
        self.name, self.path, self.cassette, self.error, self.leaks = \
            name, path, cassette, error, leaks


def machine_literals() -> dict[str, str]:
    """This machine's HOME, host and user names, where specific enough to look for."""
    found = {}
    home = os.path.expanduser("~")
    if home.count("/") >= 2:
        found["this machine's HOME"] = home
    host = socket.gethostname()
    if len(host) >= 6 and host not in ("localhost", "ubuntu", "debian"):
        found["this machine's host name"] = host
    try:
        user = getpass.getuser()
    except (KeyError, OSError):
        user = ""
    if len(user) >= 5 and user not in ("runner", "build", "ubuntu"):
        found["this machine's user name"] = f"/{user}/"
    return found


def read_directory(directory: Path) -> list[Found]:
    if not directory.is_dir():
        raise FileNotFoundError(f"no cassette directory at {directory}")
    literals = machine_literals()
    out = []
    for file in sorted(directory.rglob("*" + SUFFIX)):
        name = file.relative_to(directory).with_suffix("").as_posix()
        text = file.read_text(encoding="utf-8", errors="replace")
        try:
            data = json.loads(text)
        except ValueError as exc:
            if serializer.FORMAT in text[:200]:
                out.append(Found(name, file, None, f"not valid JSON ({exc})", []))
            continue
        if not serializer.is_cassette(data):
            continue  # some other JSON file
        try:
            cassette = serializer.from_data(data, name)
        except serializer.CassetteFormatError as exc:
            out.append(Found(name, file, None, str(exc), []))
            continue
        out.append(Found(name, file, cassette, None, cassette_leaks(text, literals)))
    return out


def first_user_text(cassette: Cassette) -> str:
    for role, blocks in cassette.invocation.history:
        if role == "user":
            for block in blocks:
                try:
                    value = json.loads(block.full) if block.full is not None else {}
                except ValueError:
                    value = {}
                if value.get("type") == "text":
                    return value.get("text", "")
    return cassette.invocation.blocks[0].preview(2000) if cassette.invocation.blocks else ""


def answer(cassette: Cassette) -> str:
    """What the run answered, as its result line says."""
    for line in reversed(cassette.stdout):
        if '"result"' in line:
            try:
                result = json.loads(line)
            except ValueError:
                continue
            if isinstance(result, dict) and result.get("type") == "result":
                text = str(result.get("result") or "")
                if result.get("is_error"):
                    return f"error ({result.get('subtype')}): {text}"
                return text
    ending = cassette.ending
    if ending.closed_by_proxy:
        return "(the proxy ended the run before its result)"
    return f"(no result; exit {ending.returncode})"


def process_of(cassette: Cassette) -> str:
    if cassette.recording.process:
        return cassette.recording.process
    return "resumed" if cassette.invocation.history else "new"


def streamed(cassette: Cassette) -> str:
    request = cassette.recording.request or {}
    if "stream" not in request:
        return "-"
    return "yes" if request["stream"] else "no"


def _short(text: str, width: int) -> str:
    text = " ".join(text.split())
    return text if len(text) <= width else text[:width - 1] + "…"


# -- the actions --------------------------------------------------------------------------------

def do_list(found: list[Found], out=None) -> int:
    out = out or sys.stdout
    rows = [("NAME", "MODEL", "TURN", "PROCESS", "STREAMED", "CLI", "FINDINGS", "FIRST USER TEXT")]
    for item in found:
        c = item.cassette
        if c is None:
            rows.append((item.name, "-", "-", "-", "-", "-", "unreadable", item.error or ""))
            continue
        turn = str(len(c.invocation.history) // 2 + 1)
        rows.append((item.name, c.invocation.model, turn, process_of(c), streamed(c),
                     c.cli_version or "(fake)", str(len(item.leaks)) if item.leaks else "-",
                     json.dumps(_short(first_user_text(c), WIDTH), ensure_ascii=False)))
    widths = [max(len(r[i]) for r in rows) for i in range(len(rows[0]) - 1)]
    for row in rows:
        print("  ".join(v.ljust(w) for v, w in zip(row, widths)) + "  " + row[-1], file=out)
    print(f"\n{len([f for f in found if f.cassette])} cassette(s). Each answers streamed and "
          f"whole requests alike; `STREAMED` is how the recorded request asked (`-`: not "
          f"recorded by serve --record).", file=out)
    return 0


def _trim(value: Any, limit: int = 200) -> Any:
    if isinstance(value, str):
        return value if len(value) <= limit else value[:limit] + f"… ({len(value)} chars)"
    if isinstance(value, list):
        return [_trim(v, limit) for v in value]
    if isinstance(value, dict):
        return {k: _trim(v, limit) for k, v in value.items()}
    return value


def _compact(value: Any) -> str:
    return json.dumps(value, ensure_ascii=False, separators=(", ", ": "))


def do_show(found: list[Found], names: Iterable[str], out=None) -> int:
    out = out or sys.stdout
    names = list(names)
    chosen = [f for f in found if not names or f.name in names]
    missing = sorted(set(names) - {f.name for f in found})
    if missing:
        print(f"claude-max-api cassettes: no cassette named {', '.join(missing)}",
              file=sys.stderr)
        return 2
    for item in chosen:
        print(f"== {item.name}  ({item.path})", file=out)
        c = item.cassette
        if c is None:
            print(f"unreadable: {item.error}\n", file=out)
            continue
        rec = c.recording
        print(f"recorded:  claude {c.cli_version or '(a fake CLI: ' + rec.cli + ')'}, upstream "
              f"{rec.upstream}, credentials {rec.credentials}, process {process_of(c)}"
              + (f"; {rec.description}" if rec.description else ""), file=out)
        if rec.request:
            print(f"asked as:  {json.dumps(rec.request, ensure_ascii=False)}", file=out)
        print("matches:", file=out)
        for key, value in view(c.invocation).items():
            if key in ("argv", "stdin", "extra_env") or value in ([], {}):
                continue  # strict matching only; `show` is about what the request said
            if key in ("history", "blocks", "images") and isinstance(value, list):
                print(f"  /{key}:", file=out)
                for i, element in enumerate(value):
                    print(f"    {i}: {_compact(_trim(element))}", file=out)
            else:
                print(f"  /{key}: {_compact(_trim(value))}", file=out)
        print(f"answers:   {json.dumps(_short(answer(c), 300), ensure_ascii=False)}", file=out)
        print(f"ended:     exit {c.ending.returncode}"
              + (", closed by the proxy" if c.ending.closed_by_proxy else "")
              + f", {len(c.stdout)} stdout lines in {c.exit_offset:.2f} s", file=out)
        for leak in item.leaks:
            print(f"FINDING:   {leak}", file=out)
        print(file=out)
    return 0


def do_check(found: list[Found], strict: bool, out=None) -> int:
    out = out or sys.stdout
    errors = warnings = 0
    for item in found:
        if item.cassette is None:
            errors += 1
            print(f"error: {item.path}: {item.error}", file=out)
            continue
        for leak in item.leaks:
            errors += 1
            print(f"error: {item.path}: {leak}", file=out)
        version = item.cassette.cli_version
        if item.cassette.recording.cli == "claude" and version != PINNED_CLI_VERSION:
            what = (f"{item.path}: recorded with claude {version or '(unknown version)'}, this "
                    f"release is tested with {PINNED_CLI_VERSION}; re-record it")
            if strict:
                errors += 1
                print(f"error: {what}", file=out)
            else:
                warnings += 1
                print(f"warning: {what}", file=out)
    count = len(found)
    print(f"{count} cassette(s): {errors} error(s), {warnings} warning(s).", file=out)
    return 1 if errors else 0


def run(args: argparse.Namespace) -> int:
    try:
        found = read_directory(Path(args.directory))
    except OSError as exc:
        print(f"claude-max-api cassettes: {exc}", file=sys.stderr)
        return 2
    if args.action == "list":
        return do_list(found)
    if args.action == "show":
        return do_show(found, args.names)
    return do_check(found, args.strict)
