"""A small app built on the OpenAI SDK: an assistant that keeps the conversation, and a helper
that turns notes into a title. It knows nothing about claude-max-api; its tests point it at a
claude-max-api server (see tests/)."""

from __future__ import annotations

from typing import Iterator

from openai import OpenAI

PERSONA = "You are a concise assistant. Answer in one or two sentences."


class Assistant:
    """A chat that remembers: every question is sent with the conversation so far."""

    def __init__(self, client: OpenAI, model: str = "claude-sonnet-4") -> None:
        self.client = client
        self.model = model
        self.messages: list[dict] = [{"role": "system", "content": PERSONA}]

    def ask(self, question: str) -> str:
        self.messages.append({"role": "user", "content": question})
        reply = self.client.chat.completions.create(model=self.model, messages=self.messages)
        answer = reply.choices[0].message.content or ""
        self.messages.append({"role": "assistant", "content": answer})
        return answer

    def ask_streaming(self, question: str) -> Iterator[str]:
        """Yields the answer as it arrives; the whole of it joins the conversation."""
        self.messages.append({"role": "user", "content": question})
        parts = []
        for chunk in self.client.chat.completions.create(model=self.model, stream=True,
                                                         messages=self.messages):
            if chunk.choices and chunk.choices[0].delta.content:
                parts.append(chunk.choices[0].delta.content)
                yield chunk.choices[0].delta.content
        self.messages.append({"role": "assistant", "content": "".join(parts)})


def title_for(client: OpenAI, notes: str, model: str = "claude-haiku-4") -> str:
    """A one-line title for some notes, without quotes or a trailing full stop."""
    reply = client.chat.completions.create(model=model, max_tokens=30, messages=[
        {"role": "system", "content": "Reply with a title of at most eight words, nothing else."},
        {"role": "user", "content": notes}])
    return (reply.choices[0].message.content or "").strip().strip('"').rstrip(".")
