"""Our schemas are faithful subsets of the official OpenAI ones, and the check can fail."""

from __future__ import annotations

import copy

import pytest

from proxy.contract.comparison import contradictions, faithful_schema_names
from proxy.contract.official import official_schemas

REQUIRED_NAMES = {
    "CreateChatCompletionRequest", "ChatCompletionRequestMessage",
    "ChatCompletionRequestDeveloperMessage", "ChatCompletionRequestSystemMessage",
    "ChatCompletionRequestUserMessage", "ChatCompletionRequestAssistantMessage",
    "ChatCompletionRequestToolMessage", "ChatCompletionRequestFunctionMessage",
    "ChatCompletionRequestMessageContentPartText", "ChatCompletionRequestMessageContentPartImage",
    "ChatCompletionRequestMessageContentPartAudio", "ChatCompletionRequestMessageContentPartFile",
    "ChatCompletionRequestMessageContentPartRefusal", "ChatCompletionStreamOptions",
    "CreateChatCompletionResponse", "ChatCompletionResponseMessage", "CompletionUsage",
    "CreateChatCompletionStreamResponse", "ChatCompletionStreamResponseDelta",
    "Model", "ListModelsResponse", "Error", "ErrorResponse",
    "CreateCompletionRequest", "CreateCompletionResponse",  # legacy completions
}
OWN_NAMES = {"HealthResponse", "ReadinessResponse", "ChatCompletionSSEEvent",
             "CompletionStreamChunk", "CompletionSSEEvent",
             "ResponseSSEEvent", "ResponseDeleted"}  # the last two: the Responses API


def test_document_has_the_agreed_schemas(doc):
    names = set(doc["components"]["schemas"])
    assert REQUIRED_NAMES | OWN_NAMES <= names
    assert set(faithful_schema_names(doc)) == names - OWN_NAMES


def test_our_schemas_never_contradict_the_official_ones(doc):
    assert contradictions(doc) == []


def test_official_required_lists_of_responses_are_kept(doc):
    schemas = doc["components"]["schemas"]
    assert {"role", "content", "refusal"} <= set(schemas["ChatCompletionResponseMessage"]["required"])
    choice = schemas["CreateChatCompletionResponse"]["properties"]["choices"]["items"]
    assert {"finish_reason", "index", "message", "logprobs"} <= set(choice["required"])


def _mutate(doc, change):
    mutated = copy.deepcopy(doc)
    change(mutated["components"]["schemas"])
    return mutated


def _props(schemas, name):
    return schemas[name]["properties"]


MUTATIONS = {
    "added property": (
        lambda s: _props(s, "Model").update(context_window={"type": "integer"}),
        "Model.context_window: not a property of the official schema"),
    "widened maximum": (
        lambda s: _props(s, "CreateChatCompletionRequest")["temperature"].update(maximum=3),
        "CreateChatCompletionRequest.temperature: maximum 3 is above the official 2"),
    "dropped bound": (
        lambda s: _props(s, "CreateChatCompletionRequest")["n"].pop("maximum"),
        "CreateChatCompletionRequest.n: no maximum, the official schema has 128"),
    "widened enum": (
        lambda s: _props(s, "CreateChatCompletionStreamResponse")["choices"]["items"]["properties"][
            "finish_reason"]["enum"].append("done"),
        "CreateChatCompletionStreamResponse.choices[].finish_reason: values ['done']"),
    "new role": (
        lambda s: _props(s, "ChatCompletionRequestUserMessage")["role"]["enum"].append("bot"),
        "ChatCompletionRequestUserMessage.role: values ['bot']"),
    "dropped required": (
        lambda s: s["ChatCompletionResponseMessage"]["required"].remove("refusal"),
        "ChatCompletionResponseMessage: does not require ['refusal']"),
    "wrong type": (
        lambda s: _props(s, "Model")["created"].update(type="string"),
        "Model.created: allows string, the official schema only integer"),
    "made nullable": (
        lambda s: _props(s, "CreateChatCompletionRequest")["user"].update(type=["string", "null"]),
        "CreateChatCompletionRequest.user: allows null"),
    "widened maxItems": (
        lambda s: s["StopConfiguration"].update(maxItems=5),
        "StopConfiguration: maxItems 5 is above the official 4"),
    "extra union branch": (
        lambda s: s["ChatCompletionRequestMessage"]["oneOf"].append({"type": "string"}),
        "ChatCompletionRequestMessage: allows string"),
    "map value type": (
        lambda s: s["Metadata"].update(additionalProperties={"type": "integer"}),
        "Metadata.*: allows integer"),
    "schema of any type": (
        lambda s: _props(s, "ChatCompletionResponseMessage").update(content={}),
        "ChatCompletionResponseMessage.content: allows any type"),
    "unknown schema name": (
        lambda s: s.update(ChatCompletionFoo={"type": "object"}),
        "ChatCompletionFoo: no schema of this name in the official spec"),
    "nested enum": (
        lambda s: _props(s, "ChatCompletionRequestMessageContentPartImage")["image_url"]["properties"][
            "detail"]["enum"].append("ultra"),
        "ChatCompletionRequestMessageContentPartImage.image_url.detail: values ['ultra']"),
}


@pytest.mark.parametrize("name", MUTATIONS)
def test_the_comparison_catches_contradictions(doc, name):
    change, expected = MUTATIONS[name]
    found = contradictions(_mutate(doc, change))
    assert any(problem.startswith(expected) for problem in found), found


def test_narrowing_is_not_a_contradiction(doc):
    def narrow(s):
        _props(s, "CreateChatCompletionRequest")["n"].update(maximum=1)
        s["ServiceTier"]["enum"] = ["auto", None]
        _props(s, "CreateChatCompletionRequest").pop("logit_bias")
        _props(s, "CreateChatCompletionStreamResponse")["usage"] = {
            "$ref": "#/components/schemas/CompletionUsage"}
    assert contradictions(_mutate(doc, narrow)) == []


def test_explicit_official_bundle(doc):
    bundle = official_schemas(faithful_schema_names(doc))
    assert contradictions(doc, bundle) == []
    del bundle["$defs"]["Model"]
    assert "Model: no schema of this name in the official spec" in contradictions(doc, bundle)
