"""OpenAI `image_url` parts -> the Messages API's image `source`, which the CLI passes on.

Measured with CLI 2.1.332: an image block in the stream-json user message reaches the API as it
was sent, base64 or URL (the CLI only shrinks very large base64 images, as the API would).

* `data:<type>;base64,<data>` becomes `{"type": "base64", "media_type", "data"}`; the types are
  the ones Claude reads (JPEG, PNG, GIF, WebP) and the data must be valid base64, so a broken
  image is the client's 400 here and not an upstream failure later.
* `http(s)://...` becomes `{"type": "url", "url"}`: Anthropic fetches it, this machine never does.
* `detail` has no counterpart in Claude and is ignored.

A source is kept as canonical JSON text: hashable, comparable, and stored in cassettes like any
other text of an invocation.
"""

from __future__ import annotations

import base64
import binascii
import json
from typing import Any

from proxy.errors import ProxyError, param_path

MEDIA_TYPES = ("image/jpeg", "image/png", "image/gif", "image/webp")


def image_source(part: dict[str, Any], index: int, j: int) -> str:
    """The source of an `image_url` part, as canonical JSON; ProxyError(400) if it has none."""
    url = part["image_url"]["url"]
    param = param_path("messages", index, "content", j) + ".image_url.url"
    where = f"messages[{index}].content[{j}]"
    if url[:5].lower() == "data:":
        header, comma, data = url[5:].partition(",")
        media_type, *options = [item.strip().lower() for item in header.split(";")]
        if not comma or "base64" not in options:
            raise ProxyError(400, f"{where} is a data: URL without base64 data; send "
                                  f"`data:image/png;base64,...`.",
                             param=param, code="invalid_image_url")
        if media_type == "image/jpg":
            media_type = "image/jpeg"
        if media_type not in MEDIA_TYPES:
            raise ProxyError(400, f"{where} is of type `{media_type or 'unknown'}`; Claude reads "
                                  f"{', '.join(MEDIA_TYPES)}.",
                             param=param, code="invalid_image_format")
        try:
            base64.b64decode(data, validate=True)
        except (binascii.Error, ValueError):
            raise ProxyError(400, f"{where} does not hold valid base64 data.",
                             param=param, code="invalid_image_url") from None
        source: dict[str, str] = {"type": "base64", "media_type": media_type, "data": data}
    elif url[:8].lower() == "https://" or url[:7].lower() == "http://":
        source = {"type": "url", "url": url}
    else:
        raise ProxyError(400, f"{where} must be an http(s) URL or a base64 `data:` URL.",
                         param=param, code="invalid_image_url")
    return json.dumps(source, separators=(",", ":"), sort_keys=True, ensure_ascii=False)
