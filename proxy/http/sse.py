"""Server-sent events framing, as OpenAI streams it."""

from __future__ import annotations

import json
from typing import Any

# SSE is always UTF-8; saying so keeps clients that default text/* to ISO-8859-1 (`requests`)
# from garbling every non-ASCII delta.
CONTENT_TYPE = "text/event-stream; charset=utf-8"
DONE = b"data: [DONE]\n\n"
HEARTBEAT = b": keep-alive\n\n"
HEADERS = {"Cache-Control": "no-cache", "X-Accel-Buffering": "no"}


def event(payload: dict[str, Any]) -> bytes:
    # One line of JSON: json.dumps never emits a raw newline, so the frame cannot break.
    return b"data: " + json.dumps(payload, ensure_ascii=False,
                                  separators=(",", ":")).encode("utf-8") + b"\n\n"
