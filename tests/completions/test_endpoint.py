"""POST /v1/completions through the real waitress server and the official `openai` SDK, with
recorded CLI runs (no CLI needed): what the client gets, what the CLI was asked to do, and every
refusal and failure path. The official-spec tee (tests/support/fidelity.py) also judges every
answer here against CreateCompletionResponse and the text stream rules."""

from __future__ import annotations

import json
import logging
import threading
import time

import httpx
import openai
import pytest

from proxy.errors import ProxyError
from proxy.settings import Settings
from tests.support.runners import WildcardReplay, load_cassette, wildcard_replay
from tests.support.servers import running_proxy
from tests.support.stream_rules import check_text_stream

ANSWER = "2 + 2 = 4."        # plain_question's recorded answer (21 prompt, 9 completion tokens)


class Sequence:
    """A runner whose n-th run replays the n-th cassette (the last one after that); a name of
    None makes that start fail as a missing CLI does."""

    def __init__(self, *names: str | None) -> None:
        self.names = names
        self.runners = {n: wildcard_replay(n) for n in set(names) if n}
        self.invocations = []
        self._lock = threading.Lock()

    def start(self, invocation):
        with self._lock:
            name = self.names[min(len(self.invocations), len(self.names) - 1)]
            self.invocations.append(invocation)
        if name is None:
            raise ProxyError(503, "claude not found", code="claude_cli_not_found")
        return self.runners[name].start(invocation)

    def close(self):
        for runner in self.runners.values():
            runner.close()


@pytest.fixture
def serve():
    opened = []

    def start(runner=None, **settings):
        context = running_proxy(Settings(**settings), runner or wildcard_replay())
        proxy = context.__enter__()
        opened.append(context)
        proxy.client = openai.OpenAI(base_url=proxy.base_url, api_key="unused", max_retries=0,
                                     timeout=30)
        return proxy

    yield start
    for context in reversed(opened):
        context.__exit__(None, None, None)


def no_slot_taken(proxy, within: float = 5.0) -> bool:
    """Whether every CLI slot is free (a stream's body is closed just after its last byte)."""
    deadline = time.monotonic() + within
    while proxy.parts.limiter.stats()["active"] and time.monotonic() < deadline:
        time.sleep(0.01)
    return proxy.parts.limiter.stats()["active"] == 0


def post(proxy, body, **headers) -> httpx.Response:
    return httpx.post(proxy.base_url + "/completions", json=body, headers=headers, timeout=30)


# --- what the client gets --------------------------------------------------------------------

def test_one_prompt(serve):
    proxy = serve()
    result = proxy.client.completions.create(model="claude-sonnet-4", prompt="What is 2 + 2?")
    assert result.object == "text_completion" and result.id.startswith("cmpl-")
    assert result.model == "claude-sonnet-4"
    assert [(c.index, c.text, c.finish_reason, c.logprobs) for c in result.choices] == \
        [(0, ANSWER, "stop", None)]
    assert (result.usage.prompt_tokens, result.usage.completion_tokens,
            result.usage.total_tokens) == (21, 9, 30)


def test_what_the_cli_is_asked_a_prompt_alone_no_system_prompt_16_tokens_not_kept(serve):
    runner = wildcard_replay()
    proxy = serve(runner)
    proxy.client.completions.create(model="sonnet", prompt="Once upon a time")
    proxy.client.completions.create(model="sonnet", prompt="x", max_tokens=300,
                                    temperature=0.2, top_p=0.5, frequency_penalty=1,
                                    presence_penalty=1, seed=3, user="u",
                                    logit_bias={"50256": -100}, echo=False, suffix="")
    first, second = runner.invocations
    assert (first.system_prompt, first.blocks, first.history) == ("", ("Once upon a time",), ())
    assert first.max_output_tokens == 16               # OpenAI's default for this endpoint
    assert second.max_output_tokens == 300
    assert not first.continuable and not second.continuable   # a completion is not continued


def test_a_list_of_prompts_gets_one_choice_each_from_one_run_each(serve):
    runner = wildcard_replay()
    proxy = serve(runner)
    result = proxy.client.completions.create(model="sonnet", prompt=["one", "two", "three"])
    assert [(c.index, c.text) for c in result.choices] == [(0, ANSWER), (1, ANSWER), (2, ANSWER)]
    assert [i.blocks for i in runner.invocations] == [("one",), ("two",), ("three",)]
    assert (result.usage.prompt_tokens, result.usage.completion_tokens) == (63, 27)


def test_the_runs_take_turns_within_the_concurrency_limit(serve):
    """One slot is enough for any number of prompts: each run frees its slot first."""
    proxy = serve(max_concurrent=1, queue_size=0)
    result = proxy.client.completions.create(model="sonnet", prompt=["a", "b", "c"])
    assert len(result.choices) == 3
    chunks = list(proxy.client.completions.create(model="sonnet", prompt=["a", "b"],
                                                  stream=True))
    assert {c.choices[0].index for c in chunks} == {0, 1}
    assert no_slot_taken(proxy)


def test_echo_prepends_each_prompt(serve):
    proxy = serve()
    result = proxy.client.completions.create(model="sonnet", prompt=["Q1: ", "Q2: "], echo=True)
    assert [c.text for c in result.choices] == ["Q1: " + ANSWER, "Q2: " + ANSWER]
    chunks = list(proxy.client.completions.create(model="sonnet", prompt="Q: ", echo=True,
                                                  stream=True))
    assert chunks[0].choices[0].text == "Q: "
    assert "".join(c.choices[0].text for c in chunks) == "Q: " + ANSWER


def test_stop_cuts_the_answer(serve):
    proxy = serve()
    result = proxy.client.completions.create(model="sonnet", prompt="x", stop=["= 4"])
    assert result.choices[0].text == "2 + 2 " and result.choices[0].finish_reason == "stop"
    streamed = list(proxy.client.completions.create(model="sonnet", prompt="x", stop="+",
                                                    stream=True))
    assert "".join(c.choices[0].text for c in streamed) == "2 "


def test_max_tokens_reached_is_finish_reason_length(serve):
    proxy = serve(wildcard_replay("stop_max_tokens"))
    result = proxy.client.completions.create(model="sonnet", prompt="Rome?", max_tokens=16)
    assert result.choices[0].finish_reason == "length"
    assert result.choices[0].text == "Rome was founded, according to legend, in 753"
    chunks = list(proxy.client.completions.create(model="sonnet", prompt="Rome?",
                                                  stream=True))
    assert [c.choices[0].finish_reason for c in chunks if c.choices[0].finish_reason] == \
        ["length"]


@pytest.mark.parametrize("include_usage", [False, True])
def test_streaming_chunks(serve, include_usage):
    proxy = serve()
    options = {"stream_options": {"include_usage": True}} if include_usage else {}
    response = post(proxy, {"model": "sonnet", "prompt": ["a", "b"], "stream": True, **options})
    assert response.status_code == 200
    assert response.headers["content-type"] == "text/event-stream; charset=utf-8"
    report = check_text_stream(response.content, include_usage=include_usage,
                               prompts=2).assert_ok()
    assert report.texts == {0: ANSWER, 1: ANSWER}
    assert report.finish_reasons == {0: "stop", 1: "stop"}
    if include_usage:
        assert (report.usage["prompt_tokens"], report.usage["completion_tokens"]) == (42, 18)
    # What the SDK makes of it: the same text, streamed or not.
    chunks = list(proxy.client.completions.create(model="sonnet", prompt="a", stream=True,
                                                  **options))
    assert "".join(c.choices[0].text for c in chunks if c.choices) == ANSWER
    assert (chunks[-1].usage is not None) == include_usage


def test_plan_headers_and_the_log_line(serve, caplog):
    proxy = serve()
    with caplog.at_level(logging.INFO, logger="claude_max_api.access"):
        response = post(proxy, {"model": "sonnet", "prompt": ["a", "b"]})
    assert response.headers["x-claude-plan-status"]
    fields = [r.fields for r in caplog.records if getattr(r, "fields", {}).get("path")
              == "/v1/completions"][-1]
    assert (fields["status"], fields["finish_reason"], fields["prompt_tokens"],
            fields["completion_tokens"]) == (200, "stop", 42, 18)
    metrics = httpx.get(proxy.url + "/metrics").text
    assert 'route="/v1/completions"' in metrics


def test_per_key_limits_count_a_completion_once(serve):
    proxy = serve(api_keys=["alice=sk-a"], key_concurrent=1, key_rpm=1)
    ok = post(proxy, {"model": "sonnet", "prompt": ["a", "b"]}, authorization="Bearer sk-a")
    assert ok.status_code == 200 and ok.headers["x-ratelimit-remaining-requests"] == "0"
    over = post(proxy, {"model": "sonnet", "prompt": "a"}, authorization="Bearer sk-a")
    assert over.status_code == 429 and over.json()["error"]["code"] == "rate_limit_exceeded"


# --- refusals ------------------------------------------------------------------------------

REFUSED = {
    "token array": ({"prompt": [1212, 318]}, "prompt", "unsupported_value"),
    "token arrays": ({"prompt": [[1212, 318], [13]]}, "prompt", "unsupported_value"),
    "suffix": ({"prompt": "x", "suffix": "end"}, "suffix", "unsupported_parameter"),
    "logprobs": ({"prompt": "x", "logprobs": 0}, "logprobs", "unsupported_parameter"),
    "n": ({"prompt": "x", "n": 2}, "n", "unsupported_parameter"),
    "best_of": ({"prompt": "x", "best_of": 2}, "best_of", "unsupported_parameter"),
    "too many prompts": ({"prompt": ["x"] * 17}, "prompt", "too_many_prompts"),
    "surrogate": ({"prompt": ["ok", "\ud800"]}, "prompt[1]", "invalid_unicode"),
    "max_tokens 0": ({"prompt": "x", "max_tokens": 0}, "max_tokens", "integer_below_min_value"),
    "empty list": ({"prompt": []}, "prompt", "empty_array"),
    "no prompt": ({}, "prompt", "missing_required_parameter"),
    "null prompt": ({"prompt": None}, "prompt", "invalid_type"),
    "bad stop": ({"prompt": "x", "stop": 5}, "stop", "invalid_type"),
    "chat body": ({"messages": [{"role": "user", "content": "x"}]}, "prompt",
                  "missing_required_parameter"),
}


@pytest.mark.parametrize("case", sorted(REFUSED))
@pytest.mark.parametrize("stream", [False, True], ids=["whole", "stream"])
def test_what_cannot_be_honoured_is_a_400_naming_the_field(serve, case, stream):
    runner = wildcard_replay()
    proxy = serve(runner)
    fields, param, code = REFUSED[case]
    response = httpx.post(proxy.base_url + "/completions", timeout=30,
                          content=json.dumps({"model": "sonnet", **fields, "stream": stream}),
                          headers={"content-type": "application/json"})
    assert response.status_code == 400, response.text
    error = response.json()["error"]
    assert (error["param"], error["code"], error["type"]) == (param, code,
                                                             "invalid_request_error")
    assert runner.invocations == []                    # nothing ran


def test_a_prompt_over_the_size_limit_names_its_place(serve):
    proxy = serve(max_prompt_chars=100)
    with pytest.raises(openai.BadRequestError) as caught:
        proxy.client.completions.create(model="sonnet", prompt=["short", "x" * 101])
    assert caught.value.body["param"] == "prompt[1]"
    assert caught.value.body["code"] == "context_length_exceeded"


def test_an_unknown_model_is_a_404(serve):
    proxy = serve()
    with pytest.raises(openai.NotFoundError) as caught:
        proxy.client.completions.create(model="gpt-3.5-turbo-instruct", prompt="x")
    assert caught.value.body["code"] == "model_not_found"


def test_a_prompt_the_cli_would_act_on_goes_as_a_transcript(serve):
    """The raw prompt is the user turn, with chat's protections: `/help` is not a command."""
    runner = wildcard_replay()
    proxy = serve(runner)
    proxy.client.completions.create(model="sonnet", prompt="/help")
    blocks = runner.invocations[0].blocks
    assert '<turn role="user">/help</turn>' in blocks[0] and not blocks[-1].startswith("/")


# --- failures --------------------------------------------------------------------------------

@pytest.mark.parametrize("stream", [False, True], ids=["whole", "stream"])
def test_a_failure_before_the_first_chunk_is_a_real_status(serve, stream):
    proxy = serve(wildcard_replay("upstream_529"))
    response = post(proxy, {"model": "sonnet", "prompt": "x", "stream": stream})
    assert response.status_code == 503 and response.headers["retry-after"] == "1"
    assert response.json()["error"]["code"] == "upstream_overloaded"


def test_a_failure_after_the_first_chunk_is_an_sse_error_then_done(serve):
    proxy = serve(wildcard_replay("killed_mid_stream"))
    response = post(proxy, {"model": "sonnet", "prompt": "x", "stream": True,
                            "stream_options": {"include_usage": True}})
    assert response.status_code == 200
    report = check_text_stream(response.content, include_usage=True, prompts=1).assert_ok()
    assert report.texts == {0: "Once upon "} and report.error["code"] == "claude_cli_crashed"
    with pytest.raises(openai.APIError):
        list(proxy.client.completions.create(model="sonnet", prompt="x", stream=True))


def test_a_later_prompts_failure(serve):
    """Without streaming the whole request fails with that run's status; streamed, the first
    choice has been sent, so the failure is an SSE error event."""
    proxy = serve(Sequence("plain_question", "upstream_529"))
    response = post(proxy, {"model": "sonnet", "prompt": ["a", "b"]})
    assert response.status_code == 503
    proxy = serve(Sequence("plain_question", "upstream_529"))
    response = post(proxy, {"model": "sonnet", "prompt": ["a", "b"], "stream": True})
    report = check_text_stream(response.content, include_usage=False, prompts=2).assert_ok()
    assert report.finish_reasons == {0: "stop"} and report.error["code"] == "upstream_overloaded"


def test_a_later_run_that_cannot_start_ends_the_stream_with_its_error(serve):
    runner = Sequence("plain_question", None)
    proxy = serve(runner)
    response = post(proxy, {"model": "sonnet", "prompt": ["a", "b", "c"], "stream": True})
    report = check_text_stream(response.content, include_usage=False, prompts=3).assert_ok()
    assert report.texts == {0: ANSWER} and report.error["code"] == "claude_cli_not_found"
    assert len(runner.invocations) == 2               # the third prompt never started
    assert no_slot_taken(proxy)


class Recording(WildcardReplay):
    """Counts runs alive at once, to prove they take turns."""

    def __init__(self):
        super().__init__(load_cassette("plain_question"))
        self.alive = 0
        self.most = 0

    def start(self, invocation):
        process = super().start(invocation)
        self.alive += 1
        self.most = max(self.most, self.alive)
        close = process.close

        def closing():
            if not getattr(process, "_counted", False):
                process._counted = True
                self.alive -= 1
            close()
        process.close = closing
        return process


@pytest.mark.parametrize("stream", [False, True], ids=["whole", "stream"])
def test_one_run_at_a_time_and_every_run_ended(serve, stream):
    runner = Recording()
    proxy = serve(runner)
    response = post(proxy, {"model": "sonnet", "prompt": ["a", "b", "c"], "stream": stream})
    assert response.status_code == 200 and no_slot_taken(proxy)
    assert (runner.most, runner.alive) == (1, 0)


def test_a_client_that_leaves_mid_stream_ends_the_run_and_no_later_one_starts(serve):
    runner = WildcardReplay(load_cassette("slow_stream"), timing="recorded")
    proxy = serve(runner)
    with httpx.stream("POST", proxy.base_url + "/completions", timeout=30, json={
            "model": "sonnet", "prompt": ["a", "b", "c"], "stream": True}) as response:
        assert response.status_code == 200
        for line in response.iter_lines():
            if line.startswith("data: {"):
                break                                  # the first text chunk, then leave
    assert no_slot_taken(proxy)
    time.sleep(3.0)  # past the recorded run's end (2.8 s): a server still reading it would
    assert len(runner.invocations) == 1                # have started the next prompt by now
    assert no_slot_taken(proxy, within=0)
