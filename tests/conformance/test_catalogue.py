"""The catalogue: at least 40 checks, unique ids, complete metadata, a failing case for each."""

from __future__ import annotations

import re

from conformance.checks import AREAS, catalogue, select
from tests.conformance.faults import FAULT_FOR
from tests.conformance.reference_server import FAULTS

ID = re.compile(r"^[a-z]+(\.[a-z0-9_]+)+$")


def test_catalogue_has_at_least_40_checks_with_unique_ids():
    checks = catalogue()
    ids = [c.id for c in checks]
    assert len(checks) >= 40
    assert len(ids) == len(set(ids)), [i for i in ids if ids.count(i) > 1]


def test_every_check_has_complete_metadata():
    for c in catalogue():
        assert ID.match(c.id), c.id
        assert c.level in ("must", "should"), c.id
        assert c.area in AREAS, c.id
        assert len(c.title) > 20 and "\n" not in c.title, c.id
        assert len(c.protects) > 10 and "\n" not in c.protects, c.id
        assert callable(c.run), c.id


def test_every_area_is_covered_and_both_levels_are_used():
    checks = catalogue()
    assert {c.area for c in checks} == set(AREAS)
    assert {c.level for c in checks} == {"must", "should"}


def test_every_check_has_a_fault_that_must_make_it_fail():
    assert set(FAULT_FOR) == {c.id for c in catalogue()}
    assert set(FAULT_FOR.values()) <= FAULTS


def test_only_selects_by_glob_and_by_area():
    checks = catalogue()
    assert [c.id for c in select(checks, "stream.done.last")] == ["stream.done.last"]
    assert {c.area for c in select(checks, "errors")} == {"errors"}
    both = select(checks, "models.list.*, fuzz")
    assert {c.id for c in both} == {c.id for c in checks
                                     if c.id.startswith("models.list.") or c.area == "fuzz"}
    assert select(checks, "no.such.check") == []
    assert select(checks, None) == checks
