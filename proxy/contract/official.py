"""Schema subsets of the official OpenAI spec, as standalone JSON Schema 2020-12 documents.

Used by the tests (our schemas must be faithful subsets of these) and by the conformance suite
(validating any server's responses against the official schemas). The source is the full
official `openapi.yaml` when it is present (`OPENAI_OPENAPI_SPEC`, default
`../shared/reference/openai-openapi.yaml` beside the repository), else the vendored,
committed extract `openapi/official-subset.json`, which this module writes:

    python -m proxy.contract.official --write openapi/official-subset.json

Extraction: take the `$ref` closure of the requested schemas; drop `x-*`, `example(s)`,
`discriminator`, `description` and `title` keywords; rewrite the OpenAPI 3.0 keyword
`nullable: true` (which a 2020-12 validator ignores, rejecting every `finish_reason: null`)
to `anyOf [{...}, {type: null}]`; rewrite 2019-09's `$recursiveRef: "#"` as a plain
self-reference; point `#/components/schemas/X` at `#/$defs/X`.

Profiles: "strict" is the official schemas as they are; "lenient" drops `refusal` and
`logprobs` from the `required` lists of a completion (chat or legacy), which real servers omit.

`closed_validator()` is stricter still, for judging this project's own answers: the official
schemas accept any property they do not name, so there every object is closed to the
properties the official spec names plus the extensions the caller declares (the document's
`x-extension` properties, e.g. `reasoning_content`), and nothing else.
"""

from __future__ import annotations

import argparse
import copy
import functools
import hashlib
import json
import os
import sys
import tempfile
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import Any

from jsonschema import Draft202012Validator

ENV_SPEC = "OPENAI_OPENAPI_SPEC"
ENV_CACHE = "CLAUDE_MAX_API_CACHE_DIR"
JSON_SCHEMA_2020_12 = "https://json-schema.org/draft/2020-12/schema"
REPOSITORY = "https://github.com/openai/openai-openapi"
# The snapshot this project was written against (commit and sha256 of its openapi.yaml).
KNOWN_SOURCES = {
    "db5d7478feae10b4d331834c60d9765a8aa042e38419f9b1694288c11aa8ebc8": "f85dbe2",
}
# What the tests and the conformance suite need; the vendored file holds their closure.
DEFAULT_ROOTS = (
    "CreateChatCompletionRequest",
    "CreateChatCompletionResponse",
    "CreateChatCompletionStreamResponse",
    "CreateCompletionRequest",
    "CreateCompletionResponse",
    "ListModelsResponse",
    "Model",
    "ErrorResponse",
    "Error",
    # the Responses API (issue 13)
    "CreateResponse",
    "Response",
    "ResponseStreamEvent",
    "ResponseItemList",
)
PROFILES = ("strict", "lenient")
# (schema, path to a `required` list inside it, names the lenient profile drops from it)
_LENIENT_EDITS = (
    ("ChatCompletionResponseMessage", (), ("refusal",)),
    ("CreateChatCompletionResponse", ("properties", "choices", "items"), ("logprobs",)),
    ("CreateChatCompletionStreamResponse", ("properties", "choices", "items"), ("logprobs",)),
    ("CreateCompletionResponse", ("properties", "choices", "items"), ("logprobs",)),
)

# A streamed text completion: the official spec gives streamed and non-streamed completions one
# shape (CreateCompletionResponse), but OpenAI streams `finish_reason: null` until a choice
# ends. The one relaxation for stream chunks: (schema, path to the property made nullable).
_STREAM_CHUNK_EDITS = {
    "CreateCompletionResponse": ("properties", "choices", "items", "properties", "finish_reason"),
}

_REPO_ROOT = Path(__file__).resolve().parents[2]
_VENDORED_CANDIDATES = (
    _REPO_ROOT / "openapi" / "official-subset.json",
    Path(__file__).resolve().parent / "official-subset.json",  # if a wheel carries it
)
_COMPONENT_PREFIX = "#/components/schemas/"
_DEFS_PREFIX = "#/$defs/"

_SCHEMA_MAPS = frozenset({"properties", "patternProperties", "$defs", "definitions", "dependentSchemas"})
_SCHEMA_LISTS = frozenset({"allOf", "anyOf", "oneOf", "prefixItems"})
_SCHEMA_ONE = frozenset({
    "items", "additionalProperties", "not", "if", "then", "else", "contains", "propertyNames",
    "unevaluatedItems", "unevaluatedProperties", "contentSchema", "additionalItems",
})
_DROPPED = frozenset({"example", "examples", "discriminator", "description", "title",
                      "externalDocs", "xml"})


# ---------------------------------------------------------------------------- sources


def spec_path() -> Path:
    """Where the full official spec is expected (it may be absent, e.g. in CI)."""
    configured = os.environ.get(ENV_SPEC)
    if configured:
        return Path(configured).expanduser()
    return _REPO_ROOT.parent / "shared" / "reference" / "openai-openapi.yaml"


def vendored_path() -> Path | None:
    return next((p for p in _VENDORED_CANDIDATES if p.is_file()), None)


def _cache_dirs() -> list[Path]:
    configured = os.environ.get(ENV_CACHE)
    if configured:
        return [Path(configured).expanduser()]
    xdg = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return [Path(xdg) / "claude-max-api", Path(tempfile.gettempdir()) / "claude-max-api-cache"]


def _sha256(path: Path) -> str:
    stat = path.stat()
    return _sha256_of(path, stat.st_mtime_ns, stat.st_size)


@functools.lru_cache(maxsize=8)
def _sha256_of(path: Path, _mtime_ns: int, _size: int) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as fh:
        for block in iter(lambda: fh.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


@functools.lru_cache(maxsize=4)
def _load_spec_cached(path: Path, sha256: str) -> dict[str, Any]:
    name = f"openai-openapi-{sha256}.json"
    for directory in _cache_dirs():
        try:
            return json.loads((directory / name).read_bytes())
        except (OSError, ValueError):
            continue
    import yaml  # only needed on a cache miss

    with path.open("rb") as fh:
        spec = yaml.load(fh, Loader=getattr(yaml, "CSafeLoader", yaml.SafeLoader))
    # default=str: one unquoted example value parses as a datetime.date.
    data = json.dumps(spec, default=str, separators=(",", ":")).encode()
    for directory in _cache_dirs():
        tmp = None
        try:
            directory.mkdir(parents=True, exist_ok=True)
            fd, tmp = tempfile.mkstemp(dir=directory, suffix=".tmp")
            with os.fdopen(fd, "wb") as out:
                out.write(data)
            os.replace(tmp, directory / name)  # atomic: readers never see half a file
            break
        except OSError:
            if tmp is not None and os.path.exists(tmp):
                os.unlink(tmp)
    return json.loads(data)


def load_official_spec(path: Path | None = None) -> dict[str, Any]:
    """The full official spec (parsed once, then cached as JSON keyed by its sha256)."""
    path = (path or spec_path()).resolve()
    if not path.is_file():
        raise FileNotFoundError(f"official OpenAI spec not found at {path} (set {ENV_SPEC})")
    return _load_spec_cached(path, _sha256(path))


@functools.lru_cache(maxsize=1)
def _vendored() -> dict[str, Any]:
    path = vendored_path()
    if path is None:
        raise FileNotFoundError(
            f"neither the official spec ({spec_path()}, set {ENV_SPEC}) nor the vendored "
            f"subset ({_VENDORED_CANDIDATES[0]}) is available")
    return json.loads(path.read_text(encoding="utf-8"))


def official_components() -> tuple[dict[str, Any], dict[str, Any]]:
    """(cleaned component schemas, source record), from the full spec else the vendored copy.

    The schemas are shared with the caches: read them, do not change them."""
    path = spec_path()
    if path.is_file():
        path = path.resolve()
        sha256 = _sha256(path)
        spec = _load_spec_cached(path, sha256)
        source = {"repository": REPOSITORY, "commit": KNOWN_SOURCES.get(sha256),
                  "sha256": sha256, "info_version": spec.get("info", {}).get("version")}
        return _cleaned_components(path, sha256), source
    vendored = _vendored()
    return vendored["schemas"], vendored["source"]


@functools.lru_cache(maxsize=4)
def _cleaned_components(path: Path, sha256: str) -> dict[str, Any]:
    raw = _load_spec_cached(path, sha256)["components"]["schemas"]
    return {name: _unrecursive(_clean(schema), name) for name, schema in raw.items()}


# ---------------------------------------------------------------------------- extraction


def _clean(schema: Any) -> Any:
    """Drop annotations that are not validation (x-*, examples, discriminator, prose)."""
    if not isinstance(schema, dict):
        return schema
    out: dict[str, Any] = {}
    for key, value in schema.items():
        if key.startswith("x-") or key in _DROPPED:
            continue
        if key in _SCHEMA_MAPS and isinstance(value, dict):
            out[key] = {name: _clean(sub) for name, sub in value.items()}
        elif key in _SCHEMA_LISTS and isinstance(value, list):
            out[key] = [_clean(sub) for sub in value]
        elif key in _SCHEMA_ONE:
            out[key] = [_clean(s) for s in value] if isinstance(value, list) else _clean(value)
        else:
            out[key] = value
    return out


def _unrecursive(node: Any, name: str) -> Any:
    """2019-09's `$recursiveAnchor: true` / `$recursiveRef: "#"` (CompoundFilter, reached
    from the Responses schemas) as the plain self-reference they mean: 2020-12 has neither."""
    if isinstance(node, list):
        return [_unrecursive(item, name) for item in node]
    if not isinstance(node, dict):
        return node
    if node.get("$recursiveRef") == "#":
        return {"$ref": _COMPONENT_PREFIX + name}
    return {k: _unrecursive(v, name) for k, v in node.items() if k != "$recursiveAnchor"}


def _denull(schema: Any) -> Any:
    """`{..., nullable: true}` -> `{anyOf: [{...}, {type: null}]}`, recursively."""
    if not isinstance(schema, dict):
        return schema
    out: dict[str, Any] = {}
    for key, value in schema.items():
        if key in _SCHEMA_MAPS and isinstance(value, dict):
            out[key] = {name: _denull(sub) for name, sub in value.items()}
        elif key in _SCHEMA_LISTS and isinstance(value, list):
            out[key] = [_denull(sub) for sub in value]
        elif key in _SCHEMA_ONE:
            out[key] = [_denull(s) for s in value] if isinstance(value, list) else _denull(value)
        elif key != "nullable":
            out[key] = value
    if schema.get("nullable") is True:
        return {"anyOf": [out, {"type": "null"}]}
    return out


def _refs(node: Any) -> Iterable[str]:
    if isinstance(node, dict):
        for key, value in node.items():
            if key == "$ref" and isinstance(value, str) and value.startswith(_COMPONENT_PREFIX):
                yield value[len(_COMPONENT_PREFIX):]
            else:
                yield from _refs(value)
    elif isinstance(node, list):
        for item in node:
            yield from _refs(item)


def ref_closure(names: Iterable[str], schemas: dict[str, Any]) -> list[str]:
    """The names reachable from `names` through `$ref`, sorted."""
    seen: set[str] = set()
    todo = list(names)
    while todo:
        name = todo.pop()
        if name in seen:
            continue
        if name not in schemas:
            raise KeyError(f"schema {name!r} is not in the official schemas available "
                           f"(the vendored subset holds the closure of {DEFAULT_ROOTS})")
        seen.add(name)
        todo.extend(_refs(schemas[name]))
    return sorted(seen)


def _point_at_defs(node: Any) -> Any:
    if isinstance(node, dict):
        return {k: (_DEFS_PREFIX + v[len(_COMPONENT_PREFIX):]
                    if k == "$ref" and isinstance(v, str) and v.startswith(_COMPONENT_PREFIX)
                    else _point_at_defs(v))
                for k, v in node.items()}
    if isinstance(node, list):
        return [_point_at_defs(item) for item in node]
    return node


def official_schemas(names: Iterable[str] = DEFAULT_ROOTS, profile: str = "strict") -> dict[str, Any]:
    """A 2020-12 document whose `$defs` hold `names` and everything they reference."""
    if profile not in PROFILES:
        raise ValueError(f"profile must be one of {PROFILES}, not {profile!r}")
    schemas, source = official_components()
    defs = {name: _point_at_defs(_denull(schemas[name])) for name in ref_closure(names, schemas)}
    if profile == "lenient":
        for name, path, dropped in _LENIENT_EDITS:
            if name in defs:
                node = defs[name]
                for step in path:
                    node = node[step]
                node["required"] = [r for r in node["required"] if r not in dropped]
    bundle = {
        "$schema": JSON_SCHEMA_2020_12,
        "$comment": (f"Extracted from {source.get('repository')} commit {source.get('commit')} "
                     f"(openapi.yaml sha256 {source.get('sha256')}), profile {profile}."),
        "$defs": defs,
    }
    return json.loads(json.dumps(bundle))  # the caller's own copy: nothing shared with caches


def official_validator(name: str, profile: str = "strict", *,
                       stream_chunk: bool = False) -> Draft202012Validator:
    """A validator for one official schema (e.g. "CreateChatCompletionStreamResponse").
    `stream_chunk`: for a schema the spec uses for stream chunks too (CreateCompletionResponse),
    with the one relaxation a chunk needs (`finish_reason: null` before its choice ends)."""
    return _official_validator(name, profile, stream_chunk)


@functools.lru_cache(maxsize=32)
def _official_validator(name: str, profile: str, stream_chunk: bool = False
                        ) -> Draft202012Validator:
    bundle = official_schemas([name], profile)
    if stream_chunk:
        _as_stream_chunk(bundle, name)
    return Draft202012Validator({**bundle, "$ref": _DEFS_PREFIX + name})


def _as_stream_chunk(bundle: dict[str, Any], name: str) -> None:
    if name not in _STREAM_CHUNK_EDITS:
        raise KeyError(f"{name} is not a schema the spec uses for stream chunks")
    node = bundle["$defs"][name]
    *path, last = _STREAM_CHUNK_EDITS[name]
    for step in path:
        node = node[step]
    node[last] = {"anyOf": [node[last], {"type": "null"}]}


def closed_validator(name: str, extensions: dict[str, dict[str, Any]] | None = None,
                     profile: str = "strict", *,
                     stream_chunk: bool = False) -> Draft202012Validator:
    """A validator for one official schema in which every object accepts only the properties
    the official spec names, plus `extensions` ({schema name: {property: schema}}; each schema
    self-contained, no `$ref`). `stream_chunk` as for official_validator."""
    return _closed_validator(name, profile, json.dumps(extensions or {}, sort_keys=True),
                             stream_chunk)


@functools.lru_cache(maxsize=32)
def _closed_validator(name: str, profile: str, extensions_json: str,
                      stream_chunk: bool = False) -> Draft202012Validator:
    bundle = official_schemas([name], profile)
    if stream_chunk:
        _as_stream_chunk(bundle, name)
    defs = bundle["$defs"]
    for schema_name, props in json.loads(extensions_json).items():
        if schema_name in defs:
            defs[schema_name].setdefault("properties", {}).update(props)
    # A definition used as a part of an allOf (the Responses API's `...Resource` items extend
    # their item with id and status) is also kept open: closed, it would refuse the other
    # parts' properties. The allOf that uses it is closed as a whole instead.
    originals = {part["$ref"][len(_DEFS_PREFIX):]: copy.deepcopy(defs[part["$ref"][len(_DEFS_PREFIX):]])
                 for schema in _walk(defs) if isinstance(schema.get("allOf"), list)
                 for part in schema["allOf"]
                 if isinstance(part, dict) and str(part.get("$ref", "")).startswith(_DEFS_PREFIX)}
    for schema in list(defs.values()):
        _close(schema)
    for part_name, original in originals.items():
        _close(original, top_open=True)
        defs[part_name + _OPEN_SUFFIX] = original
    return Draft202012Validator({**bundle, "$ref": _DEFS_PREFIX + name})


_OPEN_SUFFIX = "~open"


def _walk(schema: Any) -> Iterator[dict[str, Any]]:
    """Every schema object inside `schema` (a schema or a mapping of them), itself included."""
    if isinstance(schema, dict):
        yield schema
        for value in schema.values():
            yield from _walk(value)
    elif isinstance(schema, list):
        for value in schema:
            yield from _walk(value)


def _close(schema: Any, top_open: bool = False) -> None:
    """additionalProperties false on every object schema that names its properties and says
    nothing about others. An allOf is closed as a whole (unevaluatedProperties, which sees its
    parts' properties); its parts stay open at their top, their `$ref`s pointing at the open
    copies _closed_validator adds."""
    if not isinstance(schema, dict):
        return
    if "allOf" in schema:
        if not top_open and "additionalProperties" not in schema \
                and "unevaluatedProperties" not in schema:
            schema["unevaluatedProperties"] = False
        for part in schema["allOf"]:
            if isinstance(part, dict) and str(part.get("$ref", "")).startswith(_DEFS_PREFIX):
                part["$ref"] += _OPEN_SUFFIX
            else:
                _close(part, top_open=True)
    elif schema.get("properties") and "additionalProperties" not in schema \
            and "patternProperties" not in schema and not top_open:
        # (`properties: {}` names none: EmptyModelParam, a function's parameters, is any object)
        schema["additionalProperties"] = False
    for key, value in schema.items():
        if key == "allOf":
            continue
        if key in _SCHEMA_MAPS and isinstance(value, dict):
            for sub in value.values():
                _close(sub)
        elif key in _SCHEMA_LISTS and isinstance(value, list) or key in _SCHEMA_ONE \
                and isinstance(value, list):
            for sub in value:
                _close(sub)
        elif key in _SCHEMA_ONE:
            _close(value)


# ---------------------------------------------------------------------------- vendoring


def vendored_subset(roots: Iterable[str] = DEFAULT_ROOTS, commit: str | None = None) -> dict[str, Any]:
    """The content of `openapi/official-subset.json`, extracted from the full spec."""
    path = spec_path().resolve()
    spec = load_official_spec(path)
    sha256 = _sha256(path)
    commit = commit or KNOWN_SOURCES.get(sha256)
    if commit is None:
        raise ValueError(f"{path} (sha256 {sha256}) is not a known snapshot: pass --commit")
    schemas = _cleaned_components(path, sha256)
    roots = list(roots)
    return {
        "source": {"repository": REPOSITORY, "commit": commit, "file": "openapi.yaml",
                   "sha256": sha256, "info_version": spec.get("info", {}).get("version")},
        "generated_by": "python -m proxy.contract.official --write openapi/official-subset.json",
        "roots": roots,
        "schemas": {name: schemas[name] for name in ref_closure(roots, schemas)},
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m proxy.contract.official",
                                     description="Extract the official schemas the tests need.")
    parser.add_argument("--write", type=Path, required=True, help="output JSON file")
    parser.add_argument("--commit", help="openai-openapi commit of the spec (if not known)")
    parser.add_argument("--root", action="append", dest="roots", metavar="SCHEMA",
                        help=f"a schema to include with its closure (default: {', '.join(DEFAULT_ROOTS)})")
    args = parser.parse_args(argv)
    try:
        subset = vendored_subset(args.roots or DEFAULT_ROOTS, commit=args.commit)
    except (OSError, ValueError, KeyError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    text = json.dumps(subset, indent=1, sort_keys=True, ensure_ascii=False) + "\n"
    args.write.write_text(text, encoding="utf-8")
    print(f"wrote {args.write}: {len(subset['schemas'])} schemas, {len(text.encode())} bytes",
          file=sys.stderr)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
