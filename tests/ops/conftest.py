"""Proxies for operations tests: the real waitress server and the real CLI, talking to a
stand-in scenario of their own."""

from __future__ import annotations

import itertools
import os

import pytest

from proxy.settings import Settings
from proxy.standin.scenario import Scenario
from tests.support.servers import running_proxy

_names = itertools.count()


@pytest.fixture
def live_proxy(standin, live_runner_for):
    """`live_proxy(scenario, **settings)` -> a RunningProxy whose CLI answers from `scenario`."""
    opened = []

    def start(scenario: Scenario | None = None, *, extra_env=None, runner_wrapper=None,
              **settings):
        name = f"ops-{os.getpid()}-{next(_names)}"
        standin.add_scenario(name, scenario or Scenario())
        runner = live_runner_for(name, extra_env=extra_env)
        if runner_wrapper is not None:
            runner = runner_wrapper(runner)
        context = running_proxy(Settings(**settings), runner)
        proxy = context.__enter__()
        opened.append(context)
        proxy.scenario = name
        return proxy

    yield start
    for context in reversed(opened):
        context.__exit__(None, None, None)
