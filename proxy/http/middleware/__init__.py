"""The security middleware, in the order the app runs it: Host, then Origin/CORS, then the key.

Each refuses a request with an OpenAI-style error before any resource (or the CLI) is reached.
"""

from proxy.http.middleware.auth import ApiKeyAuth, KeyRing
from proxy.http.middleware.hosts import HostGuard
from proxy.http.middleware.origins import OriginGuard, normalise_origin
from proxy.http.middleware.routes import RouteLabels

__all__ = ["ApiKeyAuth", "HostGuard", "KeyRing", "OriginGuard", "RouteLabels", "normalise_origin"]
