"""Extraction of official schema subsets: the full spec, its cache, and the vendored copy."""

from __future__ import annotations

import json
from pathlib import Path
from collections.abc import Iterator
from typing import Any

import pytest
from jsonschema import Draft202012Validator

from proxy.contract import official
from proxy.contract.official import (
    DEFAULT_ROOTS, KNOWN_SOURCES, official_components, official_schemas, ref_closure,
    spec_path, vendored_path, vendored_subset,
)
from tests.support.ci import missing


@pytest.fixture
def full_spec() -> Path:
    """The full official spec: beside the repository or named by OPENAI_OPENAPI_SPEC. Without
    it, skipped on a developer's machine and a failure in CI (.ci/run finds it in
    ../shared/reference/), so the vendored subset is checked against it on every CI run."""
    path = spec_path()
    if not path.is_file():
        missing(f"the official spec is not at {path} (set OPENAI_OPENAPI_SPEC)")
    return path


TINY_SPEC = """\
openapi: 3.1.0
info: {title: tiny, version: 1.0.0}
paths: {}
components:
  schemas:
    Chunk:
      type: object
      description: A chunk.
      x-oaiMeta: {name: chunk}
      required: [finish_reason]
      properties:
        finish_reason: {type: string, enum: [stop], nullable: true, example: stop}
        example: {type: string, description: a property that is named like a keyword}
        usage: {$ref: '#/components/schemas/Usage'}
      example: {created: 2025-08-21}
    Usage:
      type: object
      discriminator: {propertyName: kind}
      properties:
        tokens: {type: integer}
    Unrelated: {type: string}
"""


def walk(node: Any) -> Iterator[tuple[str, Any]]:
    if isinstance(node, dict):
        for key, value in node.items():
            yield key, value
            yield from walk(value)
    elif isinstance(node, list):
        for value in node:
            yield from walk(value)


@pytest.fixture
def clear_caches():
    for fn in (official._load_spec_cached, official._cleaned_components, official._vendored,
               official._official_validator, official._sha256_of):
        fn.cache_clear()
    yield
    for fn in (official._load_spec_cached, official._cleaned_components, official._vendored,
               official._official_validator, official._sha256_of):
        fn.cache_clear()


@pytest.fixture
def tiny_spec(tmp_path, monkeypatch, clear_caches) -> Path:
    path = tmp_path / "spec.yaml"
    path.write_text(TINY_SPEC)
    monkeypatch.setenv("OPENAI_OPENAPI_SPEC", str(path))
    monkeypatch.setenv("CLAUDE_MAX_API_CACHE_DIR", str(tmp_path / "cache"))
    return path


@pytest.mark.parametrize("profile", ["strict", "lenient"])
def test_extracted_bundle_is_clean_2020_12(profile):
    bundle = official_schemas(DEFAULT_ROOTS, profile)
    assert bundle["$schema"] == "https://json-schema.org/draft/2020-12/schema"
    Draft202012Validator.check_schema(bundle)
    keys = {key for key, _ in walk(bundle["$defs"])}
    assert not {"nullable", "discriminator", "example", "examples", "x-oaiMeta"} & keys
    for key, value in walk(bundle):
        if key == "$ref":
            assert value.startswith("#/$defs/") and value[len("#/$defs/"):] in bundle["$defs"]
    assert set(DEFAULT_ROOTS) <= set(bundle["$defs"])


def test_lenient_differs_only_in_refusal_and_logprobs():
    strict, lenient = official_schemas(profile="strict"), official_schemas(profile="lenient")
    changed = {n for n in strict["$defs"] if strict["$defs"][n] != lenient["$defs"][n]}
    assert changed == {"ChatCompletionResponseMessage", "CreateChatCompletionResponse",
                       "CreateCompletionResponse"}
    assert "refusal" in strict["$defs"]["ChatCompletionResponseMessage"]["required"]
    assert "refusal" not in lenient["$defs"]["ChatCompletionResponseMessage"]["required"]


def test_unknown_profile_is_refused():
    with pytest.raises(ValueError):
        official_schemas(profile="loose")


def test_extraction_rules_on_a_tiny_spec(tiny_spec):
    bundle = official_schemas(["Chunk"])
    assert set(bundle["$defs"]) == {"Chunk", "Usage"}  # the $ref closure, nothing else
    chunk = bundle["$defs"]["Chunk"]
    assert chunk["properties"]["finish_reason"] == {
        "anyOf": [{"type": "string", "enum": ["stop"]}, {"type": "null"}]}
    assert chunk["properties"]["example"] == {"type": "string"}  # a property, not a keyword
    assert chunk["properties"]["usage"] == {"$ref": "#/$defs/Usage"}
    assert "discriminator" not in bundle["$defs"]["Usage"]
    validator = official.official_validator("Chunk")
    assert validator.is_valid({"finish_reason": None, "usage": {"tokens": 1}})
    assert not validator.is_valid({"finish_reason": "done"})
    with pytest.raises(KeyError):
        official_schemas(["Missing"])


def test_parsed_spec_is_cached_by_sha256(tiny_spec, tmp_path):
    official_components()
    sha = official._sha256(tiny_spec)
    cached = tmp_path / "cache" / f"openai-openapi-{sha}.json"
    assert json.loads(cached.read_text())["info"]["title"] == "tiny"  # the date became a string
    # A fresh process reads the cache instead of parsing the YAML.
    doctored = json.loads(cached.read_text())
    doctored["components"]["schemas"]["Unrelated"] = {"type": "integer"}
    cached.write_text(json.dumps(doctored))
    official._load_spec_cached.cache_clear()
    official._cleaned_components.cache_clear()
    assert official_components()[0]["Unrelated"] == {"type": "integer"}
    # Changing the spec changes its sha256, hence the cache entry.
    tiny_spec.write_text(TINY_SPEC + "    Another: {type: boolean}\n")
    assert official_components()[0]["Unrelated"] == {"type": "string"}
    assert len(list((tmp_path / "cache").glob("openai-openapi-*.json"))) == 2


def test_vendored_subset_is_used_without_the_spec(tmp_path, monkeypatch, clear_caches):
    monkeypatch.setenv("OPENAI_OPENAPI_SPEC", str(tmp_path / "absent.yaml"))
    schemas, source = official_components()
    assert source["commit"] == "f85dbe2" and KNOWN_SOURCES[source["sha256"]] == "f85dbe2"
    bundle = official_schemas(DEFAULT_ROOTS)
    assert "commit f85dbe2" in bundle["$comment"]
    assert official.official_validator("Model").is_valid(
        {"id": "m", "object": "model", "created": 1, "owned_by": "o"})
    with pytest.raises(KeyError, match="vendored subset"):
        official_schemas(["CreateEmbeddingRequest"])  # not in the vendored closure


def test_nothing_available_is_a_clear_error(tmp_path, monkeypatch, clear_caches):
    monkeypatch.setenv("OPENAI_OPENAPI_SPEC", str(tmp_path / "absent.yaml"))
    monkeypatch.setattr(official, "_VENDORED_CANDIDATES", (tmp_path / "none.json",))
    with pytest.raises(FileNotFoundError, match="OPENAI_OPENAPI_SPEC"):
        official_components()


def test_vendored_subset_is_small_and_complete():
    path = vendored_path()
    assert path is not None and path.name == "official-subset.json"
    assert path.stat().st_size < 300_000
    data = json.loads(path.read_text())
    assert data["source"]["commit"] == "f85dbe2"
    assert data["roots"] == list(DEFAULT_ROOTS)
    assert ref_closure(DEFAULT_ROOTS, data["schemas"]) == sorted(data["schemas"])


def test_vendored_subset_matches_the_full_spec(full_spec, clear_caches):
    data = json.loads(vendored_path().read_text())
    fresh = vendored_subset()
    assert data["source"] == fresh["source"]
    assert data["schemas"] == fresh["schemas"], "regenerate: python -m proxy.contract.official " \
                                                "--write openapi/official-subset.json"


def test_both_sources_give_the_same_bundle(full_spec, tmp_path, monkeypatch, clear_caches):
    from_spec = official_schemas(DEFAULT_ROOTS, "lenient")
    monkeypatch.setenv("OPENAI_OPENAPI_SPEC", str(tmp_path / "absent.yaml"))
    assert official_schemas(DEFAULT_ROOTS, "lenient") == from_spec


def test_writer_command(tiny_spec, tmp_path, capsys):
    out = tmp_path / "subset.json"
    assert official.main(["--write", str(out), "--root", "Chunk"]) == 2  # unknown snapshot
    assert "--commit" in capsys.readouterr().err and not out.exists()
    assert official.main(["--write", str(out), "--commit", "abc1234"]) == 2  # no such roots here
    assert "CreateChatCompletionRequest" in capsys.readouterr().err
    assert official.main(["--write", str(out), "--root", "Chunk", "--commit", "abc1234"]) == 0
    written = json.loads(out.read_text())
    assert written["source"]["commit"] == "abc1234"
    assert written["source"]["sha256"] == official._sha256(tiny_spec)
    assert written["roots"] == ["Chunk"] and set(written["schemas"]) == {"Chunk", "Usage"}


def test_closed_validator_refuses_unknown_properties_also_across_allof():
    """The closed validators behind the fidelity checks: an unknown property is refused even in
    an allOf (the Responses API's `...Resource` items extend their item with id and status),
    the parts' own properties are not, and `properties: {}` (a function's parameters) stays
    any object."""
    from proxy.contract.official import closed_validator

    items = closed_validator("ResponseItemList")
    page = {"object": "list", "first_id": "i", "last_id": "i", "has_more": False, "data": [
        {"type": "function_call_output", "call_id": "c", "output": "x", "id": "i",
         "status": "completed"}]}
    assert list(items.iter_errors(page)) == []
    page["data"][0]["bogus"] = 1
    assert list(items.iter_errors(page)) != []

    response = closed_validator("Response")
    unknown = [e.message for e in response.iter_errors({"bogus": 1}) if "'bogus'" in e.message]
    assert unknown and "Unevaluated properties are not allowed" in unknown[0]

    tool = closed_validator("FunctionToolParam")
    assert list(tool.iter_errors({"type": "function", "name": "f", "parameters": {
        "type": "object", "properties": {"city": {"type": "string"}}}})) == []
    assert list(tool.iter_errors({"type": "function", "name": "f", "colour": "red"})) != []
