"""Reading a JSON request body: JSON only, bounded, with OpenAI-style errors."""

from __future__ import annotations

import json
from typing import Any

import falcon

from proxy.errors import ProxyError


def read_json(req: falcon.Request, max_bytes: int) -> Any:
    media_type = (req.content_type or "application/json").split(";")[0].strip().lower()
    if media_type != "application/json" and not (media_type.startswith("application/")
                                                 and media_type.endswith("+json")):
        raise ProxyError(415, f"Unsupported Content-Type `{media_type}`: send the body as "
                              f"application/json.", code="unsupported_media_type")
    length = req.content_length
    if length is not None and length > max_bytes:
        raise ProxyError(413, f"The request body has {length} bytes; this server accepts at most "
                              f"{max_bytes}.", code="request_too_large")
    raw = req.bounded_stream.read(max_bytes + 1)
    if len(raw) > max_bytes:
        raise ProxyError(413, f"The request body is larger than the {max_bytes} bytes this server "
                              f"accepts.", code="request_too_large")
    if not raw.strip():
        raise ProxyError(400, "The request body is empty; expected a JSON object.",
                         code="invalid_json")
    try:
        return json.loads(raw)
    except UnicodeDecodeError:
        raise ProxyError(400, "The request body is not valid UTF-8.", code="invalid_json") from None
    except ValueError as exc:
        raise ProxyError(400, f"The request body is not valid JSON: {exc}.",
                         code="invalid_json") from None
