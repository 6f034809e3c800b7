"""GET /health: liveness. The process answers, so it is alive."""

from __future__ import annotations

import falcon


class Health:
    def __init__(self, state: "callable[[], dict] | None" = None) -> None:
        self.state = state

    def on_get(self, req: falcon.Request, resp: falcon.Response) -> None:
        body = {"status": "ok"}
        if self.state is not None:
            body.update(self.state())
        resp.media = body
