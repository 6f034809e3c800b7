"""Every limit refuses over a real socket with a clear OpenAI-style error, and each is
configurable: body size (the app's 413 and waitress's, both in OpenAI's shape), messages,
prompt size, header size; and the waitress settings the server is built with."""

from __future__ import annotations

import json

import pytest

from proxy.contract.validation import validate_response
from proxy.settings import Settings
from tests.support.http import call, chat_body, raw
from tests.support.servers import running_proxy

BODY_LIMIT = 4096


@pytest.fixture(scope="module")
def small():
    settings = Settings(max_body_bytes=BODY_LIMIT, max_messages=3, max_prompt_chars=100,
                        max_header_bytes=8192)
    with running_proxy(settings) as proxy:
        yield proxy


def _error(reply, status: int, code: str) -> dict:
    assert reply.status == status, reply.body[:500]
    assert reply.header("Content-Type").startswith("application/json")
    body = reply.json()
    assert validate_response("ErrorResponse", body) == []
    assert body["error"]["code"] == code
    return body["error"]


def _padded(size: int) -> bytes:
    base = chat_body("x")
    return base[:-1] + b" " * (size - len(base)) + b"}"


def test_body_at_the_limit_is_read(small):
    body = json.dumps({"model": "sonnet", "messages": [{"role": "user", "content": "x"}] * 4}
                      ).encode().ljust(BODY_LIMIT)
    assert len(body) == BODY_LIMIT
    # Read and parsed: the refusal is about the messages, not the size.
    _error(call(small.url, "POST", "/v1/chat/completions", body=body), 400, "too_many_messages")


@pytest.mark.parametrize("size", [BODY_LIMIT + 1, BODY_LIMIT + 1000])
def test_body_just_over_the_limit_is_413_from_the_app(small, size):
    error = _error(call(small.url, "POST", "/v1/chat/completions", body=_padded(size)),
                   413, "request_too_large")
    assert str(BODY_LIMIT) in error["message"]


@pytest.mark.parametrize("size", [BODY_LIMIT + 200_000, 20_000_000])
def test_body_far_over_the_limit_is_413_before_it_is_read(small, size):
    # waitress refuses from Content-Length alone; the answer is still OpenAI's shape.
    head = (f"POST /v1/chat/completions HTTP/1.1\r\nHost: 127.0.0.1\r\n"
            f"Content-Type: application/json\r\nContent-Length: {size}\r\n\r\n").encode()
    answer = raw(small.url, head + b"{")
    status_line, _, rest = answer.partition(b"\r\n")
    assert status_line.startswith(b"HTTP/1.1 413"), answer[:300]
    headers, _, body = rest.partition(b"\r\n\r\n")
    assert b"application/json" in headers.lower()
    error = json.loads(body)["error"]
    assert validate_response("ErrorResponse", {"error": error}) == []
    assert error["code"] == "request_too_large" and str(BODY_LIMIT) in error["message"]


def test_chunked_body_over_the_limit_is_413(small):
    chunk = b" " * 1000
    parts = [b"POST /v1/chat/completions HTTP/1.1\r\nHost: 127.0.0.1\r\n"
             b"Content-Type: application/json\r\nTransfer-Encoding: chunked\r\n\r\n"]
    for _ in range(200):
        parts.append(b"%x\r\n%s\r\n" % (len(chunk), chunk))
    parts.append(b"0\r\n\r\n")
    answer = raw(small.url, b"".join(parts))
    assert answer.startswith(b"HTTP/1.1 413"), answer[:300]
    error = json.loads(answer.partition(b"\r\n\r\n")[2])["error"]
    assert error["code"] == "request_too_large"


def test_too_many_messages_is_400(small):
    body = json.dumps({"model": "sonnet",
                       "messages": [{"role": "user", "content": "x"}] * 4}).encode()
    error = _error(call(small.url, "POST", "/v1/chat/completions", body=body),
                   400, "too_many_messages")
    assert error["param"] == "messages" and "at most 3" in error["message"]


def test_messages_at_the_limit_pass_the_check(small):
    body = json.dumps({"model": "sonnet", "n": 2,   # n=2 is refused after the message check
                       "messages": [{"role": "user", "content": "x"}] * 3}).encode()
    error = _error(call(small.url, "POST", "/v1/chat/completions", body=body),
                   400, "unsupported_parameter")
    assert error["param"] == "n"


def test_prompt_over_the_limit_is_400(small):
    error = _error(call(small.url, "POST", "/v1/chat/completions", body=chat_body("y" * 101)),
                   400, "context_length_exceeded")
    assert error["param"] == "messages" and "at most 100" in error["message"]
    # The limit counts the rendered prompt, system prompt included.
    body = json.dumps({"model": "sonnet", "messages": [
        {"role": "system", "content": "s" * 60}, {"role": "user", "content": "u" * 60}]}).encode()
    _error(call(small.url, "POST", "/v1/chat/completions", body=body),
           400, "context_length_exceeded")


def test_oversize_headers_are_431(small):
    reply = call(small.url, "GET", "/v1/models", headers={"X-Padding": "p" * 9000})
    error = _error(reply, 431, "headers_too_large")
    assert "8192" in error["message"]
    assert call(small.url, "GET", "/v1/models", headers={"X-Padding": "p" * 4000}).status == 200


def test_malformed_http_is_400_in_openai_shape(small):
    answer = raw(small.url, b"POST /v1/chat/completions HTTP/1.1\r\nHost: 127.0.0.1\r\n"
                            b"Content-Length: twelve\r\n\r\n")
    assert answer.startswith(b"HTTP/1.1 400"), answer[:200]
    error = json.loads(answer.partition(b"\r\n\r\n")[2])["error"]
    assert error["type"] == "invalid_request_error" and error["code"] == "invalid_request"


def test_waitress_gets_the_configured_limits():
    settings = Settings(max_body_bytes=1234, max_header_bytes=5678,
                        connection_idle_timeout=17.0, max_connections=9, threads=4)
    with running_proxy(settings) as proxy:
        adj = proxy.server.adj
        assert adj.max_request_header_size == 5678
        assert adj.channel_timeout == 17.0
        assert adj.connection_limit == 9 + 2       # + waitress's listener and wake-up pipe
        assert 1234 < adj.max_request_body_size <= 1234 + 64 * 1024
        assert proxy.parts.service.max_messages == Settings().max_messages


def test_defaults_are_generous_but_bounded():
    defaults = Settings()
    assert defaults.max_body_bytes == 8 * 1024 * 1024
    assert defaults.max_header_bytes == 64 * 1024
    assert 0 < defaults.connection_idle_timeout <= 120
    assert defaults.max_messages == 2048 and defaults.max_prompt_chars == 4 * 1024 * 1024
