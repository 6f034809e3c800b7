"""schemathesis's pytest plugin names each operation's test `test_x[GET /v1/models]`, but under
pytest 9 the node ids all stay `test_x`: give them the operation back, so failures, `-k` and
reports say which operation failed.

`fuzz_statistics`: what a module's fuzz test reached (statistics.py), handed to the run report
and held to its floors when the module ends; a module whose chat operation was not selected
has nothing to hand in."""

from __future__ import annotations

import pytest

from tests.schema_fuzz.statistics import FuzzStatistics


def pytest_collection_modifyitems(items):
    for item in items:
        node_id = getattr(item, "_id", None)
        label = getattr(item, "operation_label", None)
        if label and node_id is not None and getattr(node_id, "params", "") is None \
                and "[" not in item.nodeid:
            item._id = node_id.with_params(label)


@pytest.fixture(scope="module")
def fuzz_statistics(request, run_statistics):
    statistics = FuzzStatistics(budget=request.module.CHAT_FUZZING_EXAMPLES)
    yield statistics
    if not statistics.ran:
        return
    run_statistics.add_statistics(request.module.STATISTICS, statistics.values())
    shortfalls = statistics.shortfalls()
    if shortfalls:
        pytest.fail(f"{request.module.STATISTICS}: the fuzzing did not reach the success "
                    f"path:\n  " + "\n  ".join(shortfalls), pytrace=False)
