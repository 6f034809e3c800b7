"""Per-key limits on the endpoints that spend the plan: requests per minute and requests in
progress, each optional (proxy/keys.py). Over a limit: 429 `rate_limit_exceeded` with
Retry-After, in OpenAI's envelope, before anything runs.

Requests per minute is a sliding 60-second window of admission times, at most `rpm` entries
per key, so the state is bounded by the configured keys and their limits. With such a limit,
answers carry OpenAI's `x-ratelimit-limit-requests`, `x-ratelimit-remaining-requests` and
`x-ratelimit-reset-requests` (the proxy counts these itself, so they are exact). A request in
progress holds its key's slot until its response ends (a stream's end included): RequestLog
calls `finished()` then.
"""

from __future__ import annotations

import math
import threading
import time
from collections import deque
from dataclasses import dataclass
from typing import Any, Callable, Iterable, Mapping

import falcon

from proxy.errors import ProxyError
from proxy.http.plan_headers import SPENDING_PATHS
from proxy.keys import KeyLimit

WINDOW = 60.0


def duration(seconds: float) -> str:
    """OpenAI's reset format: `20ms`, `1s`, `6m0s`."""
    if seconds < 1:
        return f"{max(1, math.ceil(seconds * 1000))}ms"
    whole = math.ceil(seconds)
    return f"{whole // 60}m{whole % 60}s" if whole >= 60 else f"{whole}s"


@dataclass
class Admission:
    """One admitted request: its key, and what the key's minute looked like after it."""
    name: str
    rpm: int = 0
    remaining: int = 0
    reset: float = 0.0
    released: bool = False

    def headers(self) -> dict[str, str]:
        if not self.rpm:
            return {}
        return {"x-ratelimit-limit-requests": str(self.rpm),
                "x-ratelimit-remaining-requests": str(self.remaining),
                "x-ratelimit-reset-requests": duration(self.reset)}


class _KeyState:
    def __init__(self, limit: KeyLimit) -> None:
        self.limit = limit
        self.admitted: deque[float] = deque(maxlen=limit.requests_per_minute or None)
        self.active = 0
        self.rejected = {"requests_per_minute": 0, "concurrent": 0}


class KeyLimiter:
    def __init__(self, limits: Mapping[str, KeyLimit],
                 clock: Callable[[], float] = time.monotonic) -> None:
        self._clock = clock
        self._lock = threading.Lock()
        self._keys = {name: _KeyState(limit) for name, limit in limits.items()}

    def admit(self, name: str) -> Admission:
        """Counts one request of key `name`; raises ProxyError(429) over a limit."""
        with self._lock:
            state = self._keys.get(name)
            if state is None:  # a key without a state cannot exist; refuse rather than pass
                raise ProxyError(500, "Internal error: unknown API key name.", code="internal_error")
            now = self._clock()
            limit = state.limit
            while state.admitted and now - state.admitted[0] >= WINDOW:
                state.admitted.popleft()
            rpm = limit.requests_per_minute
            if limit.concurrent and state.active >= limit.concurrent:
                state.rejected["concurrent"] += 1
                raise ProxyError(
                    429, f"Rate limit reached for API key '{name}' on concurrent requests: "
                         f"Limit {limit.concurrent}, In progress {state.active}. Please try again "
                         f"when one of them has finished.",
                    type="requests", code="rate_limit_exceeded", retry_after=1.0,
                    headers=self._headers(state, now))
            if rpm and len(state.admitted) >= rpm:
                state.rejected["requests_per_minute"] += 1
                wait = state.admitted[0] + WINDOW - now
                raise ProxyError(
                    429, f"Rate limit reached for API key '{name}' on requests per min (RPM): "
                         f"Limit {rpm}, Used {len(state.admitted)}, Requested 1. Please try "
                         f"again in {duration(wait)}.",
                    type="requests", code="rate_limit_exceeded", retry_after=max(1.0, wait),
                    headers=self._headers(state, now))
            if rpm:
                state.admitted.append(now)
            state.active += 1
            return Admission(name, rpm, rpm - len(state.admitted) if rpm else 0,
                             (state.admitted[-1] + WINDOW - now) if rpm else 0.0)

    @staticmethod
    def _headers(state: _KeyState, now: float) -> dict[str, str]:
        rpm = state.limit.requests_per_minute
        if not rpm:
            return {}
        reset = state.admitted[-1] + WINDOW - now if state.admitted else 0.0
        return Admission("", rpm, max(0, rpm - len(state.admitted)), reset).headers()

    def release(self, admission: Admission) -> None:
        with self._lock:
            if admission.released:
                return
            admission.released = True
            self._keys[admission.name].active -= 1

    def stats(self) -> dict[str, dict[str, Any]]:
        """Per key: requests in progress, its limits, refusals by limit (for /metrics)."""
        with self._lock:
            return {name: {"active": s.active, "limit": s.limit, "rejected": dict(s.rejected)}
                    for name, s in self._keys.items()}


class KeyLimits:
    """The middleware: admits requests to `paths` per key, after ApiKeyAuth named the key."""

    def __init__(self, limiter: KeyLimiter, paths: Iterable[str] = SPENDING_PATHS) -> None:
        self.limiter = limiter
        self.paths = frozenset(paths)

    def process_request(self, req: falcon.Request, resp: falcon.Response) -> None:
        name = getattr(req.context, "api_key_name", None)
        if name is None or req.method != "POST" or req.path not in self.paths:
            return
        req.context.key_admission = self.limiter.admit(name)

    def process_response(self, req: falcon.Request, resp: falcon.Response, resource: Any,
                         req_succeeded: bool) -> None:
        admission = getattr(req.context, "key_admission", None)
        if admission is not None:
            resp.set_headers(admission.headers())

    def finished(self, req: falcon.Request) -> None:
        """The response has ended (RequestLog's observer): the key's slot is free."""
        admission = getattr(req.context, "key_admission", None)
        if admission is not None:
            self.limiter.release(admission)
