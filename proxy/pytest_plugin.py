"""The pytest plugin of claude-max-api (entry point `pytest11`): record an app's tests once
with your Claude login, commit the cassettes, replay them offline in CI.

    from openai import OpenAI

    def test_my_app(claude_max_api_server):
        client = OpenAI(base_url=claude_max_api_server, api_key="unused")
        ...

`claude_max_api_server` (session scope) is the base URL of a claude-max-api server running in
the test process. It replays the cassettes in `claude_max_api_cassette_dir` and records into it
as `claude_max_api_record_mode` says:

* the record mode: `--claude-max-api-record-mode once|new_episodes|none|all`; by default `none`
  (replay only) when the `CI` environment variable is set, `once` otherwise (record if the
  directory holds no cassette yet, else replay);
* the directory: `--claude-max-api-cassettes DIR`, else the ini option
  `claude_max_api_cassette_dir` (relative to the rootdir), else `<rootdir>/cassettes`;
* `claude_max_api_match_ignore` (ini, one per line): what replay does not compare, as
  `serve --match-ignore` takes it.

Both are session-scoped fixtures too (`claude_max_api_record_mode`,
`claude_max_api_cassette_dir`), so a conftest.py can override them with fixtures of the same
name and scope. A run that cannot be recorded (a secret in a prompt, say) fails the session at
the end, naming it.

This module is loaded by every pytest run where claude-max-api is installed: it imports nothing
of the server until the fixture is used.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Iterator

import pytest

RECORD_MODES = ("once", "new_episodes", "none", "all")  # proxy.runners.record_modes'


def pytest_addoption(parser: pytest.Parser) -> None:
    group = parser.getgroup("claude-max-api", "claude-max-api: record and replay Claude runs")
    group.addoption("--claude-max-api-record-mode", choices=RECORD_MODES, default=None,
                    help="record mode of the claude_max_api_server fixture (default: none "
                         "when CI is set, else once)")
    group.addoption("--claude-max-api-cassettes", default=None, metavar="DIR",
                    help="cassette directory of the claude_max_api_server fixture")
    parser.addini("claude_max_api_cassette_dir", "cassette directory of the "
                  "claude_max_api_server fixture, relative to the rootdir", default="cassettes")
    parser.addini("claude_max_api_match_ignore", "parts of a request replay does not compare "
                  "(JSON pointers or names, as serve --match-ignore takes them)",
                  type="linelist", default=[])


def _in_ci() -> bool:
    return os.environ.get("CI", "").strip().lower() not in ("", "0", "false", "no")


@pytest.fixture(scope="session")
def claude_max_api_record_mode(request: pytest.FixtureRequest) -> str:
    chosen = request.config.getoption("claude_max_api_record_mode")
    return chosen or ("none" if _in_ci() else "once")


@pytest.fixture(scope="session")
def claude_max_api_cassette_dir(request: pytest.FixtureRequest) -> Path:
    config = request.config
    given = config.getoption("claude_max_api_cassettes")
    if given:  # a command-line path is relative to where pytest was started
        return Path(config.invocation_params.dir) / given
    return Path(config.rootpath) / config.getini("claude_max_api_cassette_dir")


@pytest.fixture(scope="session")
def claude_max_api_server(request: pytest.FixtureRequest, claude_max_api_cassette_dir: Path,
                          claude_max_api_record_mode: str) -> Iterator[str]:
    from proxy.testing import cassette_server
    directory, mode = Path(claude_max_api_cassette_dir), claude_max_api_record_mode
    if mode == "none" and (not directory.is_dir() or not any(directory.rglob("*.json"))):
        pytest.fail(f"claude-max-api: record mode `none` replays {directory}, which holds no "
                    f"cassettes; record them first (--claude-max-api-record-mode once, with "
                    f"the Claude CLI logged in) and commit them", pytrace=False)
    ignore = request.config.getini("claude_max_api_match_ignore")
    with cassette_server(directory, mode, match_ignore=ignore) as url:
        yield url
        failures = url.failures
    if failures:
        pytest.fail("claude-max-api: {} run(s) could not be recorded: {}".format(
            len(failures), "; ".join(f"{name}: {why}" for name, why in failures)),
            pytrace=False)
