"""Client authentication: API keys as `Authorization: Bearer <key>` or `x-api-key: <key>`.

Only active when keys are configured (always the case off loopback: the server refuses to
start otherwise). Then every path needs a key except the few in PUBLIC_PATHS, so a route added
later is protected without anyone remembering to protect it.

A request that passes gets `req.context.authorised = True` and, with keys, the key's *name* in
`req.context.api_key_name` (proxy/keys.py): logs, metrics and per-key limits use the name,
never the key.
"""

from __future__ import annotations

import hashlib
import hmac
from typing import Iterable

import falcon

from proxy.errors import ProxyError
from proxy.keys import ApiKey, named_keys

# Liveness says only "ok" (probes often cannot send headers), and the contract is the public
# document the package ships. Readiness (CLI path, version, login state) and metrics (traffic,
# models, tokens) are for the operator, so they need the key like /v1/*.
PUBLIC_PATHS = frozenset({"/health", "/openapi.json"})

_CHALLENGE = {"WWW-Authenticate": 'Bearer realm="claude-max-api"'}


class KeyRing:
    """The accepted keys, kept as SHA-256 digests and compared in constant time."""

    def __init__(self, keys: Iterable[str | ApiKey]) -> None:
        """`keys`: ApiKeys, or entries as configured (`name=secret` or `secret`)."""
        keys = list(keys)
        named = [k for k in keys if isinstance(k, ApiKey)] + \
            named_keys(k for k in keys if isinstance(k, str))
        self._names = [k.name for k in named]
        self._digests = [self._digest(k.secret) for k in named]

    @staticmethod
    def _digest(key: str) -> bytes:
        # Equal-length digests: compare_digest then leaks neither content nor key length.
        return hashlib.sha256(key.encode("utf-8", "surrogatepass")).digest()

    def __bool__(self) -> bool:
        return bool(self._digests)

    def __len__(self) -> int:
        return len(self._digests)

    @property
    def names(self) -> list[str]:
        return list(self._names)

    def accepts(self, candidate: str) -> bool:
        return self.identify(candidate) is not None

    def identify(self, candidate: str) -> str | None:
        """The name of the key `candidate` is, or None."""
        digest = self._digest(candidate)
        found: str | None = None
        # No early exit: the time does not tell which key matched, or whether one did.
        for name, accepted in zip(self._names, self._digests):
            if hmac.compare_digest(digest, accepted):
                found = name
        return found


def presented_keys(req: falcon.Request) -> list[str]:
    """The keys a request carries (either header; a client may send both)."""
    keys = []
    authorization = req.get_header("Authorization") or ""
    scheme, _, value = authorization.strip().partition(" ")
    if scheme.lower() == "bearer" and value.strip():
        keys.append(value.strip())
    header = (req.get_header("X-Api-Key") or "").strip()
    if header:
        keys.append(header)
    return keys


class ApiKeyAuth:
    def __init__(self, keys: KeyRing, public_paths: Iterable[str] = PUBLIC_PATHS) -> None:
        self.keys = keys
        self.public_paths = frozenset(public_paths)

    def process_request(self, req: falcon.Request, resp: falcon.Response) -> None:
        if not self.keys:
            req.context.authorised = True
            return
        if req.path in self.public_paths:
            return
        presented = presented_keys(req)
        if not presented:
            raise ProxyError(401, "You didn't provide an API key. This server requires one: send "
                                  "it as `Authorization: Bearer <key>` (what OpenAI SDKs do with "
                                  "api_key) or as an `x-api-key` header.",
                             code="invalid_api_key", headers=_CHALLENGE)
        # Every presented key is checked, so a wrong one does not end the loop early either.
        name: str | None = None
        for key in presented:
            found = self.keys.identify(key)
            name = name or found  # both headers valid: the Authorization one names the caller
        if name is None:
            raise ProxyError(401, "Incorrect API key provided. Use one of the keys this server "
                                  "was started with (--api-key, CLAUDE_MAX_API_KEY or "
                                  "--api-key-file).",
                             code="invalid_api_key", headers=_CHALLENGE)
        req.context.authorised = True
        req.context.api_key_name = name
