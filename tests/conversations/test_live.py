"""Native conversations end to end: the official openai SDK -> waitress -> the proxy -> the real
CLI -> the stand-in. What goes upstream on turn N equals what Claude Code's own session sends
(one CLI process, one user message a turn on stdin), on a kept process and on a resumed one;
kept processes are continued only by exactly their conversation, and never past their bounds.
"""

from __future__ import annotations

import copy
import json
import os
import signal
import time

import openai
import pytest

from proxy.conversations.keeper import Keeper
from proxy.conversations.runner import ConversationRunner
from proxy.settings import Settings
from proxy.standin.scenario import Scenario
from tests.standin.clirun import SAFE_ARGS, run_claude, user_line
from tests.support.servers import running_proxy

pytestmark = pytest.mark.live

SYSTEM = "You are terse. " * 300  # above the minimum cacheable length
USERS = ["My name is Ada and I like chess. " * 8, "What is my name? " * 10,
         "And what do I like? " * 10]


@pytest.fixture
def conversation_proxy(standin, live_runner_for):
    """A proxy whose live runner keeps conversations; each gets its own stand-in scenario."""
    opened = []

    def start(scenario: Scenario | None = None, *, keeper: Keeper | None = None,
              api_keys=(), first_output_timeout: float = 5.0, **settings):
        name = f"conv-{len(opened)}-{os.getpid()}-{time.monotonic_ns()}"
        standin.add_scenario(name, scenario or Scenario(reply_text="Reply to: {echo}",
                                                         prompt_caching=True))
        live = live_runner_for(name)
        runner = ConversationRunner(live, keeper or Keeper(max_processes=4, watch=False),
                                    first_output_timeout=first_output_timeout)
        context = running_proxy(Settings(api_keys=list(api_keys), **settings), runner)
        proxy = context.__enter__()
        opened.append(context)
        proxy.scenario, proxy.live, proxy.conversations = name, live, runner
        proxy.client = openai.OpenAI(base_url=proxy.base_url, api_key=(api_keys or ["x"])[0],
                                     max_retries=0, timeout=60)
        return proxy

    yield start
    for context in reversed(opened):
        context.__exit__(None, None, None)


def chat(proxy, messages, *, stream=True, api_key=None, **kw) -> str:
    client = proxy.client if api_key is None else openai.OpenAI(
        base_url=proxy.base_url, api_key=api_key, max_retries=0, timeout=60)
    if not stream:
        return client.chat.completions.create(model="sonnet", messages=messages,
                                              **kw).choices[0].message.content
    text = ""
    for chunk in client.chat.completions.create(model="sonnet", messages=messages, stream=True,
                                                **kw):
        if chunk.choices and chunk.choices[0].delta.content:
            text += chunk.choices[0].delta.content
    return text


def converse(proxy, users=USERS, **kw) -> list[dict]:
    messages = [{"role": "system", "content": SYSTEM}]
    for user in users:
        messages.append({"role": "user", "content": user})
        messages.append({"role": "assistant", "content": chat(proxy, messages, **kw)})
    return messages


def comparable(body: dict) -> dict:
    """A request body without what differs between any two processes (their ids)."""
    body = copy.deepcopy(body)
    body.pop("metadata", None)
    return body


def own_session(standin, cwd: str, scenario: str) -> list[dict]:
    """What Claude Code's own session sends: one process, the same system prompt, one user
    message a turn written after the previous `result`."""
    prompt_file = os.path.join(os.path.dirname(cwd), f"system-{scenario}.txt")
    with open(prompt_file, "w", encoding="utf-8") as fh:
        fh.write(SYSTEM)
    try:
        run = run_claude(standin.base_url_for(scenario),
                         [user_line([{"type": "text", "text": u}]) for u in USERS],
                         args=SAFE_ARGS, extra_args=["--system-prompt-file", prompt_file],
                         one_turn_at_a_time=True, cwd=cwd, timeout=120)
    finally:
        os.unlink(prompt_file)
    assert len(run.of_type("result")) == len(USERS), run.stderr[-500:]
    return [r.body for r in standin.requests_for(scenario)]


def test_a_continued_chat_sends_upstream_what_claude_codes_own_session_sends(
        conversation_proxy, standin):
    proxy = conversation_proxy()
    messages = converse(proxy)
    assert proxy.live.spawned == 1, "turns 2 and 3 must continue the first process"
    state = proxy.conversations.conversation_state()
    assert state["hits"] == 2 and state["continued"] == 2 and state["kept"] == 1
    ours = [r.body for r in standin.requests_for(proxy.scenario)]

    baseline = f"{proxy.scenario}-own"
    standin.add_scenario(baseline, Scenario(reply_text="Reply to: {echo}", prompt_caching=True))
    theirs = own_session(standin, str(proxy.live.sessions.cwd), baseline)
    assert len(ours) == len(theirs) == 3
    for turn, (a, b) in enumerate(zip(ours, theirs), 1):
        assert comparable(a) == comparable(b), f"turn {turn} differs"
    # The client got the model's answers, and Claude saw them as its own turns.
    assert messages[2]["content"] == "Reply to: " + USERS[0]
    roles = [m["role"] for m in ours[-1]["messages"]]
    assert roles == ["user", "system", "assistant", "user", "assistant", "user"]


def test_a_resumed_chat_sends_upstream_what_claude_codes_own_session_sends(
        conversation_proxy, standin):
    # keep nothing: every turn after the first resumes a session the proxy wrote
    proxy = conversation_proxy(keeper=Keeper(max_processes=0, watch=False))
    converse(proxy, stream=False)
    assert proxy.live.spawned == 3
    ours = [r.body for r in standin.requests_for(proxy.scenario)]
    baseline = f"{proxy.scenario}-own"
    standin.add_scenario(baseline, Scenario(reply_text="Reply to: {echo}", prompt_caching=True))
    theirs = own_session(standin, str(proxy.live.sessions.cwd), baseline)
    for turn, (a, b) in enumerate(zip(ours, theirs), 1):
        assert comparable(a) == comparable(b), f"turn {turn} differs"
    # and what the resumed turns read from the prompt cache
    usage = [r.usage for r in standin.requests_for(proxy.scenario)]
    assert usage[2]["cache_read_input_tokens"] > usage[1]["cache_read_input_tokens"] > 0
    assert os.listdir(proxy.live.sessions.directory) == []  # every link removed
    assert list(proxy.live.work_root.path.iterdir()) == []  # and every session file


def test_an_edited_history_gets_a_resumed_process_never_the_kept_one(conversation_proxy,
                                                                      standin):
    proxy = conversation_proxy()
    messages = converse(proxy, USERS[:2])
    kept_pid = proxy.live.live_processes()[0].pid
    edited = copy.deepcopy(messages)
    edited[2]["content"] = "A different answer than the one the proxy gave."
    edited.append({"role": "user", "content": USERS[2]})
    assert chat(proxy, edited) == "Reply to: " + USERS[2]
    state = proxy.conversations.conversation_state()
    assert state["misses"]["history_differs"] == 1 and proxy.live.spawned == 2
    sent = standin.requests_for(proxy.scenario)[-1].body["messages"]
    assert sent[2]["content"][0]["text"] == edited[2]["content"]
    assert any(p.pid == kept_pid for p in proxy.live.live_processes())  # still kept for its own


def test_two_api_keys_never_share_a_process(conversation_proxy):
    proxy = conversation_proxy(api_keys=["key-a", "key-b"])
    messages = converse(proxy, USERS[:1], api_key="key-a")
    messages.append({"role": "user", "content": USERS[1]})
    chat(proxy, messages, api_key="key-b")  # the same history, another key
    state = proxy.conversations.conversation_state()
    assert state["hits"] == 0 and state["misses"]["no_conversation"] == 1
    assert proxy.live.spawned == 2
    chat(proxy, messages, api_key="key-a")  # its owner still continues it
    assert proxy.conversations.conversation_state()["hits"] == 1 and proxy.live.spawned == 2


def test_a_kept_process_serves_one_request_at_a_time(conversation_proxy):
    proxy = conversation_proxy(Scenario(reply_text="Reply to: {echo}", chunk_delay=0.2))
    messages = converse(proxy, USERS[:1])
    messages.append({"role": "user", "content": USERS[1]})
    from concurrent.futures import ThreadPoolExecutor
    with ThreadPoolExecutor(2) as pool:
        first = pool.submit(chat, proxy, messages)
        time.sleep(0.3)
        second = pool.submit(chat, proxy, messages)
        assert first.result() == second.result() == "Reply to: " + USERS[1]
    state = proxy.conversations.conversation_state()
    assert state["hits"] == 1 and state["misses"]["in_use"] == 1 and proxy.live.spawned == 2


@pytest.mark.parametrize("what", ["stop", "max_tokens", "error"])
def test_a_turn_that_did_not_end_cleanly_is_not_kept(conversation_proxy, what):
    if what == "error":
        proxy = conversation_proxy(Scenario(fail_status=500))
        with pytest.raises(openai.APIStatusError):
            chat(proxy, [{"role": "user", "content": "hi"}])
    elif what == "max_tokens":
        proxy = conversation_proxy(Scenario(reply_text="x" * 200, stop_reason="max_tokens"))
        chat(proxy, [{"role": "user", "content": "hi"}], max_tokens=5)
    else:
        proxy = conversation_proxy(Scenario(reply_text="one STOP two"))
        assert chat(proxy, [{"role": "user", "content": "hi"}], stop=["STOP"]) == "one "
    assert proxy.conversations.conversation_state()["kept"] == 0
    assert _eventually(lambda: proxy.live.live_processes() == [])


def test_a_dead_kept_process_is_replaced_transparently(conversation_proxy):
    proxy = conversation_proxy()
    messages = converse(proxy, USERS[:1])
    (process,) = proxy.live.live_processes()
    os.kill(process.pid, signal.SIGKILL)
    process.popen.wait(5)
    messages.append({"role": "user", "content": USERS[1]})
    assert chat(proxy, messages) == "Reply to: " + USERS[1]
    assert proxy.conversations.conversation_state()["misses"]["stale"] == 1


def test_a_hung_kept_process_is_ended_by_the_watchdog(conversation_proxy):
    proxy = conversation_proxy(first_output_timeout=1.0)
    messages = converse(proxy, USERS[:1])
    (process,) = proxy.live.live_processes()
    os.kill(process.pid, signal.SIGSTOP)
    try:
        messages.append({"role": "user", "content": USERS[1]})
        assert chat(proxy, messages) == "Reply to: " + USERS[1]
    finally:
        if process.alive:
            os.kill(process.pid, signal.SIGCONT)
    assert proxy.conversations.conversation_state()["misses"]["stale"] == 1
    assert _eventually(lambda: not process.alive)


def test_bounds_end_kept_processes(conversation_proxy):
    keeper = Keeper(max_processes=1, idle_timeout=0.5, watch=False)
    proxy = conversation_proxy(keeper=keeper)
    converse(proxy, ["first conversation"])
    (first,) = proxy.live.live_processes()
    converse(proxy, ["second conversation"])
    assert _eventually(lambda: not first.alive)  # the count bound: least recently used goes
    assert keeper.state()["evictions"]["count"] == 1
    assert _eventually(lambda: len(proxy.live.live_processes()) == 1)
    (second,) = proxy.live.live_processes()
    time.sleep(0.6)
    keeper.sweep()
    assert not second.alive and keeper.state()["evictions"]["idle"] == 1
    assert proxy.live.live_processes() == []


def _eventually(check, timeout: float = 10.0) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if check():
            return True
        time.sleep(0.05)
    return check()


def test_a_client_that_sends_its_next_turn_at_done_finds_the_process_kept(conversation_proxy,
                                                                          monkeypatch):
    # An agent loop sends the next turn the moment it has the answer, before the server has
    # even finished the first response: the process must already be kept by then. (The
    # server's end of a response is slowed down here, so that the race is always lost by a
    # proxy that keeps the process only when the response is closed.)
    import httpx
    from proxy.http.resources import chat as chat_resource
    close = chat_resource.ChatStream.close

    def slow_close(self):
        time.sleep(0.5)
        close(self)

    monkeypatch.setattr(chat_resource.ChatStream, "close", slow_close)
    proxy = conversation_proxy()
    messages = [{"role": "user", "content": USERS[0]}]
    open_responses = []
    with httpx.Client(base_url=proxy.base_url, timeout=60) as client:
        try:
            for turn in range(1, 4):
                request = client.build_request("POST", "/chat/completions", json={
                    "model": "sonnet", "messages": messages, "stream": True})
                response = client.send(request, stream=True)
                open_responses.append(response)  # left open: the next turn goes out first
                text = ""
                for line in response.iter_lines():
                    if line == "data: [DONE]":
                        break
                    if line.startswith("data: "):
                        delta = json.loads(line[6:])["choices"][0]["delta"]
                        text += delta.get("content") or ""
                messages += [{"role": "assistant", "content": text},
                             {"role": "user", "content": f"turn {turn}"}]
        finally:
            for response in open_responses:
                response.close()
    state = proxy.conversations.conversation_state()
    assert state["hits"] == 2 and sum(state["misses"].values()) == 0
    assert proxy.live.spawned == 1


def test_a_warm_process_serves_a_first_turn_and_is_then_kept(standin, live_runner_for):
    from proxy.runners.pool import WarmPool
    name = f"conv-warm-{os.getpid()}-{time.monotonic_ns()}"
    standin.add_scenario(name, Scenario(reply_text="Reply to: {echo}"))
    live = live_runner_for(name)
    pool = WarmPool(live, size=1, max_processes=2, models=["sonnet"])
    runner = ConversationRunner(pool, Keeper(max_processes=2, watch=False))
    assert pool.wait_ready(60)
    with running_proxy(Settings(), runner) as proxy:
        proxy.live, proxy.conversations = live, runner
        proxy.client = openai.OpenAI(base_url=proxy.base_url, api_key="x", max_retries=0)
        converse(proxy, USERS[:2])
        assert pool.state()["hits"] == 1            # the first turn took the warm process
        state = runner.conversation_state()
        assert state["hits"] == 1 and state["continued"] == 1  # which the second continued
        assert pool.state()["serving"] == 0         # and it left the pool's room
        assert _eventually(lambda: pool.state()["idle"] == 1)  # refilled for the next chat
