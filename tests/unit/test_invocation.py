"""The CLI invocation: safe flags, stdin line, per-request environment."""

from __future__ import annotations

import json

from proxy.claude.invocation import SAFE_FLAGS, SYSTEM_PROMPT_FILE_TOKEN, Invocation


def test_argv_is_the_safe_invocation():
    argv = Invocation("opus", system_prompt="x").argv()
    assert argv[:len(SAFE_FLAGS)] == list(SAFE_FLAGS)
    assert argv[argv.index("--tools") + 1] == ""
    assert argv[argv.index("--setting-sources") + 1] == ""
    assert argv[-4:] == ["--model", "opus", "--system-prompt-file", SYSTEM_PROMPT_FILE_TOKEN]


def test_stdin_is_one_json_line_whatever_the_text():
    hostile = "line1\nline2\r\n\u2028 --flag \ud800 \"quoted\""
    (line,) = Invocation("opus", blocks=(hostile, "b")).stdin_lines()
    assert "\n" not in line
    message = json.loads(line)["message"]
    assert message == {"role": "user", "content": [{"type": "text", "text": hostile},
                                                   {"type": "text", "text": "b"}]}


def test_small_max_tokens_turn_thinking_off():
    assert Invocation("sonnet", max_output_tokens=50).env() == {
        "CLAUDE_CODE_MAX_OUTPUT_TOKENS": "50", "MAX_THINKING_TOKENS": "0"}
    assert Invocation("sonnet", max_output_tokens=4000).env() == {
        "CLAUDE_CODE_MAX_OUTPUT_TOKENS": "4000"}
    assert Invocation("sonnet").env() == {}


def test_a_fallback_model_is_passed_unless_it_is_the_model_itself():
    argv = Invocation(model="opus", fallback_model="sonnet").argv()
    assert argv[-2:] == ["--fallback-model", "sonnet"]
    assert "--fallback-model" not in Invocation(model="sonnet", fallback_model="sonnet").argv()
    assert "--fallback-model" not in Invocation(model="opus").argv()


def test_images_go_before_the_text_block_they_precede():
    red = json.dumps({"type": "url", "url": "https://example.com/red.png"})
    blue = json.dumps({"type": "url", "url": "https://example.com/blue.png"})
    message = Invocation(model="sonnet", blocks=("a", "b"),
                         images=((0, red), (2, blue), (2, red))).user_message()
    kinds = [(c["type"], c.get("text") or c["source"]["url"][20:]) for c in
             message["message"]["content"]]
    assert kinds == [("image", "red.png"), ("text", "a"), ("text", "b"), ("image", "blue.png"),
                     ("image", "red.png")]


def test_a_fallback_model_raises_the_clis_retries_to_what_it_needs(tmp_path):
    from proxy.app import FALLBACK_MIN_RETRIES, build_runner
    from proxy.settings import Settings

    def retries(**settings) -> int:
        runner = build_runner(Settings(work_dir=str(tmp_path), **settings))
        try:
            return runner.max_retries
        finally:
            runner.close()
    assert retries(cli_max_retries=1) == 1
    assert retries(cli_max_retries=1, fallback_model="sonnet") == FALLBACK_MIN_RETRIES == 2
    assert retries(cli_max_retries=5, fallback_model="sonnet") == 5
