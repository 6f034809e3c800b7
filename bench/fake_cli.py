"""A stand-in for `claude` that stamps every text delta with the moment it was written.

It plays the frame of a recorded run (fixtures/cassettes/plain_question.json) after reading its
stdin line, but its text deltas are `<CLOCK_MONOTONIC ns>;`, written every BENCH_INTERVAL
seconds, BENCH_DELTAS of them. A client that reads the same clock when the chunk reaches its
socket gets the proxy's forwarding delay for that line. (Linux's monotonic clock is one clock
for every process.)
"""

from __future__ import annotations

import json
import os
import sys
import time
from pathlib import Path

CASSETTE = Path(__file__).resolve().parents[1] / "fixtures" / "cassettes" / "plain_question.json"


def main() -> None:
    frame = json.loads(CASSETTE.read_text(encoding="utf-8"))["stdout"]
    deltas = int(os.environ.get("BENCH_DELTAS", "100"))
    interval = float(os.environ.get("BENCH_INTERVAL", "0.01"))
    sys.stdin.readline()
    out = sys.stdout

    def emit(obj: dict) -> None:
        out.write(json.dumps(obj, separators=(",", ":")) + "\n")
        out.flush()

    head = [line for line in frame if line.get("type") != "stream_event"
            or line["event"]["type"] in ("message_start", "content_block_start")]
    text_template = next(line for line in frame if line.get("type") == "stream_event"
                         and line["event"]["type"] == "content_block_delta")
    before = [line for line in head if line.get("type") == "system"] + \
             [line for line in head if line.get("type") == "stream_event"]
    for line in before:
        emit(line)
    pieces = []
    for _ in range(deltas):
        piece = f"{time.monotonic_ns()};"
        pieces.append(piece)
        delta = json.loads(json.dumps(text_template))
        delta["event"]["delta"]["text"] = piece
        emit(delta)
        time.sleep(interval)
    text = "".join(pieces)
    for line in frame:
        if line.get("type") == "assistant":
            line["message"]["content"] = [{"type": "text", "text": text}]
            emit(line)
        elif line.get("type") == "stream_event" and line["event"]["type"] in (
                "content_block_stop", "message_delta", "message_stop"):
            emit(line)
        elif line.get("type") == "result":
            line["result"] = text
            emit(line)


if __name__ == "__main__":
    main()
