"""instructor extracts a pydantic model against the live server.

TOOLS mode is a forced call: instructor names the model's tool in `tool_choice`, so this also
shows that a named tool_choice is honoured, when the model calls at once, and when it answers
in prose first and the proxy steers it. The JSON and JSON_SCHEMA modes send `response_format`
(json_object, and json_schema with the model's schema): the proxy runs the CLI with
`--json-schema`, Claude answers through the CLI's `StructuredOutput` tool, and instructor
parses the message's content.

instructor runs in a venv of its own (tests/clients/instructor/requirements.txt says why) and
reports each flow as JSON (tests/clients/instructor/instructor_check.py).
"""

from __future__ import annotations

import json
import os

import pytest

from tests.clients.conftest import API_KEY, HERE, need_instructor, run_json, upstream_tool_names, \
    usage_of

pytestmark = [pytest.mark.live, pytest.mark.clients]

SCRIPT = HERE / "instructor" / "instructor_check.py"


FLOWS = ["tools", "tools_steered", "tools_never", "tools_partial", "json", "json_schema"]


@pytest.fixture(scope="module")
def flows(tier):
    """Every flow, in one run of the script (instructor takes seconds to import)."""
    python = need_instructor()
    env = {"PATH": os.environ.get("PATH", ""), "HOME": os.environ.get("HOME", "/"),
           "LANG": "C.UTF-8", "BASE_URL": tier.base_url, "API_KEY": API_KEY}
    mark = tier.mark()
    done = run_json([python, str(SCRIPT), *FLOWS], env, timeout=180)
    assert done.returncode == 0, done.stderr[-3000:]
    out = json.loads(done.stdout)
    assert out["versions"] == {"instructor": "1.17.0", "openai": "3.3.0"}
    out["mark"] = mark
    return out


def named_choice(out: dict) -> list:
    return [body.get("tool_choice") for body in out["sent"]]


def test_tools_mode(tier, flows):
    mark, out = flows["mark"], flows["tools"]
    assert "error" not in out, out["error"]
    (upstream,) = tier.since(mark, "extract")
    assert out["result"] == {"user": {"name": "Ada Lovelace", "age": 36},
                             "finish_reason": "tool_calls", "tool_calls": ["UserInfo"],
                             "usage": list(usage_of([upstream]))}
    assert named_choice(out) == [{"type": "function", "function": {"name": "UserInfo"}}]
    assert upstream_tool_names(upstream) == ["mcp__c__UserInfo"]
    # the function's schema reaches Claude exactly
    (sent,) = out["sent"]
    assert upstream.body["tools"][0]["input_schema"] == sent["tools"][0]["function"]["parameters"]


def test_tools_mode_steered_to_the_named_tool(tier, flows):
    """The model answers in prose first; the proxy asks once more and the call comes."""
    mark, out = flows["mark"], flows["tools_steered"]
    assert "error" not in out, out["error"]
    assert out["result"]["user"] == {"name": "Grace Hopper", "age": 85}
    upstream = tier.since(mark, "extract-steered")
    assert len(upstream) == 2
    steer = upstream[1].body["messages"][-1]["content"]
    assert any("[tool-choice-enforce]" in b.get("text", "") for b in steer
               if isinstance(b, dict)), steer
    assert out["result"]["usage"] == list(usage_of(upstream)), "both model calls are counted"


def test_tools_mode_when_the_model_never_calls(tier, flows):
    """Prose twice, though the request names a tool: an honest error reaches instructor,
    never the prose as a successful answer."""
    mark, out = flows["mark"], flows["tools_never"]
    assert "result" not in out, out
    error = out["error"]
    assert (error["class"], error["status"], error["body"]["code"]) == \
        ("InternalServerError", 502, "tool_choice_not_honoured"), error
    assert "UserInfo" in error["body"]["message"]
    assert len(tier.since(mark, "prose-only")) == 2, "the first answer, and the one steered"


def test_tools_mode_partial_stream(tier, flows):
    out = flows["tools_partial"]
    assert "error" not in out, out["error"]
    assert out["result"]["user"] == {"name": "Alan Turing", "age": 41}
    assert out["result"]["snapshots"] > 1, "partial objects come while the arguments stream"
    assert [body.get("stream") for body in out["sent"]] == [True]


@pytest.mark.parametrize("mode", ["json", "json_schema"])
def test_json_modes(tier, flows, mode):
    """JSON sends json_object and carries the schema in a system message of its own;
    JSON_SCHEMA sends the schema as response_format. Either way the model answers through the
    CLI's structured-output tool, once, and instructor gets the object as the content."""
    mark, out = flows["mark"], flows[mode]
    assert "error" not in out, out["error"]
    structured = tier.since(mark, "structured")
    assert len(structured) == 2, "one model call per mode, no steering"
    upstream = structured[["json", "json_schema"].index(mode)]
    assert out["result"] == {"user": {"name": "Marie Curie", "age": 66},
                             "finish_reason": "stop", "tool_calls": [],
                             "usage": list(usage_of([upstream]))}
    (sent,) = out["sent"]
    assert "tools" not in sent and "tool_choice" not in sent
    assert upstream_tool_names(upstream) == ["StructuredOutput"]
    offered = upstream.body["tools"][0]["input_schema"]
    if mode == "json":
        assert sent["response_format"] == {"type": "json_object"}
        assert offered == {"type": "object"}
        # instructor's own instructions, with the schema, are Claude's system prompt
        system = "\n".join(b["text"] for b in upstream.body["system"])
        assert '"title": "UserInfo"' in system and "json_schema" in system
    else:
        fmt = sent["response_format"]
        assert fmt["type"] == "json_schema" and fmt["json_schema"]["name"] == "UserInfo"
        assert offered == fmt["json_schema"]["schema"]
