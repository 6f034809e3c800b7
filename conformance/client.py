"""Sends the suite's requests with httpx and keeps the raw answer (status, headers, bytes).

httpx rather than the openai SDK: checks must see the bytes (SSE framing, error bodies the SDK
would hide), and vcrpy records httpx exchanges as they are.
"""

from __future__ import annotations

import time
from typing import Mapping

import httpx

from conformance import __version__
from conformance.exchange import PROBE_HEADER, Exchange, Request
from conformance.target import Target

WRONG_KEY = "sk-conformance-wrong-key-0000000000"
MAX_RESPONSE_BYTES = 16 * 1024 * 1024


class NotRecorded(Exception):
    """Replaying, and the recording has no answer for this request."""


class Client:
    def __init__(self, target: Target, *, timeout: float = 120.0,
                 replayed_errors: Mapping[str, str] | None = None) -> None:
        self.target = target
        self.replaying = replayed_errors is not None
        self.replayed_errors = dict(replayed_errors or {})
        self.transport_errors: dict[str, str] = {}   # filled while recording or running live
        self._http = httpx.Client(timeout=httpx.Timeout(timeout, connect=10.0),
                                  follow_redirects=False, trust_env=False)

    def close(self) -> None:
        self._http.close()

    def __enter__(self) -> "Client":
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def url(self, path: str) -> str:
        return self.target.base_url + path

    def headers_for(self, request: Request) -> dict[str, str]:
        # What the openai SDK sends, minus its telemetry headers; identity encoding keeps
        # cassettes readable.
        headers = {"Accept": "application/json", "Accept-Encoding": "identity",
                   "User-Agent": f"claude-max-api-conformance/{__version__}",
                   PROBE_HEADER: request.probe}
        if request.content_type is not None:
            headers["Content-Type"] = request.content_type
        key = {"target": self.target.api_key, "wrong": WRONG_KEY, "none": None}[request.auth]
        if key:
            headers["Authorization"] = f"Bearer {key}"
        headers.update(dict(request.headers))
        return headers

    def send(self, request: Request) -> Exchange:
        if request.probe in self.replayed_errors:
            return Exchange(request, error=self.replayed_errors[request.probe])
        exchange = Exchange(request)
        started = time.monotonic()
        try:
            with self._http.stream(request.method, self.url(request.path),
                                   headers=self.headers_for(request),
                                   content=request.body) as response:
                exchange.status = response.status_code
                exchange.reason = response.reason_phrase
                exchange.headers = {k.lower(): v for k, v in response.headers.items()}
                body = bytearray()
                for chunk in response.iter_raw():
                    body += chunk
                    if len(body) > MAX_RESPONSE_BYTES:
                        exchange.error = f"the response exceeds {MAX_RESPONSE_BYTES} bytes"
                        break
                exchange.body = bytes(body)
        except httpx.HTTPError as exc:
            exchange.error = f"{type(exc).__name__}: {exc}" if str(exc) else type(exc).__name__
            exchange.status = None
        except Exception as exc:
            if type(exc).__name__ == "CannotOverwriteExistingCassetteException":
                raise NotRecorded(request.probe) from None
            raise
        exchange.elapsed = time.monotonic() - started
        if exchange.error is not None and not self.replaying:
            self.transport_errors[request.probe] = exchange.error
        return exchange
