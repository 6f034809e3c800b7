"""What a CI run insists on where a developer's run may skip.

A developer's checkout may lack the pinned Claude Code CLI, Node and npm, or the official
OpenAI spec beside the repository: the tests that need them are skipped, each with the reason,
and everything else still runs. CI must not be green for less than it claims, so in CI a
missing requirement fails the tests that need it instead.

CI is `CI` set to anything but "", "0" or "false" (what CI services set), or `CMA_CI=1`, which
.ci/run exports.
"""

from __future__ import annotations

import os
from typing import NoReturn

import pytest

CI_VARIABLES = ("CI", "CMA_CI")


def in_ci(environ: dict[str, str] | None = None) -> bool:
    env = os.environ if environ is None else environ
    return any(env.get(name, "").strip().lower() not in ("", "0", "false")
               for name in CI_VARIABLES)


def missing(reason: str) -> NoReturn:
    """A requirement of the current test is missing: a skip on a developer's machine, a
    failure in CI."""
    if in_ci():
        pytest.fail(f"CI requires this, and it is missing: {reason}", pytrace=False)
    pytest.skip(reason)
