"""`response_format` -> the CLI's structured output (`--json-schema`).

Measured with CLI 2.1.332: `--json-schema S` offers the model a `StructuredOutput` tool whose
input schema is S, verbatim; the model answers by calling it; the CLI checks the input against
S (up to 5 attempts), and the `result` line carries `structured_output`. A model that answers in
prose is asked once more (`[structured-output-enforce]`); if it still does not comply the run
ends successfully with `structured_output: null`: that is the model declining, which OpenAI
reports as a `refusal`.

* `json_schema`: the client's schema, verbatim (OpenAI's strict-mode rules, such as
  `additionalProperties: false` and every property required, are the client's to write and
  reach Claude as written). One transformation: the tool's input is always an object, so a
  schema whose root is not an object is wrapped as `{"type":"object","properties":{"value":S},
  "required":["value"]}` and the answer unwrapped (such answers are sent whole at the end
  rather than streamed).
* `json_object`: the schema `{"type": "object"}`: any one JSON object.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

from proxy.errors import ProxyError

WRAP_KEY = "value"


@dataclass(frozen=True)
class ResponseFormat:
    kind: str                 # json_schema | json_object
    schema: str               # canonical JSON of what the CLI gets
    strict: bool = False
    wrapped: bool = False     # the client's schema is under WRAP_KEY
    client_schema: str = ""   # canonical JSON of the client's own schema (validation)

    def unwrap(self, value: Any) -> Any:
        return value.get(WRAP_KEY) if self.wrapped and isinstance(value, dict) else value

    def violation(self, value: Any) -> str | None:
        """Why `value` does not match the client's schema, or None."""
        from jsonschema import validators
        schema = json.loads(self.client_schema)
        validator = validators.validator_for(schema)(schema)
        error = next(iter(validator.iter_errors(value)), None)
        if error is None:
            return None
        where = "/".join(str(p) for p in error.absolute_path)
        return f"{'/' + where if where else 'the root'}: {error.message}"


def _canonical(value: Any) -> str:
    return json.dumps(value, separators=(",", ":"), sort_keys=True, ensure_ascii=False)


def response_format(body: dict[str, Any]) -> ResponseFormat | None:
    fmt = body.get("response_format")
    if not isinstance(fmt, dict) or fmt.get("type") in (None, "text"):
        return None
    if fmt["type"] == "json_object":
        schema = {"type": "object"}
        return ResponseFormat("json_object", _canonical(schema), client_schema=_canonical(schema))
    spec = fmt.get("json_schema") or {}
    schema = spec.get("schema")
    if schema is None:
        schema = {"type": "object"}
    from jsonschema import exceptions, validators
    try:
        validators.validator_for(schema).check_schema(schema)
    except exceptions.SchemaError as exc:
        raise ProxyError(400, f"Invalid schema for response_format '{spec.get('name')}': "
                              f"{exc.message}", param="response_format.json_schema.schema",
                         code="invalid_response_format") from None
    wrapped = schema.get("type") != "object"
    sent = {"type": "object", "properties": {WRAP_KEY: schema}, "required": [WRAP_KEY]} \
        if wrapped else schema
    return ResponseFormat("json_schema", _canonical(sent), strict=bool(spec.get("strict")),
                          wrapped=wrapped, client_schema=_canonical(schema))
