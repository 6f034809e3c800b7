from __future__ import annotations

from typing import Iterator

import pytest

from proxy.standin import Scenario, StandInUpstream


@pytest.fixture
def upstream() -> Iterator[StandInUpstream]:
    """A fresh stand-in per test (the session-wide `standin` fixture is shared by other suites)."""
    with StandInUpstream(Scenario(reply_text="Hello from the stand-in.")) as up:
        yield up
