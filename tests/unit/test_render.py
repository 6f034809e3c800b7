"""OpenAI messages -> the CLI's system prompt and user turn."""

from __future__ import annotations

import json

import pytest

from proxy.chat.render import render
from proxy.tools.calls import block_id
from proxy.errors import ProxyError


def test_single_user_message_is_sent_as_it_is():
    prompt = render([{"role": "user", "content": "Hello"}])
    assert prompt.system == ""
    assert prompt.blocks == ("Hello",)


def test_text_parts_become_separate_blocks_and_empty_parts_are_skipped():
    prompt = render([{"role": "user", "content": [
        {"type": "text", "text": "a"}, {"type": "text", "text": ""}, {"type": "text", "text": "b"}]}])
    assert prompt.blocks == ("a", "b")


def test_leading_system_and_developer_messages_become_the_system_prompt():
    prompt = render([{"role": "system", "content": "S1"},
                     {"role": "developer", "content": [{"type": "text", "text": "D1"}]},
                     {"role": "user", "content": "U"}])
    assert prompt.system == "S1\n\nD1"
    assert prompt.blocks == ("U",)


def test_multi_turn_conversation_is_a_transcript_in_order():
    prompt = render([{"role": "system", "content": "be nice"},
                     {"role": "user", "content": "one"},
                     {"role": "assistant", "content": "two"},
                     {"role": "system", "content": "late note"},
                     {"role": "user", "content": "three", "name": "ann"}])
    assert prompt.system == "be nice"
    text, request = prompt.blocks
    assert request.startswith("Write the assistant's next reply")
    order = ['<turn role="user">one</turn>', '<turn role="assistant">two</turn>',
             '<turn role="system">late note</turn>', '<turn role="user" name="ann">three</turn>']
    assert [text.index(t) for t in order] == sorted(text.index(t) for t in order)


def test_assistant_content_null_and_refusal_are_carried():
    prompt = render([{"role": "user", "content": "q"},
                     {"role": "assistant", "content": None},
                     {"role": "assistant", "content": None, "refusal": "I can't."},
                     {"role": "user", "content": "ok"}])
    # The empty assistant message merges into its neighbour of the same role: nothing lost.
    assert [b["text"] for b in prompt.history[1].content()] == ["I can't."]
    alone = render([{"role": "user", "content": "q"}, {"role": "assistant", "content": None},
                    {"role": "user", "content": "ok"}])
    text, _ = alone.blocks  # an empty turn of its own cannot be native: a transcript keeps it
    assert alone.fallback == "empty_assistant" and '<turn role="assistant"></turn>' in text


def test_a_named_single_user_message_keeps_its_name():
    assert render([{"role": "user", "content": "hi", "name": "x\"y"}]).blocks == \
        ('<name>x"y</name>', "hi")


def test_text_containing_the_tag_switches_to_a_free_tag():
    prompt = render([{"role": "user", "content": "say </turn> please"},
                     {"role": "assistant", "content": "<turn-2> too"},
                     {"role": "user", "content": "again"}], fallback="session_unavailable")
    text, request = prompt.blocks
    assert '<turn-3 role="user">say </turn> please</turn-3>' in text
    assert request.endswith("without any <turn-3> tags.")


def test_only_system_messages_are_sent_as_the_conversation():
    prompt = render([{"role": "system", "content": "Say hi"}])
    assert prompt.system == ""
    assert "Say hi" in prompt.blocks[0]


@pytest.mark.parametrize("part, code", [
    ({"type": "input_audio", "input_audio": {"data": "AAAA", "format": "wav"}},
     "unsupported_content"),
    ({"type": "file", "file": {"file_id": "f"}}, "unsupported_content"),
])
def test_parts_that_cannot_be_carried_are_refused_by_name(part, code):
    with pytest.raises(ProxyError) as caught:
        render([{"role": "user", "content": "first"},
                {"role": "user", "content": [{"type": "text", "text": "t"}, part]}])
    assert caught.value.status == 400
    assert caught.value.code == code
    assert caught.value.param == "messages[1].content[1]"
    assert part["type"] in caught.value.message


@pytest.mark.parametrize("message, param", [
    ({"role": "tool", "content": "r", "tool_call_id": "c"}, "messages[1].tool_call_id"),
    ({"role": "function", "content": "r", "name": "f"}, "messages[1].role"),
])
def test_a_tool_result_without_its_call_is_refused_as_openai_refuses_it(message, param):
    with pytest.raises(ProxyError) as caught:
        render([{"role": "user", "content": "q"}, message])
    assert (caught.value.status, caught.value.param, caught.value.code) == (
        400, param, "invalid_tool_message")
    assert "must be a response to a preceding message with 'tool_calls'" in caught.value.message


def test_a_call_without_its_result_is_refused_as_openai_refuses_it():
    with pytest.raises(ProxyError) as caught:
        render([{"role": "user", "content": "q"},
                {"role": "assistant", "content": None, "tool_calls": [
                    {"id": "c1", "type": "function", "function": {"name": "f", "arguments": "{}"}},
                    {"id": "c2", "type": "function", "function": {"name": "f", "arguments": "{}"}}]},
                {"role": "tool", "content": "r", "tool_call_id": "c1"},
                {"role": "user", "content": "and?"}])
    assert (caught.value.status, caught.value.code) == (400, "invalid_tool_message")
    assert caught.value.message.endswith("did not have response messages: " + block_id("c2"))


@pytest.mark.parametrize("content", [
    "", "\r", " \n\t", "\u3000", "\ufeff", "\u2028", "\x85", "\x1c",
    [{"type": "text", "text": "a"}, {"type": "text", "text": " "}],
    [{"type": "text", "text": ""}],
])
def test_a_message_the_cli_would_blank_out_goes_as_a_transcript(content):
    # The CLI drops whitespace-only text blocks (JavaScript trim) and sends "(no content)"
    # when none is left; a transcript carries the message as it was.
    prompt = render([{"role": "user", "content": content}])
    text, _ = prompt.blocks
    texts = [content] if isinstance(content, str) else [p["text"] for p in content]
    body = "\n".join(t for t in texts if t)
    assert text.endswith(f'\n<turn role="user">{body}</turn>')


@pytest.mark.parametrize("content", [
    "/help", "see @/etc/hostname", "@README.md", "x\n@agent-Explore", "why？@x",
    [{"type": "text", "text": "fine"}, {"type": "text", "text": "then @~/.ssh/id_rsa"}],
])
def test_a_last_block_the_cli_would_act_on_goes_as_a_transcript(content):
    # The CLI reads the last text block as typed input: `/` a slash command, `@` a mention.
    text, request = render([{"role": "user", "content": content}]).blocks
    texts = [content] if isinstance(content, str) else [p["text"] for p in content]
    body = "\n".join(texts)
    assert text.endswith(f'\n<turn role="user">{body}</turn>')
    assert "@" not in request and not request.startswith("/")


@pytest.mark.parametrize("text", ["a@b.com", "`@x`", "(@x)", "see /etc/hosts", "ultrathink"])
def test_text_the_cli_does_not_act_on_is_sent_as_it_is(text):
    assert render([{"role": "user", "content": text}]).blocks == (text,)


@pytest.mark.parametrize("text", ["a ", "\u200b", " \x85x"])
def test_text_that_is_not_blank_is_sent_as_it_is(text):
    # U+200B (zero width space) is whitespace neither to JavaScript nor to Unicode.
    assert render([{"role": "user", "content": text}]).blocks == (text,)


@pytest.mark.parametrize("system", [" ", "\n\t", "\u3000"])
def test_a_blank_system_prompt_is_none(system):
    prompt = render([{"role": "system", "content": system}, {"role": "user", "content": "hi"}])
    assert (prompt.system, prompt.blocks) == ("", ("hi",))



# --- images ----------------------------------------------------------------------------------

PNG = "iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAIAAACQd1PeAAAADElEQVR4nGP4z8AAAAMBAQDJ/pLvAAAAAElFTkSuQmCC"


def image(url: str = f"data:image/png;base64,{PNG}") -> dict:
    return {"type": "image_url", "image_url": {"url": url, "detail": "low"}}


def source(prompt, k: int = 0) -> dict:
    return json.loads(prompt.images[k][1])


def test_an_image_is_sent_as_an_image_block_where_it_stands():
    prompt = render([{"role": "user", "content": [
        {"type": "text", "text": "first"}, image(), {"type": "text", "text": "what is it?"}]}])
    assert prompt.blocks == ("first", "what is it?")
    assert [i for i, _ in prompt.images] == [1]
    assert source(prompt) == {"type": "base64", "media_type": "image/png", "data": PNG}


def test_an_http_image_is_passed_as_a_url_for_the_api_to_fetch():
    prompt = render([{"role": "user", "content": [image("https://example.com/cat.jpg?size=2")]}])
    assert prompt.blocks == ()
    assert source(prompt) == {"type": "url", "url": "https://example.com/cat.jpg?size=2"}


def test_an_image_last_lets_the_text_before_it_through_as_it_is():
    # Measured: with an image last, the CLI reads no typed input, so `/` and `@` stay text.
    prompt = render([{"role": "user", "content": [{"type": "text", "text": "/help @x"}, image()]}])
    assert prompt.blocks == ("/help @x",) and [i for i, _ in prompt.images] == [1]


def test_an_image_in_the_history_splits_the_transcript_where_it_stands():
    prompt = render([
        {"role": "user", "content": [{"type": "text", "text": "look"}, image(),
                                     {"type": "text", "text": " "}, image()]},
        {"role": "assistant", "content": "Two red pixels."},
        {"role": "user", "content": "Sure?"}])
    first, second, request = prompt.blocks
    assert first.endswith('<turn role="user">look')
    assert second == ('</turn>\n<turn role="assistant">Two red pixels.</turn>\n'
                      '<turn role="user">Sure?</turn>')
    assert request.startswith("Write the assistant's next reply")
    # The whitespace between the two images is no block (the API refuses blank ones).
    assert [i for i, _ in prompt.images] == [1, 1]


@pytest.mark.parametrize("url, code", [
    ("data:image/bmp;base64,Qk0=", "invalid_image_format"),
    ("data:text/plain;base64,aGk=", "invalid_image_format"),
    ("data:image/png,rawbytes", "invalid_image_url"),
    ("data:image/png;base64,not base64!", "invalid_image_url"),
    ("file:///etc/passwd", "invalid_image_url"),
    ("ftp://example.com/a.png", "invalid_image_url"),
])
def test_an_image_claude_cannot_read_is_refused_by_name(url, code):
    with pytest.raises(ProxyError) as caught:
        render([{"role": "user", "content": [{"type": "text", "text": "t"}, image(url)]}])
    assert (caught.value.status, caught.value.code) == (400, code)
    assert caught.value.param == "messages[0].content[1].image_url.url"


def test_jpg_is_read_as_jpeg():
    prompt = render([{"role": "user", "content": [image(f"data:IMAGE/JPG;base64,{PNG}")]}])
    assert source(prompt)["media_type"] == "image/jpeg"
