"""Request validation: official-shaped requests pass; bad ones get OpenAI's error, short.

Each case is also checked against the official schema, so a pass here is a pass at OpenAI and
a rejection here is a rejection there (our schema is not stricter, and not laxer where it
models a field).
"""

from __future__ import annotations

import pytest

from proxy.contract.validation import RequestValidator, ValidationIssue, param_path
from tests.contract.samples import request

SCHEMA = "CreateChatCompletionRequest"

VALID = {
    "plain": request(),
    "only required fields": {"model": "m", "messages": [{"role": "user", "content": "hi"}]},
    "all roles": request(messages=[
        {"role": "developer", "content": "Be brief."},
        {"role": "system", "content": [{"type": "text", "text": "You are terse."}], "name": "s"},
        {"role": "user", "content": "What is the weather?", "name": "alice"},
        {"role": "assistant", "content": None, "tool_calls": [
            {"id": "call_1", "type": "function",
             "function": {"name": "get_weather", "arguments": "{\"city\":\"Paris\"}"}}]},
        {"role": "tool", "tool_call_id": "call_1", "content": "sunny"},
        {"role": "function", "name": "get_weather", "content": None},
        {"role": "assistant", "content": [{"type": "text", "text": "Sunny."},
                                          {"type": "refusal", "refusal": "no"}], "refusal": None},
    ]),
    "content parts": request(messages=[{"role": "user", "content": [
        {"type": "text", "text": "Describe these."},
        {"type": "image_url", "image_url": {"url": "https://example.com/a.png", "detail": "low"}},
        {"type": "image_url", "image_url": {"url": "data:image/png;base64,iVBORw0KGgo="}},
        {"type": "input_audio", "input_audio": {"data": "UklGRg==", "format": "wav"}},
        {"type": "file", "file": {"filename": "a.pdf", "file_data": "data:application/pdf;base64,JVBE"}},
        {"type": "file", "file": {"file_id": "file-1"}},
    ]}]),
    "tool message with parts": request(messages=[
        {"role": "tool", "tool_call_id": "c", "content": [{"type": "text", "text": "42"}]}]),
    "assistant without content": request(messages=[{"role": "assistant"}]),
    "streaming with usage": request(stream=True, stream_options={"include_usage": True,
                                                                 "include_obfuscation": False}),
    "sampling fields": request(temperature=0, top_p=1, n=1, max_tokens=100,
                               max_completion_tokens=200, presence_penalty=-2,
                               frequency_penalty=2, seed=42, logit_bias={"50256": -100},
                               logprobs=True, top_logprobs=20, user="u-1",
                               safety_identifier="s-1", prompt_cache_key="k",
                               metadata={"a": "b"}, store=False, service_tier="auto",
                               reasoning_effort="high", verbosity="low", modalities=["text"],
                               parallel_tool_calls=False, prompt_cache_retention="24h"),
    "explicit nulls": request(temperature=None, top_p=None, n=None, stop=None, stream=None,
                              stream_options=None, max_tokens=None, seed=None, metadata=None,
                              logit_bias=None, service_tier=None, reasoning_effort=None,
                              max_completion_tokens=None, logprobs=None, store=None,
                              prediction=None, modalities=None),
    "stop as a string": request(stop="\n"),
    "stop as four strings": request(stop=["a", "b", "c", "d"]),
    "tools and named tool_choice": request(
        tools=[{"type": "function", "function": {
            "name": "get_weather", "description": "Weather", "strict": True,
            "parameters": {"type": "object", "properties": {"city": {"type": "string"}}}}},
               {"type": "custom", "custom": {"name": "grep"}}],
        tool_choice={"type": "function", "function": {"name": "get_weather"}}),
    "tool_choice string": request(tool_choice="required"),
    "tool_choice allowed_tools": request(tool_choice={"type": "allowed_tools", "allowed_tools": {
        "mode": "auto", "tools": [{"type": "function", "function": {"name": "f"}}]}}),
    "response_format json_schema": request(response_format={"type": "json_schema", "json_schema": {
        "name": "answer", "strict": True,
        "schema": {"type": "object", "properties": {"a": {"type": "string"}}}}}),
    "response_format json_object": request(response_format={"type": "json_object"}),
    "legacy functions": request(functions=[{"name": "f", "parameters": {"type": "object"}}],
                                function_call={"name": "f"}),
    "prediction": request(prediction={"type": "content", "content": "old text"}),
    "fields we do not model": request(web_search_options={}, audio={"voice": "alloy",
                                                                    "format": "mp3"}),
}

# name: (body, param, code, words the message must contain)
INVALID = {
    "missing messages": ({"model": "m"}, "messages", "missing_required_parameter",
                         "Missing required parameter: 'messages'."),
    "missing model": ({"messages": [{"role": "user", "content": "hi"}]}, "model",
                      "missing_required_parameter", "'model'"),
    "empty messages": (request(messages=[]), "messages", "empty_array", "empty array"),
    "messages not an array": (request(messages="hi"), "messages", "invalid_type",
                              "expected an array, but got a string"),
    "bad role": (request(messages=[{"role": "bot", "content": "hi"}]), "messages[0].role",
                 "invalid_value", "Invalid value: 'bot'. Supported values are: 'developer', "
                 "'system', 'user', 'assistant', 'tool', and 'function'."),
    "missing role": (request(messages=[{"content": "hi"}]), "messages[0].role",
                     "missing_required_parameter", "'messages[0].role'"),
    "message not an object": (request(messages=["hi"]), "messages[0]", "invalid_type",
                              "expected an object, but got a string"),
    "user without content": (request(messages=[{"role": "user"}]), "messages[0].content",
                             "missing_required_parameter", "'messages[0].content'"),
    "user content null": (request(messages=[{"role": "user", "content": None}]),
                          "messages[0].content", "invalid_type",
                          "expected one of a string or an array, but got null"),
    "tool without tool_call_id": (request(messages=[{"role": "tool", "content": "x"}]),
                                  "messages[0].tool_call_id", "missing_required_parameter", ""),
    "temperature 3": (request(temperature=3), "temperature", "decimal_above_max_value",
                      "Expected a value <= 2, but got 3 instead."),
    "temperature a string": (request(temperature="hot"), "temperature", "invalid_type",
                             "expected a decimal, but got a string"),
    "top_p above 1": (request(top_p=1.5), "top_p", "decimal_above_max_value", "<= 1"),
    "n 0": (request(n=0), "n", "integer_below_min_value",
            "Expected a value >= 1, but got 0 instead."),
    "n 129": (request(n=129), "n", "integer_above_max_value", "<= 128"),
    "n a decimal": (request(n=1.5), "n", "invalid_type", "expected an integer, but got a decimal"),
    "stop with 5 items": (request(stop=["a", "b", "c", "d", "e"]), "stop", "array_above_max_length",
                          "Expected an array with maximum length 4, but got an array with length 5"),
    "stop an empty array": (request(stop=[]), "stop", "empty_array", ""),
    "stop a number": (request(stop=5), "stop", "invalid_type", ""),
    "unknown content part type": (
        request(messages=[{"role": "user", "content": [{"type": "video", "video": {}}]}]),
        "messages[0].content[0].type", "invalid_value",
        "Supported values are: 'text', 'image_url', 'input_audio', and 'file'."),
    "image part in a system message": (
        request(messages=[{"role": "system", "content": [
            {"type": "image_url", "image_url": {"url": "https://x"}}]}]),
        "messages[0].content[0].type", "invalid_value", "Value must be 'text'."),
    "text part without text": (
        request(messages=[{"role": "user", "content": [{"type": "text"}]}]),
        "messages[0].content[0].text", "missing_required_parameter", ""),
    "content part a string": (
        request(messages=[{"role": "user", "content": ["hi"]}]),
        "messages[0].content[0]", "invalid_type", "expected an object, but got a string"),
    "empty parts array": (request(messages=[{"role": "user", "content": []}]),
                          "messages[0].content", "empty_array", ""),
    "bad image detail": (
        request(messages=[{"role": "user", "content": [
            {"type": "image_url", "image_url": {"url": "https://x", "detail": "max"}}]}]),
        "messages[0].content[0].image_url.detail", "invalid_value", "'auto', 'low', and 'high'"),
    "tool call without arguments": (
        request(messages=[{"role": "assistant", "content": None, "tool_calls": [
            {"id": "c", "type": "function", "function": {"name": "f"}}]}]),
        "messages[0].tool_calls[0].function.arguments", "missing_required_parameter", ""),
    "max_tokens a string": (request(max_tokens="100"), "max_tokens", "invalid_type",
                            "expected an integer, but got a string"),
    "stream a string": (request(stream="yes"), "stream", "invalid_type", "expected a boolean"),
    "include_usage a string": (request(stream_options={"include_usage": "yes"}),
                               "stream_options.include_usage", "invalid_type", ""),
    "bad tool_choice": (request(tool_choice="always"), "tool_choice", "invalid_value",
                        "Supported values are: 'none', 'auto', and 'required'."),
    "tool without function": (request(tools=[{"type": "function"}]), "tools[0].function",
                              "missing_required_parameter", ""),
    "bad response_format": (request(response_format={"type": "yaml"}), "response_format.type",
                            "invalid_value", "'text', 'json_schema', and 'json_object'"),
    "json_schema without name": (
        request(response_format={"type": "json_schema", "json_schema": {"schema": {}}}),
        "response_format.json_schema.name", "missing_required_parameter", ""),
    "metadata value not a string": (request(metadata={"k": 1}), "metadata.k", "invalid_type", ""),
    "logit_bias value not an integer": (request(logit_bias={"1": "x"}), "logit_bias.1",
                                        "invalid_type", ""),
    "bad service_tier": (request(service_tier="gold"), "service_tier", "invalid_value", ""),
    "bad reasoning_effort": (request(reasoning_effort="extreme"), "reasoning_effort",
                             "invalid_value", ""),
    "safety_identifier too long": (request(safety_identifier="x" * 65), "safety_identifier",
                                   "string_above_max_length", "maximum length 64"),
    "top_logprobs 21": (request(top_logprobs=21), "top_logprobs", "integer_above_max_value", ""),
    "body not an object": ([request()], None, "invalid_type", "the request body"),
}


@pytest.mark.parametrize("name", VALID)
def test_valid_requests_pass_here_and_officially(name, request_validator, official_request_validator):
    body = VALID[name]
    assert request_validator.validate(SCHEMA, body) is None
    assert [e.message for e in official_request_validator.iter_errors(body)] == []


@pytest.mark.parametrize("name", INVALID)
def test_invalid_requests_get_openai_errors(name, request_validator, official_request_validator):
    body, param, code, words = INVALID[name]
    issue = request_validator.validate(SCHEMA, body)
    assert isinstance(issue, ValidationIssue)
    assert (issue.param, issue.code) == (param, code), issue
    assert words in issue.message
    assert len(issue.message) < 200
    assert not official_request_validator.is_valid(body)  # OpenAI rejects it too


def test_top_logprobs_null_is_accepted(request_validator, official_request_validator):
    # The request declares `top_logprobs` nullable and the SDKs type it Optional[int]; only the
    # official allOf (CreateModelResponseProperties says plain integer) forbids null. We follow
    # the request's own declaration.
    body = request(logprobs=True, top_logprobs=None)
    assert request_validator.validate(SCHEMA, body) is None
    assert not official_request_validator.is_valid(body)


def test_long_values_are_not_echoed(request_validator):
    secret = "s3cr3t-" * 2000
    issue = request_validator.validate(SCHEMA, request(messages=[{"role": secret, "content": "x"}]))
    assert issue is not None and issue.param == "messages[0].role"
    assert len(issue.message) < 200 and secret not in issue.message


def test_a_deep_failure_in_a_long_conversation_is_short_and_precise(request_validator):
    messages = [{"role": "user", "content": [{"type": "text", "text": "x" * 10_000}]}] * 50
    messages = [*messages, {"role": "assistant", "content": [{"type": "image_url",
                                                             "image_url": {"url": "https://x"}}]}]
    issue = request_validator.validate(SCHEMA, request(messages=messages))
    assert issue == ValidationIssue(
        "Invalid value: 'image_url'. Supported values are: 'text' and 'refusal'.",
        "messages[50].content[0].type", "invalid_value")


def test_shallowest_error_wins(request_validator):
    body = {"messages": [{"role": "bot", "content": "x"}], "temperature": 9}
    assert request_validator.validate(SCHEMA, body).param == "model"


def test_unknown_schema_name_is_an_error(request_validator):
    with pytest.raises(KeyError):
        request_validator.validate("NoSuchSchema", {})


def test_validator_built_from_a_document_copy(doc):
    assert RequestValidator(doc).validate(SCHEMA, request()) is None
    assert RequestValidator().validate(SCHEMA, {}).param == "model"  # the default document


@pytest.mark.parametrize("path, expected", [
    ([], None),
    (["messages"], "messages"),
    (["messages", 0, "role"], "messages[0].role"),
    (["messages", 3, "content", 1, "image_url", "url"], "messages[3].content[1].image_url.url"),
    (["stop", 4], "stop[4]"),
])
def test_param_path_uses_openai_notation(path, expected):
    assert param_path(path) == expected


@pytest.mark.parametrize("tools, param, message", [
    ([{"type": "function", "function": {"name": "bad name"}}], "tools[0].function.name",
     "Invalid 'tools[0].function.name': string does not match pattern. Expected a string that "
     "matches the pattern '^[a-zA-Z0-9_-]+$'."),
    ([{"type": "function", "function": {"name": "x" * 65}}], "tools[0].function.name",
     "Invalid 'tools[0].function.name': string too long. Expected a string with maximum length "
     "64, but got a string with length 65 instead."),
    ([{"type": "custom", "custom": {"name": ""}}], "tools[0].custom.name",
     "Invalid 'tools[0].custom.name': string does not match pattern. Expected a string that "
     "matches the pattern '^[a-zA-Z0-9_-]+$'."),
])
def test_function_names_follow_the_apis_rule_which_the_contract_states(
        tools, param, message, request_validator):
    """The official schema states the rule only in prose; the API refuses other names, so the
    contract holds it and a fuzzer never takes such a request for a valid one."""
    issue = request_validator.validate(SCHEMA, request(tools=tools))
    assert (issue.param, issue.message) == (param, message)
