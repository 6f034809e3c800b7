"""Steering generated chat requests toward what the proxy serves.

Drawn from the document alone, most valid chat requests carry something the proxy refuses on
purpose: a `tool` message, an audio part, `n: 3`, `logprobs`, `tools`. With CI's budget, 8 of
the 10 valid requests of schemathesis's fuzzing phase were refused and the stream rules saw
four generated streams. `servable(body)` turns a valid request into the nearest one the
README's "What is supported" says is served, still valid against the document:

* `tool` and `function` messages become `user` messages with the same text;
* an assistant's `tool_calls`, `function_call` and `audio` are removed;
* audio and file parts become a text part; an image whose URL is neither http(s) nor a
  base64 `data:` URL of a type Claude reads gets a small PNG instead;
* `n` other than 1, `tools`/`functions` (unless `tool_choice: "none"`) and a `tool_choice` or
  `function_call` that names or requires one, a `response_format`
  other than text, `logprobs`/`top_logprobs`, audio output are removed; an output limit
  below 1 becomes 1.

`steered(body, choice)` applies one `Steer` drawn by `steers()`: leave the request as
generated (about a tenth of the draws, so refusals are still explored), or make it servable
and then stream with or without the usage chunk, not stream, or leave `stream` and
`stream_options` as generated. The tests that use it count what was served: a server that
refuses servable requests falls under their floor (schemathesis) or fails outright
(tests/properties/test_requests.py).
"""

from __future__ import annotations

import base64
import binascii
import copy
from dataclasses import dataclass
from typing import Any

from hypothesis import strategies as st

# A 1x1 transparent PNG.
TINY_PNG = ("data:image/png;base64,iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAYAAAAfFcSJAAAADUlEQVR42"
            "mNkYPhfDwAChwGA60e6kgAAAABJRU5ErkJggg==")
_IMAGE_TYPES = ("data:image/jpeg;base64,", "data:image/jpg;base64,", "data:image/png;base64,",
                "data:image/gif;base64,", "data:image/webp;base64,")
_SERVED_PARTS = ("text", "refusal", "image_url")
_REMOVED_FIELDS = ("logprobs", "top_logprobs", "audio")

STREAMING = ("stream with usage", "stream without usage", "whole", "stream", "as generated")


@dataclass(frozen=True)
class Steer:
    servable: bool
    streaming: str = "as generated"


def steers() -> st.SearchStrategy[Steer]:
    """Whether to make the request servable, and how it then streams. Hypothesis favours
    the first values of a `sampled_from` (and shrinks towards them): drawn this way, about
    nine requests in ten are made servable, and most of those stream."""
    return st.builds(Steer, st.sampled_from((True, True, True, False)), st.sampled_from(STREAMING))


def steered(body: Any, steer: Steer) -> Any:
    if not steer.servable or not isinstance(body, dict):
        return body
    body = servable(body)
    if steer.streaming == "whole":
        body.pop("stream", None)
        body.pop("stream_options", None)
    elif steer.streaming != "as generated":
        body["stream"] = True
        if steer.streaming != "stream":
            options = body.get("stream_options") if isinstance(body.get("stream_options"),
                                                               dict) else {}
            body["stream_options"] = {**options,
                                      "include_usage": steer.streaming == "stream with usage"}
    return body


def servable(body: dict[str, Any]) -> dict[str, Any]:
    """A copy of a valid chat request with what the proxy refuses replaced (see above)."""
    body = copy.deepcopy(body)
    if isinstance(body.get("messages"), list):
        body["messages"] = [_message(m) for m in body["messages"]]
    if body.get("n") not in (None, 1):
        del body["n"]
    if body.get("tool_choice") != "none":
        body.pop("tools", None)
        body.pop("functions", None)
        # A choice that names or requires a tool, with the tools gone, is a 400 (as OpenAI's).
        for choice in ("tool_choice", "function_call"):
            if body.get(choice) not in (None, "none", "auto"):
                del body[choice]
    fmt = body.get("response_format")
    if isinstance(fmt, dict) and fmt.get("type") not in (None, "text"):
        del body["response_format"]
    for key in _REMOVED_FIELDS:
        body.pop(key, None)
    if "audio" in (body.get("modalities") or []):
        del body["modalities"]
    for key in ("max_tokens", "max_completion_tokens"):
        if isinstance(body.get(key), int) and body[key] < 1:
            body[key] = 1
    return body


def _message(message: Any) -> Any:
    if not isinstance(message, dict):
        return message
    role = message.get("role")
    if role in ("tool", "function"):
        content = message.get("content")
        return {"role": "user", "content": content if content is not None else ""}
    if role == "assistant":
        message = {k: v for k, v in message.items()
                   if k not in ("tool_calls", "function_call", "audio")}
    if isinstance(message.get("content"), list):
        message["content"] = [_part(p) for p in message["content"]]
    return message


def _part(part: Any) -> Any:
    if not isinstance(part, dict):
        return part
    if part.get("type") not in _SERVED_PARTS:
        return {"type": "text", "text": f"(a {part.get('type')} part was here)"}
    if part.get("type") == "image_url" and isinstance(part.get("image_url"), dict):
        url = part["image_url"].get("url")
        if not isinstance(url, str) or not _readable_image(url):
            part = {**part, "image_url": {**part["image_url"], "url": TINY_PNG}}
    return part


def _readable_image(url: str) -> bool:
    lowered = url.lower()
    if lowered.startswith(("http://", "https://")):
        return True
    # A generated data: URL is almost never valid base64 of a type Claude reads.
    prefix = next((p for p in _IMAGE_TYPES if lowered.startswith(p)), None)
    if prefix is None:
        return False
    try:
        base64.b64decode(url[len(prefix):], validate=True)
    except (binascii.Error, ValueError):
        return False
    return True
