"""The app's tests, against a claude-max-api server from the pytest plugin: recorded once with
a Claude login (`pytest --claude-max-api-record-mode once`), replayed from tests/cassettes/
everywhere else (in CI, where `CI` is set, nothing is ever recorded)."""

import pytest
from openai import OpenAI

from chat_app import Assistant, title_for


@pytest.fixture
def client(claude_max_api_server):
    with OpenAI(base_url=claude_max_api_server, api_key="unused", max_retries=0) as sdk:
        yield sdk


def test_the_assistant_answers(client):
    answer = Assistant(client).ask("What is the capital of France?")
    assert answer.strip()


def test_the_assistant_keeps_the_conversation(client):
    assistant = Assistant(client)
    first = assistant.ask("My name is Ada and I like chess.")
    second = assistant.ask("What is my name?")
    assert first.strip() and second.strip()
    roles = [m["role"] for m in assistant.messages]
    assert roles == ["system", "user", "assistant", "user", "assistant"]


def test_a_streamed_answer_joins_the_conversation(client):
    assistant = Assistant(client)
    assistant.ask("Name a prime number.")
    streamed = "".join(assistant.ask_streaming("Name another one."))
    assert streamed.strip()
    assert assistant.messages[-1] == {"role": "assistant", "content": streamed}


def test_a_title_has_no_quotes_or_full_stop(client):
    title = title_for(client, "Met the team; agreed to ship the parser on Friday.")
    assert title and not title.startswith('"') and not title.endswith(".")
