"""Examples per property. The defaults keep all the property tests within about a minute on 2
cores; `CMA_PROPERTY_SCALE` multiplies them for a deeper (nightly) run, e.g. 10."""

from __future__ import annotations

import os

from hypothesis import HealthCheck, settings


def examples(default: int) -> int:
    scale = float(os.environ.get("CMA_PROPERTY_SCALE", "").strip() or 1)
    return max(1, round(default * scale))


def budget(default: int, **more: object) -> settings:
    """Hypothesis settings for a property: `default` examples (scaled), no deadline (the
    machine is shared), no example database in the working tree."""
    return settings(max_examples=examples(default), deadline=None, database=None,
                    suppress_health_check=list(HealthCheck), **more)
