"""Server-sent events, parsed the way a browser (WHATWG HTML, "event stream interpretation") and
the OpenAI SDKs parse them, plus a list of what a strict reader would object to.

The parser keeps what the client-side parsers keep (so checks see what clients see: an event
without a blank line after it is dropped), and `problems` records everything that is legal
for the grammar but a hazard for OpenAI clients, or outright illegal.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field

_LINE = re.compile(r"\r\n|\r|\n")
_KNOWN_FIELDS = ("data", "event", "id", "retry")


@dataclass(frozen=True)
class Event:
    data: str
    event: str = "message"
    id: str | None = None
    fields: tuple[str, ...] = ()   # field names in order, for checks that care ("data" only)


@dataclass
class ParsedStream:
    events: list[Event] = field(default_factory=list)
    comments: int = 0
    problems: list[str] = field(default_factory=list)
    unterminated: str | None = None   # text of a last event that had no blank line after it

    @property
    def data(self) -> list[str]:
        return [e.data for e in self.events]


def parse(body: bytes) -> ParsedStream:
    out = ParsedStream()
    try:
        text = body.decode("utf-8")
    except UnicodeDecodeError as exc:
        out.problems.append(f"the stream is not valid UTF-8 ({exc.reason} at byte {exc.start})")
        text = body.decode("utf-8", errors="replace")
    if text.startswith("\ufeff"):
        text = text[1:]
    lines = _LINE.split(text)
    # A final line break leaves one empty string at the end: it is not a blank line.
    trailing = lines.pop() if lines else ""
    data: list[str] = []
    names: list[str] = []
    event_type = ""
    event_id: str | None = None
    pending: list[str] = []   # raw lines of the event being read

    for number, line in enumerate(lines, 1):
        if line == "":
            if names:
                if data:
                    out.events.append(Event("\n".join(data), event_type or "message", event_id,
                                            tuple(names)))
                else:
                    out.problems.append(f"an event without data ends at line {number}")
            data, names, event_type, pending = [], [], "", []
            continue
        pending.append(line)
        if line.startswith(":"):
            out.comments += 1
            continue
        name, colon, value = line.partition(":")
        if not colon:
            out.problems.append(f"line {number} has no colon: {_show(line)}")
        if value.startswith(" "):
            value = value[1:]
        if name not in _KNOWN_FIELDS:
            out.problems.append(f"line {number} has an unknown field {name!r}")
            continue
        names.append(name)
        if name == "data":
            data.append(value)
        elif name == "event":
            event_type = value
        elif name == "id":
            event_id = value
    if trailing or pending:
        text_left = "\n".join(pending + ([trailing] if trailing else []))
        out.unterminated = text_left
        out.problems.append("the stream ends inside an event (no blank line after "
                            f"{_show(text_left)}): SSE clients drop that event")
    return out


def _show(text: str, limit: int = 80) -> str:
    return repr(text if len(text) <= limit else text[:limit - 3] + "...")
