"""A plain HTTP client, not an OpenAI SDK: `requests`, as many scripts use it, decoding the
stream line by line as text. It must read what the server says, in any script: the stream
declares its charset (SSE is UTF-8; `requests` assumes ISO-8859-1 for a text/* type without
one, which turned every non-ASCII delta into mojibake)."""

from __future__ import annotations

import json

import requests

from tests.sdk.conftest import API_KEY


def test_requests_decodes_a_stream_of_any_script(replay_server, catalogue):
    request = catalogue.entries["unicode_emoji_cjk"].request
    expected = request["messages"][-1]["content"]
    with requests.post(replay_server.base_url + "/chat/completions", stream=True, timeout=60,
                       headers={"Authorization": f"Bearer {API_KEY}"},
                       json={**request, "stream": True}) as response:
        assert response.status_code == 200
        assert response.headers["content-type"] == "text/event-stream; charset=utf-8"
        lines = [line for line in response.iter_lines(decode_unicode=True) if line]
    assert lines[-1] == "data: [DONE]"
    chunks = [json.loads(line[len("data: "):]) for line in lines[:-1]]
    text = "".join(c["choices"][0]["delta"].get("content") or "" for c in chunks if c["choices"])
    assert text == expected and any(ord(ch) > 0xFFFF for ch in text)


def test_requests_decodes_a_completion_of_any_script(replay_server, catalogue):
    request = catalogue.entries["unicode_rtl_combining"].request
    response = requests.post(replay_server.base_url + "/chat/completions", json=request,
                             headers={"Authorization": f"Bearer {API_KEY}"}, timeout=60)
    assert response.headers["content-type"].startswith("application/json")
    content = json.loads(response.text)["choices"][0]["message"]["content"]
    assert content == request["messages"][-1]["content"]
