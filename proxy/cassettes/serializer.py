"""The cassette file format: JSON laid out for `git diff`.

* Sections (`recording`, `invocation`, `ending`) have one key per line.
* `stdout` has one entry per line: the CLI's JSON line as an object, written in the CLI's own
  compact form, so the file shows exactly the line the replay hands to the proxy; a line that
  is not JSON (or would not reproduce byte for byte) is kept as a string.
* Timing lives in one `timing_ms` line at the end, so a re-recording whose output is unchanged
  changes that one line only.

`dumps(cassette)` and `loads(text, name)` are inverse; `comparable(cassette)` is the text
without timing, used to compare recordings (the drift check).
"""

from __future__ import annotations

import json
import re
from typing import Any

from proxy.cassettes.cassette import (FORMAT, FORMAT_VERSION, Cassette, Ending,
                                      RecordedInvocation, Recording, Text)
from proxy.conversations.turns import canonical

_LONE_SURROGATE = re.compile("[\ud800-\udfff]")


class CassetteFormatError(ValueError):
    """The file is not a cassette this version can read."""


def compact_json(value: Any) -> str:
    """JSON as the CLI writes it (JavaScript's JSON.stringify): no spaces, non-ASCII as is,
    lone surrogates escaped (they cannot be encoded in UTF-8)."""
    text = json.dumps(value, ensure_ascii=False, separators=(",", ":"))
    return _LONE_SURROGATE.sub(lambda m: "\\u%04x" % ord(m.group()), text)


def line_entry(line: str) -> Any:
    """How a stdout line is stored: its JSON object if that reproduces the line exactly."""
    if line.startswith("{"):
        try:
            value = json.loads(line)
        except ValueError:
            return line
        if isinstance(value, dict) and compact_json(value) == line:
            return value
    return line


def entry_line(entry: Any) -> str:
    if isinstance(entry, str):
        return entry
    if isinstance(entry, dict):
        return compact_json(entry)
    raise CassetteFormatError(f"a stdout entry must be an object or a string, not {entry!r}")


# -- writing ----------------------------------------------------------------------------------

def _text_json(text: Text) -> Any:
    if text.full is not None:
        return text.full
    return {"sha256": text.sha256, "chars": text.chars, "head": text.head}


def _section(values: dict[str, Any], listed: tuple[str, ...] = ()) -> str:
    """One key per line; the keys in `listed` are lists written one item per line."""
    rows = []
    for key, value in values.items():
        if key in listed and value:
            items = ",\n".join("      " + compact_json(v) for v in value)
            rows.append(f"    {compact_json(key)}: [\n{items}\n    ]")
        else:
            rows.append(f"    {compact_json(key)}: {compact_json(value)}")
    return "{\n" + ",\n".join(rows) + "\n  }"


def _recording_json(rec: Recording) -> dict[str, Any]:
    out = {"description": rec.description, "cli": rec.cli, "upstream": rec.upstream,
           "credentials": rec.credentials, "scenario": rec.scenario, "env": dict(rec.env),
           "extra_args": list(rec.extra_args), "interrupt": rec.interrupt}
    # Only when set: cassettes of runs that started their own process stay as they were.
    if rec.process is not None:
        out["process"] = rec.process
    if rec.request is not None:
        out["request"] = rec.request
    return out


LISTED = ("blocks", "images", "history", "tools", "tool_results", "stdin")  # one item per line
REASONING = ("effort", "thinking", "thinking_display")


def _block_json(block: Text) -> Any:
    """A content block of a resumed turn: the block itself, or a digest when it is long."""
    if block.full is not None:
        return json.loads(block.full)
    return _text_json(block)


def _json_text(value: Any, where: str) -> Text:
    """A stored JSON value (a tool, a schema) as the canonical text it was recorded from."""
    if isinstance(value, dict) and not ("sha256" in value and "chars" in value
                                        and "type" not in value):
        return Text.of(canonical(value))
    return _text(value, where)


def _block(value: Any, where: str) -> Text:
    if isinstance(value, dict) and "type" in value:
        return Text.of(canonical(value))
    return _text(value, where)


def _invocation_json(inv: RecordedInvocation) -> dict[str, Any]:
    out = {"model": inv.model, "system_prompt": _text_json(inv.system_prompt),
           "blocks": [_text_json(b) for b in inv.blocks]}
    if inv.images:  # only then: cassettes without images stay as they were
        out["images"] = [{"before": i, "source": _text_json(t)} for i, t in inv.images]
    if inv.history:  # likewise: one-turn cassettes have none
        out["history"] = [{"role": role, "content": [_block_json(b) for b in blocks]}
                          for role, blocks in inv.history]
    for name in REASONING:  # likewise: only what a request set
        if getattr(inv, name) is not None:
            out[name] = getattr(inv, name)
    if inv.tools:
        out["tools"] = [_block_json(t) for t in inv.tools]
    if inv.tool_results:
        out["tool_results"] = [_block_json(r) for r in inv.tool_results]
    if inv.json_schema is not None:
        out["json_schema"] = _block_json(inv.json_schema)
    return {**out, "max_output_tokens": inv.max_output_tokens, "extra_env": dict(inv.extra_env),
            "argv": list(inv.argv), "stdin": [_text_json(s) for s in inv.stdin]}


def _ms(seconds: float) -> int:
    return int(round(seconds * 1000))


def dumps(cassette: Cassette, *, timing: bool = True) -> str:
    parts = [
        f'  "format": {compact_json(FORMAT)}',
        f'  "format_version": {cassette.format_version}',
        f'  "cli_version": {compact_json(cassette.cli_version)}',
        f'  "recording": {_section(_recording_json(cassette.recording))}',
        f'  "invocation": {_section(_invocation_json(cassette.invocation), LISTED)}',
    ]
    if cassette.stdout:
        lines = ",\n".join("    " + compact_json(line_entry(line)) for line in cassette.stdout)
        parts.append(f'  "stdout": [\n{lines}\n  ]')
    else:
        parts.append('  "stdout": []')
    ending = {"returncode": cassette.ending.returncode,
              "closed_by_proxy": cassette.ending.closed_by_proxy}
    parts.append(f'  "stderr": {compact_json(cassette.ending.stderr)}')
    parts.append(f'  "ending": {compact_json(ending)}')
    if timing:
        offsets = {"exit": _ms(cassette.exit_offset), "stdout": [_ms(t) for t in cassette.offsets]}
        parts.append(f'  "timing_ms": {compact_json(offsets)}')
    return "{\n" + ",\n".join(parts) + "\n}\n"


def comparable(cassette: Cassette) -> str:
    """The cassette without its timing: equal for two recordings of the same behaviour."""
    return dumps(cassette, timing=False)


# -- reading ----------------------------------------------------------------------------------

def _text(value: Any, where: str) -> Text:
    if isinstance(value, str):
        return Text(value, len(value))
    if isinstance(value, dict) and isinstance(value.get("sha256"), str) \
            and isinstance(value.get("chars"), int):
        return Text(None, value["chars"], value["sha256"], str(value.get("head", "")))
    raise CassetteFormatError(f"{where}: expected a string or a digest object")


def _optional_str(value: Any, where: str) -> str | None:
    if value is None or isinstance(value, str):
        return value
    raise CassetteFormatError(f"{where}: expected a string")


def is_cassette(data: Any) -> bool:
    return isinstance(data, dict) and data.get("format") == FORMAT


def loads(text: str, name: str) -> Cassette:
    try:
        data = json.loads(text)
    except ValueError as exc:
        raise CassetteFormatError(f"{name}: not JSON ({exc})") from None
    return from_data(data, name)


def from_data(data: Any, name: str) -> Cassette:
    if not is_cassette(data):
        raise CassetteFormatError(f"{name}: not a cassette (no \"format\": \"{FORMAT}\")")
    version = data.get("format_version")
    if version != FORMAT_VERSION:
        raise CassetteFormatError(f"{name}: cassette format version {version!r}; this version "
                                  f"of claude-max-api reads version {FORMAT_VERSION}")
    try:
        rec = data.get("recording") or {}
        inv = data["invocation"]
        timing = data.get("timing_ms") or {}
        ending = data.get("ending") or {}
        stdout = tuple(entry_line(e) for e in data.get("stdout") or [])
        offsets = tuple(ms / 1000.0 for ms in timing.get("stdout") or [])
        return Cassette(
            name=name,
            cli_version=data.get("cli_version"),
            recording=Recording(
                description=rec.get("description", ""), cli=rec.get("cli", "claude"),
                upstream=rec.get("upstream", "stand-in"),
                credentials=rec.get("credentials", "api-key"), scenario=rec.get("scenario"),
                env=tuple((rec.get("env") or {}).items()),
                extra_args=tuple(rec.get("extra_args") or ()), interrupt=rec.get("interrupt"),
                process=rec.get("process"), request=rec.get("request")),
            invocation=RecordedInvocation(
                model=inv["model"],
                system_prompt=_text(inv.get("system_prompt", ""), f"{name}: system_prompt"),
                blocks=tuple(_text(b, f"{name}: blocks") for b in inv.get("blocks") or []),
                max_output_tokens=inv.get("max_output_tokens"),
                extra_env=tuple((inv.get("extra_env") or {}).items()),
                argv=tuple(inv.get("argv") or ()),
                stdin=tuple(_text(s, f"{name}: stdin") for s in inv.get("stdin") or []),
                images=tuple((int(e["before"]), _text(e["source"], f"{name}: images"))
                             for e in inv.get("images") or []),
                history=tuple((str(t["role"]), tuple(_block(b, f"{name}: history")
                                                     for b in t["content"]))
                              for t in inv.get("history") or []),
                **{key: _optional_str(inv.get(key), f"{name}: {key}") for key in REASONING},
                tools=tuple(_json_text(t, f"{name}: tools") for t in inv.get("tools") or []),
                tool_results=tuple(_block(r, f"{name}: tool_results")
                                   for r in inv.get("tool_results") or []),
                json_schema=None if inv.get("json_schema") is None
                else _json_text(inv["json_schema"], f"{name}: json_schema")),
            stdout=stdout,
            offsets=offsets or (0.0,) * len(stdout),
            exit_offset=(timing.get("exit") or 0) / 1000.0,
            ending=Ending(returncode=ending.get("returncode"), stderr=data.get("stderr", ""),
                          closed_by_proxy=bool(ending.get("closed_by_proxy"))),
            format_version=version,
        )
    except (KeyError, TypeError, AttributeError) as exc:
        raise CassetteFormatError(f"{name}: malformed cassette ({exc!r})") from None
