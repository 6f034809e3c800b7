"""Redaction on write, and the leak scan that guards fixtures/."""

from __future__ import annotations

import json

import pytest

from proxy.cassettes.redaction import Redactor, path_slug, scan

REQ = "/tmp/cma-record-work-x1/claude-max-api/4242/req-ab_cd"
HOME = "/tmp/cma-record-home-y2"


def _redactor() -> Redactor:
    return Redactor({f"{REQ}/cwd": "<CWD>", f"{REQ}/tmp": "<TMPDIR>", REQ: "<REQUEST_DIR>",
                     HOME: "<HOME>"})


INIT = {
    "type": "system", "subtype": "init", "cwd": f"{REQ}/cwd",
    "session_id": "5fde9cd4-c208-44f5-89f9-1c751eab703c", "tools": [],
    "capabilities": ["msg_lifecycle_v1", "request_marker_lists_v1"],
    "uuid": "7c96f168-6f2e-45ae-a759-a0c832b098bb",
    "memory_paths": {"auto": f"{HOME}/.claude/projects/{path_slug(REQ + '/cwd')}/memory/"},
    "messaging_socket_path": f"{REQ}/tmp/cc-socks/31337.sock",
    "claude_code_version": "2.1.332",
}


def test_an_init_line_loses_every_trace_of_the_run_and_stays_the_same_json_shape():
    out = json.loads(_redactor().stdout_line(json.dumps(INIT, separators=(",", ":"))))
    assert out == {
        "type": "system", "subtype": "init", "cwd": "<CWD>", "session_id": "<SESSION_ID_1>",
        "tools": [], "capabilities": ["msg_lifecycle_v1", "request_marker_lists_v1"],
        "uuid": "<UUID_1>",
        "memory_paths": {"auto": "<HOME>/.claude/projects/<CWD_SLUG>/memory/"},
        "messaging_socket_path": "<TMPDIR>/cc-socks/<PID>.sock",
        "claude_code_version": "2.1.332",
    }


def test_placeholders_are_numbered_by_first_appearance_and_stable_across_lines():
    redactor = _redactor()
    session = "11111111-2222-4333-8444-555555555555"
    lines = [
        {"type": "stream_event", "session_id": session,
         "uuid": "aaaaaaaa-0000-4000-8000-000000000001",
         "event": {"message": {"id": "msg_01XFDUDYJgAACzvnptvVoYEL"}},
         "api_message_id": "msg_01XFDUDYJgAACzvnptvVoYEL"},
        {"type": "assistant", "session_id": session,
         "uuid": "aaaaaaaa-0000-4000-8000-000000000002",
         "message": {"id": "msg_standin_e2b675dae3e40497ad6f0ba5",
                     "content": [{"type": "tool_use", "id": "toolu_01A09q90qw90lq917835lq9"}]},
         "request_id": "req_011CSHoEeqs5C35K2UUqR7Fy", "timestamp": "2026-11-28T00:27:09.989Z"},
    ]
    out = [json.loads(redactor.stdout_line(json.dumps(line))) for line in lines]
    assert out[0]["session_id"] == out[1]["session_id"] == "<SESSION_ID_1>"
    assert (out[0]["uuid"], out[1]["uuid"]) == ("<UUID_1>", "<UUID_2>")
    assert out[0]["event"]["message"]["id"] == out[0]["api_message_id"] == "<MESSAGE_ID_1>"
    assert out[1]["message"]["id"] == "<MESSAGE_ID_2>"
    assert out[1]["message"]["content"][0]["id"] == "<TOOL_USE_ID_1>"
    assert out[1]["request_id"] == "<REQUEST_ID_1>"
    assert out[1]["timestamp"] == "<TIMESTAMP>"


def test_numbers_that_vary_per_run_are_normalised_and_stay_numbers():
    line = {"type": "result", "duration_ms": 236, "duration_api_ms": 64, "ttft_ms": 212,
            "ttft_stream_ms": 206, "time_to_request_ms": 176, "first_content_frame_ms": 208,
            "usage": {"input_tokens": 100, "output_tokens": 12}, "total_cost_usd": 0.00032}
    out = json.loads(_redactor().stdout_line(json.dumps(line)))
    durations = [k for k in line if k.endswith("_ms")]
    assert {k: out[k] for k in durations} == dict.fromkeys(durations, 0)
    assert out["usage"] == {"input_tokens": 100, "output_tokens": 12}
    assert out["total_cost_usd"] == 0.00032
    retry = json.loads(_redactor().stdout_line(
        '{"subtype":"api_retry","retry_delay_ms":2352,"pid":77}'))
    assert retry == {"subtype": "api_retry", "retry_delay_ms": 2000, "pid": 0}


def test_secrets_accounts_and_hosts_in_texts_are_removed():
    text = ("key sk-ant-api03-AbCdEf_1234567890 token sk-ant-oat01-ZZZZZZZZZZZZ "
            "Authorization: Bearer abc.def-ghi_123456 mail someone@example.com jwt "
            "eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiIxMjM0NTY3ODkwIn0.c2lnbmF0dXJl "
            "check your inference gateway (127.0.0.1:45678) or 10.1.2.3:8080 "
            "file /home/alice/notes.txt and /Users/bob/x and /root/.claude.json")
    out = _redactor().text(text)
    assert out == ("key <API_KEY> token <API_KEY> Authorization: Bearer <TOKEN> mail <EMAIL> jwt "
                   "<TOKEN> check your inference gateway (127.0.0.1:<PORT>) or <HOST>:<PORT> "
                   "file <PATH> and <PATH> and <PATH>")
    assert scan(out) == []


def test_account_keys_are_replaced_whatever_their_value_looks_like():
    line = {"account": {"email": "x@y.z", "emailAddress": "x@y.z", "device_id": "abc123",
                        "account_uuid": "u-1", "organization_uuid": "o-1"}}
    out = json.loads(_redactor().stdout_line(json.dumps(line)))["account"]
    assert out == {"email": "<EMAIL>", "emailAddress": "<EMAIL>", "device_id": "<ACCOUNT_ID_1>",
                   "account_uuid": "<ACCOUNT_ID_2>", "organization_uuid": "<ACCOUNT_ID_3>"}


def test_lines_that_are_not_json_are_redacted_as_text():
    out = _redactor().stdout_line(f"Error at {REQ}/cwd/x: 5fde9cd4-c208-44f5-89f9-1c751eab703c")
    assert out == "Error at <CWD>/x: <UUID_1>"


PLANTED = [
    ("Anthropic API key or OAuth token", "ANTHROPIC_API_KEY=sk-ant-api03-abcdEFGH1234"),
    ("API key", "OPENAI_API_KEY=sk-proj-abcdefghijklmnopqrstuvwx"),
    ("bearer token", "authorization: Bearer abcdef0123456789"),
    ("JWT", "eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiIxMjM0NTY3ODkwIn0.sig"),
    ("GitHub token", "ghp_abcdefghijklmnopqrstuvwxyz0123"),
    ("AWS access key", "AKIAABCDEFGHIJKLMNOP"),
    ("private key", "-----BEGIN OPENSSH PRIVATE KEY-----"),
    ("e-mail address", "mail me: someone.else@example.co.uk"),
    ("path of the recording machine", '"cwd":"/tmp/claude-max-api/123/req-x/cwd"'),
    ("path of the recording machine", "/home/alice/project"),
    ("path of the recording machine", "/Users/bob/Library"),
    ("path of the recording machine", "/root/.claude.json"),
    ("Windows user path", "C:\\Users\\carol\\AppData"),
    ("uuid", '"session_id":"5fde9cd4-c208-44f5-89f9-1c751eab703c"'),
    ("host:port", "inference gateway (127.0.0.1:45678)"),
    ("socket path with a pid", "<TMPDIR>/cc-socks/12345.sock"),
    ("timestamp", '"timestamp":"2026-11-28T00:27:09.989Z"'),
]


@pytest.mark.parametrize("kind,text", PLANTED, ids=[f"{k}-{i}" for i, (k, _) in enumerate(PLANTED)])
def test_the_scan_catches_planted_leaks(kind, text):
    found = scan(f"line one\n  {text} \n")
    assert kind in {leak.kind for leak in found}
    assert all(leak.line == 2 for leak in found)


def test_the_scan_leaves_placeholders_and_ordinary_text_alone():
    clean = ('{"cwd":"<CWD>","session_id":"<SESSION_ID_1>","memory":"<HOME>/.claude/projects/'
             '<CWD_SLUG>/memory/","sock":"<TMPDIR>/cc-socks/<PID>.sock","gw":"127.0.0.1:<PORT>",'
             '"at":"<TIMESTAMP>","text":"msg_lifecycle_v1 2 + 2 = 4 -- /login tmp/ home"}')
    assert scan(clean) == []


def test_the_scan_looks_for_extra_literals():
    assert [leak.kind for leak in scan("built on myhost-42", {"host name": "myhost-42"})] \
        == ["host name"]
