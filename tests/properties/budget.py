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


# The one health check suppressed, here and in every @settings of the suite: too_slow measures
# wall time (30 s for the first 10 inputs without a deadline), which on a shared 2-core machine
# says more about the load than about the strategy; hypothesis's own CI profile suppresses it
# for the same reason. The others (filter_too_much, data_too_large, large_base_example,
# function_scoped_fixture, ...) judge the strategy and the test, and none of them fires.
SUPPRESSED_HEALTH_CHECKS = [HealthCheck.too_slow]


def budget(default: int, **more: object) -> settings:
    """Hypothesis settings for a property: `default` examples (scaled), no deadline (the
    machine is shared), no example database in the working tree, and no explain phase (it
    traces every line and took over 300 s on a failing request property, hiding the failure)."""
    return settings(max_examples=examples(default), deadline=None, database=None,
                    suppress_health_check=SUPPRESSED_HEALTH_CHECKS, derandomize=not exploring(),
                    phases=[p for p in Phase if p is not Phase.explain], **more)
