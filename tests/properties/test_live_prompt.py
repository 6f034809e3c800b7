"""Live property: whatever a single user message says, the real CLI passes exactly the text
blocks the proxy rendered to the model (nothing answered by the CLI itself, nothing injected),
and the completion is the model's answer.

The upstream is the stand-in echoing the last user text; what it received is compared with
`render()`. Found this way: a message that is a CLI command name (`/help`, `/model opus`, ...)
was answered by the CLI itself ("/help isn't available in this environment."), and any other
leading `/word` got a slash-command reminder injected, although the proxy passes
`--disable-slash-commands`; a whitespace-only message reached the model as "(no content)";
`see @/etc/hostname` sent that file's content to the model (despite `--tools ""`), and
"ultrathink" added a system note. Everything the CLI adds besides the user turn is therefore
compared with what it adds for a plain "Hello".
"""

from __future__ import annotations

import json
import re

import pytest
import requests
from hypothesis import example, given
from hypothesis import strategies as st

from proxy.chat.render import render
from proxy.runners.live import LiveRunner, WorkRoot
from proxy.settings import Settings
from proxy.standin.scenario import Scenario
from tests.properties.budget import budget
from tests.support.servers import cli_environ, cli_home, running_proxy

pytestmark = pytest.mark.live
SCENARIO = "live-prompt-echo"
TYPED = ["/help", "/clear", "/cost", "/model opus", "/compact", "/foo bar", "/", "//x",
         "/init now", "--help", "-p", "@/etc/hostname", "see @/etc/hostname", "@README.md",
         "@agent-general-purpose hi", "why？@x", "ultrathink", "think harder", "!ls", "# note",
         "&job", "a@b.com"]
TEXT = st.one_of(
    st.text(min_size=1, max_size=40).filter(lambda t: not t.startswith("<system-reminder>")),
    st.sampled_from(TYPED),
    st.tuples(st.text(max_size=10), st.sampled_from(TYPED)).map(" ".join),
)
WORKING_DIRECTORY = re.compile(r"(Primary working directory: ).*?(\\n)")


def _context(body: dict) -> list:
    """What the CLI adds besides the user turn, with the per-run working directory masked."""
    rest = [m for m in body["messages"] if m["role"] != "user"]
    return json.loads(WORKING_DIRECTORY.sub(r"\1<CWD>\2", json.dumps(rest)))


@pytest.fixture(scope="module")
def served(standin, tmp_path_factory):
    standin.add_scenario(SCENARIO, Scenario(reply_text="{echo}"))
    with cli_home() as home:
        runner = LiveRunner(work_root=WorkRoot(str(tmp_path_factory.mktemp("work"))),
                            max_retries=0,
                            environ=cli_environ(standin.base_url_for(SCENARIO), home))
        with running_proxy(Settings(), runner) as proxy, requests.Session() as session:
            session.post(proxy.base_url + "/chat/completions", timeout=120, json={
                "model": "sonnet", "messages": [{"role": "user", "content": "Hello"}]})
            hello = standin.requests_for(SCENARIO)[-1].body
            yield proxy, session, (_context(hello), len(hello["system"]))


@budget(8)
@given(text=TEXT)
@example(text="/help")
@example(text="/model opus")
@example(text="/foo bar")
@example(text="\r")  # whitespace-only blocks are dropped by the CLI, "(no content)" sent
@example(text="")
@example(text="\x85")  # whitespace to Python (maybe to the API), not to the CLI's JavaScript
@example(text="\ufeff")  # the reverse
@example(text="see @/etc/hostname")  # a file mention: the file was attached
@example(text="ultrathink")  # a system note was added
def test_the_model_receives_exactly_the_rendered_prompt(served, standin, text):
    _assert_sent_exactly(served, standin, [{"role": "user", "content": text}])


ROLE = st.sampled_from(["system", "developer", "user", "assistant"])
CONTENT = st.one_of(TEXT, st.lists(TEXT.map(lambda t: {"type": "text", "text": t}),
                                   min_size=1, max_size=3))
CONVERSATION = st.lists(st.fixed_dictionaries({"role": ROLE, "content": CONTENT}),
                        min_size=1, max_size=4)


@budget(6)
@given(messages=CONVERSATION)
@example(messages=[{"role": "system", "content": " "}, {"role": "user", "content": "hi"}])
@example(messages=[{"role": "system", "content": "/help"}, {"role": "user", "content": " "},
                   {"role": "assistant", "content": "@ada"}, {"role": "user", "content": "/x"}])
@example(messages=[{"role": "user", "content": [{"type": "text", "text": "a"},
                                                 {"type": "text", "text": "see @/etc/hostname"}]}])
def test_any_conversation_reaches_the_model_exactly(served, standin, messages):
    # Transcripts and system prompts too: the whole rendered prompt, and nothing added.
    _assert_sent_exactly(served, standin, messages)


def _assert_sent_exactly(served, standin, messages: list) -> None:
    proxy, session, (baseline, system_blocks) = served
    prompt = render(messages)
    before = len(standin.requests_for(SCENARIO))
    answer = session.post(proxy.base_url + "/chat/completions", timeout=120,
                          json={"model": "sonnet", "messages": messages})
    calls = standin.requests_for(SCENARIO)[before:]
    assert len(calls) == 1, f"{len(calls)} model calls: {answer.text[:200]}"
    user = [m for m in calls[0].body["messages"] if m["role"] == "user"][-1]
    content = user["content"] if isinstance(user["content"], list) else \
        [{"type": "text", "text": user["content"]}]
    assert [b.get("text") for b in content] == list(prompt.blocks)
    system = [b["text"] for b in calls[0].body["system"]]
    # The client's system prompt is one block after the CLI's own (billing header, identity).
    assert system[system_blocks:] == ([prompt.system] if prompt.system else [])
    assert _context(calls[0].body) == baseline, "the CLI added something for this prompt"
    assert answer.status_code == 200
    assert answer.json()["choices"][0]["message"]["content"] == "\n".join(
        b["text"] for b in content)
