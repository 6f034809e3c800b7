"""Check that the document's schemas are faithful subsets of the official OpenAI ones.

Faithful subset: a schema with an OpenAI name may drop properties and narrow types, enums and
bounds, but never declares a property the official schema lacks, never accepts a JSON type,
enum value or range the official one rejects, and keeps every official `required` name.

Both sides are reduced to alternatives, one per JSON type (`anyOf`/`oneOf`, type lists and
`{type: null}` branches all flatten to the same shape), and every alternative of ours must fit
an official alternative of the same type. An official `allOf` is merged property by property,
a later part's declaration replacing an earlier one: that is how the SDK generators read
`CreateChatCompletionRequest` (strictly intersecting the parts would, for instance, forbid
`top_logprobs: null`, which the request's own declaration and the SDKs allow).
Schemas marked `x-origin: claude-max-api` are the project's own and are not compared, and so
are properties marked `x-extension: true` (`extensions()` lists them): fields other servers add
too, which the official schemas lack. An extension may not reuse an official property's name.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from proxy.contract.official import official_schemas
from proxy.contract.validation import json_type

OWN_MARKER = ("x-origin", "claude-max-api")
EXTENSION_MARKER = "x-extension"
_OURS_PREFIX = "#/components/schemas/"
_OFFICIAL_PREFIX = "#/$defs/"
_NUMERIC = ("integer", "number")
_LOWER_BOUNDS = ("minimum", "exclusiveMinimum", "minItems", "minLength", "minProperties")
_UPPER_BOUNDS = ("maximum", "exclusiveMaximum", "maxItems", "maxLength", "maxProperties")
_BOUNDS_BY_TYPE = {
    "integer": ("minimum", "exclusiveMinimum", "maximum", "exclusiveMaximum", "multipleOf"),
    "number": ("minimum", "exclusiveMinimum", "maximum", "exclusiveMaximum", "multipleOf"),
    "array": ("minItems", "maxItems"),
    "string": ("minLength", "maxLength"),
    "object": ("minProperties", "maxProperties"),
}
_OBJECT_HINTS = ("properties", "required", "additionalProperties", "patternProperties")
_ARRAY_HINTS = ("items", "minItems", "maxItems", "prefixItems")
_STRING_HINTS = ("minLength", "maxLength", "pattern", "format")
_NUMBER_HINTS = ("minimum", "maximum", "exclusiveMinimum", "exclusiveMaximum", "multipleOf")

Resolver = Callable[[str], Any]
Alternative = tuple[str | None, dict, str | None]  # (JSON type, None: any; keywords; origin)


def faithful_schema_names(doc: dict[str, Any]) -> list[str]:
    """The document's schemas that carry an OpenAI name (everything not marked as our own)."""
    return [name for name, schema in doc["components"]["schemas"].items() if not _is_own(schema)]


def contradictions(doc: dict[str, Any], official: dict[str, Any] | None = None) -> list[str]:
    """Every way the document's OpenAI-named schemas are not faithful subsets; [] when none.

    `official` is a bundle from `official_schemas()`; by default the one for the document's
    OpenAI-named schemas.
    """
    ours = doc["components"]["schemas"]
    names = faithful_schema_names(doc)
    theirs_all = (official if official is not None else _official_for(names, ours))["$defs"]
    problems = [f"{name}: no schema of this name in the official spec"
                for name in names if name not in theirs_all]
    walker = _Walker(ours, theirs_all)
    for name in names:
        if name in theirs_all:
            problems += walker.compare(ours[name], theirs_all[name], name)
    return problems


def extensions(doc: dict[str, Any]) -> dict[str, dict[str, Any]]:
    """{schema name: {property: its schema}} of every property marked `x-extension: true` on
    the document's named schemas."""
    found: dict[str, dict[str, Any]] = {}
    for name, schema in doc["components"]["schemas"].items():
        props = schema.get("properties") if isinstance(schema, dict) else None
        for prop, sub in (props or {}).items():
            if _is_extension(sub):
                found.setdefault(name, {})[prop] = sub
    return found


def _is_extension(schema: Any) -> bool:
    return isinstance(schema, dict) and schema.get(EXTENSION_MARKER) is True


def _official_for(names: list[str], ours: dict[str, Any]) -> dict[str, Any]:
    from proxy.contract.official import official_components

    available = official_components()[0]
    return official_schemas([n for n in names if n in available])


def _is_own(schema: Any) -> bool:
    return isinstance(schema, dict) and schema.get(OWN_MARKER[0]) == OWN_MARKER[1]


class _Walker:
    def __init__(self, ours: dict[str, Any], theirs: dict[str, Any]) -> None:
        self._ours = ours
        self._theirs = theirs
        self._active: set[tuple[int, int]] = set()

    def resolve_ours(self, ref: str) -> Any:
        return self._ours[_ref_name(ref, _OURS_PREFIX)]

    def resolve_theirs(self, ref: str) -> Any:
        return self._theirs[_ref_name(ref, _OFFICIAL_PREFIX)]

    def compare(self, mine: Any, theirs: Any, where: str) -> list[str]:
        # Both sides name the same schema: it is compared once, under its own name.
        if (_is_ref(mine) and _is_ref(theirs)
                and _ref_name(mine["$ref"], _OURS_PREFIX) == _ref_name(theirs["$ref"], _OFFICIAL_PREFIX)):
            return []
        key = (id(mine), id(theirs))
        if key in self._active:  # recursive schemas
            return []
        self._active.add(key)
        try:
            return self._compare_alternatives(mine, theirs, where)
        finally:
            self._active.discard(key)

    def _compare_alternatives(self, mine: Any, theirs: Any, where: str) -> list[str]:
        try:
            my_alts = _alternatives(mine, self.resolve_ours)
            their_alts = _alternatives(theirs, self.resolve_theirs)
        except _Unsupported as exc:
            return [f"{where}: cannot compare ({exc})"]
        problems: list[str] = []
        for my_type, my_schema, my_origin in my_alts:
            fits = [(t, s) for t, s, _ in their_alts if _type_fits(my_type, t)]
            if not fits:
                allowed = sorted({t or "any" for t, _, _ in their_alts})
                problems.append(f"{where}: allows {my_type or 'any type'}, the official schema "
                                f"only {', '.join(allowed)}")
                continue
            if my_origin is not None and any(
                    o == my_origin and _type_fits(my_type, t) for t, _, o in their_alts):
                continue  # the same named schema on both sides: compared under its own name
            attempts: list[list[str]] = [
                self._compare_same_type(my_type, my_schema, t, s, where) for t, s in fits]
            closest: list[str] = min(attempts, key=len)  # the closest official alternative
            problems.extend(closest)
        return problems

    def _compare_same_type(self, my_type: str | None, mine: dict, their_type: str | None,
                           theirs: dict, where: str) -> list[str]:
        if their_type is None and not _constraints(theirs):
            return []
        kind = my_type or their_type
        problems: list[str] = []
        their_enum = _enum_of_type(theirs, kind)
        my_enum = _enum_of_type(mine, kind)
        if their_enum is not None:
            if my_enum is None:
                problems.append(f"{where}: accepts any {kind}, the official schema only {their_enum}")
            else:
                extra = [v for v in my_enum if v not in their_enum]
                if extra:
                    problems.append(f"{where}: values {extra} are not in the official enum {their_enum}")
        for keyword in _BOUNDS_BY_TYPE.get(kind or "", ()):
            if keyword not in theirs:
                continue
            limit, mine_limit = theirs[keyword], mine.get(keyword)
            if mine_limit is None:
                problems.append(f"{where}: no {keyword}, the official schema has {limit}")
            elif keyword in _LOWER_BOUNDS and mine_limit < limit:
                problems.append(f"{where}: {keyword} {mine_limit} is below the official {limit}")
            elif keyword in _UPPER_BOUNDS and mine_limit > limit:
                problems.append(f"{where}: {keyword} {mine_limit} is above the official {limit}")
            elif keyword == "multipleOf" and mine_limit % limit:
                problems.append(f"{where}: multipleOf {mine_limit} is not a multiple of {limit}")
        if kind == "string":
            for keyword in ("pattern", "format"):
                if keyword in theirs and keyword in mine and mine[keyword] != theirs[keyword]:
                    problems.append(f"{where}: {keyword} {mine[keyword]!r}, official {theirs[keyword]!r}")
            if "pattern" in theirs and "pattern" not in mine and "enum" not in mine:
                problems.append(f"{where}: no pattern, the official schema has {theirs['pattern']!r}")
        if kind == "array" and "items" in theirs:
            problems += self.compare(mine.get("items", True), theirs["items"], f"{where}[]")
        if kind == "object":
            problems += self._compare_objects(mine, theirs, where)
        return problems

    def _compare_objects(self, mine: dict, theirs: dict, where: str) -> list[str]:
        problems: list[str] = []
        their_props = theirs.get("properties", {})
        their_extra = theirs.get("additionalProperties", True)
        their_extra = True if their_extra == {} else their_extra
        for name, schema in mine.get("properties", {}).items():
            if _is_extension(schema):
                if name in their_props:
                    problems.append(f"{where}.{name}: an extension with the name of an official "
                                    f"property")
                continue
            if name in their_props:
                problems += self.compare(schema, their_props[name], f"{where}.{name}")
            elif their_extra is False:
                problems.append(f"{where}.{name}: the official schema allows no such property")
            elif their_extra is True:
                problems.append(f"{where}.{name}: not a property of the official schema")
            else:
                problems += self.compare(schema, their_extra, f"{where}.{name}")
        if their_extra is not True:
            my_extra = mine.get("additionalProperties", True)
            if my_extra is True:
                problems.append(f"{where}: allows any additional property, the official schema does not")
            elif my_extra is not False:
                problems += self.compare(my_extra, their_extra, f"{where}.*")
        missing = [r for r in theirs.get("required", []) if r not in mine.get("required", [])]
        if missing:
            problems.append(f"{where}: does not require {missing}, the official schema does")
        return problems


class _Unsupported(Exception):
    pass


def _alternatives(schema: Any, resolve: Resolver) -> list[Alternative]:
    """The schema as one alternative per JSON type it accepts, each with the name of the
    schema it came from (the innermost `$ref`), if any."""
    if schema is True or schema == {}:
        return [(None, {}, None)]
    if schema is False:
        return []
    if not isinstance(schema, dict):
        raise _Unsupported(f"not a schema: {schema!r}")
    schema = dict(schema)
    if "$ref" in schema:
        ref = schema.pop("$ref")
        target = resolve(ref)
        if set(schema) == {"type"} and isinstance(schema["type"], str):
            # `{type: object, $ref: X}` (the official InputItem): X's alternatives of that type
            return [(t, s, origin or ref.rsplit("/", 1)[-1])
                    for t, s, origin in _alternatives(target, resolve)
                    if t is None or _type_fits(t, schema["type"])]
        if _constraints(schema):
            return _alternatives({"allOf": [target, schema]}, resolve)
        name = ref.rsplit("/", 1)[-1]
        return [(t, s, origin or name) for t, s, origin in _alternatives(target, resolve)]
    if "allOf" in schema:
        return [(*_merge_all_of(schema, resolve), None)]
    for keyword in ("anyOf", "oneOf"):
        if keyword in schema:
            if "anyOf" in schema and "oneOf" in schema:
                raise _Unsupported("anyOf and oneOf together")
            branches = schema.pop(keyword)
            outer = {k: v for k, v in schema.items() if k in _CONSTRAINT_KEYS}
            outer_types = _types(schema) if "type" in schema else None
            result = []
            for branch in branches:
                for t, s, origin in _alternatives(branch, resolve):
                    if outer_types is not None and t is not None and not any(
                            _type_fits(t, o) for o in outer_types):
                        continue
                    result.append((t, {**outer, **s}, origin))
            return result
    if "not" in schema or "if" in schema:
        raise _Unsupported("not/if keywords")
    return [(t, schema, None) for t in _types(schema)]


def _merge_all_of(schema: dict, resolve: Resolver) -> tuple[str, dict]:
    merged: dict[str, Any] = {"properties": {}, "required": []}
    parts = [*schema.pop("allOf"), schema]
    for part in parts:
        alternatives = _alternatives(part, resolve) if part else []
        if not alternatives:
            continue
        if len(alternatives) != 1 or alternatives[0][0] not in ("object", None):
            raise _Unsupported("allOf of non-object parts")
        _, piece, _ = alternatives[0]
        for key, value in piece.items():
            if key == "properties":
                merged["properties"].update(value)  # a later declaration replaces an earlier one
            elif key == "required":
                merged["required"] += [r for r in value if r not in merged["required"]]
            else:
                merged[key] = value
    merged["type"] = "object"
    return "object", merged


_CONSTRAINT_KEYS = frozenset({
    "type", "enum", "const", "properties", "required", "additionalProperties",
    "patternProperties", "items", "prefixItems", "allOf", "anyOf", "oneOf", "not", "if",
    *_LOWER_BOUNDS, *_UPPER_BOUNDS, "multipleOf", "pattern", "format", "uniqueItems",
})


def _constraints(schema: dict) -> bool:
    return any(key in _CONSTRAINT_KEYS for key in schema)


def _types(schema: dict) -> list[str | None]:
    declared = schema.get("type")
    if declared is not None:
        return list(declared) if isinstance(declared, list) else [declared]
    values = schema.get("enum", [schema["const"]] if "const" in schema else None)
    if values is not None:
        found: list[str | None] = []
        for value in values:
            t = json_type(value)
            if t not in found:
                found.append(t)
        return found
    for hints, kind in ((_OBJECT_HINTS, "object"), (_ARRAY_HINTS, "array"),
                        (_STRING_HINTS, "string"), (_NUMBER_HINTS, "number")):
        if any(h in schema for h in hints):
            return [kind]
    return [None]


def _type_fits(mine: str | None, theirs: str | None) -> bool:
    if theirs is None:
        return True
    return mine == theirs or (mine == "integer" and theirs == "number")


def _enum_of_type(schema: dict, kind: str | None) -> list[Any] | None:
    values = schema.get("enum", [schema["const"]] if "const" in schema else None)
    if values is None:
        return None
    return [v for v in values if kind is None or _type_fits(json_type(v), kind)
            or (kind == "integer" and isinstance(v, float) and v.is_integer())]


def _is_ref(schema: Any) -> bool:
    return isinstance(schema, dict) and set(schema) == {"$ref"}


def _ref_name(ref: str, prefix: str) -> str:
    if not ref.startswith(prefix):
        raise _Unsupported(f"reference {ref!r} outside {prefix}")
    return ref[len(prefix):]
