"""Properties of tool calling and structured outputs, for arbitrary schemas and streams.

* Any function JSON schema (an object root; generated here, unicode and all) passes the
  proxy's spec validation, and the bridge's `tools/list` gives it back verbatim, with the
  description and the name (aliased past the API's limit, mapped back on the way out).
* Any arguments object, split anywhere into `input_json_delta` fragments, among text blocks
  and other calls, comes out as tool_calls whose arguments parse to the same object, streamed
  and not, in order, with the text before them: the stream rules and the official schemas
  hold for every answer.
* Any response_format schema (any root type; a non-object one is wrapped for the CLI) and an
  instance of it (drawn by hypothesis-jsonschema), streamed by the CLI as the StructuredOutput
  tool's input in any split, comes back as content that parses to that instance and validates
  against the schema, streamed and not.

The CLI's output is generated (the shapes of tests/properties/cli_streams.py and the recorded
tool cassettes) and played by a runner into the real app, as test_stream_equivalence does.
"""

from __future__ import annotations

import json

import falcon.testing
import pytest
from hypothesis import given, note
from hypothesis import strategies as st
from hypothesis_jsonschema import from_schema
from jsonschema import Draft202012Validator

from proxy.app import create_app
from proxy.chat.response_format import response_format
from proxy.settings import Settings
from proxy.tools.bridge import ToolBridge
from proxy.tools.spec import PREFIX, tool_request
from tests.properties.budget import budget
from tests.support.fidelity import official_problems
from tests.support.runners import LinesRunner
from tests.support.stream_rules import check_stream

PATH = "/v1/chat/completions"
HEADERS = {"Host": "127.0.0.1"}
ASK = [{"role": "user", "content": "go"}]

# ---------------------------------------------------------------------------- JSON schemas

texts = st.text(max_size=12)
keys = st.text(min_size=1, max_size=8)


def _scalar_schemas() -> st.SearchStrategy[dict]:
    bounded = st.integers(-50, 50)
    return st.one_of(
        st.builds(lambda lo, span: {"type": "integer", "minimum": lo, "maximum": lo + span},
                  bounded, st.integers(0, 20)),
        st.just({"type": "number"}),
        st.builds(lambda n, m: {"type": "string", "minLength": n, "maxLength": n + m},
                  st.integers(0, 3), st.integers(0, 5)),
        st.just({"type": "boolean"}),
        st.just({"type": "null"}),
        st.lists(st.one_of(texts, st.integers(-5, 5), st.booleans()), min_size=1, max_size=4,
                 unique_by=lambda v: (type(v).__name__, v)).map(lambda values: {"enum": values}),
        st.builds(lambda d: {"type": "string", "description": d}, texts),
    )


def _object_of(children: st.SearchStrategy[dict]) -> st.SearchStrategy[dict]:
    @st.composite
    def build(draw: st.DrawFn) -> dict:
        properties = draw(st.dictionaries(keys, children, max_size=4))
        required = draw(st.lists(st.sampled_from(sorted(properties)), unique=True)
                        ) if properties else []
        schema: dict = {"type": "object", "properties": properties}
        if required:
            schema["required"] = required
        if draw(st.booleans()):
            schema["additionalProperties"] = False
        if draw(st.booleans()):
            schema["description"] = draw(texts)
        return schema
    return build()


schemas = st.recursive(
    _scalar_schemas(),
    lambda children: st.one_of(
        _object_of(children),
        st.builds(lambda items, n: {"type": "array", "items": items, "maxItems": n},
                  children, st.integers(0, 3)),
        st.lists(children, min_size=1, max_size=3).map(lambda alts: {"anyOf": alts}),
    ),
    max_leaves=8,
)
object_schemas = _object_of(schemas)
names = st.from_regex(r"[A-Za-z0-9_-]{1,70}", fullmatch=True)


# ---------------------------------------------------------------------------- spec -> bridge


@budget(150)
@given(name=names, description=st.text(max_size=200), schema=object_schemas)
def test_any_function_schema_comes_back_from_the_bridge_verbatim(name, description, schema):
    if len(name) > 64:
        name = name[:64]
    request = tool_request({"tools": [{"type": "function", "function": {
        "name": name, "description": description, "parameters": schema}}]})
    (tool,) = request.tools
    sent: list[str] = []
    bridge = ToolBridge(request.tools, sent.extend)
    bridge.handle({"request_id": "r1", "request": {"subtype": "mcp_message", "message": {
        "jsonrpc": "2.0", "id": 1, "method": "tools/list"}}})
    (line,) = sent
    (listed,) = json.loads(line)["response"]["response"]["mcp_response"]["result"]["tools"]
    assert listed["inputSchema"] == schema
    assert listed["description"] == description
    assert len(PREFIX + listed["name"]) <= 64
    assert request.by_upstream_name(PREFIX + listed["name"]).name == name


# ---------------------------------------------------------------------------- CLI lines


def _line(obj: dict) -> str:
    return json.dumps(obj, separators=(",", ":"), ensure_ascii=False)


def _event(event: dict) -> str:
    return _line({"type": "stream_event", "event": event, "session_id": "s",
                  "parent_tool_use_id": None})


def _splits(text: str) -> st.SearchStrategy[list[str]]:
    """Any split of `text` into pieces (empty pieces included: the CLI sends some)."""
    return st.lists(st.integers(0, len(text)), max_size=8).map(
        lambda cuts: [text[a:b] for a, b in zip([0, *sorted(cuts)], [*sorted(cuts), len(text)])])


@st.composite
def tool_answers(draw: st.DrawFn) -> tuple[list[str], str, list[tuple[str, object]]]:
    """(CLI lines, the text before the calls, [(tool, arguments)]): text blocks and calls of
    the offered tools, each call's arguments split anywhere, ending at stop_reason tool_use."""
    tools = ["alpha", "beta"]
    blocks: list[dict] = []
    for _ in range(draw(st.integers(0, 2))):
        blocks.append({"type": "text", "text": draw(st.text(min_size=1, max_size=20))})
    for number in range(draw(st.integers(1, 3))):
        arguments = draw(st.dictionaries(keys, st.recursive(
            st.none() | st.booleans() | st.integers() | st.text(max_size=10),
            lambda c: st.lists(c, max_size=3) | st.dictionaries(keys, c, max_size=3),
            max_leaves=6), max_size=4))
        blocks.append({"type": "tool_use", "id": f"toolu_{number:024d}",
                       "name": PREFIX + draw(st.sampled_from(tools)), "input": arguments})
    lines = [_line({"type": "system", "subtype": "init", "session_id": "s", "tools":
                    [PREFIX + t for t in tools], "mcp_servers": [{"name": "c",
                                                                  "status": "connected"}]}),
             _event({"type": "message_start", "message": {
                 "id": "msg_1", "type": "message", "role": "assistant", "content": [],
                 "usage": {"input_tokens": 7, "output_tokens": 1}}})]
    for index, block in enumerate(blocks):
        if block["type"] == "text":
            lines.append(_event({"type": "content_block_start", "index": index,
                                 "content_block": {"type": "text", "text": ""}}))
            for piece in draw(_splits(block["text"])):
                lines.append(_event({"type": "content_block_delta", "index": index,
                                     "delta": {"type": "text_delta", "text": piece}}))
        else:
            lines.append(_event({"type": "content_block_start", "index": index,
                                 "content_block": {**block, "input": {}}}))
            for piece in draw(_splits(json.dumps(block["input"], ensure_ascii=False))):
                lines.append(_event({"type": "content_block_delta", "index": index,
                                     "delta": {"type": "input_json_delta",
                                               "partial_json": piece}}))
        lines.append(_event({"type": "content_block_stop", "index": index}))
    lines.append(_event({"type": "message_delta", "delta": {"stop_reason": "tool_use"},
                         "usage": {"output_tokens": 9}}))
    text = "\n\n".join(b["text"] for b in blocks if b["type"] == "text")
    calls = [(b["name"][len(PREFIX):], b["input"]) for b in blocks if b["type"] == "tool_use"]
    return lines, text, calls


@pytest.fixture(scope="module")
def harness():
    runner = LinesRunner([])
    yield runner, falcon.testing.TestClient(create_app(Settings(), runner), headers=HEADERS)
    runner.close()


def _post(client, body: dict):
    result = client.simulate_post(PATH, json=body)
    assert result.status_code == 200, result.text
    problems = official_problems("POST", PATH, 200, result.headers.get("content-type", ""),
                                 result.content, request_body=body)
    assert problems == [], problems
    return result


def _streamed_calls(report) -> list[tuple[str, str]]:
    calls: dict[int, list[str]] = {}
    for chunk in report.chunks:
        for delta in (chunk["choices"][0]["delta"].get("tool_calls") or []
                      if chunk.get("choices") else []):
            call = calls.setdefault(delta["index"], [delta["function"].get("name"), ""])
            call[1] += delta["function"].get("arguments") or ""
    return [(name, arguments) for _, (name, arguments) in sorted(calls.items())]


TOOLS = [{"type": "function", "function": {"name": name, "parameters": {"type": "object"}}}
         for name in ("alpha", "beta")]


@budget(150)
@given(answer=tool_answers())
def test_any_split_of_the_arguments_comes_out_as_the_same_calls(harness, answer):
    runner, client = harness
    lines, text, calls = answer
    note("\n".join(lines))
    runner.lines = lines
    body = {"model": "claude-sonnet-4", "messages": ASK, "tools": TOOLS}
    whole = _post(client, body).json
    message = whole["choices"][0]["message"]
    assert whole["choices"][0]["finish_reason"] == "tool_calls"
    assert (message["content"] or "") == text
    assert [(c["function"]["name"], json.loads(c["function"]["arguments"]))
            for c in message["tool_calls"]] == calls
    streamed = _post(client, {**body, "stream": True})
    report = check_stream(streamed.content, include_usage=False).assert_ok()
    assert report.finish_reason == "tool_calls" and report.text == text
    assert [(name, json.loads(arguments)) for name, arguments in _streamed_calls(report)] \
        == calls


# ---------------------------------------------------------------------------- formats


@st.composite
def structured_answers(draw: st.DrawFn) -> tuple[dict, object, list[str]]:
    """(the client's schema, an instance of it, the CLI lines that answer it)."""
    schema = draw(st.one_of(object_schemas, schemas))
    value = draw(from_schema(schema))
    fmt = response_format({"response_format": {"type": "json_schema", "json_schema": {
        "name": "answer", "schema": schema}}})
    sent = {"value": value} if fmt.wrapped else value
    lines = [_line({"type": "system", "subtype": "init", "session_id": "s",
                    "tools": ["StructuredOutput"], "mcp_servers": []}),
             _event({"type": "message_start", "message": {
                 "id": "msg_1", "type": "message", "role": "assistant", "content": [],
                 "usage": {"input_tokens": 7, "output_tokens": 1}}}),
             _event({"type": "content_block_start", "index": 0, "content_block": {
                 "type": "tool_use", "id": "toolu_" + "0" * 24, "name": "StructuredOutput",
                 "input": {}}})]
    for piece in draw(_splits(json.dumps(sent, ensure_ascii=False))):
        lines.append(_event({"type": "content_block_delta", "index": 0, "delta": {
            "type": "input_json_delta", "partial_json": piece}}))
    lines += [_event({"type": "content_block_stop", "index": 0}),
              _event({"type": "message_delta", "delta": {"stop_reason": "tool_use"},
                      "usage": {"output_tokens": 9}}),
              _line({"type": "result", "subtype": "success", "is_error": False,
                     "stop_reason": "end_turn", "session_id": "s", "result": json.dumps(sent),
                     "structured_output": sent,
                     "usage": {"input_tokens": 7, "output_tokens": 9}})]
    return schema, value, lines


@budget(150)
@given(answer=structured_answers())
def test_any_schema_comes_back_as_a_valid_instance(harness, answer):
    runner, client = harness
    schema, value, lines = answer
    note(json.dumps(schema))
    runner.lines = lines
    body = {"model": "claude-sonnet-4", "messages": ASK, "response_format": {
        "type": "json_schema", "json_schema": {"name": "answer", "schema": schema,
                                               "strict": True}}}
    validator = Draft202012Validator(schema)
    whole = _post(client, body).json
    content = whole["choices"][0]["message"]["content"]
    assert json.loads(content) == value and validator.is_valid(json.loads(content))
    assert whole["choices"][0]["finish_reason"] == "stop"
    streamed = _post(client, {**body, "stream": True})
    report = check_stream(streamed.content, include_usage=False).assert_ok()
    assert json.loads(report.text) == value and report.finish_reason == "stop"
