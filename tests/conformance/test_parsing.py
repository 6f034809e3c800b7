"""The suite's own parsers: SSE as clients read it, and --server specs."""

from __future__ import annotations

import pytest

from conformance.sse import parse
from conformance.target import parse_server_spec


def test_sse_events_comments_and_line_endings():
    body = b': keep-alive\r\n\r\ndata: {"a":1}\r\n\r\ndata:{"b":2}\n\ndata: x\ndata: y\n\ndata: [DONE]\n\n'
    parsed = parse(body)
    assert parsed.data == ['{"a":1}', '{"b":2}', "x\ny", "[DONE]"]
    assert parsed.comments == 1 and parsed.problems == [] and parsed.unterminated is None


def test_sse_an_unterminated_last_event_is_dropped_and_reported():
    parsed = parse(b"data: one\n\ndata: [DONE]")
    assert parsed.data == ["one"]
    assert parsed.unterminated == "data: [DONE]"
    assert "ends inside an event" in parsed.problems[0]


@pytest.mark.parametrize("body, problem", [
    (b"garbage\n\ndata: x\n\n", "no colon"),
    (b"foo: bar\ndata: x\n\n", "unknown field"),
    (b"event: ping\n\n", "without data"),
    (b"data: \xff\xfe\n\n", "not valid UTF-8"),
])
def test_sse_problems(body, problem):
    assert any(problem in p for p in parse(body).problems)


def test_sse_event_type_and_id_are_kept():
    (event,) = parse(b"event: error\nid: 7\ndata: {}\n\n").events
    assert (event.event, event.id, event.fields) == ("error", "7", ("event", "id", "data"))


def test_server_spec_with_every_field(monkeypatch):
    monkeypatch.setenv("SPEC_KEY", "sk-x")
    target = parse_server_spec("lite=http://127.0.0.1:1/v1/,model=m,key=env:SPEC_KEY,version=1.2,"
                               "skip=params.stop.*:ignores stop, really;errors.*:no validation")
    assert (target.name, target.base_url, target.model, target.api_key, target.version) == \
        ("lite", "http://127.0.0.1:1/v1", "m", "sk-x", "1.2")
    assert target.limitation_for("params.stop.array").reason == "ignores stop, really"
    assert target.limitation_for("errors.bad_role").reason == "no validation"
    assert target.limitation_for("stream.done.last") is None
    assert "sk-x" not in repr(target.describe())


def test_a_bare_url_is_a_server_spec_named_after_its_address():
    target = parse_server_spec("http://127.0.0.1:3456/v1")
    assert target.name == "127.0.0.1-3456" and target.model is None


@pytest.mark.parametrize("spec", ["x=ftp://h/v1", "bad name=http://h/v1", "x=http://h/v1,nope=1"])
def test_bad_server_specs(spec):
    with pytest.raises(ValueError):
        parse_server_spec(spec)


def test_a_refused_item_is_explained_by_the_branch_its_type_names():
    """A oneOf of items told apart by `type`: the message names what is wrong with the branch
    the item claims to be, not why it is not the last branch tried."""
    from conformance.schemas import official_errors

    message = {"type": "message", "id": "m", "role": "assistant", "status": "completed",
               "content": [{"type": "output_text", "text": "hi", "annotations": [],
                            "logprobs": None}]}
    page = {"object": "list", "data": [message], "first_id": "m", "last_id": "m",
            "has_more": False}
    (error,) = official_errors("ResponseItemList", page)
    assert error.startswith("data[0].content[0].logprobs:"), error
    message["content"][0]["logprobs"] = []
    assert official_errors("ResponseItemList", page) == []
