"""The SSE the stand-in sends for each scenario knob, read over a real socket."""

from __future__ import annotations

import json

import pytest

from proxy.standin import Scenario, StandInUpstream, ToolUse

from .sseclient import messages_body, post

TEXT_EVENTS = ["message_start", "content_block_start", "ping"]
END_EVENTS = ["content_block_stop", "message_delta", "message_stop"]


def serve(up: StandInUpstream, scenario: Scenario, name: str = "s") -> str:
    up.add_scenario(name, scenario)
    return up.base_url_for(name)


def test_plain_text_stream_matches_the_api_shape(upstream: StandInUpstream) -> None:
    scenario = Scenario(reply_text="Hello there, streamed in pieces.", split=5, input_tokens=11,
                        cache_creation_input_tokens=7, cache_read_input_tokens=5, output_tokens=9)
    r = post(serve(upstream, scenario), messages_body("hi", model="claude-sonnet-5-5"))

    assert r.status == 200
    assert r.headers["content-type"] == "text/event-stream; charset=utf-8"
    assert r.headers["transfer-encoding"] == "chunked"
    assert r.headers["request-id"].startswith("req_standin_")
    assert not r.truncated
    deltas = r.deltas("text_delta")
    assert r.names == TEXT_EVENTS + ["content_block_delta"] * len(deltas) + END_EVENTS
    assert "".join(deltas) == scenario.reply_text
    assert len(deltas) == 7 and all(1 <= len(d) <= 5 for d in deltas)

    start = r.data("message_start")[0]["message"]
    assert start == {
        "id": start["id"], "type": "message", "role": "assistant", "model": "claude-sonnet-5-5",
        "content": [], "stop_reason": None, "stop_sequence": None,
        "usage": {"input_tokens": 11, "cache_creation_input_tokens": 7, "cache_read_input_tokens": 5,
                  "output_tokens": 1},
    }
    assert start["id"].startswith("msg_standin_")
    assert r.data("content_block_start")[0] == {"type": "content_block_start", "index": 0,
                                                "content_block": {"type": "text", "text": ""}}
    assert r.data("message_delta")[0] == {"type": "message_delta",
                                          "delta": {"stop_reason": "end_turn", "stop_sequence": None},
                                          "usage": {"output_tokens": 9}}


def test_exact_framing_of_the_first_event(upstream: StandInUpstream) -> None:
    r = post(upstream.base_url, messages_body())
    first = r.raw.split(b"\n\n")[0]
    assert first.startswith(b'event: message_start\ndata: {"type":"message_start","message":{"id":"msg_standin_')


def test_default_split_gives_several_deltas(upstream: StandInUpstream) -> None:
    r = post(upstream.base_url, messages_body())
    assert len(r.deltas("text_delta")) >= 3


def test_echo_and_model_placeholders(upstream: StandInUpstream) -> None:
    url = serve(upstream, Scenario(reply_text="[{echo}] via {model}"))
    assert "".join(post(url, messages_body("plain", model="m-1")).deltas("text_delta")) == "[plain] via m-1"
    # The CLI puts a <system-reminder> block before the text when tools are on: not echoed.
    blocks = [{"type": "text", "text": "<system-reminder>\nnoise\n</system-reminder>\n"},
              {"type": "text", "text": "a"}, {"type": "text", "text": "b"}]
    history = [{"role": "user", "content": "old"}, {"role": "assistant", "content": "x"},
               {"role": "user", "content": blocks},
               {"role": "system", "content": [{"type": "text", "text": "# Environment"}]}]
    r = post(url, messages_body(messages=history, model="m-2"))
    assert "".join(r.deltas("text_delta")) == "[a\nb] via m-2"


@pytest.mark.parametrize("stop_reason, stop_sequence", [("max_tokens", None), ("stop_sequence", "STOP"),
                                                        ("end_turn", None)])
def test_stop_reasons(upstream: StandInUpstream, stop_reason: str, stop_sequence: str | None) -> None:
    url = serve(upstream, Scenario(stop_reason=stop_reason, stop_sequence="STOP"))
    delta = post(url, messages_body()).data("message_delta")[0]["delta"]
    assert delta == {"stop_reason": stop_reason, "stop_sequence": stop_sequence}


def test_thinking_block_comes_first_with_a_signature(upstream: StandInUpstream) -> None:
    url = serve(upstream, Scenario(thinking="Let me think.", reply_text="Done.", split=4))
    r = post(url, messages_body())
    starts = [d["content_block"] for d in r.data("content_block_start")]
    assert starts == [{"type": "thinking", "thinking": "", "signature": ""}, {"type": "text", "text": ""}]
    assert "".join(r.deltas("thinking_delta")) == "Let me think."
    (signature,) = r.deltas("signature_delta")
    assert signature.startswith("sig_standin_")
    kinds = [(d["index"], d["delta"]["type"]) for d in r.data("content_block_delta")]
    assert kinds == [(0, "thinking_delta")] * 4 + [(0, "signature_delta")] + [(1, "text_delta")] * 2
    assert [d["index"] for d in r.data("content_block_stop")] == [0, 1]
    assert r.names[:3] == TEXT_EVENTS


def test_tool_use_then_text_after_the_tool_result(upstream: StandInUpstream) -> None:
    tool = ToolUse(name="Bash", input={"command": "echo hi", "description": "say hi"}, text="Let me run it.")
    url = serve(upstream, Scenario(tool_use=tool, after_tool_text="Tool said: {tool_result}", split=7))

    first = post(url, messages_body("run it"))
    starts = [d["content_block"] for d in first.data("content_block_start")]
    assert starts[0] == {"type": "text", "text": ""}
    assert starts[1]["type"] == "tool_use" and starts[1]["name"] == "Bash" and starts[1]["input"] == {}
    assert starts[1]["id"].startswith("toolu_01")
    assert "".join(first.deltas("text_delta")) == "Let me run it."
    fragments = first.deltas("input_json_delta")
    assert len(fragments) > 1 and json.loads("".join(fragments)) == tool.input
    assert first.data("message_delta")[0]["delta"]["stop_reason"] == "tool_use"

    history = [
        {"role": "user", "content": "run it"},
        {"role": "assistant", "content": [{"type": "tool_use", "id": starts[1]["id"], "name": "Bash", "input": tool.input}]},
        {"role": "user", "content": [{"type": "tool_result", "tool_use_id": starts[1]["id"], "is_error": True,
                                      "content": "<tool_use_error>No such tool</tool_use_error>"}]},
    ]
    second = post(url, messages_body(messages=history))
    assert [d["content_block"]["type"] for d in second.data("content_block_start")] == ["text"]
    assert "".join(second.deltas("text_delta")) == "Tool said: <tool_use_error>No such tool</tool_use_error>"
    assert second.data("message_delta")[0]["delta"]["stop_reason"] == "end_turn"


@pytest.mark.parametrize(
    "status, error_type",
    [(400, "invalid_request_error"), (401, "authentication_error"), (403, "permission_error"),
     (429, "rate_limit_error"), (500, "api_error"), (503, "api_error"), (529, "overloaded_error")],
)
def test_failures_answer_the_api_error_envelope(upstream: StandInUpstream, status: int, error_type: str) -> None:
    r = post(serve(upstream, Scenario(fail_status=status)), messages_body())
    assert r.status == status
    assert r.headers["content-type"] == "application/json"
    assert r.headers["request-id"].startswith("req_standin_")
    assert r.json["type"] == "error"
    assert r.json["error"]["type"] == error_type
    assert isinstance(r.json["error"]["message"], str) and r.json["error"]["message"]


def test_fail_count_headers_and_custom_body(upstream: StandInUpstream) -> None:
    body = {"type": "error", "error": {"type": "rate_limit_error", "message": "slow down"}}
    url = serve(upstream, Scenario(fail_status=429, fail_count=2, fail_headers={"retry-after": "3"}, fail_body=body))
    first, second, third = (post(url, messages_body()) for _ in range(3))
    assert (first.status, second.status, third.status) == (429, 429, 200)
    assert first.headers["retry-after"] == "3" and first.json == body
    assert "".join(third.deltas("text_delta")) == Scenario().reply_text


def test_fail_models_only_fails_those_models(upstream: StandInUpstream) -> None:
    url = serve(upstream, Scenario(fail_status=529, fail_models=("claude-opus-5-5",), reply_text="{model}"))
    assert post(url, messages_body(model="claude-opus-5-5")).status == 529
    assert post(url, messages_body(model="claude-opus-5-5")).status == 529
    ok = post(url, messages_body(model="claude-haiku-5-5"))
    assert ok.status == 200 and "".join(ok.deltas("text_delta")) == "claude-haiku-5-5"


def test_non_streaming_request_gets_a_message(upstream: StandInUpstream) -> None:
    url = serve(upstream, Scenario(thinking="t", reply_text="Hi {echo}", output_tokens=4))
    r = post(url, messages_body("you", stream=False))
    assert r.status == 200
    assert r.json["content"] == [{"type": "thinking", "thinking": "t", "signature": r.json["content"][0]["signature"]},
                                 {"type": "text", "text": "Hi you"}]
    assert r.json["stop_reason"] == "end_turn" and r.json["usage"]["output_tokens"] == 4


def test_first_byte_delay_and_chunk_delay(upstream: StandInUpstream) -> None:
    url = serve(upstream, Scenario(reply_text="abcdefgh", split=4, first_byte_delay=0.3, chunk_delay=0.05))
    r = post(url, messages_body())
    assert r.times[0] >= 0.3
    gaps = [b - a for a, b in zip(r.times, r.times[1:])]
    assert len(gaps) == len(r.events) - 1 and min(gaps) >= 0.04


def test_abort_after_events_truncates_the_stream(upstream: StandInUpstream) -> None:
    r = post(serve(upstream, Scenario(reply_text="abcdefghijkl", split=4, abort_after_events=4)), messages_body())
    assert r.truncated
    assert r.names == TEXT_EVENTS + ["content_block_delta"]
    assert upstream.requests[-1].events_sent == 4


def test_error_event_mid_stream(upstream: StandInUpstream) -> None:
    r = post(serve(upstream, Scenario(reply_text="abcdefghijkl", split=4, error_event_after=4)), messages_body())
    assert not r.truncated  # the stream ends properly after the error event
    assert r.names == TEXT_EVENTS + ["content_block_delta", "error"]
    assert r.events[-1][1] == {"type": "error", "error": {"type": "overloaded_error", "message": "Overloaded"}}


def test_ids_are_deterministic_per_scenario_and_call(upstream: StandInUpstream) -> None:
    url_a = serve(upstream, Scenario(), "a")
    url_b = serve(upstream, Scenario(), "b")

    def ids(url: str) -> tuple[str, str]:
        r = post(url, messages_body())
        return r.data("message_start")[0]["message"]["id"], r.headers["request-id"]

    run1 = [ids(url_a), ids(url_a), ids(url_b)]
    upstream.reset()
    run2 = [ids(url_a), ids(url_a), ids(url_b)]
    assert run1 == run2
    assert len({i for pair in run1 for i in pair}) == 6  # calls and scenarios all differ
