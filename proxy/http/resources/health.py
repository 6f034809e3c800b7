"""GET /health: liveness. The process answers, so it is alive. It is public (probes often
cannot send a key), so it says nothing else; /health/ready has the state."""

from __future__ import annotations

import falcon


class Health:
    def on_get(self, req: falcon.Request, resp: falcon.Response) -> None:
        resp.media = {"status": "ok"}
