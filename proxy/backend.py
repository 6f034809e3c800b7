"""The chat completion backend: from a validated OpenAI request to a running CLI.

It decides what the proxy supports (a 400 naming the parameter for what it cannot honour, so
nothing is dropped silently), renders the prompt, takes a concurrency slot and starts the run.
It knows nothing about HTTP; `proxy/http/resources/chat.py` serialises what it produces.
"""

from __future__ import annotations

import dataclasses
import logging
from dataclasses import dataclass
from typing import Any, Callable, Sequence

from proxy.chat.models import ModelCatalogue, ServedModel
from proxy.chat.reasoning import EFFORTS, Reasoning
from proxy.chat import text_completion
from proxy.chat.render import Prompt, render
from proxy.chat.response_format import ResponseFormat, response_format
from proxy.conversations.history import FALLBACKS
from proxy.conversations.session import SessionUnavailable
from proxy.tools.guard import Referee, needs_referee
from proxy.tools.spec import ToolRequest, tool_request
from proxy.claude.invocation import Invocation
from proxy.claude.run import CLIRun, ClientGone, Limits, PlanObserver
from proxy.concurrency import ConcurrencyLimiter, SlotCancelled
from proxy.errors import ProxyError
from proxy.runners.base import Runner


@dataclass(frozen=True)
class ChatRequest:
    """A chat completion request, checked and reduced to what the backend acts on."""
    model: ServedModel
    prompt: Prompt
    stream: bool
    include_usage: bool
    stops: tuple[str, ...]
    max_output_tokens: int | None
    fallback_model: str | None = None
    owner: str = ""   # the API key the request came with (kept conversations are its own)
    messages: Sequence[dict[str, Any]] = ()  # as validated, to render again as a transcript
    tools: ToolRequest = ToolRequest()
    response_format: ResponseFormat | None = None
    reasoning: Reasoning = Reasoning()
    keep: bool = True  # whether the CLI process may be kept for a next turn (chat only)

    def invocation(self) -> Invocation:
        return Invocation(model=self.model.cli_model, system_prompt=self.prompt.system,
                          blocks=self.prompt.blocks, max_output_tokens=self.max_output_tokens,
                          fallback_model=self.fallback_model, images=self.prompt.images,
                          history=self.prompt.history, effort=self.reasoning.effort,
                          thinking=self.reasoning.thinking,
                          thinking_display=self.reasoning.thinking_display, owner=self.owner,
                          continuable=self.keep and self.prompt.fallback is None,
                          tools=self.tools.tools, tool_results=self.prompt.results,
                          parallel_calls=self.tools.parallel and not self.tools.legacy,
                          json_schema=self.response_format.schema
                          if self.response_format is not None else None,
                          request=(("model", self.model.id), ("stream", self.stream)))


@dataclass(frozen=True)
class CompletionRequest:
    """A legacy completions request: one chat request (and CLI run) per prompt."""
    prompts: tuple[str, ...]
    chats: tuple[ChatRequest, ...]
    echo: bool

    @property
    def stream(self) -> bool:
        return self.chats[0].stream

    @property
    def include_usage(self) -> bool:
        return self.chats[0].include_usage

    @property
    def prompt(self) -> Prompt:
        """Every prompt, for the request log's opt-in content logging."""
        return Prompt("", self.prompts)


log = logging.getLogger("claude_max_api.conversations")


def _output_limit(body: dict[str, Any]) -> int | None:
    """max_completion_tokens, else max_tokens. A limit below 1 is a 400, as OpenAI answers it;
    `or` would have turned 0 into "no limit" (found by the conformance suite)."""
    for key in ("max_completion_tokens", "max_tokens"):
        value = body.get(key)
        if value is not None and value < 1:
            raise ProxyError(400, f"Invalid '{key}': integer below minimum value. Expected a "
                                  f"value >= 1, but got {value} instead.", param=key,
                             code="integer_below_min_value")
    limit = body.get("max_completion_tokens")
    return limit if limit is not None else body.get("max_tokens")


def _has_tool_blocks(prompt: Prompt) -> bool:
    return bool(prompt.results) or any('"type":"tool_use"' in b for t in prompt.history
                                       for b in t.blocks)


def _unsupported(param: str, message: str) -> ProxyError:
    return ProxyError(400, message, param=param, code="unsupported_parameter")


class ChatService:
    def __init__(self, models: ModelCatalogue, runner: Runner, limiter: ConcurrencyLimiter,
                 limits: Limits, *, max_messages: int = 2048,
                 max_prompt_chars: int = 4 * 1024 * 1024, fallback_model: str = "",
                 plan: PlanObserver | None = None, include_reasoning: bool = False) -> None:
        self.models = models
        self.plan = plan  # told each run's plan state (proxy/plan.py)
        self.include_reasoning = include_reasoning  # for requests that do not say
        self.fallback_model = models.cli_name(fallback_model) or None
        self.runner = runner
        self.limiter = limiter
        self.limits = limits
        self.max_messages = max_messages
        self.max_prompt_chars = max_prompt_chars
        self.on_fallback: Callable[[str], None] | None = None  # counts transcripts (/metrics)

    def prepare(self, body: dict[str, Any], owner: str = "") -> ChatRequest:
        """Checks what schema validation cannot; raises ProxyError (4xx)."""
        model = self.models.get(body["model"])
        messages = body["messages"]
        if len(messages) > self.max_messages:
            raise ProxyError(400, f"Too many messages ({len(messages)}); this server accepts at "
                                  f"most {self.max_messages}.", param="messages",
                             code="too_many_messages")
        if (body.get("n") or 1) != 1:
            raise _unsupported("n", "Only n=1 is supported: the CLI produces one answer per run.")
        tools = tool_request(body)
        structured = response_format(body)
        if body.get("logprobs") or body.get("top_logprobs"):
            raise _unsupported("logprobs", "logprobs are not available through the Claude Code CLI.")
        if "audio" in (body.get("modalities") or []) or body.get("audio"):
            raise _unsupported("modalities", "Audio output is not supported.")

        reasoning = self._reasoning(body)

        prompt = render(messages)
        if prompt.fallback is not None:
            self._fell_back(prompt.fallback)
        if not tools.tools and tools.every and _has_tool_blocks(prompt):
            # tool_choice "none" on a conversation with calls in it: the API needs the tools
            # defined to read those blocks, so they are offered, and calls refused (guard.py).
            tools = dataclasses.replace(tools, tools=tools.every)
        try:
            for text in (prompt.system, *prompt.blocks, *(s for _, s in prompt.images),
                         *prompt.results, *(b for t in prompt.history for b in t.blocks)):
                text.encode("utf-8")
        except UnicodeEncodeError:
            raise ProxyError(400, "The messages contain a lone UTF-16 surrogate, which is not "
                                  "text Claude can receive.", param="messages",
                             code="invalid_unicode") from None
        if prompt.size > self.max_prompt_chars:
            raise ProxyError(400, f"The prompt has {prompt.size} characters; this server accepts "
                                  f"at most {self.max_prompt_chars}.", param="messages",
                             code="context_length_exceeded")
        stop = body.get("stop")
        stops = (stop,) if isinstance(stop, str) else tuple(stop or ())
        max_tokens = _output_limit(body)
        options = body.get("stream_options") or {}
        return ChatRequest(model=model, prompt=prompt, stream=bool(body.get("stream")),
                           include_usage=bool(body.get("stream") and options.get("include_usage")),
                           stops=tuple(s for s in stops if s), max_output_tokens=max_tokens,
                           fallback_model=self.fallback_model, owner=owner, messages=messages,
                           tools=tools, response_format=structured, reasoning=reasoning)

    def _reasoning(self, body: dict[str, Any]) -> Reasoning:
        effort = body.get("reasoning_effort")
        if effort is not None and effort not in EFFORTS:  # the contract's enum says the same
            raise ProxyError(400, f"Invalid 'reasoning_effort': {effort!r}; expected one of "
                                  f"{', '.join(EFFORTS)}.", param="reasoning_effort",
                             code="invalid_value")
        show = body.get("include_reasoning")
        return Reasoning.of(effort, self.include_reasoning if show is None else bool(show))

    def prepare_completion(self, body: dict[str, Any], owner: str = "") -> CompletionRequest:
        """A legacy completions request (proxy/chat/text_completion.py): each prompt checked and
        prepared as a chat request of one user message; raises ProxyError (4xx)."""
        self.models.get(body["model"])  # an unknown model is a 404 before anything else
        prompts = text_completion.prompts_of(body)
        text_completion.check_supported(body)
        chats = []
        for index, prompt in enumerate(prompts):
            where = "prompt" if isinstance(body["prompt"], str) else f"prompt[{index}]"
            if len(prompt) > self.max_prompt_chars:
                raise ProxyError(400, f"The prompt has {len(prompt)} characters; this server "
                                      f"accepts at most {self.max_prompt_chars}.", param=where,
                                 code="context_length_exceeded")
            try:
                prompt.encode("utf-8")
            except UnicodeEncodeError:
                raise ProxyError(400, "The prompt contains a lone UTF-16 surrogate, which is "
                                      "not text Claude can receive.", param=where,
                                 code="invalid_unicode") from None
            try:
                chat = self.prepare(text_completion.chat_body(body, prompt), owner)
            except ProxyError as exc:  # chat's checks name chat's fields; this is the prompt
                if exc.param and exc.param.startswith("messages"):
                    exc.param = where
                raise
            # Stateless: nobody continues a completion, so its process is not kept (it would
            # only push a chat's kept conversation out).
            chats.append(dataclasses.replace(chat, keep=False))
        return CompletionRequest(prompts, tuple(chats), echo=bool(body.get("echo")))

    def _fell_back(self, reason: str, logged: bool = False) -> None:
        if not logged:
            log.info("conversation sent as a transcript: %s", FALLBACKS[reason])
        if self.on_fallback is not None:
            self.on_fallback(reason)

    def start(self, request: ChatRequest, is_disconnected: Callable[[], bool]) -> CLIRun:
        """Takes a slot (waiting if need be) and starts the CLI; raises ProxyError or ClientGone."""
        try:
            release = self.limiter.acquire(is_disconnected)
        except SlotCancelled:
            raise ClientGone() from None
        try:
            try:
                process = self.runner.start(request.invocation())
            except SessionUnavailable as exc:
                log.warning("conversation sent as a transcript: %s", exc)
                request = dataclasses.replace(
                    request, prompt=render(request.messages, fallback="session_unavailable"))
                self._fell_back("session_unavailable", logged=True)
                process = self.runner.start(request.invocation())
        except BaseException:
            release()
            raise
        return CLIRun(process, limits=self.limits, is_disconnected=is_disconnected,
                      tools=request.tools if request.tools.tools else None,
                      referee=Referee(request.tools) if needs_referee(request.tools) else None,
                      structured=request.response_format,
                      on_close=release, plan=self.plan)
