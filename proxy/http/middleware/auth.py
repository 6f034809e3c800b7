"""Client authentication: API keys as `Authorization: Bearer <key>` or `x-api-key: <key>`.

Only active when keys are configured (always the case off loopback: the server refuses to
start otherwise). Then every path needs a key except the few in PUBLIC_PATHS, so a route added
later is protected without anyone remembering to protect it.
"""

from __future__ import annotations

import hashlib
import hmac
from typing import Iterable

import falcon

from proxy.errors import ProxyError

# Liveness says only "ok" (probes often cannot send headers), and the contract is the public
# document the package ships. Readiness (CLI path, version, login state) and metrics (traffic,
# models, tokens) are for the operator, so they need the key like /v1/*.
PUBLIC_PATHS = frozenset({"/health", "/openapi.json"})

_CHALLENGE = {"WWW-Authenticate": 'Bearer realm="claude-max-api"'}


class KeyRing:
    """The accepted keys, kept as SHA-256 digests and compared in constant time."""

    def __init__(self, keys: Iterable[str]) -> None:
        self._digests = [self._digest(k) for k in dict.fromkeys(k.strip() for k in keys) if k]

    @staticmethod
    def _digest(key: str) -> bytes:
        # Equal-length digests: compare_digest then leaks neither content nor key length.
        return hashlib.sha256(key.encode("utf-8", "surrogatepass")).digest()

    def __bool__(self) -> bool:
        return bool(self._digests)

    def __len__(self) -> int:
        return len(self._digests)

    def accepts(self, candidate: str) -> bool:
        digest = self._digest(candidate)
        found = False
        for accepted in self._digests:  # no early exit: the time does not tell which key matched
            found |= hmac.compare_digest(digest, accepted)
        return found


def key_owner(key: str) -> str:
    """A stable name for whoever holds this key, that does not reveal the key."""
    return "key-" + hashlib.sha256(b"claude-max-api owner\0" + key.encode("utf-8", "surrogatepass")
                                   ).hexdigest()[:16]


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
        if not self.keys or req.path in self.public_paths:
            return
        presented = presented_keys(req)
        if not presented:
            raise ProxyError(401, "You didn't provide an API key. This server requires one: send "
                                  "it as `Authorization: Bearer <key>` (what OpenAI SDKs do with "
                                  "api_key) or as an `x-api-key` header.",
                             code="invalid_api_key", headers=_CHALLENGE)
        # Every presented key is checked, so a wrong one does not end the loop early either.
        accepted = False
        owner = ""
        for key in presented:
            ok = self.keys.accepts(key)
            if ok and not owner:
                owner = key_owner(key)
            accepted |= ok
        if accepted:
            # Conversation state (kept CLI processes) is private to the key that made it.
            req.context.owner = owner
        if not accepted:
            raise ProxyError(401, "Incorrect API key provided. Use one of the keys this server "
                                  "was started with (--api-key, CLAUDE_MAX_API_KEY or "
                                  "--api-key-file).",
                             code="invalid_api_key", headers=_CHALLENGE)
