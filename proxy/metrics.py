"""Prometheus metrics, in a registry each app owns (never the global default registry, so
several apps in one process, as in the tests, keep separate counts).

Observed once per request when its log line is written (for a stream: when the stream ends),
so counts, durations and tokens describe finished requests. CLI slots and the wait queue are
read from the limiter at scrape time, the plan state from the PlanTracker, per-key requests in
progress from the KeyLimiter.
"""

from __future__ import annotations

from typing import Any, Callable, Iterator, Mapping

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, generate_latest
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, Metric
from prometheus_client.registry import Collector

from proxy import __version__
from proxy.claude.rate_limit import STATUSES
from proxy.plan import PlanTracker

PREFIX = "claude_max_api"
# The 0.0.4 text format (what the OpenAPI document declares; every Prometheus version reads it).
CONTENT_TYPE = "text/plain; version=0.0.4; charset=utf-8"

LATENCY_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0,
                   120.0, 300.0, 600.0)
FIRST_TOKEN_BUCKETS = (0.1, 0.25, 0.5, 1.0, 2.0, 3.0, 5.0, 8.0, 13.0, 20.0, 30.0, 60.0, 120.0)
# Not failures of the CLI: the client left, or the request never needed it.
_NOT_CLI_FAILURES = frozenset({"client_disconnected"})


class _LimiterCollector(Collector):
    """CLI processes and queued requests, read from the limiter (and a warm pool) per scrape."""

    def __init__(self, stats: Callable[[], Mapping[str, int]],
                 pool_state: Callable[[], Mapping[str, Any]] | None,
                 conversation_state: Callable[[], Mapping[str, Any]] | None = None) -> None:
        self.stats = stats
        self.pool_state = pool_state
        self.conversation_state = conversation_state

    def collect(self) -> Iterator[Metric]:
        stats = self.stats()
        processes = GaugeMetricFamily(f"{PREFIX}_cli_processes",
                                      "Requests holding a CLI slot (active) or waiting for one "
                                      "(queued).", labels=["state"])
        processes.add_metric(["active"], stats.get("active", 0))
        processes.add_metric(["queued"], stats.get("waiting", 0))
        yield processes
        limits = GaugeMetricFamily(f"{PREFIX}_cli_limit",
                                   "Configured maximum of active CLI processes and queued requests.",
                                   labels=["state"])
        limits.add_metric(["active"], stats.get("max_active", 0))
        limits.add_metric(["queued"], stats.get("max_waiting", 0))
        yield limits
        yield CounterMetricFamily(f"{PREFIX}_capacity_rejections",
                                  "Requests refused with 429 because every CLI slot and the queue "
                                  "were full, or the wait timed out.",
                                  value=stats.get("rejected", 0))
        if self.pool_state is not None:
            pool = GaugeMetricFamily(f"{PREFIX}_warm_pool", "State of the pre-spawned CLI pool.",
                                     labels=["state"])
            for key, value in sorted(self.pool_state().items()):
                if isinstance(value, (int, float)) and not isinstance(value, bool):
                    pool.add_metric([str(key)], value)
            yield pool
        if self.conversation_state is not None:
            yield from _conversation_metrics(self.conversation_state())


def _conversation_metrics(state: Mapping[str, Any]) -> Iterator[Metric]:
    kept = GaugeMetricFamily(f"{PREFIX}_conversation_processes",
                             "CLI processes kept for a conversation's next turn (idle), the "
                             "bound, and those serving a turn they were kept for.",
                             labels=["state"])
    kept.add_metric(["kept"], state.get("kept", 0))
    kept.add_metric(["max"], state.get("max", 0))
    kept.add_metric(["serving"], state.get("serving", 0))
    yield kept
    yield GaugeMetricFamily(f"{PREFIX}_conversation_memory_bytes",
                            "Resident memory of the kept conversation processes (sampled).",
                            value=state.get("memory_bytes", 0))
    turns = CounterMetricFamily(f"{PREFIX}_conversation_turns",
                                "Turns of native conversations: continued on a kept process "
                                "(continued) or on a new one (started).", labels=["how"])
    turns.add_metric(["continued"], state.get("continued", 0))
    turns.add_metric(["started"], state.get("started", 0))
    yield turns
    misses = CounterMetricFamily(f"{PREFIX}_conversation_misses",
                                 "Requests with a history that no kept process could continue, "
                                 "by reason.", labels=["reason"])
    for reason, count in sorted((state.get("misses") or {}).items()):
        misses.add_metric([reason], count)
    yield misses
    evictions = CounterMetricFamily(f"{PREFIX}_conversation_evictions",
                                    "Kept processes ended, by reason.", labels=["reason"])
    for reason, count in sorted((state.get("evictions") or {}).items()):
        evictions.add_metric([reason], count)
    yield evictions
    if "spawned" in state:
        yield CounterMetricFamily(f"{PREFIX}_cli_starts", "CLI processes started.",
                                  value=state["spawned"])


class _PlanCollector(Collector):
    """The Claude plan's state as last reported (proxy/plan.py), computed at scrape time so the
    seconds to a reset count down and a passed reset stops reporting its window."""

    def __init__(self, plan: PlanTracker) -> None:
        self.plan = plan

    def collect(self) -> Iterator[Metric]:
        state = self.plan.state()
        status = GaugeMetricFamily(f"{PREFIX}_plan_status",
                                   "The plan's status as the CLI last reported it: 1 for the "
                                   "current one (unknown until a subscription run reported it).",
                                   labels=["status"])
        for name in (*STATUSES, "unknown"):
            status.add_metric([name], 1.0 if state.status == name else 0.0)
        yield status
        utilization = GaugeMetricFamily(f"{PREFIX}_plan_utilization",
                                        "Fraction of the plan's usage window used (1 = its limit).",
                                        labels=["window"])
        reset = GaugeMetricFamily(f"{PREFIX}_plan_reset_seconds",
                                  "Seconds until the usage window resets.", labels=["window"])
        for name, window in sorted(state.windows.items()):
            if window.utilization is not None:
                utilization.add_metric([name], window.utilization)
            if window.resets_at is not None:
                reset.add_metric([name], max(0.0, window.resets_at - state.now))
        yield utilization
        yield reset
        reading = state.reading
        if reading is not None:
            yield GaugeMetricFamily(f"{PREFIX}_plan_overage_in_use",
                                    "1 while extra usage (overage) pays for requests.",
                                    value=1.0 if reading.using_overage else 0.0)
            yield GaugeMetricFamily(f"{PREFIX}_plan_observed_timestamp_seconds",
                                    "When the CLI last reported the plan state (Unix time).",
                                    value=reading.seen_at)


class _KeyCollector(Collector):
    """Per-key requests in progress and limit refusals, read from the KeyLimiter."""

    def __init__(self, stats: Callable[[], Mapping[str, Mapping[str, Any]]]) -> None:
        self.stats = stats

    def collect(self) -> Iterator[Metric]:
        stats = self.stats()
        active = GaugeMetricFamily(f"{PREFIX}_key_requests_in_progress",
                                   "Requests of each API key in progress on the completion "
                                   "endpoints.", labels=["key"])
        refused = CounterMetricFamily(f"{PREFIX}_key_limit_rejections",
                                      "Requests refused with 429 by a per-key limit.",
                                      labels=["key", "limit"])
        for name, entry in sorted(stats.items()):
            active.add_metric([name], entry["active"])
            for limit, count in sorted(entry["rejected"].items()):
                refused.add_metric([name, limit], count)
        yield active
        yield refused


class Metrics:
    def __init__(self, limiter_stats: Callable[[], Mapping[str, int]] | None = None,
                 pool_state: Callable[[], Mapping[str, Any]] | None = None,
                 conversation_state: Callable[[], Mapping[str, Any]] | None = None,
                 plan: PlanTracker | None = None,
                 key_stats: Callable[[], Mapping[str, Mapping[str, Any]]] | None = None) -> None:
        self.registry = CollectorRegistry()
        r = self.registry
        self.requests = Counter(f"{PREFIX}_http_requests", "HTTP requests by route template, "
                                "method and status.", ["route", "method", "status"], registry=r)
        self.latency = Histogram(f"{PREFIX}_http_request_duration_seconds",
                                 "Time from request start to the end of the response (a stream's "
                                 "end for streams).", ["route"], buckets=LATENCY_BUCKETS,
                                 registry=r)
        self.first_token = Histogram(f"{PREFIX}_first_token_seconds",
                                     "Time from request start to the first content from the "
                                     "model.", ["model"], buckets=FIRST_TOKEN_BUCKETS, registry=r)
        self.cli_failures = Counter(f"{PREFIX}_cli_failures", "Failed CLI runs by error code "
                                    "(the `code` of the OpenAI error returned).", ["code"],
                                    registry=r)
        self.tokens = Counter(f"{PREFIX}_tokens", "Tokens reported by the CLI, by model and kind "
                              "(prompt includes cached input).", ["model", "kind"], registry=r)
        self.key_requests = Counter(f"{PREFIX}_key_requests", "Requests by API key name (only "
                                    "when keys are configured), route template and status.",
                                    ["key", "route", "status"], registry=r)
        self.key_tokens = Counter(f"{PREFIX}_key_tokens", "Tokens by API key name and kind: "
                                  "prompt (cached input included), cached (cache reads), "
                                  "completion.", ["key", "kind"], registry=r)
        self.transcripts = Counter(f"{PREFIX}_conversation_transcripts",
                                   "Conversations sent as one rendered transcript instead of "
                                   "native turns, by reason.", ["reason"], registry=r)
        info = Gauge(f"{PREFIX}_build_info", "The proxy's version.", ["version"], registry=r)
        info.labels(__version__).set(1)
        if limiter_stats is not None:
            r.register(_LimiterCollector(limiter_stats, pool_state, conversation_state))
        if plan is not None:
            r.register(_PlanCollector(plan))
        if key_stats is not None:
            r.register(_KeyCollector(key_stats))

    def observe(self, route: str, fields: Mapping[str, Any], cli_ran: bool = False) -> None:
        """Records one finished request from its log fields."""
        status = str(fields.get("status", 0))
        self.requests.labels(route, fields.get("method", ""), status).inc()
        self.latency.labels(route).observe(fields.get("duration_ms", 0.0) / 1000.0)
        model = fields.get("model")
        if model and fields.get("first_token_ms") is not None:
            self.first_token.labels(model).observe(fields["first_token_ms"] / 1000.0)
        if model:
            for kind in ("prompt", "completion"):
                count = fields.get(f"{kind}_tokens")
                if count:
                    self.tokens.labels(model, kind).inc(count)
        key = fields.get("key")
        if key:
            self.key_requests.labels(key, route, status).inc()
            for kind in ("prompt", "cached", "completion"):
                count = fields.get(f"{kind}_tokens")
                if count:
                    self.key_tokens.labels(key, kind).inc(count)
        code = fields.get("error")
        if code and code not in _NOT_CLI_FAILURES and (cli_ran or str(code).startswith("claude_")):
            self.cli_failures.labels(str(code)).inc()

    def exposition(self) -> bytes:
        return generate_latest(self.registry)
