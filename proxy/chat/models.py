"""The models the proxy serves, and what each one means to the CLI.

A client names a model; the CLI gets `--model <cli_model>`. Names of the original npm proxy
(`claude-opus-4`, ...) map to the CLI's aliases, so those clients keep working and always get
the newest model of that family; full ids go to the CLI as they are. An unknown name is a 404,
never a silent substitution.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Iterable

from proxy.errors import ProxyError


@dataclass(frozen=True)
class ServedModel:
    id: str          # what clients send and what responses echo
    cli_model: str   # what `claude --model` receives
    created: int     # unix seconds; fixed so /v1/models is stable
    owned_by: str = "anthropic"

    def to_openai(self) -> dict:
        return {"id": self.id, "object": "model", "created": self.created, "owned_by": self.owned_by}


# created: the day each family or alias entry was added to this list (stable, not a release date).
_BUILTIN: tuple[ServedModel, ...] = (
    ServedModel("claude-opus-4", "opus", 1747958400),
    ServedModel("claude-sonnet-4", "sonnet", 1747958400),
    ServedModel("claude-haiku-4", "haiku", 1747958400),
    ServedModel("opus", "opus", 1747958400),
    ServedModel("sonnet", "sonnet", 1747958400),
    ServedModel("haiku", "haiku", 1747958400),
    ServedModel("claude-opus-4-1", "claude-opus-4-1", 1754352000),
    ServedModel("claude-opus-4-5", "claude-opus-4-5", 1763942400),
    ServedModel("claude-sonnet-4-5", "claude-sonnet-4-5", 1759104000),
    ServedModel("claude-haiku-4-5", "claude-haiku-4-5", 1760486400),
    ServedModel("claude-opus-5-5", "claude-opus-5-5", 1782864000),
    ServedModel("claude-sonnet-5-5", "claude-sonnet-5-5", 1782864000),
    ServedModel("claude-haiku-5-5", "claude-haiku-5-5", 1782864000),
)


class ModelCatalogue:
    def __init__(self, extra_ids: Iterable[str] = ()) -> None:
        models = list(_BUILTIN)
        known = {m.id for m in models}
        for model_id in extra_ids:
            if model_id and model_id not in known:
                models.append(ServedModel(model_id, model_id, _BUILTIN[0].created, "user"))
                known.add(model_id)
        self._models = {m.id: m for m in models}

    def __iter__(self):
        return iter(self._models.values())

    def __contains__(self, model_id: object) -> bool:
        return model_id in self._models

    def get(self, model_id: str) -> ServedModel:
        try:
            return self._models[model_id]
        except KeyError:
            raise ProxyError(404, f"The model `{model_id}` does not exist or is not served by this "
                                  f"proxy. GET /v1/models lists the models it serves.",
                             param="model", code="model_not_found") from None

    def cli_name(self, name: str) -> str:
        """What the CLI's --model takes for `name`: a served id (`claude-sonnet-4`) is mapped,
        anything else (a CLI name such as `sonnet`) passes as it is. For settings, not requests."""
        return self._models[name].cli_model if name in self._models else name

    def list_response(self) -> dict:
        return {"object": "list", "data": [m.to_openai() for m in self]}
