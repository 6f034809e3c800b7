"""GET /openapi.json: the contract this server is built from."""

from __future__ import annotations

import falcon


class OpenAPIDocument:
    def __init__(self, document_json: bytes) -> None:
        self.document_json = document_json

    def on_get(self, req: falcon.Request, resp: falcon.Response) -> None:
        resp.content_type = falcon.MEDIA_JSON
        resp.data = self.document_json
