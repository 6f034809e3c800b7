"""GET /metrics: the app's Prometheus registry in the text exposition format."""

from __future__ import annotations

from typing import Any, Callable

import falcon

from proxy.http.middleware.routes import RouteLabels
from proxy.metrics import CONTENT_TYPE, Metrics


class MetricsEndpoint:
    def __init__(self, metrics: Metrics) -> None:
        self.metrics = metrics

    def on_get(self, req: falcon.Request, resp: falcon.Response) -> None:
        resp.content_type = CONTENT_TYPE
        resp.set_header("Cache-Control", "no-store")
        resp.data = self.metrics.exposition()


def request_observer(metrics: Metrics, routes: RouteLabels
                     ) -> Callable[[falcon.Request, dict[str, Any]], None]:
    """What RequestLog calls with each finished request's fields."""
    def observe(req: falcon.Request, fields: dict[str, Any]) -> None:
        metrics.observe(routes.label(req), fields,
                        cli_ran=getattr(req.context, "run", None) is not None)
    return observe
