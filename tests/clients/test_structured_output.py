"""Structured output from the clients' own helpers: `response_format` json_schema and
json_object, through the official SDK's `parse()` and `stream()`, LangChain's
`with_structured_output` (json_schema, its default, and json_mode) and pydantic-ai's
`NativeOutput`, run and streamed. (instructor's JSON modes are in test_instructor.py; the
flows that reach structured output through a tool call instead are tested with their clients.)

Each test checks both ends: the client gets the typed object, and what happened on the way.
The proxy runs the CLI with `--json-schema`, so Claude is offered the CLI's `StructuredOutput`
tool with the client's schema as its input schema, verbatim (json_object: any object); the
stand-in's "structured" scenario answers by calling it, once; the usage the client counts is
what the stand-in reported; and a stream brings the JSON in several deltas, as the model
writes it.
"""

from __future__ import annotations

import asyncio
import json

import openai
import pytest
from pydantic import BaseModel

from tests.clients.conftest import API_KEY, MODEL, SentRequests, need_module, \
    upstream_tool_names

pytestmark = [pytest.mark.live, pytest.mark.clients]

PROMPT = "Structured: Marie Curie was 66."
ANY_OBJECT = {"type": "object"}     # what the CLI is given for json_object


class UserInfo(BaseModel):
    name: str
    age: int


EXPECTED = UserInfo(name="Marie Curie", age=66)


def sent_format(sent: SentRequests) -> dict:
    """The one request the client sent, and the response_format in it."""
    (path,), (body,) = sent.paths(), sent.bodies()
    assert path == "/v1/chat/completions"
    return body["response_format"]


def the_structured_call(tier, mark: int) -> dict:
    """The one upstream request the flow made: the model was offered only the CLI's
    structured-output tool, and answered by calling it (no second request to steer it).
    Returns the schema the tool was offered with."""
    assert [r.scenario for r in tier.since(mark)] == ["structured"]
    (upstream,) = tier.since(mark)
    assert upstream_tool_names(upstream) == ["StructuredOutput"]
    return upstream.body["tools"][0]["input_schema"]


@pytest.fixture
def sent():
    return SentRequests()


@pytest.fixture
def sdk(tier, sent):
    return openai.OpenAI(base_url=tier.base_url, api_key=API_KEY, max_retries=0, timeout=60,
                         http_client=sent.client())


def test_openai_sdk_parse(tier, sdk, sent):
    mark = tier.mark()
    completion = sdk.chat.completions.parse(
        model=MODEL, response_format=UserInfo, messages=[{"role": "user", "content": PROMPT}])
    choice = completion.choices[0]
    assert choice.message.parsed == EXPECTED
    assert json.loads(choice.message.content) == EXPECTED.model_dump()
    assert choice.finish_reason == "stop" and choice.message.refusal is None
    assert not choice.message.tool_calls, "the CLI's own tool is never the client's call"

    fmt = sent_format(sent)
    assert fmt["type"] == "json_schema" and fmt["json_schema"]["strict"] is True
    assert the_structured_call(tier, mark) == fmt["json_schema"]["schema"]
    usage = completion.usage
    assert (usage.prompt_tokens, usage.completion_tokens) == tier.usage_since(mark)


def test_openai_sdk_parse_streamed(tier, sdk, sent):
    mark = tier.mark()
    with sdk.chat.completions.stream(model=MODEL, response_format=UserInfo,
                                     stream_options={"include_usage": True},
                                     messages=[{"role": "user", "content": PROMPT}]) as stream:
        events = list(stream)
        final = stream.get_final_completion()
    message = final.choices[0].message
    assert message.parsed == EXPECTED and final.choices[0].finish_reason == "stop"
    deltas = [e.delta for e in events if e.type == "content.delta" and e.delta]
    assert len(deltas) > 3, "the JSON comes while the model writes it, not at once at the end"
    assert "".join(deltas) == message.content
    # the helper parses the partial JSON as it comes: the last snapshot is the whole object
    assert [e.parsed for e in events if e.type == "content.delta"][-1] == EXPECTED.model_dump()

    fmt = sent_format(sent)
    assert fmt["type"] == "json_schema"
    assert the_structured_call(tier, mark) == fmt["json_schema"]["schema"]
    assert (final.usage.prompt_tokens, final.usage.completion_tokens) == tier.usage_since(mark)


@pytest.mark.parametrize("method", ["json_schema", "json_mode"])
def test_langchain_with_structured_output(tier, sent, method):
    """json_schema is LangChain's default method; json_mode asks for any JSON object and
    parses it with the model's class."""
    need_module("langchain_openai")
    from langchain_openai import ChatOpenAI

    chat = ChatOpenAI(model=MODEL, base_url=tier.base_url, api_key=API_KEY, max_retries=0,
                      timeout=60, http_client=sent.client())
    kw = {} if method == "json_schema" else {"method": method}
    extract = chat.with_structured_output(UserInfo, include_raw=True, **kw)
    # json_object: OpenAI wants the word JSON in the messages; clients write it
    prompt = PROMPT if method == "json_schema" else PROMPT + " Answer in JSON."
    mark = tier.mark()
    out = extract.invoke(prompt)
    assert out["parsed"] == EXPECTED and out["parsing_error"] is None
    raw = out["raw"]
    assert json.loads(raw.content) == EXPECTED.model_dump()
    assert raw.response_metadata["finish_reason"] == "stop" and not raw.tool_calls

    fmt = sent_format(sent)
    offered = the_structured_call(tier, mark)
    if method == "json_schema":
        assert fmt["type"] == "json_schema" and fmt["json_schema"]["name"] == "UserInfo"
        assert offered == fmt["json_schema"]["schema"]
    else:
        assert fmt == {"type": "json_object"}
        assert offered == ANY_OBJECT
    usage = raw.usage_metadata
    assert (usage["input_tokens"], usage["output_tokens"]) == tier.usage_since(mark)


@pytest.mark.parametrize("stream", [False, True], ids=["run", "stream"])
def test_pydantic_ai_native_output(tier, sent, stream):
    """pydantic-ai's NativeOutput asks for response_format json_schema (strict) and validates
    the answer's text with the output type; streamed, it sees the text grow."""
    need_module("pydantic_ai")
    from pydantic_ai import Agent, NativeOutput
    from pydantic_ai.models.openai import OpenAIChatModel
    from pydantic_ai.providers.openai import OpenAIProvider

    async def run():
        model = OpenAIChatModel(MODEL, provider=OpenAIProvider(
            base_url=tier.base_url, api_key=API_KEY, http_client=sent.async_client()))
        agent = Agent(model, output_type=NativeOutput(UserInfo), retries=0)
        if not stream:
            result = await agent.run(PROMPT)
            return result.output, result.usage, []
        async with agent.run_stream(PROMPT) as result:
            texts = [response.text async for response in result.stream_response(debounce_by=None)]
            return await result.get_output(), result.usage, texts

    mark = tier.mark()
    output, usage, texts = asyncio.run(run())
    assert output == EXPECTED

    fmt = sent_format(sent)
    assert fmt["type"] == "json_schema" and fmt["json_schema"]["strict"] is True
    assert sent.bodies()[0]["stream"] is stream
    assert the_structured_call(tier, mark) == fmt["json_schema"]["schema"]
    assert usage.requests == 1
    assert (usage.input_tokens, usage.output_tokens) == tier.usage_since(mark)
    if stream:
        growing = [t for i, t in enumerate(texts) if t and (i == 0 or t != texts[i - 1])]
        assert len(growing) > 3, f"the JSON comes in pieces: {texts}"
        assert json.loads(growing[-1]) == EXPECTED.model_dump()
