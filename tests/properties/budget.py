"""Examples per property, and how they are drawn.

The defaults keep all the property tests within about a minute on 2 cores, and draw the same
examples on every run (derandomized, as schemathesis.toml does for the fuzz tests), so CI
passes or fails on the code and not on the luck of a draw. A deeper run explores instead:
`CMA_PROPERTY_SCALE` multiplies the examples (e.g. 10) and draws them at random, as does
`CMA_PROPERTY_RANDOM=1` at the default budget. Everything found that way so far is in the
tests as explicit examples or unit tests.
"""

from __future__ import annotations

import os

from hypothesis import HealthCheck, Phase, settings


def examples(default: int) -> int:
    scale = float(os.environ.get("CMA_PROPERTY_SCALE", "").strip() or 1)
    return max(1, round(default * scale))


def exploring() -> bool:
    return bool(os.environ.get("CMA_PROPERTY_SCALE", "").strip()) \
        or os.environ.get("CMA_PROPERTY_RANDOM", "").strip() == "1"


def budget(default: int, **more: object) -> settings:
    """Hypothesis settings for a property: `default` examples (scaled), no deadline (the
    machine is shared), no example database in the working tree, and no explain phase (it
    traces every line and took over 300 s on a failing request property, hiding the failure)."""
    return settings(max_examples=examples(default), deadline=None, database=None,
                    suppress_health_check=list(HealthCheck), derandomize=not exploring(),
                    phases=[p for p in Phase if p is not Phase.explain], **more)
