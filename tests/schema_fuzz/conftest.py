"""schemathesis's pytest plugin names each operation's test `test_x[GET /v1/models]`, but under
pytest 9 the node ids all stay `test_x`: give them the operation back, so failures, `-k` and
reports say which operation failed."""

from __future__ import annotations


def pytest_collection_modifyitems(items):
    for item in items:
        node_id = getattr(item, "_id", None)
        label = getattr(item, "operation_label", None)
        if label and node_id is not None and getattr(node_id, "params", "") is None \
                and "[" not in item.nodeid:
            item._id = node_id.with_params(label)
