"""The strict fidelity profile is closed: the official schemas name every property an answer may
have, plus exactly the document's declared extensions (`reasoning_content`); the contract
comparison skips those and only those."""

from __future__ import annotations

import copy
import json

import pytest

from proxy.contract.comparison import contradictions, extensions
from proxy.contract.document import load_document
from tests.contract.samples import COMPLETION, FIRST_CHUNK
from tests.support.fidelity import official_problems

PATH = "/v1/chat/completions"


@pytest.fixture(scope="module")
def doc():
    return load_document()


def judge(obj) -> list[str]:
    return official_problems("POST", PATH, 200, "application/json", json.dumps(obj).encode())


def judge_chunk(chunk) -> list[str]:
    body = f"data: {json.dumps(chunk)}\n\n".encode()
    return official_problems("POST", PATH, 200, "text/event-stream", body, complete=False)


def with_message(**fields):
    completion = copy.deepcopy(COMPLETION)
    completion["choices"][0]["message"].update(fields)
    return completion


def with_delta(**fields):
    chunk = copy.deepcopy(FIRST_CHUNK)
    chunk["choices"][0]["delta"] = fields
    return chunk


def test_the_document_declares_exactly_these_extensions(doc):
    found = {name: sorted(props) for name, props in extensions(doc).items()}
    assert found == {"CreateChatCompletionRequest": ["include_reasoning"],
                     "ChatCompletionResponseMessage": ["reasoning_content"],
                     "ChatCompletionStreamResponseDelta": ["reasoning_content"]}


def test_reasoning_content_is_accepted():
    assert judge(with_message(reasoning_content="Thought.")) == []
    assert judge(with_message(reasoning_content=None)) == []
    assert judge_chunk(with_delta(reasoning_content="Thought.")) == []


@pytest.mark.parametrize("obj", [
    with_message(reasoning_content=5),
    with_message(reasoning="Thought."),          # OpenRouter's name, not ours
    with_message(thinking_blocks=[]),            # LiteLLM's, not ours
    {**COMPLETION, "provider": "anthropic"},
    {**COMPLETION, "usage": {**COMPLETION["usage"], "thinking_tokens": 3}},
])
def test_anything_else_off_the_official_spec_is_refused(obj):
    assert judge(obj), obj


@pytest.mark.parametrize("chunk", [
    with_delta(reasoning_content=None),          # a delta carries text or nothing
    with_delta(reasoning="x"),
    {**FIRST_CHUNK, "choices": [{**FIRST_CHUNK["choices"][0], "stop_reason": None}]},
])
def test_anything_else_in_a_chunk_is_refused(chunk):
    assert judge_chunk(chunk), chunk


def test_an_extension_may_not_take_an_official_name(doc):
    changed = copy.deepcopy(doc)
    changed["components"]["schemas"]["ChatCompletionResponseMessage"]["properties"]["content"] = {
        "type": "string", "x-extension": True}
    assert any("extension with the name of an official property" in p
               for p in contradictions(changed))


def test_an_unmarked_addition_is_still_a_contradiction(doc):
    changed = copy.deepcopy(doc)
    props = changed["components"]["schemas"]["ChatCompletionResponseMessage"]["properties"]
    props["reasoning_content"] = {"type": ["string", "null"]}
    assert any(p.startswith("ChatCompletionResponseMessage.reasoning_content: not a property")
               for p in contradictions(changed))


def test_include_reasoning_is_validated_as_a_boolean():
    from proxy.contract.validation import RequestValidator

    validator = RequestValidator()
    body = {"model": "sonnet", "messages": [{"role": "user", "content": "hi"}]}
    for ok in (True, False, None):
        assert validator.validate("CreateChatCompletionRequest",
                                  {**body, "include_reasoning": ok}) is None
    issue = validator.validate("CreateChatCompletionRequest", {**body, "include_reasoning": "yes"})
    assert (issue.param, issue.code) == ("include_reasoning", "invalid_type")
