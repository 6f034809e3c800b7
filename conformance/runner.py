"""Runs a list of checks against one target, live, recording, or from a recording."""

from __future__ import annotations

import contextlib
import dataclasses
import time
import traceback
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path
from typing import Callable, Iterator

from conformance import __version__
from conformance.checks.base import (Check, CheckCannotRun, CheckFailed, CheckSkipped, Context,
                                     RunOptions)
from conformance.client import Client, NotRecorded
from conformance.recording import (RunMeta, cassette_path, make_vcr, meta_path,
                                   recorded_requests)
from conformance.results import Outcome, Result, ServerRun
from conformance.target import KnownLimitation, Target

_SHAPING = ("oversized_bytes", "fuzz_examples")   # options that change what is sent
Progress = Callable[[int, int, Target, Check, Result], None]


@dataclass(frozen=True)
class Recording:
    """Where a run's exchanges go (`mode="record"`) or come from (`mode="replay"`)."""
    directory: Path
    mode: str   # "record" | "replay"


def target_from_recording(directory: Path, server: str) -> Target:
    meta = RunMeta.load(meta_path(directory, server))
    t = meta.target
    return Target(name=t["name"], base_url=t["base_url"], model=meta.model,
                  api_key="recorded" if t.get("authenticated") else None,
                  version=t.get("version"),
                  limitations=[KnownLimitation(lim["pattern"], lim["reason"])
                               for lim in t.get("limitations") or []])


def run_target(target: Target, checks: list[Check], options: RunOptions | None = None, *,
               recording: Recording | None = None, progress: Progress | None = None
               ) -> ServerRun:
    options = options or RunOptions()
    started = time.monotonic()
    replay_meta = None
    if recording and recording.mode == "replay":
        replay_meta = RunMeta.load(meta_path(recording.directory, target.name))
        # The requests must be the recorded ones: same probe sizes.
        options = dataclasses.replace(options, **{
            k: v for k, v in replay_meta.options.items() if k in _SHAPING})
    source = "live" if recording is None else (
        f"recorded to {recording.directory}" if recording.mode == "record"
        else f"replayed from {recording.directory}")
    run = ServerRun(target.describe(), target.model, source,
                    datetime.now(timezone.utc).isoformat(timespec="seconds"))
    fuzz_cases = fuzz_requests = errors = None
    if replay_meta is not None and recording is not None:
        run.started_at = replay_meta.recorded_at or run.started_at
        fuzz_cases, errors = replay_meta.fuzz_cases, replay_meta.transport_errors
        fuzz_requests = recorded_requests(recording.directory, target.name, target.base_url)

    with _cassette(target, recording), \
            Client(target, timeout=options.timeout, replayed_errors=errors) as client:
        ctx = Context(target, client, options, fuzz_replay=fuzz_cases,
                      fuzz_replay_requests=fuzz_requests)
        if ctx.model is None:
            ctx.model = _first_model(ctx)
        run.model = ctx.model
        run.target["model"] = ctx.model
        for number, chk in enumerate(checks, 1):
            result = _run_one(ctx, chk)
            run.results[chk.id] = result
            if progress is not None:
                progress(number, len(checks), target, chk, result)
        run.server_header = _server_header(ctx)

    run.duration = time.monotonic() - started
    if recording and recording.mode == "record":
        fuzz = ctx.fuzz_run
        meta = RunMeta(target=target.describe(), model=ctx.model, suite_version=__version__,
                       recorded_at=run.started_at, transport_errors=dict(client.transport_errors),
                       fuzz_cases=[c.to_meta() for c in fuzz.cases] if fuzz else [],
                       server_header=run.server_header,
                       options={k: getattr(options, k) for k in _SHAPING})
        meta.target["model"] = ctx.model
        meta_path(recording.directory, target.name).write_text(meta.to_json(), encoding="utf-8")
    return run


@contextlib.contextmanager
def _cassette(target: Target, recording: Recording | None) -> Iterator[None]:
    if recording is None:
        yield
        return
    path = cassette_path(recording.directory, target.name)
    if recording.mode == "record":
        recording.directory.mkdir(parents=True, exist_ok=True)
        path.unlink(missing_ok=True)   # a recording is one run, never appended to
    elif not path.is_file():
        raise FileNotFoundError(f"no cassette {path}")
    with make_vcr(recording.directory, recording.mode == "record").use_cassette(path.name):
        yield


def _first_model(ctx: Context) -> str | None:
    try:
        ex = ctx.exchange("models.list")
        data = ex.json.get("data") if ex.status == 200 else None
        ids = [m["id"] for m in data or [] if isinstance(m, dict) and isinstance(m.get("id"), str)]
    except (ValueError, AttributeError, NotRecorded, CheckSkipped):
        return None
    finally:
        ctx.used = []
    return ids[0] if ids else None


def _run_one(ctx: Context, chk: Check) -> Result:
    started = time.monotonic()
    limitation = ctx.target.limitation_for(chk.id)
    if limitation is not None:
        return Result(chk.id, Outcome.SKIP, f"known limitation of this server: {limitation.reason}")
    ctx.used = []
    try:
        note = chk(ctx)
        result = Result(chk.id, Outcome.PASS, note or "")
    except CheckFailed as exc:
        result = Result(chk.id, Outcome.FAIL, str(exc))
    except CheckSkipped as exc:
        result = Result(chk.id, Outcome.SKIP, str(exc))
    except CheckCannotRun as exc:
        result = Result(chk.id, Outcome.ERROR, str(exc))
    except NotRecorded as exc:
        result = Result(chk.id, Outcome.SKIP, f"the recording has no answer for probe {exc} "
                                              f"(recorded with another suite version or --only)")
    except Exception as exc:  # a defect in the check itself: report it, keep going
        where = traceback.extract_tb(exc.__traceback__)[-1]
        result = Result(chk.id, Outcome.ERROR, f"{type(exc).__name__}: {exc} "
                                               f"({Path(where.filename).name}:{where.lineno})")
    exchanges = ctx.exchanges()
    detailed = result.outcome is not Outcome.PASS
    result.evidence = [exchanges[p].describe() if detailed else {"probe": p}
                       for p in ctx.used if p in exchanges]
    if chk.area == "fuzz" and ctx.fuzz_run is not None:
        result.evidence = [{"probe": "fuzz", "cases": len(ctx.fuzz_run.cases)}]
    result.duration = time.monotonic() - started
    return result


def _server_header(ctx: Context) -> str | None:
    for ex in ctx.exchanges().values():
        if ex.headers.get("server"):
            return ex.headers["server"]
    return None
