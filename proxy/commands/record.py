"""`claude-max-api record`: run a scenario catalogue through the real CLI and write cassettes.

Each entry's request goes through the proxy's own request path (contract validation,
`ChatService.prepare`, `ChatRequest.invocation()`, the runner seam, `CLIRun`), so the
invocation a replayed request produces is exactly the recorded one. With `--upstream
stand-in` the project's stand-in Anthropic API plays each entry's scenario and the CLI gets a
throwaway HOME; without it the CLI runs under the user's own login (only the entries that
mean something against a real model are recorded then).
"""

from __future__ import annotations

import argparse
import fnmatch
import os
import re
import shutil
import signal
import socket
import sys
import tempfile
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable, Iterable, Sequence

from proxy.cassettes import serializer
from proxy.cassettes.cassette import Cassette, Recording
from proxy.cassettes.catalogue import Catalogue, Entry, load
from proxy.cassettes.persister import CassetteDirectory
from proxy.chat.models import ModelCatalogue
from proxy.claude.events import Failed, Finished, TextDelta
from proxy.claude.run import Limits
from proxy.concurrency import ConcurrencyLimiter
from proxy.contract.validation import RequestValidator
from proxy.claude.version import cli_version
from proxy.conversations.keeper import Keeper
from proxy.conversations.runner import ConversationRunner
from proxy.runners.live import LiveRunner, WorkRoot, find_claude
from proxy.runners.recording import RecordingRunner
from proxy.backend import ChatRequest, ChatService
from proxy.standin import StandInUpstream
from proxy.settings import Settings

describe = "Record CLI runs from a scenario catalogue into cassettes (for replay mode and tests)."

UPSTREAMS = ("stand-in", "login")
DEFAULT_CATALOGUE = "fixtures/catalogue.json"
# Beside the catalogue: fixtures/cassettes and fixtures/login for fixtures/catalogue.json.
DEFAULT_OUTPUT = {"stand-in": "cassettes", "login": "login"}
STANDIN_API_KEY = "sk-ant-standin"  # any key does for the stand-in; redacted anyway
STANDIN_OAUTH_TOKEN = "standin-oauth-token"  # CLAUDE_CODE_OAUTH_TOKEN: a subscription login
LIMITS = Limits(total=300.0, idle=240.0)


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--catalogue", default=DEFAULT_CATALOGUE,
                        help=f"the scenario catalogue (default {DEFAULT_CATALOGUE})")
    parser.add_argument("--output", default=None,
                        help="cassette directory (default: cassettes/ beside the catalogue with the "
                             "stand-in, login/ beside it with your login)")
    parser.add_argument("--upstream", choices=UPSTREAMS, default="login",
                        help="'stand-in': the project's stand-in Anthropic API plays each "
                             "entry's scenario (no subscription needed); 'login' (default): "
                             "your own Claude login answers")
    parser.add_argument("--only", action="append", metavar="NAME",
                        help="record only these entries (repeatable; shell-style * allowed)")
    parser.add_argument("--overwrite", action="store_true",
                        help="replace existing cassettes (otherwise they are left alone)")
    parser.add_argument("--jobs", type=int, default=2,
                        help="CLI runs at a time (each costs ~0.4 s of CPU; default 2)")
    parser.add_argument("--claude-bin", default="",
                        help="the claude executable (default: CLAUDE_BIN, then PATH)")


# -- results and progress ---------------------------------------------------------------------

@dataclass
class EntryResult:
    name: str
    status: str          # recorded | unchanged | changed | exists | skipped | failed
    detail: str = ""
    seconds: float = 0.0
    cassettes: list[Cassette] = field(default_factory=list)  # one per request (turn)

    @property
    def ok(self) -> bool:
        return self.status in ("recorded", "unchanged", "changed", "skipped")

    @property
    def cassette(self) -> Cassette | None:
        """The cassette of a one-request entry (a conversation's last turn)."""
        return self.cassettes[-1] if self.cassettes else None


class Progress:
    """A one-line progress bar on a terminal; one line per entry otherwise (CI logs)."""

    def __init__(self, total: int, stream=None, width: int = 24) -> None:
        self.total = total
        self.done = 0
        self.stream = stream or sys.stderr
        self.width = width
        self.tty = bool(getattr(self.stream, "isatty", lambda: False)())
        self._lock = threading.Lock()

    def update(self, result: EntryResult) -> None:
        with self._lock:
            self.done += 1
            filled = self.width * self.done // max(1, self.total)
            bar = "#" * filled + "." * (self.width - filled)
            text = (f"[{bar}] {self.done}/{self.total} {result.status:<9} {result.name} "
                    f"({result.seconds:.1f} s)")
            if self.tty:
                self.stream.write("\r\033[K" + text + ("\n" if self.done == self.total else ""))
            else:
                self.stream.write(text + "\n")
            self.stream.flush()


# -- recording ----------------------------------------------------------------------------------

def installed_cli_version(claude_bin: str = "") -> str | None:
    binary = find_claude(claude_bin)
    return cli_version(binary) if binary else None


def pinned_cli_version(start: Path) -> str | None:
    """The `claude-cli-version` pin of the nearest pyproject.toml above `start`, if any."""
    for folder in [start, *start.parents]:
        pyproject = folder / "pyproject.toml"
        if pyproject.is_file():
            found = re.search(r'^claude-cli-version\s*=\s*"([^"]+)"',
                              pyproject.read_text(encoding="utf-8"), re.M)
            return found.group(1) if found else None
    return None


def closed_port_url() -> str:
    """A loopback URL nothing listens on (the port was just free), for `upstream: closed-port`."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    return f"http://127.0.0.1:{port}"


def _clean_environ() -> dict[str, str]:
    """The recorder's environment minus anything that would point the CLI elsewhere."""
    return {k: v for k, v in os.environ.items()
            if not k.startswith(("ANTHROPIC_", "CLAUDE_CODE_", "CLAUDE_MAX_API_"))
            and k not in ("CLAUDE_CONFIG_DIR", "CLAUDECODE")}


@dataclass
class _Session:
    upstream: str
    claude_bin: str
    cli_version: str | None
    base_url_for: Callable[[str], str] | None  # stand-in scenario URLs
    validator: RequestValidator
    default_retries: int


def record_entry(entry: Entry, session: _Session) -> EntryResult:
    """Records one entry; never raises (a failure is a result)."""
    started = time.monotonic()
    home = tempfile.mkdtemp(prefix="cma-record-home-")
    work = tempfile.mkdtemp(prefix="cma-record-work-")
    try:
        cassettes = _record(entry, session, home, work)
        return EntryResult(entry.name, "recorded", seconds=time.monotonic() - started,
                           cassettes=cassettes)
    except Exception as exc:
        return EntryResult(entry.name, "failed", f"{type(exc).__name__}: {exc}",
                           seconds=time.monotonic() - started)
    finally:
        shutil.rmtree(home, ignore_errors=True)
        shutil.rmtree(work, ignore_errors=True)


def _record(entry: Entry, session: _Session, home: str, work: str) -> list[Cassette]:
    env = {k: v for k, v in entry.env.items() if k != "CLAUDE_CODE_MAX_RETRIES"}
    retries = int(entry.env.get("CLAUDE_CODE_MAX_RETRIES", session.default_retries))
    paths = {home: "<HOME>", work: "<WORK_ROOT>"}
    if session.upstream == "stand-in":
        environ = _clean_environ()
        base_url = closed_port_url() if entry.upstream == "closed-port" \
            else session.base_url_for(entry.name)  # type: ignore[misc]
        environ.update(HOME=home, LANG="C.UTF-8", ANTHROPIC_BASE_URL=base_url)
        if entry.credentials == "api-key":
            environ["ANTHROPIC_API_KEY"] = STANDIN_API_KEY
        elif entry.credentials == "oauth-token":
            environ["CLAUDE_CODE_OAUTH_TOKEN"] = STANDIN_OAUTH_TOKEN
        recording = Recording(
            description=entry.description,
            cli=entry.cli_label or "claude", upstream=entry.upstream,
            credentials=entry.credentials, scenario=entry.scenario,
            env=tuple(sorted({**env, "CLAUDE_CODE_MAX_RETRIES": str(retries)}.items())),
            extra_args=entry.extra_args,
            interrupt=entry.interrupt.describe() if entry.interrupt else None)
    else:
        environ = dict(os.environ)
        paths[str(Path.home())] = "<HOME>"
        recording = Recording(description=entry.description, upstream="login",
                              credentials="login",
                              env=tuple(sorted({**env, "CLAUDE_CODE_MAX_RETRIES":
                                                str(retries)}.items())))
    environ.update(env)
    claude_bin = str(entry.cli) if entry.cli is not None else session.claude_bin
    live = LiveRunner(claude_bin, work_root=WorkRoot(work), max_retries=retries,
                      environ=environ)
    # A conversation goes through the runner live mode uses, so a turn that continues the
    # previous one is written to the process kept from it, as when serving.
    inner = ConversationRunner(live, Keeper(max_processes=1, watch=False)) if entry.turns \
        else live
    requests = entry.requests
    current = [requests[0][0]]
    recorder = RecordingRunner(inner, name_for=lambda _: current[0], recording=recording,
                               cli_version=None if entry.cli else session.cli_version,
                               paths=paths, extra_args=entry.extra_args)
    try:
        for name, request in requests:
            current[0] = name
            before = len(recorder.cassettes) + len(recorder.failures)
            _drive(entry, request, session, recorder)
            if len(recorder.cassettes) + len(recorder.failures) != before + 1:
                raise RuntimeError(f"{name}: expected one CLI run, got "
                                   f"{len(recorder.cassettes) + len(recorder.failures) - before}")
            if recorder.failures:
                break
    finally:
        recorder.close()
    if recorder.failures:
        raise RuntimeError("; ".join(why for _, why in recorder.failures))
    for turn, cassette in zip(entry.turns, recorder.cassettes):
        ran = run_process(cassette)
        if ran != turn.process:
            raise RuntimeError(
                f"{cassette.name} was expected to run as {turn.process!r} but ran as {ran!r}"
                + (": a turn continues the kept process only when its history is the previous "
                   "turn's plus the answer it got, word for word" if turn.process == "continued"
                   else ""))
    return list(recorder.cassettes)


def run_process(cassette: Cassette) -> str:
    """How a cassette's run got its CLI process: "continued", "resumed" or "new"."""
    if cassette.recording.process == "continued":
        return "continued"
    return "resumed" if cassette.invocation.history else "new"


def _drive(entry: Entry, request: dict, session: _Session, recorder: RecordingRunner) -> None:
    """The proxy's request path, without HTTP: validate, prepare, start, consume the events."""
    service = ChatService(ModelCatalogue(), recorder, ConcurrencyLimiter(1, 0, 1.0), LIMITS)
    chat = prepared(entry, service, session.validator, request)
    run = service.start(chat, lambda: False)
    signalled = False
    try:
        for event in run.events():
            if isinstance(event, TextDelta) and entry.interrupt and not signalled:
                signalled = True
                pid = getattr(run.process, "pid", None)
                if pid:
                    os.kill(pid, getattr(signal, entry.interrupt.signal))
            if isinstance(event, (Finished, Failed)):
                break
    finally:
        run.close()


def prepared(entry: Entry, service: ChatService,
             validator: RequestValidator | None = None,
             request: dict | None = None) -> ChatRequest:
    """The chat request the proxy makes of an entry's request (or of one turn's `request` of
    a conversation entry), through its own request path (a legacy completions request of one
    prompt is one chat request)."""
    request = entry.request if request is None else request
    schema = {"completions": "CreateCompletionRequest",
              "responses": "CreateResponse"}.get(entry.endpoint, "CreateChatCompletionRequest")
    issue = (validator or RequestValidator()).validate(schema, request)
    if issue is not None:
        raise ValueError(f"the request is not valid: {issue.message}")
    if entry.endpoint == "responses":  # translated as POST /v1/responses translates it
        from proxy.responses.request import translate
        return service.prepare(translate(request).chat_body)
    if entry.endpoint != "completions":
        return service.prepare(request)
    completion = service.prepare_completion(request)
    if len(completion.chats) != 1:
        raise ValueError("a completions entry has one prompt (one CLI run, one cassette)")
    return completion.chats[0]


def _select(catalogue: Catalogue, only: Sequence[str] | None) -> list[Entry]:
    if not only:
        return list(catalogue.entries.values())
    chosen = [e for e in catalogue.entries.values()
              if any(fnmatch.fnmatchcase(e.name, pattern) for pattern in only)]
    missing = [p for p in only if not any(fnmatch.fnmatchcase(e, p) for e in catalogue.entries)]
    if missing:
        raise ValueError(f"no catalogue entry matches {', '.join(missing)}")
    return chosen


def record_catalogue(catalogue: Catalogue, output: Path | None, *, upstream: str = "stand-in",
                     jobs: int = 2, only: Sequence[str] | None = None, overwrite: bool = False,
                     claude_bin: str = "", progress_stream=None,
                     on_result: Callable[[EntryResult], None] | None = None
                     ) -> list[EntryResult]:
    """Records the catalogue; with `output`, saves each cassette there (refusing to replace
    one unless `overwrite`). Returns one result per selected entry, in catalogue order."""
    if upstream not in UPSTREAMS:
        raise ValueError(f"upstream must be one of {UPSTREAMS}")
    entries = _select(catalogue, only)
    directory = CassetteDirectory(output) if output is not None else None
    results: dict[str, EntryResult] = {}
    todo = []
    for entry in entries:
        if upstream == "login" and entry.needs_stand_in:
            results[entry.name] = EntryResult(entry.name, "skipped", "needs the stand-in")
        elif directory is not None and not overwrite \
                and any(directory.exists(n) for n in entry.cassette_names):
            results[entry.name] = EntryResult(entry.name, "exists",
                                              "already recorded (pass --overwrite)")
        else:
            todo.append(entry)
    progress = Progress(len(todo), progress_stream) if progress_stream is not None else None

    def finished(result: EntryResult) -> EntryResult:
        if directory is not None and result.cassettes:
            result = _save(directory, result, overwrite)
        if progress is not None:
            progress.update(result)
        if on_result is not None:
            on_result(result)
        return result

    standin = None
    try:
        base_url_for = None
        if upstream == "stand-in" and todo:
            standin = StandInUpstream(scenarios={e.name: e.standin_scenario() for e in todo})
            base_url_for = standin.base_url_for
        session = _Session(upstream=upstream, claude_bin=claude_bin,
                           cli_version=installed_cli_version(claude_bin),
                           base_url_for=base_url_for, validator=RequestValidator(),
                           default_retries=Settings().cli_max_retries)
        with ThreadPoolExecutor(max_workers=max(1, jobs), thread_name_prefix="record") as pool:
            futures = {e.name: pool.submit(lambda e=e: finished(record_entry(e, session)))
                       for e in todo}
            for name, future in futures.items():
                results[name] = future.result()
    finally:
        if standin is not None:
            standin.close()
    return [results[e.name] for e in entries]


def _save(directory: CassetteDirectory, result: EntryResult, overwrite: bool) -> EntryResult:
    """Saves an entry's cassettes; its status is "changed" if any of them changed."""
    statuses = []
    for cassette in result.cassettes:
        status = "recorded"
        if directory.exists(cassette.name):
            try:
                before = serializer.comparable(directory.load(cassette.name))
                status = "unchanged" if before == serializer.comparable(cassette) else "changed"
            except ValueError:
                status = "changed"
        try:
            directory.save(cassette, overwrite=overwrite)
        except FileExistsError as exc:
            return EntryResult(result.name, "exists", str(exc), result.seconds,
                               result.cassettes)
        statuses.append(status)
    status = next((s for s in ("changed", "recorded") if s in statuses), "unchanged")
    return EntryResult(result.name, status, result.detail, result.seconds, result.cassettes)


# -- the command ----------------------------------------------------------------------------

def run(args: argparse.Namespace) -> int:
    try:
        catalogue = load(args.catalogue)
    except (OSError, ValueError) as exc:
        print(f"claude-max-api record: {exc}", file=sys.stderr)
        return 2
    try:
        selected = _select(catalogue, args.only)
    except ValueError as exc:
        print(f"claude-max-api record: {exc}", file=sys.stderr)
        return 2
    output = Path(args.output) if args.output else \
        Path(args.catalogue).parent / DEFAULT_OUTPUT[args.upstream]
    version = installed_cli_version(args.claude_bin)
    if version is None and any(e.cli is None for e in selected):
        print("claude-max-api record: the Claude Code CLI was not found (install it with npm "
              "install -g @anthropic-ai/claude-code, or pass --claude-bin)", file=sys.stderr)
        return 2
    pinned = pinned_cli_version(Path(args.catalogue).resolve().parent)
    if pinned and version and version != pinned:
        print(f"warning: the installed CLI is {version} but pyproject.toml pins {pinned}; the "
              f"cassettes will say {version}", file=sys.stderr)
    print(f"Recording {args.catalogue} with claude {version} against "
          f"{'the stand-in upstream' if args.upstream == 'stand-in' else 'your login'} into "
          f"{output}/ ({args.jobs} at a time)", file=sys.stderr)
    started = time.monotonic()
    try:
        results = record_catalogue(catalogue, output, upstream=args.upstream, jobs=args.jobs,
                                   only=args.only, overwrite=args.overwrite,
                                   claude_bin=args.claude_bin, progress_stream=sys.stderr)
    except ValueError as exc:
        print(f"claude-max-api record: {exc}", file=sys.stderr)
        return 2
    _summary(results, time.monotonic() - started)
    return 0 if all(r.ok for r in results) else 1


def _summary(results: Iterable[EntryResult], seconds: float) -> None:
    by_status: dict[str, list[EntryResult]] = {}
    for result in results:
        by_status.setdefault(result.status, []).append(result)
    counts = ", ".join(f"{len(v)} {k}" for k, v in sorted(by_status.items()))
    print(f"Done in {seconds:.1f} s: {counts}.", file=sys.stderr)
    for status in ("changed", "failed", "exists"):
        for result in by_status.get(status, []):
            print(f"  {status}: {result.name}" + (f" ({result.detail})" if result.detail else ""),
                  file=sys.stderr)
    if by_status.get("changed"):
        print("Review the changes with `git diff fixtures/`.", file=sys.stderr)
