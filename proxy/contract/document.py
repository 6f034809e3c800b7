"""Find, load and list the OpenAPI document that drives the server.

In a source checkout the document is `openapi/openapi.yaml` at the repository root; an
installed wheel carries a copy next to this module (pyproject force-includes it there).
"""

from __future__ import annotations

import functools
import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

HTTP_METHODS = ("get", "put", "post", "delete", "options", "head", "patch", "trace")

_SOURCE_COPY = Path(__file__).resolve().parents[2] / "openapi" / "openapi.yaml"
_PACKAGED_COPY = Path(__file__).resolve().parent / "openapi.yaml"
_Loader = getattr(yaml, "CSafeLoader", yaml.SafeLoader)


@dataclass(frozen=True)
class Operation:
    method: str        # upper case: "GET", "POST"
    path: str          # an OpenAPI path template, also a valid Falcon URI template
    operation_id: str


def document_path() -> Path:
    """The document of this checkout, else the copy an installed wheel carries."""
    if _SOURCE_COPY.is_file():
        return _SOURCE_COPY
    if _PACKAGED_COPY.is_file():
        return _PACKAGED_COPY
    raise FileNotFoundError(f"OpenAPI document not found at {_SOURCE_COPY} or {_PACKAGED_COPY}")


@functools.lru_cache(maxsize=8)
def _json_bytes(path: Path) -> bytes:
    with path.open("rb") as fh:
        doc = yaml.load(fh, Loader=_Loader)
    # Through JSON once: the served bytes and every loaded copy hold only JSON types
    # (YAML would turn an unquoted date or a `200:` key into non-JSON values).
    return json.dumps(doc, ensure_ascii=False, separators=(",", ":"), default=str).encode()


def load_document(path: Path | str | None = None) -> dict[str, Any]:
    """The parsed document, a fresh copy each call (parsing is cached per path)."""
    return json.loads(_json_bytes(Path(path).resolve() if path else document_path()))


def document_json_bytes(path: Path | str | None = None) -> bytes:
    """The document as compact UTF-8 JSON, for `GET /openapi.json`."""
    return _json_bytes(Path(path).resolve() if path else document_path())


def operations(doc: dict[str, Any]) -> list[Operation]:
    """Every operation of the document, in document order."""
    found = []
    for path, item in doc.get("paths", {}).items():
        for method in HTTP_METHODS:
            op = item.get(method)
            if op is not None:
                found.append(Operation(method.upper(), path, op["operationId"]))
    return found
