"""Client authentication over real sockets: keys from flags, the environment and a key file;
both header forms; the OpenAI 401; which routes are public; the refusal to bind off loopback
without a key, through the real `claude-max-api` command."""

from __future__ import annotations

import hmac
import os
import signal
import subprocess
import sys
from pathlib import Path

import openai
import pytest

from proxy.contract.validation import validate_response
from proxy.http.middleware.auth import KeyRing
from proxy.server import UnsafeBind, check_bind
from proxy.settings import Settings, load_settings
from tests.support.http import call
from tests.support.servers import running_proxy

KEYS = ["key-one-0123456789", "key-two-abcdefghij"]


@pytest.fixture(scope="module")
def keyed():
    with running_proxy(Settings(api_keys=list(KEYS))) as proxy:
        yield proxy


def _assert_401(reply) -> dict:
    assert reply.status == 401
    assert reply.header("WWW-Authenticate", ) == 'Bearer realm="claude-max-api"'
    assert reply.header("Content-Type").startswith("application/json")
    body = reply.json()
    assert validate_response("ErrorResponse", body) == []
    error = body["error"]
    assert error["type"] == "invalid_request_error"
    assert error["code"] == "invalid_api_key"
    assert error["param"] is None
    return error


def test_missing_key_is_401(keyed):
    error = _assert_401(call(keyed.url, "GET", "/v1/models"))
    assert "didn't provide an API key" in error["message"]


@pytest.mark.parametrize("headers", [
    {"Authorization": "Bearer wrong-key"},
    {"x-api-key": "wrong-key"},
    {"Authorization": "Bearer " + KEYS[0][:-1]},           # a prefix of a real key
    {"Authorization": "Bearer " + KEYS[0] + "x"},           # a real key plus a character
    {"Authorization": "Basic " + KEYS[0]},                  # right secret, wrong scheme
    {"Authorization": KEYS[0]},                             # no scheme at all
    {"Authorization": "Bearer "},
], ids=["bearer", "x-api-key", "prefix", "suffix", "basic", "bare", "empty-bearer"])
def test_wrong_key_is_401(keyed, headers):
    error = _assert_401(call(keyed.url, "GET", "/v1/models", headers=headers))
    assert "Incorrect API key" in error["message"] or "didn't provide" in error["message"]
    assert KEYS[0] not in error["message"] and "wrong-key" not in error["message"]


@pytest.mark.parametrize("headers", [
    {"Authorization": "Bearer " + KEYS[0]},
    {"authorization": "bearer " + KEYS[1]},   # header name and scheme are case-insensitive
    {"x-api-key": KEYS[0]},
    {"X-Api-Key": KEYS[1]},
    {"Authorization": "Bearer not-it", "x-api-key": KEYS[1]},  # a client that sends both
], ids=["bearer", "bearer-lower", "x-api-key", "x-api-key-2", "both"])
def test_right_key_is_accepted(keyed, headers):
    reply = call(keyed.url, "GET", "/v1/models", headers=headers)
    assert reply.status == 200, reply.body
    assert reply.json()["object"] == "list"


def test_chat_completions_needs_the_key_before_anything_else(keyed):
    # Even a body that would be a 400 gets the 401 first: nothing is parsed for strangers.
    reply = call(keyed.url, "POST", "/v1/chat/completions", body=b"{not json")
    _assert_401(reply)


@pytest.mark.parametrize("path,public", [
    ("/health", True),            # liveness: says only "ok"
    ("/openapi.json", True),      # the public contract
    ("/health/ready", False),     # CLI path, version, login state
    ("/metrics", False),          # traffic, models, tokens
    ("/v1/models", False),
    ("/v1/models/sonnet", False),
    ("/v1/no-such-route", False),  # unknown paths are not probed without a key either
    ("/no-such-path", False),
])
def test_which_routes_need_the_key(keyed, path, public):
    reply = call(keyed.url, "GET", path)
    if public:
        assert reply.status == 200
    else:
        _assert_401(reply)
        assert call(keyed.url, "GET", path, headers={"x-api-key": KEYS[0]}).status != 401


def test_official_sdk_gets_an_authentication_error(keyed):
    bad = openai.OpenAI(base_url=keyed.base_url, api_key="sk-wrong", max_retries=0, timeout=30)
    with pytest.raises(openai.AuthenticationError) as caught:
        bad.models.list()
    assert caught.value.code == "invalid_api_key"
    good = openai.OpenAI(base_url=keyed.base_url, api_key=KEYS[1], max_retries=0, timeout=30)
    assert any(m.id == "sonnet" for m in good.models.list())


def test_without_keys_a_loopback_server_is_open():
    with running_proxy(Settings()) as proxy:
        assert call(proxy.url, "GET", "/v1/models").status == 200
        assert call(proxy.url, "GET", "/metrics").status == 200


def test_keys_from_a_key_file_env_and_flags_all_work(tmp_path):
    key_file = tmp_path / "keys"
    key_file.write_text("# keys for the team\n\n  file-key-1  \n#file-key-commented\nfile-key-2\n")
    settings = load_settings(environ={"CLAUDE_MAX_API_KEY": "env-key-1, env-key-2",
                                      "CLAUDE_MAX_API_API_KEY_FILE": str(key_file)})
    assert settings.api_keys == ["env-key-1", "env-key-2", "file-key-1", "file-key-2"]
    with running_proxy(settings) as proxy:
        for key in settings.api_keys:
            assert call(proxy.url, "GET", "/v1/models",
                        headers={"Authorization": f"Bearer {key}"}).status == 200, key
        for key in ("#file-key-commented", "file-key-commented", "# keys for the team", ""):
            assert call(proxy.url, "GET", "/v1/models",
                        headers={"Authorization": f"Bearer {key}"}).status == 401, key


def test_key_ring_compares_every_key_without_early_exit(monkeypatch):
    ring = KeyRing(["a", "b", "c", "b"])           # duplicates are kept once
    calls = []
    real = hmac.compare_digest

    def counting(x, y):
        calls.append((x, y))
        return real(x, y)

    monkeypatch.setattr(hmac, "compare_digest", counting)
    assert ring.accepts("a")                     # the first key matches ...
    assert len(calls) == 3                       # ... and the other two are still compared
    assert all(len(x) == len(y) == 32 for x, y in calls)  # digests: no length leak
    calls.clear()
    assert not ring.accepts("d") and len(calls) == 3
    assert not ring.accepts("A") and not ring.accepts("a ")
    assert not KeyRing([])
    assert not KeyRing(["", "  "])               # blank keys never turn auth on


# --- binding off loopback without a key, through the real command -------------------------

def _command() -> list[str]:
    script = Path(sys.executable).parent / "claude-max-api"
    return [str(script)] if script.exists() else [sys.executable, "-m", "proxy"]


def _clean_env(**extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("CLAUDE_MAX_API_")}
    env.update(extra)
    return env


@pytest.mark.parametrize("argv,env", [
    (["--host", "0.0.0.0", "--port", "0"], {}),
    (["--host", "::", "--port", "0"], {}),
    (["serve", "--host", "192.0.2.10", "--port", "0"], {}),
    # (Addresses not on this machine: if the check ever broke, these could not listen anyway.)
    (["--port", "0"], {"CLAUDE_MAX_API_HOST": "192.0.2.10"}),
    (["--host", "192.0.2.10", "--port", "0", "--api-key", ""], {}),    # an empty key is no key
    (["--host", "192.0.2.10", "--port", "0"], {"CLAUDE_MAX_API_KEY": " , "}),
], ids=["0.0.0.0", "::", "lan-ip", "env", "empty-key", "blank-env-keys"])
def test_non_loopback_bind_without_key_refuses_to_start(argv, env):
    done = subprocess.run(_command() + argv, env=_clean_env(**env), capture_output=True,
                          text=True, timeout=30)
    assert done.returncode == 2
    assert "Refusing to listen on" in done.stderr
    assert "could use your Claude subscription" in done.stderr
    assert "--api-key" in done.stderr                       # and says how to fix it
    assert "Serving on" not in done.stdout


def test_wildcard_origin_without_key_refuses_to_start():
    done = subprocess.run(_command() + ["--port", "0", "--allowed-origin", "*"],
                          env=_clean_env(), capture_output=True, text=True, timeout=60)
    assert done.returncode == 2
    assert "every web page you visit" in done.stderr


def test_malformed_origin_refuses_to_start():
    done = subprocess.run(_command() + ["--port", "0", "--allowed-origin", "localhost:3000"],
                          env=_clean_env(), capture_output=True, text=True, timeout=60)
    assert done.returncode == 2
    assert "not an origin" in done.stderr


def test_check_bind_accepts_loopback_or_a_key():
    for host in ("127.0.0.1", "127.0.0.2", "::1", "[::1]", "localhost"):
        check_bind(Settings(host=host))
    check_bind(Settings(host="0.0.0.0", api_keys=["k"]))
    with pytest.raises(UnsafeBind):
        check_bind(Settings(host="0.0.0.0", api_keys=["", " "]))
    for host in ("0.0.0.0", "::", "", "10.0.0.1", "example.com", "127.0.0.1.nip.io"):
        with pytest.raises(UnsafeBind):
            check_bind(Settings(host=host))


def test_the_real_command_serves_with_a_key_file_on_loopback(tmp_path):
    key_file = tmp_path / "keys"
    key_file.write_text("cmd-key\n")
    process = subprocess.Popen(_command() + ["--port", "0", "--api-key-file", str(key_file)],
                               env=_clean_env(), stdout=subprocess.PIPE,
                               stderr=subprocess.PIPE, text=True)
    try:
        line = process.stdout.readline()
        assert line.startswith("Serving on http://127.0.0.1:"), line
        url = line.split()[-1].removesuffix("/v1")
        assert call(url, "GET", "/v1/models").status == 401
        assert call(url, "GET", "/v1/models", headers={"x-api-key": "cmd-key"}).status == 200
    finally:
        process.send_signal(signal.SIGTERM)
        out, err = process.communicate(timeout=30)
    assert process.returncode == 0, err
    assert "cmd-key" not in err  # the key is never logged
