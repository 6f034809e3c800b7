"""The legacy text completion stream rules and the official chunk schema accept what the proxy
sends and catch each broken rule."""

from __future__ import annotations

import copy

import pytest

from proxy.chat.completion import CompletionIdentity
from proxy.chat.text_completion import TextChunks
from proxy.claude.events import Usage
from proxy.contract.official import official_validator
from proxy.errors import ProxyError
from proxy.http import sse
from tests.support.stream_rules import check_text_stream, prompts_of

IDENTITY = CompletionIdentity("cmpl-1", 1_760_000_000, "sonnet")
FACTORY = TextChunks(IDENTITY)


def chunks(include_usage: bool, prompts: int = 2) -> list[dict]:
    out = []
    for index in range(prompts):
        out += [FACTORY.text(index, "Hel"), FACTORY.text(index, "lo"),
                FACTORY.finish(index, "length" if index else "stop")]
    if include_usage:
        out.append(FACTORY.usage(Usage(input_tokens=5, output_tokens=2)))
    return out


def body(payloads: list, done: bool = True) -> bytes:
    return b"".join(sse.event(p) for p in payloads) + (sse.DONE if done else b"")


@pytest.mark.parametrize("include_usage", [False, True])
def test_the_proxys_own_stream_conforms(include_usage):
    report = check_text_stream(sse.HEARTBEAT + body(chunks(include_usage)),
                               include_usage=include_usage, prompts=2).assert_ok()
    assert report.texts == {0: "Hello", 1: "Hello"}
    assert report.finish_reasons == {0: "stop", 1: "length"}
    assert (report.usage is not None) == include_usage


def test_a_failed_stream_conforms():
    error = ProxyError(502, "The CLI crashed.", code="claude_cli_crashed").body()
    payloads = [FACTORY.text(0, "Hi"), FACTORY.finish(0, "stop"), FACTORY.text(1, "On"), error]
    report = check_text_stream(body(payloads), include_usage=True, prompts=2).assert_ok()
    assert report.error["code"] == "claude_cli_crashed" and report.texts == {0: "Hi", 1: "On"}


def _set(chunk: int, key: str, value):
    def edit(c):
        c[chunk][key] = value
        return c
    return edit


def _choice(chunk: int, key: str, value):
    def edit(c):
        c[chunk]["choices"][0][key] = value
        return c
    return edit


BROKEN = {
    "object": (_set(1, "object", "chat.completion.chunk"), "object"),
    "id differs": (_set(2, "id", "cmpl-2"), "`id` differs"),
    "second finish": (_choice(0, "finish_reason", "stop"), "second finish_reason"),
    "text after finish": (lambda c: c[:3] + [FACTORY.text(0, "late")] + c[3:], "after its"),
    "unfinished choice": (lambda c: c[:5], "no finish_reason"),
    "missing choice": (lambda c: c[:3], "expected one for each"),
    "usage on a text chunk": (_set(0, "usage", None), "include_usage"),
    "usage chunk not last": (lambda c: [c[-1], *c[:-1]], "include_usage"),
}


@pytest.mark.parametrize("defect", sorted(BROKEN))
def test_each_broken_rule_is_caught(defect):
    edit, expected = BROKEN[defect]
    payloads = edit(copy.deepcopy(chunks(True)))
    problems = check_text_stream(body(payloads), include_usage=True, prompts=2).problems
    assert any(expected in p for p in problems), problems


def test_unasked_usage_missing_done_and_a_finished_failure_are_caught():
    assert check_text_stream(body(chunks(True)), include_usage=False, prompts=2).problems
    assert any("[DONE]" in p for p in check_text_stream(
        body(chunks(False), done=False), include_usage=False, prompts=2).problems)
    error = ProxyError(502, "x", code="claude_cli_crashed").body()
    failed = check_text_stream(body([*chunks(False, prompts=1), error]), include_usage=False,
                               prompts=1)
    assert any("finish_reason for every choice" in p for p in failed.problems)


def test_prompts_of_counts_choices():
    assert prompts_of({"prompt": "x"}) == 1
    assert prompts_of({"prompt": ["a", "b"]}) == 2
    assert prompts_of({"prompt": []}) is None and prompts_of(None) is None


def test_the_official_schema_takes_null_finish_reasons_only_in_stream_chunks():
    text = FACTORY.text(0, "Hel")
    strict = official_validator("CreateCompletionResponse", "strict")
    chunk = official_validator("CreateCompletionResponse", "strict", stream_chunk=True)
    assert not strict.is_valid(text)       # the spec's one shape says finish_reason is set
    assert chunk.is_valid(text) and chunk.is_valid(FACTORY.finish(0, "stop"))
    assert chunk.is_valid(FACTORY.usage(Usage(input_tokens=1)))
    assert not chunk.is_valid({**text, "choices": [{**text["choices"][0], "finish_reason": "x"}]})
    assert not chunk.is_valid({**text, "usage": None})   # usage may not be null
    with pytest.raises(KeyError):
        official_validator("CreateChatCompletionResponse", stream_chunk=True)
