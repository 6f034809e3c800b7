"""GET /v1/models and GET /v1/models/{model}."""

from __future__ import annotations

import falcon

from proxy.chat.models import ModelCatalogue


class Models:
    def __init__(self, models: ModelCatalogue) -> None:
        self.models = models

    def on_get_list(self, req: falcon.Request, resp: falcon.Response) -> None:
        resp.media = self.models.list_response()

    def on_get_one(self, req: falcon.Request, resp: falcon.Response, model: str) -> None:
        resp.media = self.models.get(model).to_openai()
