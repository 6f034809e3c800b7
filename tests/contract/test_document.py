"""The OpenAPI document itself: valid OpenAPI 3.1, 3.1-style schemas, the agreed operations."""

from __future__ import annotations

import json
import shutil
from collections.abc import Iterator
from typing import Any

import pytest
import schemathesis
from jsonschema import Draft202012Validator
from jsonschema.exceptions import SchemaError
from schemathesis.specs.openapi.definitions import OPENAPI_31

from proxy.contract import document
from proxy.contract.document import (
    Operation, document_json_bytes, document_path, load_document, operations,
)

EXPECTED_OPERATIONS = {
    ("GET", "/health", "getHealth"),
    ("GET", "/health/ready", "getReadiness"),
    ("GET", "/metrics", "getMetrics"),
    ("GET", "/openapi.json", "getOpenAPIDocument"),
    ("GET", "/v1/models", "listModels"),
    ("GET", "/v1/models/{model}", "retrieveModel"),
    ("POST", "/v1/chat/completions", "createChatCompletion"),
    ("POST", "/v1/completions", "createCompletion"),  # legacy completions
    # the Responses API (issue 13)
    ("POST", "/v1/responses", "createResponse"),
    ("GET", "/v1/responses/{response_id}", "getResponse"),
    ("DELETE", "/v1/responses/{response_id}", "deleteResponse"),
    ("GET", "/v1/responses/{response_id}/input_items", "listInputItems"),
}
CHAT_ERRORS = {"400", "401", "404", "413", "415", "429", "500", "502", "503", "504"}


def walk(node: Any, path: str = "") -> Iterator[tuple[str, Any, Any]]:
    """(path, key, value) for every mapping entry of the document."""
    if isinstance(node, dict):
        for key, value in node.items():
            yield path, key, value
            yield from walk(value, f"{path}/{key}")
    elif isinstance(node, list):
        for i, value in enumerate(node):
            yield from walk(value, f"{path}/{i}")


def resolve(doc: dict, ref: str) -> Any:
    assert ref.startswith("#/"), ref
    node = doc
    for part in ref[2:].split("/"):
        node = node[part.replace("~1", "/").replace("~0", "~")]
    return node


def schema_objects(doc: dict) -> Iterator[tuple[str, Any]]:
    yield from ((f"components/schemas/{k}", v) for k, v in doc["components"]["schemas"].items())
    for path, key, value in walk(doc["paths"]):
        if key == "schema":
            yield f"paths{path}", value


def test_document_is_valid_openapi_3_1(doc):
    assert doc["openapi"] == "3.1.0"
    errors = sorted(Draft202012Validator(OPENAPI_31).iter_errors(doc), key=str)
    assert not errors, [f"{list(e.absolute_path)}: {e.message}" for e in errors[:5]]


def test_every_schema_object_is_valid_json_schema_2020_12(doc):
    checked = 0
    for where, schema in schema_objects(doc):
        try:
            Draft202012Validator.check_schema(schema)
        except SchemaError as exc:
            pytest.fail(f"{where}: {exc.message}")
        checked += 1
    assert checked > 50


def test_the_meta_schema_check_can_fail(doc):
    broken = json.loads(json.dumps(doc))
    broken["paths"]["/v1/models"]["get"]["responses"]["200"].pop("description")
    assert list(Draft202012Validator(OPENAPI_31).iter_errors(broken))


def test_no_openapi_3_0_leftovers(doc):
    keys = {key for _, key, _ in walk(doc)}
    assert "nullable" not in keys  # 3.1: type: [X, "null"]
    assert "x-nullable" not in keys
    # The official discriminators lack a mapping: tools then expect schema names as values.
    assert "discriminator" not in keys


def test_status_codes_are_strings_and_refs_resolve(doc):
    for op in operations(doc):
        for status in doc["paths"][op.path][op.method.lower()]["responses"]:
            assert isinstance(status, str) and status.isdigit()
    refs = [value for _, key, value in walk(doc) if key == "$ref"]
    assert refs
    for ref in refs:
        resolve(doc, ref)


def test_info_servers_and_security(doc):
    assert doc["info"]["title"] == "claude-max-api"
    assert [s["url"] for s in doc["servers"]] == ["http://127.0.0.1:3456"]
    schemes = doc["components"]["securitySchemes"]
    assert schemes["bearer"] == {**schemes["bearer"], "type": "http", "scheme": "bearer"}
    assert schemes["apiKeyHeader"] == {**schemes["apiKeyHeader"], "type": "apiKey",
                                       "in": "header", "name": "x-api-key"}
    assert doc["security"] == [{}, {"bearer": []}, {"apiKeyHeader": []}]


def test_operations_are_exactly_the_agreed_ones(doc):
    ops = operations(doc)
    assert {(o.method, o.path, o.operation_id) for o in ops} == EXPECTED_OPERATIONS
    assert len({o.operation_id for o in ops}) == len(ops)
    assert Operation("POST", "/v1/chat/completions", "createChatCompletion") in ops


def test_every_operation_documents_auth_and_server_errors(doc):
    for op in operations(doc):
        responses = doc["paths"][op.path][op.method.lower()]["responses"]
        assert {"200", "401", "500"} <= set(responses), op
    retrieve = doc["paths"]["/v1/models/{model}"]["get"]["responses"]
    assert retrieve["404"] == {"$ref": "#/components/responses/NotFound"}


def test_chat_operation_errors_and_content(doc):
    chat = doc["paths"]["/v1/chat/completions"]["post"]
    assert chat["requestBody"]["required"] is True
    assert chat["requestBody"]["content"]["application/json"]["schema"] == {
        "$ref": "#/components/schemas/CreateChatCompletionRequest"}
    ok = chat["responses"]["200"]["content"]
    assert ok["application/json"]["schema"]["$ref"].endswith("/CreateChatCompletionResponse")
    assert ok["text/event-stream"]["schema"]["$ref"].endswith("/ChatCompletionSSEEvent")
    assert CHAT_ERRORS <= set(chat["responses"])
    for status in CHAT_ERRORS:
        response = resolve(doc, chat["responses"][status]["$ref"])
        assert response["content"]["application/json"]["schema"] == {
            "$ref": "#/components/schemas/ErrorResponse"}, status
    too_many = resolve(doc, chat["responses"]["429"]["$ref"])
    header = resolve(doc, too_many["headers"]["Retry-After"]["$ref"])
    assert header["schema"] == {"type": "integer", "minimum": 1}


def test_shared_responses_exist(doc):
    assert {"BadRequest", "Unauthorized", "NotFound", "MethodNotAllowed", "PayloadTooLarge",
            "UnsupportedMediaType", "TooManyRequests", "InternalServerError", "BadGateway",
            "ServiceUnavailable", "GatewayTimeout"} <= set(doc["components"]["responses"])


def test_readiness_documents_200_and_503(doc):
    responses = doc["paths"]["/health/ready"]["get"]["responses"]
    for status in ("200", "503"):
        assert responses[status]["content"]["application/json"]["schema"] == {
            "$ref": "#/components/schemas/ReadinessResponse"}
    metrics = doc["paths"]["/metrics"]["get"]["responses"]["200"]["content"]
    assert list(metrics) == ["text/plain"]


def test_chat_request_examples_are_valid_and_cover_streaming(doc, request_validator):
    examples = doc["paths"]["/v1/chat/completions"]["post"]["requestBody"]["content"][
        "application/json"]["examples"]
    assert {"plain", "streaming"} <= set(examples)
    for example in examples.values():
        assert request_validator.validate("CreateChatCompletionRequest", example["value"]) is None
    streaming = examples["streaming"]["value"]
    assert streaming["stream"] is True and streaming["stream_options"] == {"include_usage": True}


def test_legacy_completions_operation_errors_content_and_examples(doc, request_validator):
    operation = doc["paths"]["/v1/completions"]["post"]
    assert operation["requestBody"]["content"]["application/json"]["schema"] == {
        "$ref": "#/components/schemas/CreateCompletionRequest"}
    ok = operation["responses"]["200"]["content"]
    assert ok["application/json"]["schema"]["$ref"].endswith("/CreateCompletionResponse")
    assert ok["text/event-stream"]["schema"]["$ref"].endswith("/CompletionSSEEvent")
    assert CHAT_ERRORS <= set(operation["responses"])
    examples = operation["requestBody"]["content"]["application/json"]["examples"]
    for example in examples.values():
        assert request_validator.validate("CreateCompletionRequest", example["value"]) is None
    assert examples["streaming"]["value"]["stream_options"] == {"include_usage": True}


def test_schemathesis_loads_the_document(doc):
    schema = schemathesis.openapi.from_dict(doc)
    found = {(op.method.upper(), op.path) for op in (r.ok() for r in schema.get_all_operations())}
    assert found == {(m, p) for m, p, _ in EXPECTED_OPERATIONS}


def test_load_document_returns_independent_copies():
    first = load_document()
    first["paths"].clear()
    assert load_document()["paths"]


def test_json_bytes_are_the_document():
    data = document_json_bytes()
    assert json.loads(data) == load_document()
    assert data is document_json_bytes()  # built once


def test_packaged_copy_is_used_outside_a_checkout(tmp_path, monkeypatch):
    packaged = tmp_path / "openapi.yaml"
    shutil.copy(document_path(), packaged)
    monkeypatch.setattr(document, "_SOURCE_COPY", tmp_path / "missing" / "openapi.yaml")
    monkeypatch.setattr(document, "_PACKAGED_COPY", packaged)
    assert document_path() == packaged
    assert load_document()["info"]["title"] == "claude-max-api"
    monkeypatch.setattr(document, "_PACKAGED_COPY", tmp_path / "also-missing.yaml")
    with pytest.raises(FileNotFoundError):
        document_path()
