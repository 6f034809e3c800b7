"""The stream-rule checker accepts what the proxy sends and catches each broken rule."""

from __future__ import annotations

import json

import pytest

from proxy.chat.completion import ChunkFactory, CompletionIdentity
from proxy.claude.events import Usage
from proxy.errors import ProxyError
from proxy.http import sse
from tests.support.stream_rules import check_stream, include_usage_of

IDENTITY = CompletionIdentity("chatcmpl-1", 1_760_000_000, "claude-sonnet-4")


def chunks(include_usage: bool, texts=("Hel", "lo"), finish="stop") -> list[dict]:
    factory = ChunkFactory(IDENTITY, include_usage)
    out = [factory.role(), *(factory.content(t) for t in texts), factory.finish(finish)]
    if include_usage:
        out.append(factory.usage(Usage(input_tokens=5, output_tokens=2)))
    return out


def body(payloads: list, done: bool = True) -> bytes:
    raw = b"".join(sse.event(p) for p in payloads)
    return raw + (sse.DONE if done else b"")


@pytest.mark.parametrize("include_usage", [False, True])
def test_the_proxys_own_stream_conforms(include_usage):
    raw = sse.HEARTBEAT + body(chunks(include_usage))
    report = check_stream(raw, include_usage=include_usage).assert_ok()
    assert report.text == "Hello" and report.finish_reason == "stop"
    assert (report.usage is not None) == include_usage


def test_a_failed_stream_conforms():
    factory = ChunkFactory(IDENTITY, True)
    error = ProxyError(502, "The CLI crashed.", code="claude_cli_crashed").body()
    report = check_stream(body([factory.role(), factory.content("Once"), error]),
                          include_usage=True).assert_ok()
    assert report.error["code"] == "claude_cli_crashed" and report.text == "Once"


def _drop_role(c):
    c[0]["choices"][0]["delta"].pop("role")
    return c


def _second_finish(c):
    c[1]["choices"][0]["finish_reason"] = "length"
    return c


def _vary(key, value):
    def edit(c):
        c[1][key] = value
        return c
    return edit


BROKEN = {
    # name: (edit of the usage-less chunks, raw edit, words the problem must contain)
    "no role first": (_drop_role, None, "role 'assistant'"),
    "role again": (lambda c: c[:2] + [{**c[2], "choices": [{**c[2]["choices"][0], "delta": {
        "role": "assistant", "content": "x"}}]}] + c[3:], None, "sets role"),
    "two finishes": (_second_finish, None, "2 non-null finish_reasons"),
    "no finish": (lambda c: c[:-1], None, "0 non-null finish_reasons"),
    "content after finish": (lambda c: c[:1] + c[-1:] + c[1:-1], None, "content after"),
    "id varies": (_vary("id", "chatcmpl-2"), None, "`id` differs"),
    "created varies": (_vary("created", 1), None, "`created` differs"),
    "model varies": (_vary("model", "other"), None, "`model` differs"),
    "wrong object": (_vary("object", "chat.completion"), None, "object is"),
    "no DONE": (None, lambda raw: raw[:-len(sse.DONE)], "no `data: [DONE]`"),
    "DONE twice": (None, lambda raw: raw + sse.DONE, "once, last"),
    "event after DONE": (None, lambda raw: raw + sse.event({"x": 1}), "once, last"),
    "bytes after DONE": (None, lambda raw: raw + b"\n", "bytes after"),
    "unterminated event": (None, lambda raw: raw[:-1], "ends inside an event"),
    "named event": (None, lambda raw: b"event: chunk\n" + raw, "unnamed"),
    "not JSON": (None, lambda raw: b"data: {oops\n\n" + raw, "neither JSON"),
    "not UTF-8": (None, lambda raw: raw.replace(b"Hel", b"H\xffl"), "UTF-8"),
    "usage chunk unasked": (lambda c: c + [{**c[0], "choices": [], "usage": {}}], None,
                            "include_usage was not"),
}


@pytest.mark.parametrize("name", sorted(BROKEN))
def test_each_broken_rule_is_caught(name):
    edit, raw_edit, words = BROKEN[name]
    payloads = chunks(False)
    if edit:
        payloads = edit(json.loads(json.dumps(payloads)))
    raw = body(payloads)
    if raw_edit:
        raw = raw_edit(raw)
    problems = check_stream(raw, include_usage=False).problems
    assert any(words in p for p in problems), problems


def test_usage_rules_with_include_usage():
    good = chunks(True)
    without = good[:-1]
    assert any("include_usage" in p for p in check_stream(body(without), include_usage=True).problems)
    moved = [good[0], good[-1], *good[1:-1]]
    assert any("the last" in p for p in check_stream(body(moved), include_usage=True).problems)
    nulls_missing = json.loads(json.dumps(good))
    del nulls_missing[1]["usage"]
    assert any("lack `usage: null`" in p
               for p in check_stream(body(nulls_missing), include_usage=True).problems)


def test_failed_stream_rules():
    factory = ChunkFactory(IDENTITY, True)
    error = ProxyError(502, "x", code="upstream_error").body()
    not_last = check_stream(body([factory.role(), error, factory.content("late")]),
                            include_usage=True).problems
    assert any("not the last" in p for p in not_last)
    finished = check_stream(body([factory.role(), factory.finish("stop"), error]),
                            include_usage=True).problems
    assert any("also has finish_reason" in p for p in finished)


def test_include_usage_of_a_request():
    assert include_usage_of({"stream": True, "stream_options": {"include_usage": True}})
    assert not include_usage_of({"stream": False, "stream_options": {"include_usage": True}})
    assert not include_usage_of({"stream": True, "stream_options": None})
    assert not include_usage_of({"stream": True})
