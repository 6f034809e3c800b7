"""Thinking as the stand-in plays it: the request's `thinking` setting decides the block's text,
as it does at the API (docs/standin.md, "Thinking"). Read over a real socket."""

from __future__ import annotations

from typing import Any

import pytest

from proxy.standin import Scenario, StandInUpstream

from .sseclient import messages_body, post

SCENARIO = Scenario(thinking="The full reasoning.", thinking_updates="A progress note.",
                    thinking_tokens=9, reply_text="Done.", split=5)


def ask(up: StandInUpstream, thinking: Any, scenario: Scenario = SCENARIO, stream: bool = True):
    up.add_scenario("t", scenario)
    body = messages_body("hi", stream=stream)
    if thinking is not None:
        body["thinking"] = thinking
    return post(up.base_url_for("t"), body)


@pytest.mark.parametrize("thinking, shown", [
    (None, "The full reasoning."),                                   # direct requests need not say
    ({"type": "adaptive"}, "The full reasoning."),
    ({"type": "adaptive", "display": "summarized"}, "The full reasoning."),
    ({"type": "enabled", "budget_tokens": 2000, "display": "summarized"}, "The full reasoning."),
    ({"type": "adaptive", "display": "updates"}, "A progress note."),
    ({"type": "adaptive", "display": "omitted"}, ""),
])
def test_the_display_decides_the_text_and_the_signature_stays(upstream, thinking, shown) -> None:
    r = ask(upstream, thinking)
    assert r.status == 200
    assert "".join(r.deltas("thinking_delta")) == shown
    assert len(r.deltas("thinking_delta")) == -(-len(shown) // 5)  # none at all for ""
    (signature,) = r.deltas("signature_delta")
    assert signature.startswith("sig_standin_")
    assert r.data("content_block_start")[0]["content_block"] == {"type": "thinking", "thinking": "",
                                                                 "signature": ""}
    assert r.data("message_delta")[0]["usage"]["output_tokens_details"] == {"thinking_tokens": 9}


def test_updates_without_notes_of_their_own_show_the_reasoning(upstream) -> None:
    # Scenarios written before display modes existed keep what they streamed.
    r = ask(upstream, {"type": "adaptive", "display": "updates"},
            Scenario(thinking="Old scenario.", reply_text="Done."))
    assert "".join(r.deltas("thinking_delta")) == "Old scenario."
    assert "output_tokens_details" not in r.data("message_delta")[0]["usage"]


def test_disabled_thinking_has_no_block_and_no_thinking_tokens(upstream) -> None:
    r = ask(upstream, {"type": "disabled"})
    assert [d["content_block"]["type"] for d in r.data("content_block_start")] == ["text"]
    assert r.data("message_delta")[0]["usage"]["output_tokens_details"] == {"thinking_tokens": 0}


def test_a_message_without_streaming_has_the_same_block(upstream) -> None:
    r = ask(upstream, {"type": "adaptive", "display": "omitted"}, stream=False)
    thinking, text = r.json["content"]
    assert thinking["type"] == "thinking" and thinking["thinking"] == ""
    assert thinking["signature"].startswith("sig_standin_")
    assert text == {"type": "text", "text": "Done."}
    assert r.json["usage"]["output_tokens_details"] == {"thinking_tokens": 9}


def test_highlights_are_refused(upstream) -> None:
    # The CLI's own help: the API takes `highlights` only from sessions Anthropic hosts.
    r = ask(upstream, {"type": "adaptive", "display": "highlights"})
    assert r.status == 400 and r.json["error"]["type"] == "invalid_request_error"
    assert "highlights" in r.json["error"]["message"]
