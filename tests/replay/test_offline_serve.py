"""A fresh clone without the CLI: `claude-max-api serve --replay fixtures/` as a real process,
with a PATH where no `claude` can be found, answering the official SDK (streaming too)."""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import threading

import openai
import pytest
from openai import OpenAI

from tests.replay.conftest import CATALOGUE, FIXTURES


@pytest.fixture
def replay_server(tmp_path):
    empty_bin = tmp_path / "bin"  # PATH holds nothing: `claude` (or anything) cannot be found
    empty_bin.mkdir()
    env = {k: v for k, v in os.environ.items()
           if not k.startswith(("CLAUDE", "ANTHROPIC_"))}
    env.update(PATH=str(empty_bin), HOME=str(tmp_path), PYTHONUNBUFFERED="1")
    assert shutil.which("claude", path=env["PATH"]) is None
    process = subprocess.Popen(
        [sys.executable, "-m", "proxy", "serve", "--replay", str(FIXTURES), "--port", "0"],
        cwd=tmp_path, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    stderr_lines = []
    threading.Thread(target=lambda: stderr_lines.extend(process.stderr), daemon=True).start()
    try:
        url = None
        for line in process.stdout:
            if line.startswith("Serving on "):
                url = line.split()[-1]
                break
        assert url, "the server did not start:\n" + "".join(stderr_lines)
        yield url
    finally:
        process.send_signal(signal.SIGTERM)
        try:
            process.wait(20)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait(10)


def test_serving_from_fixtures_without_a_cli(replay_server):
    request = {"model": "claude-sonnet-4",
               "messages": [{"role": "user", "content": "What is 2 + 2?"}]}
    with OpenAI(base_url=replay_server, api_key="unused", max_retries=0, timeout=60) as sdk:
        answer = sdk.chat.completions.create(**request)
        assert answer.choices[0].message.content == "2 + 2 = 4."
        assert answer.choices[0].finish_reason == "stop"
        chunks = list(sdk.chat.completions.create(**request, stream=True))
        streamed = "".join(c.choices[0].delta.content or "" for c in chunks if c.choices)
        assert streamed == "2 + 2 = 4."
        with pytest.raises(openai.APIStatusError) as caught:
            sdk.chat.completions.create(model="claude-sonnet-4",
                                        messages=[{"role": "user", "content": "Unrecorded"}])
        assert (caught.value.status_code, caught.value.code) == (503, "fixture_not_found")
        assert {m.id for m in sdk.models.list()} >= {"claude-sonnet-4", "opus"}


def test_a_tool_loop_without_a_cli(replay_server):
    """The client's call and its result: tool_call_single, then tool_round_trip, found by the
    replayed call's own id sent back."""
    request = json.loads(CATALOGUE.read_text(encoding="utf-8"))["entries"][
        "tool_call_single"]["request"]
    with OpenAI(base_url=replay_server, api_key="unused", max_retries=0, timeout=60) as sdk:
        first = sdk.chat.completions.create(**request).choices[0]
        assert first.finish_reason == "tool_calls"
        (call,) = first.message.tool_calls
        messages = request["messages"] + [
            first.message.model_dump(exclude_none=True),
            {"role": "tool", "tool_call_id": call.id, "content": "Sunny, 22 degrees"}]
        answer = sdk.chat.completions.create(model=request["model"], messages=messages,
                                             tools=request["tools"])
        assert answer.choices[0].message.content == "It is Sunny, 22 degrees in Paris."
