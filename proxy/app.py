"""create_app(settings, runner): wires the resources explicitly. No globals, no import-time work."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Callable

import falcon

from proxy.chat.models import ModelCatalogue
from proxy.claude.run import Limits
from proxy.concurrency import ConcurrencyLimiter
from proxy.contract.document import document_json_bytes, load_document, operations
from proxy.contract.validation import RequestValidator
from proxy.http import errors
from proxy.http.logging import RequestLog
from proxy.http.resources.chat import ChatCompletions
from proxy.http.resources.document import OpenAPIDocument
from proxy.http.resources.health import Health
from proxy.http.resources.models import Models
from proxy.http.routing import add_routes
from proxy.runners.base import Runner
from proxy.service import ChatService
from proxy.settings import Settings


@dataclass
class AppParts:
    """What create_app built, for the server command and tests (shutdown, state)."""
    runner: Runner
    limiter: ConcurrencyLimiter
    service: ChatService
    models: ModelCatalogue


class ProxyApp(falcon.App):
    """A Falcon app that also carries the parts it was built from."""
    parts: AppParts


def build_runner(settings: Settings) -> Runner:
    if settings.replay:
        from proxy.runners.replay import ReplayRunner
        return ReplayRunner.from_directory(settings.replay, timing=settings.replay_timing)
    from proxy.runners.live import LiveRunner, WorkRoot
    return LiveRunner(settings.claude_bin, work_root=WorkRoot(settings.work_dir),
                      max_retries=settings.cli_max_retries)


def create_app(settings: Settings, runner: Runner | None = None) -> ProxyApp:
    document = load_document()
    runner = runner if runner is not None else build_runner(settings)
    models = ModelCatalogue(settings.extra_models)
    limiter = ConcurrencyLimiter(settings.max_concurrent, settings.queue_size,
                                 settings.queue_timeout)
    service = ChatService(models, runner, limiter,
                          Limits(total=settings.timeout, idle=settings.idle_timeout),
                          max_messages=settings.max_messages,
                          max_prompt_chars=settings.max_prompt_chars)

    app = ProxyApp(middleware=[RequestLog(settings.log_format)])
    # Bodies are read by the resources themselves (JSON only, bounded), not by Falcon's media.
    app.req_options.strip_url_path_trailing_slash = True
    errors.install(app)

    health = Health(lambda: {"concurrency": limiter.stats()})
    models_resource = Models(models)
    chat = ChatCompletions(service, RequestValidator(document),
                           max_body_bytes=settings.max_body_bytes,
                           heartbeat_interval=settings.heartbeat_interval)
    spec = OpenAPIDocument(document_json_bytes())
    handlers: dict[str, Callable[..., None]] = {
        "getHealth": health.on_get,
        "getOpenAPIDocument": spec.on_get,
        "listModels": models_resource.on_get_list,
        "retrieveModel": models_resource.on_get_one,
        "createChatCompletion": chat.on_post,
    }
    declared = {op.operation_id for op in operations(document)}
    # Operations other issues add (readiness, metrics) are wired where they are built.
    for extra in declared - set(handlers):
        handlers[extra] = _not_implemented(extra)
    add_routes(app, operations(document), handlers)
    app.parts = AppParts(runner=runner, limiter=limiter, service=service, models=models)
    return app


def _not_implemented(operation_id: str) -> Callable[..., None]:
    def handler(req: falcon.Request, resp: falcon.Response, **params: object) -> None:
        raise falcon.HTTPNotFound()
    handler.__name__ = operation_id
    return handler
