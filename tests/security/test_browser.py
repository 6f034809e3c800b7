"""Browser drive-by protection over real sockets: foreign origins, CORS preflights, and Host
headers a DNS-rebinding page would send."""

from __future__ import annotations

import pytest

from proxy.contract.validation import validate_response
from proxy.http.middleware.hosts import HostGuard
from proxy.settings import Settings
from tests.support.http import call, chat_body
from tests.support.servers import running_proxy

APP = "https://app.example.com"
KEY = "browser-test-key"


@pytest.fixture(scope="module")
def default():
    """Out of the box: no origins allowed, no keys."""
    with running_proxy(Settings()) as proxy:
        yield proxy


@pytest.fixture(scope="module")
def with_app():
    """One allowed web app origin, a key, an extra host name."""
    settings = Settings(allowed_origins=[APP], api_keys=[KEY],
                        allowed_hosts=["proxy.lan", "pinned.lan:8443"])
    with running_proxy(settings) as proxy:
        yield proxy


def _error(reply, status: int, code: str) -> dict:
    assert reply.status == status, reply.body
    body = reply.json()
    assert validate_response("ErrorResponse", body) == []
    assert body["error"]["code"] == code
    return body["error"]


def _no_cors(reply) -> None:
    assert reply.header("Access-Control-Allow-Origin") is None
    assert reply.header("Access-Control-Allow-Methods") is None


# --- Origin --------------------------------------------------------------------------------

@pytest.mark.parametrize("origin", ["https://evil.example", "http://localhost:8000",
                                    "http://127.0.0.1:3456", "null", "file://",
                                    "https://app.example.com.evil.example"])
def test_foreign_origin_is_refused_before_anything_runs(default, origin):
    reply = call(default.url, "POST", "/v1/chat/completions", body=chat_body(),
                 headers={"Origin": origin})
    error = _error(reply, 403, "origin_not_allowed")
    assert "--allowed-origin" in error["message"]        # says how to allow a real web app
    _no_cors(reply)
    assert default.parts.limiter.stats()["active"] == 0


def test_foreign_origin_is_refused_on_every_route(default):
    for path in ("/v1/models", "/health/ready", "/metrics", "/v1/models/sonnet"):
        reply = call(default.url, "GET", path, headers={"Origin": "https://evil.example"})
        _error(reply, 403, "origin_not_allowed")


def test_foreign_origin_is_refused_even_with_a_valid_key(with_app):
    reply = call(with_app.url, "GET", "/v1/models",
                 headers={"Origin": "https://evil.example", "Authorization": f"Bearer {KEY}"})
    _error(reply, 403, "origin_not_allowed")


def test_requests_without_origin_are_unaffected(default):
    reply = call(default.url, "GET", "/v1/models")
    assert reply.status == 200
    _no_cors(reply)


def test_allowed_origin_gets_cors_headers(with_app):
    reply = call(with_app.url, "GET", "/v1/models",
                 headers={"Origin": APP, "Authorization": f"Bearer {KEY}"})
    assert reply.status == 200
    assert reply.header("Access-Control-Allow-Origin") == APP
    assert "Origin" in reply.header("Vary")
    assert "X-Request-Id" in reply.header("Access-Control-Expose-Headers")
    assert reply.header("Access-Control-Allow-Credentials") is None  # no cookies, ever


def test_allowed_origin_can_read_its_401(with_app):
    reply = call(with_app.url, "GET", "/v1/models", headers={"Origin": APP})
    _error(reply, 401, "invalid_api_key")
    assert reply.header("Access-Control-Allow-Origin") == APP


def test_allowed_origin_matches_case_and_default_port_insensitively(with_app):
    for origin in ("https://APP.example.com", "https://app.example.com:443"):
        reply = call(with_app.url, "GET", "/v1/models",
                     headers={"Origin": origin, "x-api-key": KEY})
        assert reply.status == 200, origin
    reply = call(with_app.url, "GET", "/v1/models",
                 headers={"Origin": "http://app.example.com", "x-api-key": KEY})
    _error(reply, 403, "origin_not_allowed")                 # another scheme is another origin


# --- preflight -------------------------------------------------------------------------------

PREFLIGHT = {"Access-Control-Request-Method": "POST",
             "Access-Control-Request-Headers": "authorization, content-type, x-stainless-os"}


def test_preflight_from_foreign_origin_is_refused(with_app):
    reply = call(with_app.url, "OPTIONS", "/v1/chat/completions",
                 headers={"Origin": "https://evil.example", **PREFLIGHT})
    _error(reply, 403, "origin_not_allowed")
    _no_cors(reply)


def test_preflight_is_refused_when_no_origin_is_configured(default):
    reply = call(default.url, "OPTIONS", "/v1/chat/completions",
                 headers={"Origin": APP, **PREFLIGHT})
    _error(reply, 403, "origin_not_allowed")
    _no_cors(reply)


def test_preflight_from_allowed_origin_is_answered_without_a_key(with_app):
    reply = call(with_app.url, "OPTIONS", "/v1/chat/completions",
                 headers={"Origin": APP, "Access-Control-Request-Private-Network": "true",
                          **PREFLIGHT})
    assert reply.status == 204, reply.body
    assert reply.body == b""
    assert reply.header("Access-Control-Allow-Origin") == APP
    assert "POST" in reply.header("Access-Control-Allow-Methods")
    assert reply.header("Access-Control-Allow-Headers") == PREFLIGHT["Access-Control-Request-Headers"]
    assert int(reply.header("Access-Control-Max-Age")) > 0
    assert reply.header("Access-Control-Allow-Private-Network") == "true"


def test_preflight_never_echoes_malformed_header_lists(with_app):
    reply = call(with_app.url, "OPTIONS", "/v1/chat/completions",
                 headers={"Origin": APP, "Access-Control-Request-Method": "POST",
                          "Access-Control-Request-Headers": "x-a\tevil: 1"})
    assert reply.status == 204
    assert reply.header("Access-Control-Allow-Headers") is None


def test_options_that_is_not_a_preflight_stays_405(with_app):
    reply = call(with_app.url, "OPTIONS", "/v1/models", headers={"Origin": APP})
    _error(reply, 401, "invalid_api_key")   # not a preflight: the key is checked, then the method
    reply = call(with_app.url, "OPTIONS", "/v1/models", headers={"Origin": APP, "x-api-key": KEY})
    _error(reply, 405, "method_not_allowed")


# --- Host (DNS rebinding) --------------------------------------------------------------------

def test_rebinding_host_is_refused(default):
    # What a rebinding page's same-origin request looks like: its own name, our port, no Origin.
    port = default.url.rsplit(":", 1)[1]
    for host in (f"evil.example:{port}", "evil.example", f"localhost.evil.example:{port}",
                 f"127.0.0.1.nip.io:{port}"):
        reply = call(default.url, "GET", "/v1/models", headers={"Host": host})
        error = _error(reply, 403, "host_not_allowed")
        assert "--allowed-host" in error["message"]
    reply = call(default.url, "POST", "/v1/chat/completions", body=chat_body(),
                 headers={"Host": f"evil.example:{port}"})
    _error(reply, 403, "host_not_allowed")


def test_loopback_and_ip_hosts_are_accepted(default):
    port = default.url.rsplit(":", 1)[1]
    for host in (f"127.0.0.1:{port}", f"localhost:{port}", f"LOCALHOST:{port}", f"[::1]:{port}",
                 "localhost", "localhost:9999",   # tunnels and port mappings change the port
                 f"192.168.1.20:{port}"):         # an IP is never a rebinding name
        reply = call(default.url, "GET", "/v1/models", headers={"Host": host})
        assert reply.status == 200, (host, reply.body)


def test_allowed_hosts_are_accepted(with_app):
    ok = {"x-api-key": KEY}
    assert call(with_app.url, "GET", "/v1/models", headers={"Host": "proxy.lan:1234", **ok}).status == 200
    assert call(with_app.url, "GET", "/v1/models", headers={"Host": "pinned.lan:8443", **ok}).status == 200
    _error(call(with_app.url, "GET", "/v1/models", headers={"Host": "pinned.lan:9000", **ok}),
           403, "host_not_allowed")
    _error(call(with_app.url, "GET", "/v1/models", headers={"Host": "other.lan", **ok}),
           403, "host_not_allowed")


def test_bad_host_is_refused_before_the_key_is_checked(with_app):
    reply = call(with_app.url, "GET", "/v1/models", headers={"Host": "evil.example"})
    _error(reply, 403, "host_not_allowed")


def test_host_guard_rules():
    guard = HostGuard("myhost.example", ["a.lan", "b.lan:81"])
    assert guard.allows("myhost.example:3456")      # the bound name
    assert guard.allows("MyHost.Example.")          # case and a trailing dot do not matter
    assert guard.allows("[::1]") and guard.allows("[fe80::1]:80") and guard.allows("10.1.2.3")
    assert guard.allows("a.lan:1") and guard.allows("b.lan:81")
    assert not guard.allows("b.lan") and not guard.allows("b.lan:82")
    assert not guard.allows("") and not guard.allows(":80") and not guard.allows("evil")
    wildcard = HostGuard("0.0.0.0")
    assert not wildcard.allows("0.0.0.0.evil.example") and not wildcard.allows("evil.example")
