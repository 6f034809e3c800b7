"""Record the CLI runs the conformance suite causes, so claude-max-api can be tested in replay mode.

    python -m conformance.servers.record_fixtures --output tests/conformance/cli-cassettes

Runs the suite (without the fuzz phase: generated prompts are not stable enough to replay)
against claude-max-api in this process, whose live runner is wrapped in the project's
`RecordingRunner`: the real CLI, under a throwaway HOME, talks to the stand-in Anthropic API
loaded with `standin-scenarios.yaml`. Every CLI run becomes a cassette. Afterwards

    claude-max-api serve --replay tests/conformance/cli-cassettes

answers every request of the suite with no CLI and no network (that is what CI runs).
"""

from __future__ import annotations

import argparse
import shutil
import sys
import tempfile
import threading
from pathlib import Path

MODEL = "sonnet"


def record(output: Path) -> int:
    from conformance.checks import catalogue
    from conformance.checks.base import RunOptions
    from conformance.runner import run_target
    from conformance.servers.claude_max_api import standin_upstream
    from conformance.target import Target
    from proxy.cassettes.persister import CassetteDirectory, CassetteExists
    from proxy.cassettes.cassette import Recording
    from proxy.commands.record import installed_cli_version
    from proxy.runners.live import LiveRunner, WorkRoot
    from proxy.runners.recording import RecordingRunner
    from proxy.server import create_server, server_url
    from proxy.settings import Settings

    cassettes = CassetteDirectory(output)
    saved: list[str] = []

    def save(cassette) -> None:
        try:
            saved.append(str(cassettes.save(cassette)))
        except CassetteExists:
            pass   # the same invocation again (e.g. streamed and not): one recording serves both

    work = Path(tempfile.mkdtemp(prefix="cma-conformance-record-"))
    try:
        (work / "home").mkdir()
        with standin_upstream() as upstream:
            env = _cli_environ(upstream, str(work / "home"))
            runner = RecordingRunner(
                LiveRunner(work_root=WorkRoot(str(work / "runs")), max_retries=0, environ=env),
                save, recording=Recording(description="a conformance suite prompt",
                                          upstream="stand-in"),
                cli_version=installed_cli_version())
            settings = Settings(host="127.0.0.1", port=0, max_concurrent=2)
            server = create_server(settings, runner)
            thread = threading.Thread(target=server.run, daemon=True)
            thread.start()
            try:
                run = run_target(Target("claude-max-api", server_url(server) + "/v1", MODEL),
                                 catalogue(), RunOptions(fuzz_examples=0))
            finally:
                runner.close()
                server.close()
                thread.join(10)
    finally:
        shutil.rmtree(work, ignore_errors=True)
    failed = [cid for cid, r in run.results.items() if r.outcome.value in ("fail", "error")]
    print(f"{len(saved)} cassettes in {output}; checks failing while recording: "
          f"{failed or 'none'}")
    return 1 if failed else 0


def _cli_environ(base_url: str, home: str) -> dict[str, str]:
    import os

    env = {k: v for k, v in os.environ.items()
           if not k.startswith(("ANTHROPIC_", "CLAUDE_CODE_", "CLAUDE_MAX_API_"))}
    env.update(HOME=home, ANTHROPIC_BASE_URL=base_url, ANTHROPIC_API_KEY="sk-ant-standin",
               LANG="C.UTF-8")
    return env


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m conformance.servers.record_fixtures",
                                     description=__doc__.split("\n\n")[0])
    parser.add_argument("--output", type=Path, required=True, help="cassette directory")
    args = parser.parse_args(argv)
    return record(args.output)


if __name__ == "__main__":
    sys.exit(main())
