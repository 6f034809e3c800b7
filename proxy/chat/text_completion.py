"""The legacy completions protocol (`POST /v1/completions`) over the chat backend.

A prompt reaches Claude as the one user message of a conversation without a system prompt:
exactly the prompt's text, as a user would type it, through the same rendering, checks and
CLI run as a chat message (so a prompt the CLI would act on as typed input still goes as a
transcript). Claude is a chat model: it answers or follows the prompt rather than continuing
it as a base model would. Each prompt of a list is its own run, one after another (each
takes a concurrency slot as a chat request does); its choice has the prompt's place in the
list as `index`.

What cannot be honoured is a 400 naming the parameter, never dropped silently: token-array
prompts (no tokenizer of OpenAI's here), `suffix` (insertion), `logprobs`, `n` and `best_of`
above 1 (as chat refuses `n`). `max_tokens` defaults to 16, as OpenAI's legacy endpoint has it
(and vLLM and llama.cpp do). `echo` prepends the prompt to each choice's text, as OpenAI does.
"""

from __future__ import annotations

import secrets
import time
from dataclasses import dataclass
from typing import Any, Iterable, Sequence

from proxy.chat.completion import CompletionIdentity, usage_object
from proxy.claude.events import Usage
from proxy.errors import ProxyError

# OpenAI's default for this endpoint (CreateCompletionRequest.max_tokens); chat has none.
DEFAULT_MAX_TOKENS = 16
# Each prompt is a CLI run, and the runs take turns: a bound on what one request can queue.
MAX_PROMPTS = 16
# Only these reach the chat backend; everything else is refused here or accepted and ignored
# (temperature, top_p, penalties, seed, logit_bias, user: the CLI has no such settings).
_CARRIED = ("model", "max_tokens", "stop", "stream", "stream_options")


def _unsupported(param: str, message: str, code: str = "unsupported_parameter") -> ProxyError:
    return ProxyError(400, message, param=param, code=code)


def prompts_of(body: dict[str, Any]) -> tuple[str, ...]:
    """The request's prompts as text; a 400 naming what cannot be carried."""
    prompt = body["prompt"]
    if isinstance(prompt, str):
        return (prompt,)
    if any(not isinstance(p, str) for p in prompt):
        raise _unsupported("prompt", "Token arrays are not supported as `prompt`: this server "
                                     "has no tokenizer of OpenAI's to read them with (and Claude "
                                     "uses another). Send the prompt as text.",
                           code="unsupported_value")
    if len(prompt) > MAX_PROMPTS:
        raise ProxyError(400, f"Too many prompts ({len(prompt)}); this server accepts at most "
                              f"{MAX_PROMPTS} a request (each is a CLI run, one after another).",
                         param="prompt", code="too_many_prompts")
    return tuple(prompt)


def check_supported(body: dict[str, Any]) -> None:
    """A 400 for each field whose meaning the CLI cannot honour (first one found)."""
    if body.get("suffix"):  # "" inserts before nothing: a plain completion
        raise _unsupported("suffix", "`suffix` (inserting text before a suffix) is not "
                                     "supported: Claude Code has no fill-in-the-middle mode.")
    if body.get("logprobs") is not None:
        raise _unsupported("logprobs", "logprobs are not available through the Claude Code CLI.")
    if (body.get("n") or 1) != 1:
        raise _unsupported("n", "Only n=1 is supported: the CLI produces one answer per run.")
    if (body.get("best_of") or 1) > 1:
        raise _unsupported("best_of", "best_of is not supported: it ranks candidates by log "
                                      "probability, which the Claude Code CLI does not report.")


def chat_body(body: dict[str, Any], prompt: str) -> dict[str, Any]:
    """The chat request one prompt becomes: the prompt as the only (user) message."""
    chat = {key: body[key] for key in _CARRIED if body.get(key) is not None}
    chat["messages"] = [{"role": "user", "content": prompt}]
    if body.get("max_tokens") is None:
        chat["max_tokens"] = DEFAULT_MAX_TOKENS
    return chat


# ---------------------------------------------------------------------------- the answer


def new_text_completion_id() -> str:
    return "cmpl-" + secrets.token_urlsafe(21).replace("-", "a").replace("_", "b")


def new_identity(model: str) -> CompletionIdentity:
    return CompletionIdentity(new_text_completion_id(), int(time.time()), model)


def total_usage(usages: Iterable[Usage]) -> Usage:
    """The usage of several runs: every count added up."""
    out = Usage()
    for u in usages:
        out = Usage(out.input_tokens + u.input_tokens,
                    out.cache_creation_input_tokens + u.cache_creation_input_tokens,
                    out.cache_read_input_tokens + u.cache_read_input_tokens,
                    out.output_tokens + u.output_tokens,
                    out.reasoning_tokens + u.reasoning_tokens)
    return out


@dataclass(frozen=True)
class Choice:
    text: str
    finish_reason: str

    def wire(self, index: int) -> dict[str, Any]:
        return {"text": self.text, "index": index, "logprobs": None,
                "finish_reason": self.finish_reason}


def text_completion_object(identity: CompletionIdentity, choices: Sequence[Choice],
                           usage: Usage) -> dict[str, Any]:
    return {"id": identity.id, "object": "text_completion", "created": identity.created,
            "model": identity.model, "choices": [c.wire(i) for i, c in enumerate(choices)],
            "usage": usage_object(usage)}


class TextChunks:
    """The chunks of one streamed text completion (CompletionStreamChunk in the contract)."""

    def __init__(self, identity: CompletionIdentity) -> None:
        self.identity = identity

    def _chunk(self, choices: list[dict[str, Any]]) -> dict[str, Any]:
        return {"id": self.identity.id, "object": "text_completion",
                "created": self.identity.created, "model": self.identity.model,
                "choices": choices}

    def text(self, index: int, text: str) -> dict[str, Any]:
        return self._chunk([{"text": text, "index": index, "logprobs": None,
                             "finish_reason": None}])

    def finish(self, index: int, finish_reason: str) -> dict[str, Any]:
        return self._chunk([Choice("", finish_reason).wire(index)])

    def usage(self, usage: Usage) -> dict[str, Any]:
        # Only the last chunk has `usage` (the official schema does not allow it to be null).
        return {**self._chunk([]), "usage": usage_object(usage)}
