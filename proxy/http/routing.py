"""Routes come from the OpenAPI document: one Falcon resource per path, one responder per
operationId. An operation without a handler (or a handler without an operation) stops the
server at start, so the document and the code cannot drift apart silently."""

from __future__ import annotations

from typing import Any, Callable

import falcon

from proxy.contract.document import Operation

Handler = Callable[..., None]


def _method_not_allowed(req: falcon.Request, resp: falcon.Response, **params: Any) -> None:
    raise falcon.HTTPMethodNotAllowed(allowed_methods=[])


def add_routes(app: falcon.App, operations: list[Operation], handlers: dict[str, Handler]) -> None:
    missing = [f"{op.method} {op.path} ({op.operation_id})" for op in operations
               if op.operation_id not in handlers]
    if missing:
        raise RuntimeError("operations without a handler: " + ", ".join(missing))
    unknown = sorted(set(handlers) - {op.operation_id for op in operations})
    if unknown:
        raise RuntimeError("handlers for operations the document does not declare: "
                           + ", ".join(unknown))
    by_path: dict[str, dict[str, Handler]] = {}
    for op in operations:
        by_path.setdefault(op.path, {})[op.method] = handlers[op.operation_id]
    for path, methods in by_path.items():
        app.add_route(path, _resource(methods))


def _resource(methods: dict[str, Handler]) -> object:
    attrs: dict[str, Any] = {}
    for method, handler in methods.items():
        attrs["on_" + method.lower()] = staticmethod(handler)
    # Falcon would answer OPTIONS itself; undeclared methods are 405 here (CORS preflights are
    # answered by the CORS middleware before routing, and only for allowed origins).
    attrs.setdefault("on_options", staticmethod(_method_not_allowed))
    return type("SpecResource", (), attrs)()
