"""Browser drive-by protection and CORS.

Browsers attach `Origin` to cross-origin requests (and to same-origin POSTs). Any request that
carries an Origin not on the allow-list is refused with a 403 before it reaches a resource:
CORS alone would only hide the answer from the page, while the request (and the CLI run it
starts on the user's subscription) would still happen. Requests without Origin (curl, SDKs,
server-side tools) are not affected. The allow-list is empty by default, so CORS is off.

For allowed origins this answers preflights (OPTIONS with Access-Control-Request-Method) and
adds the CORS headers to every answer, errors included, so a page can read them.

falcon.CORSMiddleware was considered: it never refuses a request, echoes the requested headers
for any origin, and builds the preflight from the route's OPTIONS responder, which answers 405
here on purpose. Refusing is the part that matters, so this small class does both.
"""

from __future__ import annotations

import re
from typing import Iterable
from urllib.parse import urlsplit

import falcon

from proxy.errors import ProxyError

ALLOWED_METHODS = "GET, POST, OPTIONS"
# Headers a browser script may read besides the CORS-safelisted ones.
EXPOSED_HEADERS = "X-Request-Id, Retry-After"
PREFLIGHT_MAX_AGE = "600"
_HOST = re.compile(r"^([a-z0-9_-]+(\.[a-z0-9_-]+)*\.?|[0-9a-f:.]+)$")  # a name, an IPv4/IPv6 address
_SCHEME = re.compile(r"^[a-z][a-z0-9+.-]*$")
_HEADER_LIST = re.compile(r"^[A-Za-z0-9!#$%&'*+.^_`|~-]+(\s*,\s*[A-Za-z0-9!#$%&'*+.^_`|~-]+)*$")


def normalise_origin(origin: str) -> str:
    """`HTTPS://Example.com:443/` -> `https://example.com`; raises ValueError if not an origin."""
    origin = origin.strip()
    if origin == "*":
        return origin
    parts = urlsplit(origin)
    if not parts.scheme or not parts.netloc or parts.path not in ("", "/") or parts.query \
            or parts.fragment or "@" in parts.netloc:
        raise ValueError(f"not an origin (scheme://host[:port]): {origin!r}")
    scheme, host = parts.scheme.lower(), (parts.hostname or "").lower()
    if not _HOST.match(host) or not _SCHEME.match(scheme):
        raise ValueError(f"not an origin (scheme://host[:port]): {origin!r}")
    try:
        port = parts.port
    except ValueError:
        raise ValueError(f"not an origin (bad port): {origin!r}") from None
    if ":" in host:
        host = f"[{host}]"
    default = {"http": 80, "https": 443}.get(scheme)
    return f"{scheme}://{host}" + (f":{port}" if port is not None and port != default else "")


class OriginGuard:
    def __init__(self, allowed_origins: Iterable[str] = ()) -> None:
        origins = {normalise_origin(o) for o in allowed_origins if o.strip()}
        self.any_origin = "*" in origins
        self.origins = frozenset(origins - {"*"})

    def allows(self, origin: str) -> bool:
        try:
            normal = normalise_origin(origin)
        except ValueError:
            return False  # includes "null" (sandboxed frames, file: pages)
        return self.any_origin or normal in self.origins

    def process_request(self, req: falcon.Request, resp: falcon.Response) -> None:
        origin = req.get_header("Origin")
        if origin is None:
            return
        if not self.allows(origin):
            raise ProxyError(403, f"Requests from the web origin `{origin[:200]}` are not allowed "
                                  f"(this protects your subscription from web pages you visit). "
                                  f"To let a web app use this server, start it with "
                                  f"--allowed-origin {origin[:200]}.",
                             code="origin_not_allowed")
        if req.method == "OPTIONS" and req.get_header("Access-Control-Request-Method"):
            self._preflight(req, resp)

    @staticmethod
    def _preflight(req: falcon.Request, resp: falcon.Response) -> None:
        resp.status = falcon.HTTP_204
        resp.set_header("Access-Control-Allow-Methods", ALLOWED_METHODS)
        # The origin is trusted by configuration, so the headers it asks for are allowed
        # (OpenAI's browser SDK sends a changing set of x-stainless-* headers).
        requested = (req.get_header("Access-Control-Request-Headers") or "").strip()
        if requested and _HEADER_LIST.match(requested):
            resp.set_header("Access-Control-Allow-Headers", requested)
        resp.set_header("Access-Control-Max-Age", PREFLIGHT_MAX_AGE)
        if req.get_header("Access-Control-Request-Private-Network") == "true":
            resp.set_header("Access-Control-Allow-Private-Network", "true")
        resp.complete = True  # no routing, no key: a preflight never carries credentials

    def process_response(self, req: falcon.Request, resp: falcon.Response, resource: object,
                         req_succeeded: bool) -> None:
        resp.append_header("Vary", "Origin")
        origin = req.get_header("Origin")
        if origin is None or not self.allows(origin):
            return
        resp.set_header("Access-Control-Allow-Origin", origin)
        resp.set_header("Access-Control-Expose-Headers", EXPOSED_HEADERS)
