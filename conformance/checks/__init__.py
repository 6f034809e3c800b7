"""The catalogue: every check, in report order (areas in the order below, checks in the order
their module defines them)."""

from __future__ import annotations

import importlib
from fnmatch import fnmatchcase

from conformance.checks.base import AREAS, Check

_MODULES = ("models", "completion", "streaming", "parameters", "content", "reasoning", "errors",
            "headers", "tools", "structured", "legacy", "responses", "fuzz")


def catalogue() -> list[Check]:
    checks: list[Check] = []
    for name in _MODULES:
        module = importlib.import_module(f"conformance.checks.{name}")
        checks += [value for value in vars(module).values()
                   if isinstance(value, Check) and value.run.__module__ == module.__name__]
    return checks


def select(checks: list[Check], patterns: str | None) -> list[Check]:
    """`--only`: comma-separated globs over check ids, or area names (`streaming`)."""
    if not patterns:
        return list(checks)
    wanted = [p.strip() for p in patterns.split(",") if p.strip()]
    return [c for c in checks
            if any(fnmatchcase(c.id, p) or c.area == p for p in wanted)]


__all__ = ["AREAS", "Check", "catalogue", "select"]
