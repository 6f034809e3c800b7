"""The request log of real requests: one line each, with id, status, model, timings and
tokens; the client's X-Request-Id honoured and echoed; JSON lines on request; and the prompt
and completion text absent unless --log-content."""

from __future__ import annotations

import io
import json
import logging
import time

import httpx
import pytest

from proxy.http.logging import JSONFormatter, configure_logging
from proxy.standin.scenario import Scenario
from tests.support.http import call

pytestmark = pytest.mark.live

MARKER = "zebra-quartz-7781"   # the prompt's secret; the stand-in echoes it into the answer
ECHO = Scenario(reply_text="You said: {echo}")


def _access_records(caplog, path: str, count: int = 1, timeout: float = 30.0):
    """Access records for `path` (a stream's record is written when its body closes)."""
    deadline = time.monotonic() + timeout
    while True:
        found = [r for r in caplog.records if r.name == "claude_max_api.access"
                 and getattr(r, "fields", {}).get("path") == path]
        if len(found) >= count or time.monotonic() > deadline:
            return found
        time.sleep(0.05)


def _everything_logged(caplog) -> str:
    return caplog.text + "\n".join(r.getMessage() + json.dumps(getattr(r, "fields", None),
                                                               default=str)
                                   for r in caplog.records)


def _chat(proxy, stream: bool, **headers) -> httpx.Response:
    return httpx.post(proxy.base_url + "/chat/completions", timeout=60, headers=headers, json={
        "model": "sonnet", "stream": stream,
        "messages": [{"role": "system", "content": f"system {MARKER}"},
                     {"role": "user", "content": f"please repeat {MARKER}"}]})


def _answer(response: httpx.Response, stream: bool) -> str:
    if not stream:
        return response.json()["choices"][0]["message"]["content"]
    chunks = [json.loads(line[6:]) for line in response.text.splitlines()
              if line.startswith("data: {")]
    return "".join(c["choices"][0]["delta"].get("content") or "" for c in chunks if c["choices"])


@pytest.mark.parametrize("stream", [False, True], ids=["plain", "stream"])
def test_prompt_and_completion_never_logged_by_default(live_proxy_for, caplog, stream):
    caplog.set_level(logging.DEBUG)   # everything, from every logger, waitress included
    proxy = live_proxy_for(ECHO)
    response = _chat(proxy, stream)
    assert response.status_code == 200
    assert MARKER in _answer(response, stream)          # the answer did carry it ...
    (record,) = _access_records(caplog, "/v1/chat/completions")
    assert MARKER not in _everything_logged(caplog)     # ... the log never did
    fields = record.fields
    assert fields["status"] == 200 and fields["model"] == "sonnet"
    assert fields["prompt_tokens"] == 100 and fields["completion_tokens"] == 12
    assert fields["duration_ms"] > 0 and fields["first_token_ms"] > 0
    assert fields["first_token_ms"] <= fields["duration_ms"]
    assert fields["request_id"] == response.headers["X-Request-Id"]
    assert fields.get("stream", False) is stream
    assert "prompt" not in fields and "completion" not in fields


@pytest.mark.parametrize("stream", [False, True], ids=["plain", "stream"])
def test_log_content_is_an_explicit_opt_in(live_proxy_for, caplog, stream):
    caplog.set_level(logging.INFO)
    proxy = live_proxy_for(ECHO, log_content=True)
    response = _chat(proxy, stream)
    assert response.status_code == 200
    (record,) = _access_records(caplog, "/v1/chat/completions")
    assert record.fields["system_prompt"] == f"system {MARKER}"
    assert record.fields["prompt"] == f"please repeat {MARKER}"
    assert record.fields["completion"] == f"You said: please repeat {MARKER}"


def test_request_id_is_honoured_and_echoed(live_proxy_for, caplog):
    caplog.set_level(logging.INFO)
    proxy = live_proxy_for()
    response = _chat(proxy, False, **{"X-Request-Id": "client-trace-42"})
    assert response.headers["X-Request-Id"] == "client-trace-42"
    (record,) = _access_records(caplog, "/v1/chat/completions")
    assert record.fields["request_id"] == "client-trace-42"
    for bad in ("has spaces", "x" * 200, "semi;colon"):
        reply = call(proxy.url, "GET", "/v1/models", headers={"X-Request-Id": bad})
        generated = reply.header("X-Request-Id")
        assert generated.startswith("req_") and generated != bad
    refused = call(proxy.url, "GET", "/v1/models",
                   headers={"X-Request-Id": "refused-1", "Origin": "https://evil.example"})
    assert refused.status == 403 and refused.header("X-Request-Id") == "refused-1"


def test_refusals_are_logged_with_their_code(live_proxy_for, caplog):
    caplog.set_level(logging.INFO)
    proxy = live_proxy_for(api_keys=["k"])
    assert call(proxy.url, "GET", "/v1/models").status == 401
    (record,) = _access_records(caplog, "/v1/models")
    assert record.fields["status"] == 401 and record.fields["error"] == "invalid_api_key"


def test_text_lines_cannot_be_split_by_a_path(live_proxy_for, caplog):
    caplog.set_level(logging.INFO)
    proxy = live_proxy_for()
    call(proxy.url, "GET", "/v1/models/a%0Afake=1%20status=200")
    (record,) = _access_records(caplog, "/v1/models/a\nfake=1 status=200")
    line = record.getMessage()
    assert "\n" not in line and 'path="/v1/models/a\\nfake=1 status=200"' in line


def test_json_lines(live_proxy_for):
    stream = io.StringIO()
    handler = logging.StreamHandler(stream)
    handler.setFormatter(JSONFormatter())
    access = logging.getLogger("claude_max_api.access")
    previous = access.level
    access.addHandler(handler)
    access.setLevel(logging.INFO)
    try:
        proxy = live_proxy_for(log_format="json")
        assert _chat(proxy, False).status_code == 200
        assert call(proxy.url, "GET", "/health").status == 200
    finally:
        access.removeHandler(handler)
        access.setLevel(previous)
    lines = [json.loads(line) for line in stream.getvalue().splitlines()]
    assert [line["path"] for line in lines] == ["/v1/chat/completions", "/health"]
    chat = lines[0]
    assert chat["level"] == "info" and chat["logger"] == "claude_max_api.access"
    assert chat["ts"].endswith("Z") and chat["status"] == 200 and chat["completion_tokens"] == 12
    assert MARKER not in stream.getvalue()


def test_configure_logging_switches_the_root_format():
    root = logging.getLogger()
    saved = [(h, h.formatter) for h in root.handlers], root.level
    out = io.StringIO()
    handler = logging.StreamHandler(out)
    root.addHandler(handler)
    try:
        configure_logging("json")
        logging.getLogger("claude_max_api").info("hello %s", "there")
        configure_logging("text")
        logging.getLogger("claude_max_api").info("plain")
    finally:
        root.removeHandler(handler)
        for h, formatter in saved[0]:
            h.setFormatter(formatter)
        root.setLevel(saved[1])
    first, second = out.getvalue().splitlines()
    assert json.loads(first)["message"] == "hello there"
    assert second.endswith("INFO claude_max_api plain")
