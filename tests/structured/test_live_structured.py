"""Structured outputs end to end: `response_format` through the CLI's `--json-schema`, with the
official SDK's `parse()` and `stream()` helpers, against the stand-in whose model answers
through the StructuredOutput tool, in prose first, or never."""

from __future__ import annotations

import json

import openai
import pytest
from pydantic import BaseModel

from proxy.standin.scenario import Scenario, ToolUse

pytestmark = pytest.mark.live

ASK = [{"role": "user", "content": "Bob is three years old."}]
PERSON = {"type": "object", "properties": {"name": {"type": "string"},
                                           "age": {"type": "integer"}},
          "required": ["name", "age"], "additionalProperties": False}


class Person(BaseModel):
    name: str
    age: int


def answer(value: dict, **kw) -> Scenario:
    return Scenario(tool_use=ToolUse("StructuredOutput", value), split=5, **kw)


def schema_format(schema=PERSON, strict=True) -> dict:
    return {"type": "json_schema", "json_schema": {"name": "person", "schema": schema,
                                                   "strict": strict}}


def test_parse_gets_a_typed_object_and_the_schema_reaches_claude_verbatim(live_proxy_for):
    proxy = live_proxy_for(answer({"name": "Bob", "age": 3}))
    result = proxy.client.chat.completions.parse(model="sonnet", messages=ASK,
                                                 response_format=Person)
    message = result.choices[0].message
    assert message.parsed == Person(name="Bob", age=3)
    assert json.loads(message.content) == {"name": "Bob", "age": 3}
    assert result.choices[0].finish_reason == "stop" and message.refusal is None
    (body,) = proxy.upstream()
    (tool,) = body["tools"]  # no placeholder: only the structured-output tool
    assert tool["name"] == "StructuredOutput"
    assert tool["input_schema"] == Person.model_json_schema() | {
        "additionalProperties": False, "required": ["name", "age"]} or \
        tool["input_schema"]["properties"].keys() == {"name", "age"}


def test_streaming_sends_the_json_while_the_model_writes_it(live_proxy_for):
    proxy = live_proxy_for(answer({"name": "Bob", "age": 3}))
    chunks = list(proxy.client.chat.completions.create(
        model="sonnet", messages=ASK, response_format=schema_format(), stream=True))
    pieces = [c.choices[0].delta.content for c in chunks if c.choices and
              c.choices[0].delta.content]
    assert len(pieces) > 3  # fragments, as the model produced them, not one piece at the end
    assert json.loads("".join(pieces)) == {"name": "Bob", "age": 3}
    with proxy.client.chat.completions.stream(model="sonnet", messages=ASK,
                                              response_format=Person) as stream:
        final = stream.get_final_completion()
    assert final.choices[0].message.parsed == Person(name="Bob", age=3)


def test_prose_first_then_the_object_returns_only_the_object(live_proxy_for):
    proxy = live_proxy_for(answer({"name": "Bob", "age": 3}, reply_text="Sure! Bob is 3.",
                                    tool_use_when="[structured-output-enforce]"))
    result = proxy.client.chat.completions.parse(model="sonnet", messages=ASK,
                                                 response_format=Person)
    assert result.choices[0].message.parsed == Person(name="Bob", age=3)
    assert len(proxy.upstream()) == 2  # the CLI asked again, once


def test_a_model_that_declines_is_a_refusal(live_proxy_for):
    proxy = live_proxy_for(Scenario(reply_text="I cannot share that."))
    result = proxy.client.chat.completions.parse(model="sonnet", messages=ASK,
                                                 response_format=Person)
    message = result.choices[0].message
    assert message.refusal == "I cannot share that." and message.content is None
    assert message.parsed is None
    chunks = list(proxy.client.chat.completions.create(
        model="sonnet", messages=ASK, response_format=schema_format(), stream=True))
    refusals = [c.choices[0].delta.refusal for c in chunks if c.choices and
                c.choices[0].delta.refusal]
    assert refusals == ["I cannot share that."]
    assert not any(c.choices and c.choices[0].delta.content for c in chunks)


def test_json_object_is_any_one_object(live_proxy_for):
    proxy = live_proxy_for(answer({"anything": [1, 2]}))
    result = proxy.client.chat.completions.create(model="sonnet", messages=ASK,
                                                  response_format={"type": "json_object"})
    assert json.loads(result.choices[0].message.content) == {"anything": [1, 2]}
    assert proxy.upstream()[0]["tools"][0]["input_schema"] == {"type": "object"}


def test_a_schema_whose_root_is_not_an_object_is_wrapped_and_unwrapped(live_proxy_for):
    proxy = live_proxy_for(answer({"value": [1, 2, 3]}))
    schema = {"type": "array", "items": {"type": "integer"}}
    result = proxy.client.chat.completions.create(model="sonnet", messages=ASK,
                                                  response_format=schema_format(schema))
    assert json.loads(result.choices[0].message.content) == [1, 2, 3]
    sent = proxy.upstream()[0]["tools"][0]["input_schema"]
    assert sent == {"type": "object", "properties": {"value": schema}, "required": ["value"]}


def test_an_object_that_breaks_the_schema_is_never_a_success(live_proxy_for):
    # The stand-in keeps sending an age that is not an integer: the CLI refuses it five times.
    proxy = live_proxy_for(answer({"name": "Bob", "age": "three"}, tool_use_on_error=True))
    with pytest.raises(openai.APIStatusError) as caught:
        proxy.client.chat.completions.create(model="sonnet", messages=ASK,
                                             response_format=schema_format())
    assert caught.value.status_code == 502
    assert caught.value.body["code"] == "structured_output_invalid"


def test_a_broken_schema_is_a_400(live_proxy_for):
    proxy = live_proxy_for(Scenario())
    with pytest.raises(openai.BadRequestError) as caught:
        proxy.client.chat.completions.create(
            model="sonnet", messages=ASK,
            response_format=schema_format({"type": "object", "properties": 3}))
    assert caught.value.body["param"] == "response_format.json_schema.schema"
    assert proxy.upstream() == []


def test_tools_and_a_format_together(live_proxy_for):
    weather = {"type": "function", "function": {
        "name": "get_weather", "parameters": {"type": "object",
                                              "properties": {"city": {"type": "string"}}}}}
    proxy = live_proxy_for(Scenario(tool_use=ToolUse("mcp__c__get_weather", {"city": "Paris"})))
    first = proxy.client.chat.completions.create(
        model="sonnet", messages=ASK, tools=[weather], response_format=schema_format())
    assert first.choices[0].finish_reason == "tool_calls"
    assert first.choices[0].message.tool_calls[0].function.name == "get_weather"
    names = sorted(t["name"] for t in proxy.upstream()[0]["tools"])
    assert names == ["StructuredOutput", "mcp__c__get_weather"]


def test_a_corrected_object_replaces_the_refused_one(live_proxy_for):
    # First an age that breaks the schema (the CLI refuses it), then a good one.
    proxy = live_proxy_for(answer({"name": "Bob", "age": "three"},
                                    tool_use_retry=ToolUse("StructuredOutput",
                                                           {"name": "Bob", "age": 3})))
    result = proxy.client.chat.completions.create(model="sonnet", messages=ASK,
                                                  response_format=schema_format())
    assert json.loads(result.choices[0].message.content) == {"name": "Bob", "age": 3}
    # A stream already sent the refused object: it cannot be withdrawn, so the stream ends
    # with an error, never with two objects or the broken one as a success.
    chunks, error = [], None
    try:
        for chunk in proxy.client.chat.completions.create(
                model="sonnet", messages=ASK, response_format=schema_format(), stream=True):
            chunks.append(chunk)
    except openai.APIError as exc:
        error = exc
    assert error is not None and "structured output" in str(error)
    assert not any(c.choices and c.choices[0].finish_reason == "stop" for c in chunks)
