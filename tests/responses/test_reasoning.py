"""Reasoning items' encrypted_content: sealed by this server run for one API key, opened only so,
and put back into the history before the answer it belongs to. The HTTP and live paths are in
test_http.py and test_live_reasoning.py."""

from __future__ import annotations

import base64
import hashlib
import json
import logging

import pytest

from proxy.conversations.runner import conversation_key
from proxy.conversations.turns import Turn, as_sent, canonical, fingerprint
from proxy.claude.invocation import Invocation
from proxy.responses import reasoning
from proxy.responses.reasoning import PREFIX, Settings, Thinking, ThinkingSeal, with_thinking
from proxy.responses.request import translate

BLOCK = {"type": "thinking", "thinking": "The user wants the weather.", "signature": "sig_A" * 40}
META = {"id": "msg_01", "model": "claude-sonnet-5-5"}


def test_a_sealed_block_opens_for_the_same_key_exactly_as_it_went_in():
    seal = ThinkingSeal()
    token = seal.seal("alice", [BLOCK], META)
    assert token.startswith(PREFIX)
    opened = seal.open("alice", token)
    assert opened == Thinking((as_sent(BLOCK),), (("id", "msg_01"),
                                                    ("model", "claude-sonnet-5-5")))
    assert json.loads(opened.blocks[0]) == BLOCK     # text and signature unchanged


def test_the_token_is_opaque():
    token = ThinkingSeal().seal("", [BLOCK], META)
    raw = base64.urlsafe_b64decode(token[len(PREFIX):] + "=" * (-len(token) % 4))
    assert b"weather" not in raw and b"sig_A" not in raw and b"thinking" not in raw
    assert len(token) < len(json.dumps(BLOCK))       # compressed (the signature repeats here)


def _flip(token: str, at: int) -> str:
    raw = bytearray(base64.urlsafe_b64decode(token[len(PREFIX):] + "=" * (-len(token) % 4)))
    raw[at] ^= 1
    return PREFIX + base64.urlsafe_b64encode(bytes(raw)).decode().rstrip("=")


@pytest.mark.parametrize("make, reason", [
    (lambda seal, token: (seal, "bob", token), "invalid"),                  # another API key
    (lambda seal, token: (ThinkingSeal(), "alice", token), "another_run"),  # after a restart
    (lambda seal, token: (seal, "alice", _flip(token, 30)), "invalid"),     # ciphertext
    (lambda seal, token: (seal, "alice", _flip(token, -1)), "invalid"),     # tag
    (lambda seal, token: (seal, "alice", _flip(token, 10)), "invalid"),     # nonce
    (lambda seal, token: (seal, "alice", _flip(token, 0)), "another_run"),  # key id
    (lambda seal, token: (seal, "alice", token[:40]), "invalid"),           # cut short
    (lambda seal, token: (seal, "alice", token + "A"), "invalid"),          # grown
    (lambda seal, token: (seal, "alice", "gAAAAABopaque-from-openai"), "invalid"),
    (lambda seal, token: (seal, "alice", PREFIX + "!!not base64!!"), "invalid"),
    (lambda seal, token: (seal, "alice", PREFIX), "invalid"),
    (lambda seal, token: (seal, "alice", 42), "invalid"),
])
def test_anything_else_is_ignored_and_logged(make, reason, caplog):
    seal = ThinkingSeal()
    token = seal.seal("alice", [BLOCK], META)
    opener, owner, value = make(seal, token)
    with caplog.at_level(logging.INFO, "claude_max_api.responses"):
        assert opener.open(owner, value) is None
    assert opener.ignored[reason] == 1 and sum(opener.ignored.values()) == 1
    (record,) = caplog.records
    assert "encrypted_content was ignored" in record.getMessage()
    assert record.levelno == (logging.INFO if reason == "another_run" else logging.WARNING)


def test_only_thinking_blocks_are_taken_from_a_token():
    seal = ThinkingSeal()
    token = seal.seal("", [{"type": "text", "text": "not thinking"}], META)
    assert seal.open("", token) is None


# ---------------------------------------------------------------------------- the history

def _thinking(text: str, message_id: str = "msg_01") -> Thinking:
    return Thinking((as_sent({**BLOCK, "thinking": text}),),
                    (("id", message_id), ("model", "claude-sonnet-5-5")))


HISTORY = (Turn.of("user", [{"type": "text", "text": "Weather?"}]),
           Turn.of("assistant", [{"type": "tool_use", "id": "toolu_1", "name": "mcp__c__w",
                                  "input": {}}]),
           Turn.of("user", [{"type": "tool_result", "tool_use_id": "toolu_1", "content": "sun"}]),
           Turn.of("assistant", [{"type": "text", "text": "Sunny."}]),
           Turn.of("user", [{"type": "text", "text": "Thanks"}]))


def test_each_assistant_turn_gets_its_own_thinking_outside_what_the_turn_is():
    turns = with_thinking(HISTORY, [(_thinking("call it"),), (_thinking("say it", "msg_02"),)])
    assert turns == HISTORY                               # the same conversation
    assert fingerprint(turns) == fingerprint(HISTORY)     # so a kept process still matches it
    assert [json.loads(b)["thinking"] for b in turns[1].thinking] == ["call it"]
    assert dict(turns[1].message) == {"id": "msg_01", "model": "claude-sonnet-5-5",
                                      "stop_reason": "tool_use"}
    assert dict(turns[3].message)["stop_reason"] == "end_turn"
    invocation = Invocation("sonnet", history=turns)
    assert conversation_key(invocation, turns) == conversation_key(
        Invocation("sonnet", history=HISTORY), HISTORY)


def test_a_turn_without_reasoning_items_stays_as_it_was():
    turns = with_thinking(HISTORY, [(), (_thinking("say it"),)])
    assert turns[1].thinking == () and turns[1].message == ()
    assert turns[3].thinking


def test_thinking_of_another_api_message_is_not_the_turns():
    turns = with_thinking(HISTORY, [(_thinking("old", "msg_00"), _thinking("mine", "msg_01"))])
    assert [json.loads(b)["thinking"] for b in turns[1].thinking] == ["mine"]


def test_the_session_file_puts_the_thinking_first():
    from proxy.conversations.session import Calibration, session_entries
    calibration = Calibration((("environment", "{}"), ("model", "{}")), "2.1.332")
    turns = with_thinking(HISTORY, [(_thinking("call it"),)])
    entries = session_entries(turns, calibration, session_id="s", cwd="/x", today="2026-01-01")
    (call,) = [e for e in entries if e["type"] == "assistant"][:1]
    assert [b["type"] for b in call["message"]["content"]] == ["thinking", "tool_use"]
    assert list(call["message"]["content"][0]) == ["type", "thinking", "signature"]  # CLI order
    assert call["message"]["id"] == "msg_01" and call["message"]["stop_reason"] == "tool_use"


# ---------------------------------------------------------------------------- translation

def _reasoning_item(token: str | None, text: str = "hm") -> dict:
    item = {"type": "reasoning", "id": "rs_1", "summary": [{"type": "summary_text",
                                                            "text": text}]}
    if token is not None:
        item["encrypted_content"] = token
    return item


def test_reasoning_items_belong_to_the_answer_that_follows_them():
    seal = ThinkingSeal()
    first, second = (seal.seal("", [{**BLOCK, "thinking": t}], META) for t in ("a", "b"))
    body = {"model": "sonnet", "input": [
        {"role": "user", "content": "Weather?"},
        _reasoning_item(first),
        {"type": "function_call", "call_id": "toolu_1", "name": "w", "arguments": "{}"},
        {"type": "function_call_output", "call_id": "toolu_1", "output": "sun"},
        _reasoning_item(seal.seal("", [BLOCK], META)),   # before a user message: nobody's
        {"role": "user", "content": "And?"},
        _reasoning_item(second),
        {"role": "assistant", "content": "Sunny."},
        {"role": "user", "content": "Thanks"}],
        "tools": [{"type": "function", "name": "w", "parameters": {"type": "object"}}]}
    translation = translate(body, unseal=lambda token: seal.open("", token))
    assert [[json.loads(b)["thinking"] for t in turn for b in t.blocks]
            for turn in translation.thinking] == [["a"], ["b"]]
    assert all(m.get("content") != "hm" for m in translation.chat_body["messages"])


def test_invalid_tokens_leave_no_thinking():
    seal = ThinkingSeal()
    body = {"model": "sonnet", "input": [
        {"role": "user", "content": "Hi"}, _reasoning_item("forged"), _reasoning_item(None),
        {"role": "assistant", "content": "Hello."}, {"role": "user", "content": "Bye"}]}
    assert translate(body, unseal=lambda token: seal.open("", token)).thinking == ()


@pytest.mark.parametrize("reasoning, include, chat, settings", [
    (None, None, {"include_reasoning": False}, Settings()),
    ({"effort": "high"}, None, {"reasoning_effort": "high", "include_reasoning": False},
     Settings()),
    ({"summary": "auto"}, None, {"include_reasoning": True}, Settings(show=True)),
    ({"summary": "detailed", "effort": "low"}, ["reasoning.encrypted_content"],
     {"reasoning_effort": "low", "include_reasoning": True}, Settings(True, True)),
    ({"generate_summary": "concise"}, None, {"include_reasoning": True}, Settings(show=True)),
    ({"summary": None}, ["reasoning.encrypted_content"], {"include_reasoning": False},
     Settings(sealed=True)),
])
def test_the_reasoning_settings_become_chats(reasoning, include, chat, settings):
    body = {"model": "sonnet", "input": "Hi", "reasoning": reasoning, "include": include}
    translation = translate(body)
    assert {k: v for k, v in translation.chat_body.items()
            if k in ("reasoning_effort", "include_reasoning")} == chat
    assert translation.reasoning == settings


# ---------------------------------------------------------------------------- bounds

def test_a_token_longer_than_the_bound_is_ignored_unread(caplog):
    seal = ThinkingSeal()
    token = seal.seal("alice", [BLOCK], META)
    padded = token + "A" * (reasoning.MAX_TOKEN - len(token) + 1)
    with caplog.at_level(logging.INFO, "claude_max_api.responses"):
        assert seal.open("alice", padded) is None
    assert seal.ignored == {"another_run": 0, "invalid": 1}
    assert f"longer than {reasoning.MAX_TOKEN} characters" in caplog.records[0].getMessage()


@pytest.mark.parametrize("bound", ["MAX_TOKEN", "MAX_PLAINTEXT"])
def test_a_block_too_large_to_seal_is_not_sealed(monkeypatch, caplog, bound):
    seal = ThinkingSeal()
    small = seal.seal("alice", [BLOCK], META)
    monkeypatch.setattr(reasoning, bound, len(small) - 1 if bound == "MAX_TOKEN" else 100)
    with caplog.at_level(logging.WARNING, "claude_max_api.responses"):
        assert seal.seal("alice", [BLOCK], META) is None
    assert "too large to seal" in caplog.records[0].getMessage()


def test_the_tokens_made_stay_within_the_bound_for_the_longest_thinking():
    # the longest answer's thinking (128k output tokens, about 4 characters each), as text
    # that compresses worse than prose, with a signature that does not compress at all and
    # holds as much again: still a token within the bound
    text = hashlib.shake_256(b"thinking").hexdigest(128_000 * 2)
    signature = base64.b64encode(hashlib.shake_256(b"signature").digest(128_000 * 3)).decode()
    token = ThinkingSeal().seal("", [{**BLOCK, "thinking": text, "signature": signature}], META)
    assert token is not None and len(token) <= reasoning.MAX_TOKEN
