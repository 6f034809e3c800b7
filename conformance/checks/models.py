"""GET /models and GET /models/{model}."""

from __future__ import annotations

from conformance.checks.base import Context, check, error_envelope, fail, json_object, require
from conformance.schemas import official_errors

check = check("models")


@check("models.list.status", level="must",
       title="GET /models answers 200 with a JSON body",
       protects="GET /models (listModels); clients list models before the first request")
def list_status(ctx: Context) -> None:
    json_object(require(ctx.exchange("models.list")))


@check("models.list.shape", level="must",
       title="The model list is {object: list, data: [Model]} and every Model has id, object, "
             "created and owned_by",
       protects="ListModelsResponse and Model (all four fields required)")
def list_shape(ctx: Context) -> None:
    body = json_object(require(ctx.exchange("models.list")))
    problems = official_errors("ListModelsResponse", body, "strict")
    if problems:
        fail("; ".join(problems))
    if not body["data"]:
        fail("data is empty: the server lists no model")


@check("models.list.contains_model", level="should",
       title="The model under test appears in GET /models",
       protects="model pickers (Open WebUI, Continue, LibreChat) offer only listed models")
def list_contains(ctx: Context) -> None:
    body = json_object(require(ctx.exchange("models.list")))
    ids = [m.get("id") for m in body.get("data") or [] if isinstance(m, dict)]
    if ctx.model not in ids:
        fail(f"{ctx.model!r} is not among the listed ids {ids[:10]}")


@check("models.retrieve.shape", level="should",
       title="GET /models/{model} answers 200 with that Model object",
       protects="GET /models/{model} (retrieveModel); openai SDK models.retrieve()")
def retrieve_shape(ctx: Context) -> None:
    body = json_object(require(ctx.exchange("models.retrieve")))
    problems = official_errors("Model", body, "strict")
    if problems:
        fail("; ".join(problems))
    if body.get("id") != ctx.model:
        fail(f"id is {body.get('id')!r}, not the requested {ctx.model!r}")


@check("models.retrieve.unknown", level="should",
       title="GET /models/{unknown} answers 404 in the error envelope",
       protects="retrieveModel error semantics; SDKs raise NotFoundError on 404")
def retrieve_unknown(ctx: Context) -> None:
    ex = ctx.exchange("models.retrieve_unknown")
    if ex.status == 200:
        fail("an unknown model id was answered with 200")
    error_envelope(ex, (404,))
