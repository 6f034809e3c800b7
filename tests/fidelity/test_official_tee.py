"""The official-spec check and the tee that applies it to every test server: conforming
answers pass, each kind of deviation is reported, and the plugin really sees the servers."""

from __future__ import annotations

import copy
import json

import falcon.testing
import pytest
import requests

import proxy.http.resources.chat as chat_resource
from proxy.app import create_app
from proxy.chat import completion as completion_module
from proxy.settings import Settings
from tests.contract.samples import COMPLETION
from tests.support.fidelity import Recorder, TeeApp, judge, official_problems
from tests.support.runners import wildcard_replay
from tests.support.servers import running_proxy

PATH = "/v1/chat/completions"
JSON = "application/json"
PLAIN = {"model": "claude-sonnet-4", "messages": [{"role": "user", "content": "What is 2 + 2?"}]}


def _judge(obj, status=200, path=PATH, method="POST", media=JSON):
    return official_problems(method, path, status, media, json.dumps(obj).encode())


def test_a_conforming_completion_passes():
    assert _judge(COMPLETION) == []


@pytest.mark.parametrize("drop, words", [
    (("choices", 0, "message", "refusal"), "'refusal' is a required property"),
    (("choices", 0, "logprobs"), "'logprobs' is a required property"),
    (("created",), "'created' is a required property"),
])
def test_the_strict_profile_requires_what_the_sdks_expect(drop, words):
    broken = copy.deepcopy(COMPLETION)
    node = broken
    for step in drop[:-1]:
        node = node[step]
    del node[drop[-1]]
    assert any(words in p for p in _judge(broken))


def test_errors_are_judged_on_every_path():
    error = {"error": {"message": "m", "type": "invalid_request_error", "param": None,
                       "code": None}}
    assert _judge(error, 404, "/nowhere", "GET") == []
    del error["error"]["param"]
    assert any("'param' is a required property" in p for p in _judge(error, 400))
    html = official_problems("GET", "/v1/models", 500, "text/html", b"<h1>oops</h1>")
    assert html and "not JSON" in html[0]


def test_models_are_judged():
    assert _judge({"object": "list", "data": [{"id": "x", "object": "model", "created": 1,
                                               "owned_by": "me"}]}, path="/v1/models",
                  method="GET") == []
    assert any("owned_by" in p for p in _judge({"id": "x", "object": "model", "created": 1},
                                               path="/v1/models/x", method="GET"))


def test_a_json_answer_to_a_stream_request_is_reported():
    problems = official_problems("POST", PATH, 200, JSON, json.dumps(COMPLETION).encode(),
                                 request_body={**PLAIN, "stream": True})
    assert any("not a stream" in p for p in problems)


def test_an_empty_success_body_is_reported():
    for media in (JSON, "text/event-stream"):
        assert official_problems("POST", PATH, 200, media, b"", request_body=PLAIN) == [
            f"POST {PATH} -> 200: an empty body"]
        # A client that left before the first byte has nothing to judge.
        assert official_problems("POST", PATH, 200, media, b"", complete=False) == []
    assert any("empty body" in p for p in
               official_problems("GET", "/v1/models", 200, JSON, b""))
    assert official_problems("GET", "/health", 200, JSON, b"") == []  # not an OpenAI answer


def _tee_client(runner=None):
    recorder = Recorder()
    app = TeeApp(create_app(Settings(), runner or wildcard_replay()), recorder)
    return recorder, falcon.testing.TestClient(app, headers={"Host": "127.0.0.1"})


def test_the_tee_keeps_requests_and_answers():
    recorder, client = _tee_client()
    client.simulate_post(PATH, json=PLAIN)
    client.simulate_post(PATH, json={**PLAIN, "stream": True,
                                     "stream_options": {"include_usage": True}})
    whole, streamed = recorder.drain()
    assert json.loads(bytes(whole.request_body)) == PLAIN
    assert (whole.status, whole.content_type) == (200, JSON)
    assert json.loads(bytes(whole.body))["choices"][0]["message"]["content"] == "2 + 2 = 4."
    assert streamed.content_type.startswith("text/event-stream") and streamed.exhausted
    assert whole.problems() == [] and streamed.problems() == []


def test_the_tee_catches_an_off_spec_answer(monkeypatch):
    def without_refusal(*args, **kwargs):
        answer = real(*args, **kwargs)
        del answer["choices"][0]["message"]["refusal"]
        return answer

    real = completion_module.completion_object
    monkeypatch.setattr(chat_resource, "completion_object", without_refusal)
    recorder, client = _tee_client()
    client.simulate_post(PATH, json=PLAIN)
    [exchange] = recorder.drain()
    assert any("'refusal' is a required property" in p for p in exchange.problems())


def test_the_tee_applies_the_stream_rules(monkeypatch):
    monkeypatch.setattr(chat_resource.sse, "DONE", b"")
    recorder, client = _tee_client()
    client.simulate_post(PATH, json={**PLAIN, "stream": True})
    [exchange] = recorder.drain()
    assert any("[DONE]" in p for p in exchange.problems())


def test_the_plugin_wraps_every_test_server(official_spec_recorder):
    official_spec_recorder.drain()
    with running_proxy(Settings(), wildcard_replay()) as proxy:
        assert requests.post(proxy.base_url + "/chat/completions", json=PLAIN,
                             timeout=60).status_code == 200
    exchanges = official_spec_recorder.drain()
    assert [(e.method, e.path, e.status) for e in exchanges] == [("POST", PATH, 200)]
    assert exchanges[0].problems() == []


def test_an_answer_left_open_is_reported():
    """A stream its test neither finished nor closed is reported, not judged as far as it
    went; closed within the grace, it is judged whole."""
    recorder = Recorder()
    app = TeeApp(create_app(Settings(), wildcard_replay()), recorder)
    environ = falcon.testing.create_environ(PATH, method="POST", host="127.0.0.1",
                                            headers={"Content-Type": JSON},
                                            body=json.dumps({**PLAIN, "stream": True}))
    body = app(environ, lambda status, headers, exc_info=None: None)
    first = next(iter(body))
    assert first.startswith(b"data: ")
    [exchange] = recorder.drain(settle=0.1)
    problems = judge([exchange], grace=0.1)
    assert len(problems) == 1 and "still open when the test ended" in problems[0], problems
    for _ in body:
        pass
    body.close()
    assert judge([exchange], grace=0.1) == []
