"""create_app(settings, runner): wires the resources explicitly. No globals, no import-time work."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Callable, Mapping

import falcon

from proxy.chat.models import ModelCatalogue
from proxy.claude.probe import CLIProbe
from proxy.claude.run import Limits
from proxy.concurrency import ConcurrencyLimiter
from proxy.contract.document import document_json_bytes, load_document, operations
from proxy.contract.validation import RequestValidator
from proxy.http import errors
from proxy.http.logging import RequestLog
from proxy.http.middleware import ApiKeyAuth, HostGuard, KeyRing, OriginGuard, RouteLabels
from proxy.http.middleware.key_limits import KeyLimiter, KeyLimits
from proxy.http.plan_headers import PlanHeaders
from proxy.http.resources.chat import ChatCompletions
from proxy.http.resources.completions import Completions
from proxy.http.resources.document import OpenAPIDocument
from proxy.http.resources.health import Health
from proxy.http.resources.metrics import MetricsEndpoint, request_observer
from proxy.http.resources.models import Models
from proxy.http.resources.readiness import Readiness
from proxy.http.resources.responses import Responses
from proxy.http.routing import add_routes
from proxy.keys import key_limits
from proxy.metrics import Metrics
from proxy.plan import PlanTracker
from proxy.responses.reasoning import ThinkingSeal
from proxy.responses.service import ResponsesService
from proxy.responses.store import ResponseStore
from proxy.runners.base import Runner
from proxy.backend import ChatService
from proxy.settings import Settings


@dataclass
class AppParts:
    """What create_app built, for the server command and tests (shutdown, state)."""
    runner: Runner
    limiter: ConcurrencyLimiter
    service: ChatService
    models: ModelCatalogue
    metrics: Metrics | None = None
    plan: PlanTracker | None = None
    probe: CLIProbe | None = None
    key_limiter: KeyLimiter | None = None
    responses: ResponsesService | None = None


# Measured with CLI 2.1.332: --fallback-model takes over after three 529s in a row, so with
# CLAUDE_CODE_MAX_RETRIES below 2 it never does (tests/standin/test_live_cli.py).
FALLBACK_MIN_RETRIES = 2


class ProxyApp(falcon.App):
    """A Falcon app that also carries the parts it was built from."""
    parts: AppParts


def build_runner(settings: Settings, environ: Mapping[str, str] | None = None) -> Runner:
    """The runner the settings ask for. `environ` is what a live CLI inherits (default: this
    process's environment); benchmarks and tests point it at a stand-in upstream."""
    if settings.replay and settings.record:
        raise ValueError("--replay and --record both name a cassette directory; to replay one "
                         "you record into, use --record DIR --record-mode none")
    if settings.match_ignore and not (settings.replay or settings.record):
        raise ValueError("--match-ignore applies to replaying: use it with --replay or --record")
    if settings.replay:
        from proxy.runners.replay import ReplayRunner
        return ReplayRunner.from_directory(settings.replay, timing=settings.replay_timing,
                                           ignore=settings.match_ignore)
    if settings.record:
        from proxy.cassettes.matcher import Matcher
        from proxy.runners.record_modes import CassetteRunner
        return CassetteRunner(settings.record, settings.record_mode,
                              live=lambda: build_recording_runner(settings, environ),
                              matcher=Matcher(ignore=settings.match_ignore),
                              timing=settings.replay_timing)
    return build_live_runner(settings, environ)


def build_recording_runner(settings: Settings,
                           environ: Mapping[str, str] | None = None) -> Runner:
    """The live runners, wrapped so that every run is kept as a cassette (`serve --record`)."""
    import logging
    import os
    from pathlib import Path

    from proxy.cassettes.cassette import Recording
    from proxy.claude.version import PINNED_CLI_VERSION, cli_version
    from proxy.runners.live import find_claude
    from proxy.runners.recording import RecordingRunner
    binary = find_claude(settings.claude_bin)
    version = cli_version(binary) if binary else None
    if version and version != PINNED_CLI_VERSION:
        logging.getLogger("claude_max_api.recording").warning(
            "recording with claude %s; this release is tested with %s (cassettes say which "
            "version recorded them; `claude-max-api cassettes check` warns about others)",
            version, PINNED_CLI_VERSION)
    # What the recording ran against, as far as the environment tells (never the URL or key).
    credentials = ("api-key" if os.environ.get("ANTHROPIC_API_KEY") else
                   "oauth-token" if os.environ.get("CLAUDE_CODE_OAUTH_TOKEN") else "login")
    recording = Recording(
        description="recorded by claude-max-api serve --record",
        upstream="base-url" if os.environ.get("ANTHROPIC_BASE_URL") else "login",
        credentials=credentials, scenario=None,
        env=(("CLAUDE_CODE_MAX_RETRIES", str(settings.cli_max_retries)),))
    return RecordingRunner(build_live_runner(settings, environ), recording=recording,
                           cli_version=version, paths={str(Path.home()): "<HOME>"},
                           with_request=True)


def build_live_runner(settings: Settings, environ: Mapping[str, str] | None = None) -> Runner:
    from proxy.runners.live import LiveRunner, WorkRoot
    retries = settings.cli_max_retries
    if settings.fallback_model:  # the CLI falls back only after its third overloaded answer
        retries = max(retries, FALLBACK_MIN_RETRIES)
    live = LiveRunner(settings.claude_bin, work_root=WorkRoot(settings.work_dir),
                      max_retries=retries, environ=environ)
    runner: Runner = live
    if settings.pool_size > 0:
        from proxy.runners.pool import WarmPool
        catalogue = ModelCatalogue(settings.extra_models)
        # Warm processes share max_concurrent with serving ones (docs/performance.md).
        runner = WarmPool(live, size=settings.pool_size, max_processes=settings.max_concurrent,
                          # --pool-model takes what clients send or a CLI name, like the fallback
                          models=[catalogue.cli_name(name) for name in settings.pool_models],
                          max_idle=settings.pool_max_idle,
                          fallback_model=catalogue.cli_name(settings.fallback_model) or None)
    if settings.keep_conversations <= 0:
        return runner
    from proxy.conversations.keeper import Keeper
    from proxy.conversations.runner import ConversationRunner
    # Kept processes are bounded on their own, apart from max_concurrent (docs/architecture.md).
    return ConversationRunner(runner, Keeper(
        max_processes=settings.keep_conversations,
        idle_timeout=settings.conversation_idle_timeout,
        tool_call_timeout=settings.tool_call_timeout,
        memory_budget=settings.conversation_memory_mb << 20))


def create_app(settings: Settings, runner: Runner | None = None) -> ProxyApp:
    document = load_document()
    keys = KeyRing(settings.api_keys)  # ValueError for clashing key names, before any spawn
    key_limiter = KeyLimiter(key_limits(keys.names, settings.key_rpm, settings.key_concurrent,
                                        settings.key_limits))
    runner = runner if runner is not None else build_runner(settings)
    models = ModelCatalogue(settings.extra_models)
    plan = PlanTracker()
    limiter = ConcurrencyLimiter(settings.max_concurrent, settings.queue_size,
                                 settings.queue_timeout)
    service = ChatService(models, runner, limiter,
                          Limits(total=settings.timeout, idle=settings.idle_timeout),
                          max_messages=settings.max_messages,
                          max_prompt_chars=settings.max_prompt_chars,
                          fallback_model=settings.fallback_model, plan=plan,
                          include_reasoning=settings.include_reasoning)

    pool_state = getattr(runner, "pool_state", None)  # a warm pool describes itself this way
    pool_state = pool_state if callable(pool_state) else None
    conversation_state = getattr(runner, "conversation_state", None)  # and kept conversations
    conversation_state = conversation_state if callable(conversation_state) else None
    metrics = Metrics(limiter.stats, pool_state, conversation_state, plan=plan,
                      key_stats=key_limiter.stats if keys else None)
    service.on_fallback = lambda reason: metrics.transcripts.labels(reason).inc()
    routes = RouteLabels(op.path for op in operations(document))
    observe_metrics = request_observer(metrics, routes)
    key_limits_middleware = KeyLimits(key_limiter)

    def request_finished(req: falcon.Request, fields: dict) -> None:
        try:
            observe_metrics(req, fields)
        finally:  # the key's slot is freed whatever the metrics do
            key_limits_middleware.finished(req)

    # Order matters: the log sees every request (refusals too) and says when it ended; Host
    # and Origin checks come before the key so a web page learns nothing, and preflights are
    # answered without a key; per-key limits need the key's name.
    app = ProxyApp(middleware=[
        RequestLog(settings.log_format, log_content=settings.log_content,
                   observe=request_finished),
        HostGuard(settings.host, settings.allowed_hosts),
        OriginGuard(settings.allowed_origins),
        ApiKeyAuth(keys),
        key_limits_middleware,
        PlanHeaders(plan),
    ])
    # Bodies are read by the resources themselves (JSON only, bounded), not by Falcon's media.
    app.req_options.strip_url_path_trailing_slash = True
    errors.install(app)

    health = Health()  # liveness only; state is in /health/ready, behind the key
    models_resource = Models(models)
    validator = RequestValidator(document)
    chat = ChatCompletions(service, validator, max_body_bytes=settings.max_body_bytes,
                           heartbeat_interval=settings.heartbeat_interval)
    completions = Completions(service, validator, max_body_bytes=settings.max_body_bytes,
                              heartbeat_interval=settings.heartbeat_interval)
    # The seal of reasoning items' encrypted_content: a secret of this server run only
    # (proxy/responses/reasoning.py), so a restart makes earlier tokens ignored, never wrong.
    responses_service = ResponsesService(service, ResponseStore(
        max_responses=settings.responses_max, memory_budget=settings.responses_memory_mb << 20,
        ttl=settings.responses_ttl), ThinkingSeal())
    responses = Responses(responses_service, validator,
                          max_body_bytes=settings.max_body_bytes,
                          heartbeat_interval=settings.heartbeat_interval)
    spec = OpenAPIDocument(document_json_bytes())
    # A recording server that only replays (record mode none, or once over recordings) is
    # ready as replay mode is: its directory is there, no CLI needed.
    replay_source = settings.replay or (settings.record if getattr(runner, "replay_only", False)
                                        else "") or None
    probe = _cli_probe(runner, settings)
    readiness = Readiness(limiter.stats, probe=probe,
                          replay_source=replay_source, pool_state=pool_state, plan=plan,
                          conversation_state=conversation_state,
                          responses_state=responses_service.store.state)
    handlers: dict[str, Callable[..., None]] = {
        "getHealth": health.on_get,
        "getOpenAPIDocument": spec.on_get,
        "listModels": models_resource.on_get_list,
        "retrieveModel": models_resource.on_get_one,
        "createChatCompletion": chat.on_post,
        "createCompletion": completions.on_post,
        "createResponse": responses.on_post,
        "getResponse": responses.on_get,
        "deleteResponse": responses.on_delete,
        "listInputItems": responses.on_get_input_items,
        "getReadiness": readiness.on_get,
        "getMetrics": MetricsEndpoint(metrics).on_get,
    }
    add_routes(app, operations(document), handlers)
    app.parts = AppParts(runner=runner, limiter=limiter, service=service, models=models,
                         metrics=metrics, plan=plan, probe=probe, key_limiter=key_limiter,
                         responses=responses_service)
    return app


def _cli_probe(runner: Runner, settings: Settings) -> CLIProbe | None:
    """Probes the CLI the runner runs, with the environment its runs get (HOME, tokens)."""
    if settings.replay or not hasattr(runner, "base_env") or not hasattr(runner, "claude_bin"):
        return None
    return CLIProbe(lambda: runner.claude_bin,  # type: ignore[attr-defined]
                    lambda tmp: runner.base_env(tmp, tmp),  # type: ignore[attr-defined]
                    login_ttl=settings.login_check_ttl)
