"""Validation against the OFFICIAL OpenAI schemas (strict and lenient profiles) and against this
project's document, through `proxy.contract`.

"strict" is the official spec as published (`message.refusal` and `choices[].logprobs` are
required); "lenient" drops those two, which real servers, and clients, treat as optional.
"""

from __future__ import annotations

from typing import Any

from jsonschema.exceptions import best_match


class SchemasUnavailable(Exception):
    """Neither the official spec nor the vendored subset is available (e.g. an installed wheel)."""


def official_errors(name: str, obj: Any, profile: str = "lenient", limit: int = 5, *,
                    stream_chunk: bool = False) -> list[str]:
    """`stream_chunk`: `obj` is a chunk of a stream the spec gives no schema of its own
    (a legacy text completion's: CreateCompletionResponse, with `finish_reason: null` allowed
    before its choice ends, as OpenAI streams it)."""
    from proxy.contract.official import official_validator

    try:
        validator = official_validator(name, profile, stream_chunk=stream_chunk)
    except FileNotFoundError as exc:
        raise SchemasUnavailable(str(exc)) from None
    found = sorted(validator.iter_errors(obj), key=lambda e: [str(p) for p in e.absolute_path])
    return [_describe(e) for e in found[:limit]]


def document_errors(name: str, obj: Any) -> list[str]:
    from proxy.contract.validation import validate_response

    return validate_response(name, obj)


def _describe(error: Any) -> str:
    leaf = _leaf(error)
    path = "".join(f"[{p}]" if isinstance(p, int) else f".{p}" for p in leaf.absolute_path)
    message = leaf.message if len(leaf.message) <= 240 else leaf.message[:237] + "..."
    return f"{path.lstrip('.') or '<root>'}: {message}"


def _leaf(error: Any) -> Any:
    """The error worth showing. For a oneOf/anyOf of object types told apart by their `type`
    (the Responses API's items and content parts), the branches whose `type` matches the object
    and, among them, the error that got furthest into it:
    "output_text is not one of [reasoning_text]" (best_match's pick, the last branch) says
    nothing about why an output_text part was refused."""
    while error.context:
        branches: dict[Any, list[Any]] = {}
        for sub in error.context:
            branches.setdefault(sub.relative_schema_path[0], []).append(sub)
        matching = [errors for errors in branches.values()
                    if not any(_is_discriminator_mismatch(e, error) for e in errors)]
        if not matching or len(matching) == len(branches):
            break  # no `type` told the branches apart: best_match's own choice
        # among the branches of that type, the error that got furthest into the object
        error = max((e for errors in matching for e in errors),
                    key=lambda e: (len(e.absolute_path), -len(e.context)))
    return best_match([error]) or error


def _is_discriminator_mismatch(sub: Any, parent: Any) -> bool:
    return sub.validator in ("enum", "const") \
        and list(sub.absolute_path) == [*parent.absolute_path, "type"]
