"""Generated tools, tool_choice and response_format (issues 11, 12), focused: schemathesis
draws valid requests from the contract, keeps those that carry tools, functions or a JSON
response_format, and sends their tool and format fields on a plain conversation ("Call a
tool.") to the real app in this process, whose model is scripted (tests/support/runners.py
`ScriptedTools`: it calls the first tool, answers a format with a value valid under the
schema, and follows the proxy's corrections). No valid request may be refused except for
what the API itself refuses (hooks.POLICY_CODES), and the draw must really reach the 200 path
with tool calls and structured output: the numbers are asserted, not assumed.

Kept apart from test_inprocess.py and test_socket.py, whose generated conversations are
mostly refused for other reasons (unpaired tool messages, file parts, n > 1) before their
tools matter.
"""

from __future__ import annotations

import collections
import json

import schemathesis
from hypothesis import HealthCheck, given, settings
from schemathesis import GenerationMode

from proxy.app import create_app
from proxy.contract.document import load_document
from proxy.settings import Settings
from tests.schema_fuzz import hooks
from tests.schema_fuzz.budget import examples_per_operation
from tests.support.runners import CALL_A_TOOL, ScriptedTools, wildcard_replay
from tests.support.stream_rules import check_stream, completion_problems, include_usage_of

CHAT = schemathesis.openapi.from_dict(load_document())["/v1/chat/completions"]["POST"]
# Fields whose refusals have nothing to do with tools (n > 1, logprobs, audio, max_tokens 0).
UNRELATED = ("n", "logprobs", "top_logprobs", "modalities", "audio", "max_tokens",
             "max_completion_tokens")


def _carries_tools(case) -> bool:
    body = case.body if isinstance(case.body, dict) else {}
    fmt = body.get("response_format")
    return bool(body.get("tools") or body.get("functions")) or (
        isinstance(fmt, dict) and fmt.get("type") in ("json_schema", "json_object"))


def _focused(body: dict) -> dict:
    out = {k: v for k, v in body.items() if k not in UNRELATED}
    out.update(model=hooks.served_model(), messages=[{"role": "user", "content": CALL_A_TOOL}])
    return out


def test_generated_tools_and_formats_are_accepted_and_answered():
    runner = ScriptedTools(wildcard_replay("plain_question"))
    app = create_app(Settings(), runner)
    tally: collections.Counter = collections.Counter()
    refused: dict[str, str] = {}

    @settings(max_examples=examples_per_operation() or 60, deadline=None, database=None,
              derandomize=True, suppress_health_check=list(HealthCheck))
    @given(CHAT.as_strategy(generation_mode=GenerationMode.POSITIVE).filter(_carries_tools))
    def one(case):
        body = _focused(case.body)
        response = CHAT.Case(body=body, media_type="application/json").call(app=app)
        if response.status_code != 200:
            error = response.json()["error"]
            assert response.status_code == 400 and error["code"] in hooks.POLICY_CODES, \
                (response.status_code, error, json.dumps(body)[:600])
            tally["refused"] += 1
            refused.setdefault(error["code"], error["message"][:120])
            return
        if body.get("stream"):
            report = check_stream(response.content, include_usage=include_usage_of(body))
            report.assert_ok()
            deltas = [c["choices"][0]["delta"] for c in report.chunks if c.get("choices")]
            calls = sum(1 for d in deltas for t in d.get("tool_calls") or [] if t.get("id"))
            content = report.text
        else:
            answer = response.json()
            assert completion_problems(answer) == []
            message = answer["choices"][0]["message"]
            calls, content = len(message.get("tool_calls") or []), message.get("content") or ""
        offered = body.get("tools") or body.get("functions")
        tally["ok with tools" if offered else "ok with a format"] += 1
        if calls:
            tally["ok with tool calls"] += 1
        elif not offered and content:  # the format's answer: a JSON value, as asked
            json.loads(content)
            tally["ok with structured output"] += 1

    one()
    print(f"\ngenerated tool/format requests: {dict(tally)}; served by the scripted model: "
          f"{runner.served}; refusals: {refused}")
    assert tally["ok with tools"] >= 10 and tally["ok with tool calls"] >= 5
    assert tally["ok with structured output"] >= 3
