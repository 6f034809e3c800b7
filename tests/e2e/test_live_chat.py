"""End to end with real parts: the official openai SDK -> waitress on a loopback port -> the
proxy -> the real pinned `claude` CLI -> the project's stand-in for the Anthropic API.

The stand-in also records what the CLI sent upstream, so these tests check both ends: what
the client gets, and that the CLI carried the client's text intact, with no tools and without
Claude Code's own system prompt.
"""

from __future__ import annotations

import json
import logging
import time

import httpx
import openai
import pytest

from proxy.contract.validation import validate_response, validate_sse_data
from proxy.settings import Settings
from proxy.standin.scenario import Scenario
from tests.support.servers import running_proxy

pytestmark = pytest.mark.live


def upstream_requests(standin, proxy):
    return standin.requests_for(proxy.scenario)


def user_texts(request_body: dict) -> list[str]:
    first = request_body["messages"][0]
    assert first["role"] == "user"
    content = first["content"]
    if isinstance(content, str):
        return [content]
    return [b["text"] for b in content if b.get("type") == "text"]


# --- success paths -------------------------------------------------------------------------

def test_non_streaming_completion(live_proxy_for, standin):
    proxy = live_proxy_for(Scenario(reply_text="Hello, {echo}!", input_tokens=40,
                               cache_read_input_tokens=7, cache_creation_input_tokens=3,
                               output_tokens=9))
    result = proxy.client.chat.completions.create(
        model="claude-sonnet-4", messages=[{"role": "user", "content": "world"}])
    assert result.choices[0].message.content == "Hello, world!"
    assert result.choices[0].finish_reason == "stop"
    assert result.model == "claude-sonnet-4"
    assert result.object == "chat.completion"
    assert result.usage.prompt_tokens == 40 + 7 + 3
    assert result.usage.prompt_tokens_details.cached_tokens == 7
    assert result.usage.completion_tokens == 9
    assert result.usage.total_tokens == 59
    raw = proxy.client.chat.completions.with_raw_response.create(
        model="claude-sonnet-4", messages=[{"role": "user", "content": "again"}])
    assert validate_response("CreateChatCompletionResponse", json.loads(raw.text)) == []
    # The CLI ran with the safe flags: no tools offered to the model.
    sent = upstream_requests(standin, proxy)[0].body
    assert sent["tools"] == []
    assert sent["model"] == "claude-sonnet-5-5"  # the `sonnet` alias, resolved by the CLI


def test_system_and_developer_messages_replace_claude_codes_prompt(live_proxy_for, standin):
    proxy = live_proxy_for(Scenario(reply_text="ok"))
    proxy.client.chat.completions.create(model="sonnet", messages=[
        {"role": "system", "content": "You are a pirate."},
        {"role": "developer", "content": "Answer in one word."},
        {"role": "user", "content": "Hi"},
    ])
    sent = upstream_requests(standin, proxy)[0].body
    system_text = "\n".join(block["text"] for block in sent["system"])
    assert "You are a pirate.\n\nAnswer in one word." in system_text
    assert "Claude Code" not in system_text           # not the coding-agent persona
    assert len(system_text) < 1000                    # not its 7 KB default prompt
    assert user_texts(sent) == ["Hi"]


def test_streaming_chunks_follow_openai_rules(live_proxy_for):
    proxy = live_proxy_for(Scenario(reply_text="The quick brown fox jumps.", split=4))
    chunks = list(proxy.client.chat.completions.create(
        model="sonnet", messages=[{"role": "user", "content": "go"}], stream=True))
    assert chunks[0].choices[0].delta.role == "assistant"
    contents = [c.choices[0].delta.content for c in chunks[1:] if c.choices[0].delta.content]
    assert len(contents) > 3                          # token-level deltas, not one block
    assert "".join(contents) == "The quick brown fox jumps."
    finishes = [c.choices[0].finish_reason for c in chunks if c.choices[0].finish_reason]
    assert finishes == ["stop"]
    assert chunks[-1].choices[0].finish_reason == "stop"
    assert len({(c.id, c.created, c.model) for c in chunks}) == 1
    assert all(c.usage is None for c in chunks)       # no usage chunk unless asked


def test_streaming_usage_chunk_only_when_asked(live_proxy_for):
    proxy = live_proxy_for(Scenario(reply_text="counted", input_tokens=11, output_tokens=3))
    with httpx.stream("POST", proxy.base_url + "/chat/completions", timeout=60, json={
            "model": "haiku", "messages": [{"role": "user", "content": "x"}], "stream": True,
            "stream_options": {"include_usage": True}}) as response:
        assert response.status_code == 200
        assert response.headers["content-type"].startswith("text/event-stream")
        datas = [line[6:] for line in response.iter_lines() if line.startswith("data: ")]
    assert datas[-1] == "[DONE]"
    for data in datas:
        assert validate_sse_data(data) == []
    chunks = [json.loads(d) for d in datas[:-1]]
    assert chunks[-1]["choices"] == []
    assert chunks[-1]["usage"]["prompt_tokens"] == 11
    assert chunks[-1]["usage"]["completion_tokens"] == 3
    assert all(c["usage"] is None for c in chunks[:-1])
    assert chunks[-2]["choices"][0]["finish_reason"] == "stop"


def test_streamed_text_equals_non_streamed_text(live_proxy_for):
    proxy = live_proxy_for(Scenario(reply_text="Same text either way: 東京 🚀 مرحبا.", split=3))
    messages = [{"role": "user", "content": "same"}]
    whole = proxy.client.chat.completions.create(model="opus", messages=messages)
    streamed = "".join(c.choices[0].delta.content or "" for c in proxy.client.chat.completions
                       .create(model="opus", messages=messages, stream=True))
    assert streamed == whole.choices[0].message.content == "Same text either way: 東京 🚀 مرحبا."


def test_models_list_and_retrieve(live_proxy_for):
    proxy = live_proxy_for(Scenario())
    ids = {m.id for m in proxy.client.models.list()}
    assert {"claude-opus-4", "claude-sonnet-4", "claude-haiku-4", "opus", "sonnet", "haiku",
            "claude-sonnet-4-5"} <= ids
    model = proxy.client.models.retrieve("claude-haiku-4")
    assert (model.id, model.object, model.owned_by) == ("claude-haiku-4", "model", "anthropic")
    with pytest.raises(openai.NotFoundError) as caught:
        proxy.client.chat.completions.create(model="gpt-4o", messages=[
            {"role": "user", "content": "x"}])
    assert caught.value.body["code"] == "model_not_found"


def test_content_part_arrays_reach_claude_as_separate_blocks(live_proxy_for, standin):
    proxy = live_proxy_for(Scenario(reply_text="{echo}"))
    result = proxy.client.chat.completions.create(model="sonnet", messages=[{
        "role": "user", "content": [{"type": "text", "text": "first part"},
                                    {"type": "text", "text": "second part"}]}])
    assert user_texts(upstream_requests(standin, proxy)[0].body) == ["first part", "second part"]
    assert "first part" in result.choices[0].message.content


# A 2x2 red PNG, made here so the test shows what it sends.
def _png(width: int = 2, height: int = 2) -> bytes:
    import struct
    import zlib

    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + \
            struct.pack(">I", zlib.crc32(kind + data) & 0xFFFFFFFF)
    rows = b"".join(b"\x00" + b"\xff\x00\x00" * width for _ in range(height))
    return (b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0))
            + chunk(b"IDAT", zlib.compress(rows)) + chunk(b"IEND", b""))


def test_images_reach_claude_as_image_blocks_byte_for_byte(live_proxy_for, standin):
    import base64
    data = base64.b64encode(_png()).decode()
    proxy = live_proxy_for(Scenario(reply_text="A red square."))
    result = proxy.client.chat.completions.create(model="sonnet", messages=[{
        "role": "user", "content": [
            {"type": "image_url", "image_url": {"url": f"data:image/png;base64,{data}"}},
            {"type": "text", "text": "What is this?"},
            {"type": "image_url", "image_url": {"url": "https://example.com/b.jpg"}}]}])
    assert result.choices[0].message.content == "A red square."
    (content,) = [m["content"] for m in upstream_requests(standin, proxy)[0].body["messages"]
                  if m["role"] == "user"]
    assert content == [
        {"type": "image", "source": {"type": "base64", "media_type": "image/png", "data": data}},
        {"type": "text", "text": "What is this?"},
        {"type": "image", "source": {"type": "url", "url": "https://example.com/b.jpg"}}]


def test_an_image_in_the_history_stays_in_its_turn(live_proxy_for, standin):
    import base64
    data = base64.b64encode(_png()).decode()
    proxy = live_proxy_for(Scenario(reply_text="Yes."))
    proxy.client.chat.completions.create(model="sonnet", messages=[
        {"role": "user", "content": [
            {"type": "text", "text": "Look:"},
            {"type": "image_url", "image_url": {"url": f"data:image/png;base64,{data}"}}]},
        {"role": "assistant", "content": "A red square."},
        {"role": "user", "content": "Are you sure?"}])
    messages = upstream_requests(standin, proxy)[0].body["messages"]
    first, answer, last = [m for m in messages if m["role"] != "system"]
    # A native turn of its own, resumed from the session the proxy wrote, the image intact.
    assert [b["type"] for b in first["content"]] == ["text", "image"]
    assert first["content"][0]["text"] == "Look:"
    assert first["content"][1]["source"]["data"] == data
    assert answer == {"role": "assistant", "content": [{"type": "text", "text": "A red square."}]}
    assert [b["text"] for b in last["content"]] == ["Are you sure?"]


def test_a_broken_image_is_a_400_naming_the_part(live_proxy_for, standin):
    proxy = live_proxy_for(Scenario(reply_text="unused"))
    with pytest.raises(openai.BadRequestError) as caught:
        proxy.client.chat.completions.create(model="sonnet", messages=[{
            "role": "user", "content": [
                {"type": "text", "text": "x"},
                {"type": "image_url", "image_url": {"url": "data:image/png;base64,%%%"}}]}])
    error = _error(caught.value)
    assert (error["code"], error["param"]) == ("invalid_image_url",
                                               "messages[0].content[1].image_url.url")
    assert upstream_requests(standin, proxy) == []   # refused before any CLI ran


def test_multi_turn_history_reaches_claude_as_native_turns_in_order(live_proxy_for, standin):
    proxy = live_proxy_for(Scenario(reply_text="4"))
    proxy.client.chat.completions.create(model="sonnet", messages=[
        {"role": "user", "content": "What is 1+1?"},
        {"role": "assistant", "content": "2"},
        {"role": "user", "content": "And 2+2?", "name": "bob"},
    ])
    messages = [m for m in upstream_requests(standin, proxy)[0].body["messages"]
                if m["role"] != "system"]   # the CLI's environment note
    assert [(m["role"], [b["text"] for b in m["content"]]) for m in messages] == [
        ("user", ["What is 1+1?"]), ("assistant", ["2"]),
        ("user", ["<name>bob</name>", "And 2+2?"])]


def test_a_later_system_message_keeps_its_place_in_a_transcript(live_proxy_for, standin):
    proxy = live_proxy_for(Scenario(reply_text="4"))
    proxy.client.chat.completions.create(model="sonnet", messages=[
        {"role": "user", "content": "What is 1+1?"},
        {"role": "assistant", "content": "2"},
        {"role": "system", "content": "Answer in words."},
        {"role": "user", "content": "And 2+2?", "name": "bob"},
    ])
    text, request = user_texts(upstream_requests(standin, proxy)[0].body)
    assert request.startswith("Write the assistant's next reply")
    turns = ['<turn role="user">What is 1+1?</turn>', '<turn role="assistant">2</turn>',
             '<turn role="system">Answer in words.</turn>',
             '<turn role="user" name="bob">And 2+2?</turn>']
    positions = [text.index(t) for t in turns]
    assert positions == sorted(positions)


def test_one_megabyte_prompt(live_proxy_for, standin):
    proxy = live_proxy_for(Scenario(reply_text="got it"))
    big = ("0123456789abcdef" * 65536)[:1_000_000] + " end"
    result = proxy.client.chat.completions.create(model="sonnet", messages=[
        {"role": "user", "content": big}])
    assert result.choices[0].message.content == "got it"
    assert user_texts(upstream_requests(standin, proxy)[0].body) == [big]


def test_prompt_starting_with_dashes_is_only_text(live_proxy_for, standin):
    proxy = live_proxy_for(Scenario(reply_text="{echo}"))
    prompt = "--help --model opus -p"
    result = proxy.client.chat.completions.create(model="haiku", messages=[
        {"role": "user", "content": prompt}])
    assert result.choices[0].message.content == prompt
    sent = upstream_requests(standin, proxy)[0].body
    assert user_texts(sent) == [prompt]
    assert sent["model"] == "claude-haiku-5-5"


def test_stop_sequence_is_applied_and_ends_the_run(live_proxy_for):
    proxy = live_proxy_for(Scenario(reply_text="alpha beta STOP gamma delta", split=3))
    result = proxy.client.chat.completions.create(model="sonnet", stop=["STOP"], messages=[
        {"role": "user", "content": "x"}])
    assert result.choices[0].message.content == "alpha beta "
    assert result.choices[0].finish_reason == "stop"
    streamed = list(proxy.client.chat.completions.create(
        model="sonnet", stop="STOP", stream=True, messages=[{"role": "user", "content": "x"}]))
    assert "".join(c.choices[0].delta.content or "" for c in streamed) == "alpha beta "


def test_max_tokens_gives_length_and_reaches_the_cli(live_proxy_for, standin):
    proxy = live_proxy_for(Scenario(reply_text="truncated answ", stop_reason="max_tokens",
                               output_tokens=5))
    result = proxy.client.chat.completions.create(model="sonnet", max_tokens=5, messages=[
        {"role": "user", "content": "x"}])
    assert result.choices[0].finish_reason == "length"
    assert result.choices[0].message.content == "truncated answ"
    assert result.usage.completion_tokens == 5
    requests = upstream_requests(standin, proxy)
    assert requests[0].body["max_tokens"] == 5
    # The CLI would continue a max_tokens answer three times; the proxy ends it at the first
    # stop. Its first continuation may already be on the wire by then (it is cut off).
    time.sleep(1.0)
    assert len(upstream_requests(standin, proxy)) <= 2


# --- failure paths -------------------------------------------------------------------------

def _error(exc: openai.APIStatusError) -> dict:
    return exc.response.json()["error"]


@pytest.mark.parametrize("scenario, retries, status, code", [
    (Scenario(fail_status=401), 0, 503, "upstream_authentication_failed"),
    (Scenario(fail_status=529), 0, 503, "upstream_overloaded"),
    (Scenario(fail_status=500), 0, 502, "upstream_error"),
], ids=["401", "529", "500"])
@pytest.mark.parametrize("stream", [False, True], ids=["json", "sse"])
def test_upstream_failures_get_honest_statuses(live_proxy_for, scenario, retries, status, code,
                                               stream):
    proxy = live_proxy_for(scenario, max_retries=retries)
    with pytest.raises(openai.APIStatusError) as caught:
        result = proxy.client.chat.completions.create(
            model="sonnet", messages=[{"role": "user", "content": "x"}], stream=stream)
        list(result) if stream else None
    assert caught.value.status_code == status
    error = _error(caught.value)
    assert error["code"] == code
    assert set(error) == {"message", "type", "param", "code"}
    assert "127.0.0.1:" not in error["message"]   # the upstream's address is not leaked


def test_an_overloaded_model_falls_back_to_the_configured_one(live_proxy_for, standin, caplog):
    # --fallback-model: the CLI retries the overloaded opus, then answers with haiku.
    caplog.set_level(logging.INFO, logger="claude_max_api.access")
    proxy = live_proxy_for(Scenario(fail_status=529, fail_models=("claude-opus-5-5",),
                               reply_text="Answered by {model}."),
                      max_retries=3, fallback_model="claude-haiku-4")
    result = proxy.client.chat.completions.create(model="opus", messages=[
        {"role": "user", "content": "x"}])
    assert result.choices[0].message.content == "Answered by claude-haiku-5-5."
    asked = [r.body["model"] for r in upstream_requests(standin, proxy)]
    assert asked[0] == "claude-opus-5-5" and asked[-1] == "claude-haiku-5-5"
    assert result.model == "opus"  # the name asked for, as on every response; the log tells
    deadline = time.monotonic() + 10
    while not (logged := [r.fields for r in caplog.records if r.name == "claude_max_api.access"
                          and r.fields.get("path") == "/v1/chat/completions"]):
        assert time.monotonic() < deadline, "no access log record"
        time.sleep(0.05)
    assert logged[0]["fallback_model"] == "claude-haiku-5-5"
    # The fallback model itself needs no fallback (the CLI would refuse one equal to it).
    result = proxy.client.chat.completions.create(model="haiku", messages=[
        {"role": "user", "content": "y"}])
    assert result.choices[0].message.content == "Answered by claude-haiku-5-5."


def test_without_a_fallback_an_overloaded_model_is_503(live_proxy_for):
    proxy = live_proxy_for(Scenario(fail_status=529, fail_models=("claude-opus-5-5",)), max_retries=3)
    with pytest.raises(openai.InternalServerError) as caught:
        proxy.client.chat.completions.create(model="opus", messages=[
            {"role": "user", "content": "x"}])
    assert (caught.value.status_code, _error(caught.value)["code"]) == (503, "upstream_overloaded")


def test_rate_limit_is_429_with_retry_after(live_proxy_for):
    proxy = live_proxy_for(Scenario(fail_status=429, fail_headers={"retry-after": "2"}), max_retries=1)
    with pytest.raises(openai.RateLimitError) as caught:
        proxy.client.chat.completions.create(model="sonnet", messages=[
            {"role": "user", "content": "x"}])
    assert _error(caught.value)["code"] == "rate_limit_exceeded"
    assert int(caught.value.response.headers["retry-after"]) >= 1


def test_rate_limit_then_success_is_retried_by_the_cli(live_proxy_for):
    proxy = live_proxy_for(Scenario(fail_status=429, fail_count=1, fail_headers={"retry-after": "1"},
                               reply_text="after the wait"), max_retries=2)
    result = proxy.client.chat.completions.create(model="sonnet", messages=[
        {"role": "user", "content": "x"}])
    assert result.choices[0].message.content == "after the wait"


def test_unreachable_upstream(standin, tmp_path):
    from proxy.runners.live import LiveRunner, WorkRoot
    from tests.support.servers import cli_environ
    home = tmp_path / "home"
    home.mkdir()
    runner = LiveRunner(work_root=WorkRoot(str(tmp_path / "w")), max_retries=0,
                        environ=cli_environ("http://127.0.0.1:9", str(home)))
    with running_proxy(Settings(), runner) as proxy:
        client = openai.OpenAI(base_url=proxy.base_url, api_key="x", max_retries=0, timeout=60)
        with pytest.raises(openai.APIStatusError) as caught:
            client.chat.completions.create(model="sonnet", messages=[
                {"role": "user", "content": "x"}])
    assert caught.value.status_code == 502
    assert _error(caught.value)["code"] == "upstream_unreachable"


def test_not_logged_in(standin, tmp_path):
    from proxy.runners.live import LiveRunner, WorkRoot
    from tests.support.servers import cli_environ
    home = tmp_path / "home"
    home.mkdir()
    environ = cli_environ(standin.base_url, str(home))
    del environ["ANTHROPIC_API_KEY"]
    runner = LiveRunner(work_root=WorkRoot(str(tmp_path / "w")), max_retries=0, environ=environ)
    with running_proxy(Settings(), runner) as proxy:
        client = openai.OpenAI(base_url=proxy.base_url, api_key="x", max_retries=0, timeout=60)
        with pytest.raises(openai.APIStatusError) as caught:
            client.chat.completions.create(model="sonnet", messages=[
                {"role": "user", "content": "x"}])
    assert caught.value.status_code == 503
    assert _error(caught.value)["code"] == "claude_not_logged_in"
    assert standin.requests_for("default") == [] or all(
        "x" not in user_texts(r.body) for r in standin.requests_for("default"))


def test_cli_missing_is_503(tmp_path):
    from proxy.runners.live import LiveRunner, WorkRoot
    runner = LiveRunner(str(tmp_path / "no-such-claude"), work_root=WorkRoot(str(tmp_path / "w")))
    with running_proxy(Settings(), runner) as proxy:
        client = openai.OpenAI(base_url=proxy.base_url, api_key="x", max_retries=0)
        with pytest.raises(openai.APIStatusError) as caught:
            client.chat.completions.create(model="sonnet", messages=[
                {"role": "user", "content": "x"}])
    assert caught.value.status_code == 503
    assert _error(caught.value)["code"] == "claude_cli_not_found"


def test_failure_after_content_started_is_an_sse_error_event(live_proxy_for):
    # The upstream stalls after a few events; the idle limit ends the run after content went out.
    proxy = live_proxy_for(Scenario(reply_text="partial answer that stalls", split=4,
                               hang_after_events=5), idle_timeout=2.0)
    with httpx.stream("POST", proxy.base_url + "/chat/completions", timeout=60, json={
            "model": "sonnet", "messages": [{"role": "user", "content": "x"}],
            "stream": True}) as response:
        assert response.status_code == 200
        datas = [line[6:] for line in response.iter_lines() if line.startswith("data: ")]
    payloads = [json.loads(d) for d in datas[:-1]]
    assert datas[-1] == "[DONE]"                      # a clean end, not a broken connection
    assert payloads[-1]["error"]["code"] == "timeout"
    assert any(p.get("choices") and p["choices"][0]["delta"].get("content") for p in payloads)
    assert validate_sse_data(datas[-2]) == []         # the error event is in the contract
    with pytest.raises(openai.APIError):               # and the SDK surfaces it as an error
        list(proxy.client.chat.completions.create(
            model="sonnet", messages=[{"role": "user", "content": "x"}], stream=True))


def test_timeout_before_any_output_is_504(live_proxy_for):
    proxy = live_proxy_for(Scenario(hang=True), idle_timeout=2.0)
    with pytest.raises(openai.APIStatusError) as caught:
        proxy.client.chat.completions.create(model="sonnet", messages=[
            {"role": "user", "content": "x"}])
    assert caught.value.status_code == 504
    assert _error(caught.value)["code"] == "timeout"


@pytest.mark.parametrize("stream", [False, True], ids=["json", "sse"])
def test_broken_upstream_stream_is_retried_without_duplicating_text(live_proxy_for, stream):
    # Mid-stream the upstream sends an overloaded error event; the CLI abandons that message
    # and asks again without streaming. The client must get the answer once, not twice.
    proxy = live_proxy_for(Scenario(reply_text="partial answer that breaks", split=4,
                               error_event_after=5))
    messages = [{"role": "user", "content": "x"}]
    if stream:
        text = "".join(c.choices[0].delta.content or "" for c in proxy.client.chat.completions
                       .create(model="sonnet", messages=messages, stream=True))
    else:
        text = proxy.client.chat.completions.create(model="sonnet", messages=messages
                                                    ).choices[0].message.content
    assert text == "partial answer that breaks"


# --- process lifecycle ---------------------------------------------------------------------

def _alive(pid: int) -> bool:
    try:
        with open(f"/proc/{pid}/stat") as fh:
            return fh.read().split(")")[-1].split()[0] != "Z"
    except FileNotFoundError:
        return False


def test_client_disconnect_mid_stream_ends_the_cli_within_two_seconds(live_proxy_for):
    proxy = live_proxy_for(Scenario(reply_text="slow " * 200, split=5, chunk_delay=0.2))
    stream = proxy.client.chat.completions.create(
        model="sonnet", messages=[{"role": "user", "content": "x"}], stream=True)
    iterator = iter(stream)
    next(iterator)
    next(iterator)
    (process,) = proxy.runner.live_processes()
    pid, req_dir = process.pid, process.req_dir
    stream.close()
    deadline = time.monotonic() + 2.0
    while (_alive(pid) or req_dir.exists()) and time.monotonic() < deadline:
        time.sleep(0.05)
    assert not _alive(pid), "the claude process outlived its client by more than 2 s"
    assert not req_dir.exists(), "the request's temporary directory was left behind"
    assert proxy.runner.live_processes() == []


def test_client_disconnect_while_waiting_non_streaming(live_proxy_for):
    proxy = live_proxy_for(Scenario(reply_text="never read", first_byte_delay=30))
    client = openai.OpenAI(base_url=proxy.base_url, api_key="x", max_retries=0, timeout=1.5)
    with pytest.raises(openai.APITimeoutError):
        client.chat.completions.create(model="sonnet", messages=[
            {"role": "user", "content": "x"}])
    deadline = time.monotonic() + 2.0
    while proxy.runner.live_processes() and time.monotonic() < deadline:
        time.sleep(0.05)
    assert proxy.runner.live_processes() == []
