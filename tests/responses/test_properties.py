"""hypothesis over the forms Responses input items take.

* Any conversation, written with any of the item forms the spec allows for it (a string or
  `input_text` parts; an easy message or a typed one with id and status; an assistant answer
  as a string or an `output_message`; calls and their outputs with or without ids), reaches
  the CLI exactly as the same conversation over chat completions does: the same invocation,
  so the same native turns, the same kept process, the same cost.
* Any input the contract admits (generated from its own InputParam schema) is either refused
  with a 4xx naming an `input...` parameter, or becomes a chat request that the chat contract
  admits too; nothing else (no 5xx, no other exception).
"""

from __future__ import annotations

import json

from hypothesis import given, strategies as st
from hypothesis_jsonschema import from_schema

from proxy.chat.models import ModelCatalogue
from proxy.claude.run import Limits
from proxy.concurrency import ConcurrencyLimiter
from proxy.contract.validation import RequestValidator, SchemaSet
from proxy.contract.document import load_document
from proxy.errors import ProxyError
from proxy.responses.request import translate
from proxy.backend import ChatService
from tests.properties.budget import budget

SERVICE = ChatService(ModelCatalogue(), runner=None, limiter=ConcurrencyLimiter(1, 0, 1),
                      limits=Limits())
VALIDATOR = RequestValidator()
TOOL_NAMES = ("get_weather", "get_time", "lookup")

texts = st.text(st.characters(blacklist_categories=("Cs",)), min_size=1, max_size=12)
ids = st.text("abcdefghijklmnopqrstuvwxyz0123456789", min_size=4, max_size=10)


@st.composite
def conversations(draw):
    """(chat messages, responses input items, instructions): one conversation, two forms."""
    chat: list[dict] = []
    items: list[dict] = []
    call_number = 0
    for _ in range(draw(st.integers(1, 4))):
        for _ in range(draw(st.integers(1, 2))):          # one or more user messages
            parts = draw(st.lists(texts, min_size=1, max_size=3))
            as_string = len(parts) == 1 and draw(st.booleans())
            chat.append({"role": "user", "content": parts[0] if as_string else
                         [{"type": "text", "text": p} for p in parts]})
            content = parts[0] if as_string else \
                [{"type": "input_text", "text": p} for p in parts]
            item = {"role": "user", "content": content}
            if not as_string and draw(st.booleans()):
                item.update(type="message", id="msg_" + draw(ids), status="completed")
            items.append(item)
        if draw(st.booleans()):                            # the conversation ends here
            break
        answer = draw(st.one_of(st.none(), texts))
        calls = [(f"call_{(call_number := call_number + 1)}", draw(st.sampled_from(TOOL_NAMES)),
                  draw(st.dictionaries(st.sampled_from("abc"), st.integers(0, 9), max_size=2)))
                 for _ in range(draw(st.integers(0 if answer else 1, 2)))]
        message: dict = {"role": "assistant", "content": answer}
        if answer is not None:
            if draw(st.booleans()):
                items.append({"role": "assistant", "content": answer})
            else:
                items.append({"type": "message", "role": "assistant", "status": "completed",
                              "id": "msg_" + draw(ids), "content": [
                                  {"type": "output_text", "text": answer, "annotations": [],
                                   "logprobs": []}]})
        if calls:
            message["tool_calls"] = [{"id": c, "type": "function", "function": {
                "name": n, "arguments": json.dumps(a)}} for c, n, a in calls]
            for c, n, a in calls:
                call = {"type": "function_call", "call_id": c, "name": n,
                        "arguments": json.dumps(a)}
                if draw(st.booleans()):
                    call.update(id="fc_" + draw(ids), status="completed")
                items.append(call)
        chat.append(message)
        for c, _, _ in calls:
            result = draw(texts)
            as_parts = draw(st.booleans())
            chat.append({"role": "tool", "tool_call_id": c,
                         "content": [{"type": "text", "text": result}] if as_parts else result})
            items.append({"type": "function_call_output", "call_id": c,
                          "output": [{"type": "input_text", "text": result}] if as_parts
                          else result})
        if calls and draw(st.booleans()):
            break                                          # the results are the last turn
    instructions = draw(st.one_of(st.none(), texts))
    if instructions:
        chat.insert(0, {"role": "system", "content": instructions})
    return chat, items, instructions


def _outcome(prepare):
    try:
        return prepare().invocation()
    except ProxyError as exc:
        return ("error", exc.status, exc.code)


@budget(150)
@given(conversations())
def test_every_item_form_reaches_the_cli_as_the_chat_does(conversation):
    chat, items, instructions = conversation
    tools = [{"type": "function", "name": n, "parameters": {"type": "object"}, "strict": False}
             for n in TOOL_NAMES]
    chat_tools = [{"type": "function", "function": {"name": n, "parameters": {"type": "object"},
                                                    "strict": False}} for n in TOOL_NAMES]
    body = {"model": "sonnet", "input": items, "tools": tools}
    if instructions:
        body["instructions"] = instructions
    assert VALIDATOR.validate("CreateResponse", body) is None
    chat_body = {"model": "sonnet", "messages": chat, "tools": chat_tools}
    assert VALIDATOR.validate("CreateChatCompletionRequest", chat_body) is None
    expected = _outcome(lambda: SERVICE.prepare(chat_body))
    got = _outcome(lambda: SERVICE.prepare(translate(body).chat_body))
    assert got == expected


_SCHEMAS = SchemaSet(load_document())
inputs = from_schema(_SCHEMAS.inlined("InputParam"))


@budget(150)
@given(inputs, st.one_of(st.none(), texts))
def test_any_admitted_input_is_carried_or_refused_with_its_parameter(raw, instructions):
    body = {"model": "sonnet", "input": raw}
    if instructions:
        body["instructions"] = instructions
    assert VALIDATOR.validate("CreateResponse", body) is None
    try:
        translation = translate(body, resolve=None)
    except ProxyError as exc:
        assert 400 <= exc.status < 500 and (exc.param or "").startswith("input"), exc
        return
    try:
        chat = SERVICE.prepare(translation.chat_body)
    except ProxyError as exc:
        renamed = translation.remap(exc)
        assert 400 <= renamed.status < 500, renamed
        assert "messages" not in (renamed.param or "") + renamed.message, renamed
        return
    assert VALIDATOR.validate("CreateChatCompletionRequest", translation.chat_body) is None
    assert chat.invocation() is not None
