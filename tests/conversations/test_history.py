"""OpenAI messages -> native turns (proxy/conversations/history.py), through render()."""

from __future__ import annotations

import json

import pytest

from proxy.chat.render import render
from proxy.conversations.history import FALLBACKS
from proxy.conversations.turns import Turn, fingerprint

PNG = "iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAYAAAAfFcSJAAAADUlEQVR42mNk+M9QDwADhgGAWjR9awAAAABJRU5ErkJggg=="


def text(t: str) -> str:
    return json.dumps({"text": t, "type": "text"}, separators=(",", ":"), ensure_ascii=False)


def test_a_conversation_becomes_native_turns_and_a_last_user_turn():
    prompt = render([
        {"role": "system", "content": "Be brief."},
        {"role": "user", "content": "My name is Ada."},
        {"role": "assistant", "content": "Noted, Ada."},
        {"role": "user", "content": "What is my name?"},
    ])
    assert prompt.system == "Be brief."
    assert prompt.fallback is None
    assert prompt.history == (Turn("user", (text("My name is Ada."),)),
                              Turn("assistant", (text("Noted, Ada."),)))
    assert prompt.blocks == ("What is my name?",) and prompt.images == ()


def test_consecutive_same_role_messages_merge_into_one_turn_in_order():
    prompt = render([
        {"role": "user", "content": "a"},
        {"role": "user", "content": [{"type": "text", "text": "b"}, {"type": "text", "text": "c"}]},
        {"role": "assistant", "content": "x"},
        {"role": "assistant", "content": [{"type": "refusal", "refusal": "no"}]},
        {"role": "user", "content": "d"},
        {"role": "user", "content": "e"},
    ])
    assert [t.role for t in prompt.history] == ["user", "assistant"]
    assert prompt.history[0].blocks == (text("a"), text("b"), text("c"))
    assert prompt.history[1].blocks == (text("x"), text("no"))
    assert prompt.blocks == ("d", "e")


def test_an_image_in_an_earlier_turn_is_an_image_block_where_it_stood():
    url = f"data:image/png;base64,{PNG}"
    prompt = render([
        {"role": "user", "content": [{"type": "text", "text": "look"},
                                     {"type": "image_url", "image_url": {"url": url}},
                                     {"type": "text", "text": "what is it?"}]},
        {"role": "assistant", "content": "A pixel."},
        {"role": "user", "content": "Which colour?"},
    ])
    first = prompt.history[0].content()
    assert [b["type"] for b in first] == ["text", "image", "text"]
    assert first[1]["source"] == {"type": "base64", "media_type": "image/png", "data": PNG}


def test_a_name_is_a_text_block_before_the_message_content():
    prompt = render([
        {"role": "user", "name": "ada", "content": "hi"},
        {"role": "assistant", "content": "hello"},
        {"role": "user", "name": "bob<&>", "content": "and me?"},
    ])
    assert prompt.history[0].blocks == (text("<name>ada</name>"), text("hi"))
    assert prompt.blocks == ("<name>bob&lt;&amp;&gt;</name>", "and me?")


def test_the_last_user_turn_keeps_its_images_in_place():
    url = f"data:image/png;base64,{PNG}"
    prompt = render([{"role": "user", "content": "a"}, {"role": "assistant", "content": "b"},
                     {"role": "user", "content": [{"type": "image_url", "image_url": {"url": url}},
                                                  {"type": "text", "text": "and this?"}]}])
    assert prompt.blocks == ("and this?",)
    assert [i for i, _ in prompt.images] == [0]


@pytest.mark.parametrize("messages, reason", [
    ([{"role": "user", "content": "a"}, {"role": "system", "content": "now be terse"},
      {"role": "user", "content": "b"}], "system_mid_conversation"),
    ([{"role": "user", "content": "a"}, {"role": "assistant", "content": None},
      {"role": "user", "content": "b"}], "empty_assistant"),
    ([{"role": "user", "content": "a"}, {"role": "assistant", "content": " \n"},
      {"role": "user", "content": "b"}], "blank_part"),
    ([{"role": "user", "content": "a"}, {"role": "assistant", "content": "The answer is"}],
     "ends_with_assistant"),
    ([{"role": "assistant", "content": "How can I help?"}, {"role": "user", "content": "hi"}],
     "starts_with_assistant"),
    ([{"role": "user", "content": "a"}, {"role": "assistant", "content": "b"},
      {"role": "user", "content": "/help"}], "typed_input"),
    ([{"role": "user", "content": "a"}, {"role": "assistant", "content": "b"},
      {"role": "user", "content": "ask @ada"}], "typed_input"),
    ([{"role": "user", "content": ""}], "empty"),
])
def test_what_cannot_be_native_goes_as_a_transcript_with_its_reason(messages, reason):
    prompt = render(messages)
    assert prompt.fallback == reason and reason in FALLBACKS
    assert prompt.history == ()
    assert prompt.blocks[-1].startswith("Write the assistant's next reply")


def test_mentions_and_slashes_in_earlier_turns_stay_native():
    # Only the stdin message is read as typed input; session turns are not.
    prompt = render([{"role": "user", "content": "/help @ada"}, {"role": "assistant", "content": "b"},
                     {"role": "user", "content": "c"}])
    assert prompt.fallback is None and prompt.history[0].blocks == (text("/help @ada"),)


def test_fingerprints_tell_histories_apart_exactly():
    a = (Turn.of("user", [{"type": "text", "text": "x"}]),)
    assert fingerprint(a) == fingerprint((Turn.of("user", [{"text": "x", "type": "text"}]),))
    assert fingerprint(a) != fingerprint((Turn.of("assistant", [{"type": "text", "text": "x"}]),))
    assert fingerprint(a) != fingerprint((Turn.of("user", [{"type": "text", "text": "x "}]),))
    two = (Turn.of("user", [{"type": "text", "text": "a"}, {"type": "text", "text": "b"}]),)
    split = (Turn.of("user", [{"type": "text", "text": "a"}]),
             Turn.of("user", [{"type": "text", "text": "b"}]))
    assert fingerprint(two) != fingerprint(split)
