"""What the proxy must answer for each catalogue entry, worked out from the entry's scenario
(the stand-in's reply, usage and failure) and the proxy's rules (proxy/claude/failures.py),
not copied from the cassettes. Every catalogue entry must have one (a test checks)."""

from __future__ import annotations

from dataclasses import dataclass

ECHO = object()  # the stand-in's `{echo}`: the user message's text parts joined by newlines


@dataclass(frozen=True)
class Answer:
    """A 200 with this content and finish_reason (streamed and not)."""
    content: object  # a str, or ECHO
    finish_reason: str = "stop"
    usage: tuple[int, int] = (100, 12)  # prompt_tokens, completion_tokens
    # reasoning_content: None when not asked (no such field), "" for null, else the thinking.
    reasoning: str | None = None
    reasoning_tokens: int = 0


@dataclass(frozen=True)
class Calls:
    """A 200 whose answer is tool calls (name, arguments), after `content` (None: no text)."""
    content: str | None
    calls: tuple[tuple[str, dict], ...]
    finish_reason: str = "tool_calls"
    usage: tuple[int, int] = (100, 12)


@dataclass(frozen=True)
class Declined:
    """A 200 whose answer is a refusal (structured output the model declined), no content."""
    refusal: str
    usage: tuple[int, int] = (100, 12)
    finish_reason: str = "stop"


@dataclass(frozen=True)
class Refused:
    """An HTTP error before any content, in both modes (a stream is held until it begins)."""
    status: int
    code: str
    retry_after: str | int | None = None  # the header; an int is an epoch to count down to
    type: str = "server_error"


@dataclass(frozen=True)
class BrokenStream:
    """Fails after the answer began: an HTTP error without streaming; with streaming a 200
    whose chunks carry `partial`, then an SSE error event with `code`."""
    status: int
    code: str
    partial: str


def _model(resolved: str) -> Answer:
    return Answer(f"I am {resolved}.")


def _echoed_transcript(text: str) -> Answer:
    """The stand-in's echo of a one-turn transcript (README, "How a conversation reaches
    Claude"): its two blocks joined by a newline."""
    return Answer("Below is a conversation, one <turn> element per message, oldest first.\n\n"
                  f'<turn role="user">{text}</turn>\n'
                  "Write the assistant's next reply to the conversation above: plain reply text "
                  "only, without any <turn> tags.")


EXPECTED: dict[str, object] = {
    "plain_question": Answer("2 + 2 = 4.", usage=(21, 9)),
    "multi_turn": Answer("Your name is Ada."),
    "system_and_developer": Answer("Paris."),
    "content_parts": Answer(ECHO),
    "image_parts": Answer("Red."),
    "image_in_history": Answer("Blue."),
    "long_output": Answer("The quick brown fox jumps over the lazy dog. " * 400, usage=(100, 4000)),
    "unicode_emoji_cjk": Answer(ECHO),
    "unicode_rtl_combining": Answer(ECHO),
    "hostile_text": Answer(ECHO),
    "prompt_1mb": Answer("I read all of it.", usage=(262000, 12)),
    "prompt_dashes": Answer(ECHO),
    "typed_input_mention": _echoed_transcript("Ask @ada whether @/etc/hostname can be read."),
    "typed_input_slash": _echoed_transcript("/help"),
    "empty_message": Answer("You sent an empty message."),
    # Aliases resolve to the newest model of the family (CLI 2.1.332); full ids pass as they are.
    "model_claude_opus_4": _model("claude-opus-5-5"),
    "model_claude_sonnet_4": _model("claude-sonnet-5-5"),
    "model_claude_haiku_4": _model("claude-haiku-5-5"),
    "model_opus": _model("claude-opus-5-5"),
    "model_sonnet": _model("claude-sonnet-5-5"),
    "model_haiku": _model("claude-haiku-5-5"),
    "model_claude_sonnet_4_5": _model("claude-sonnet-4-5"),
    "stop_max_tokens": Answer("Rome was founded, according to legend, in 753", "length",
                              usage=(100, 16)),
    # Cut before "STOP"; output tokens estimated at 4 characters each (24 chars -> 6).
    "stop_client_sequence": Answer("one two three four five ", usage=(100, 6)),
    "stop_upstream_sequence": Answer("Something."),
    "thinking": Answer("17 * 3 = 51."),
    "reasoning_effort_high": Answer("144.", usage=(100, 20), reasoning_tokens=14),
    "reasoning_shown": Answer("144.", usage=(100, 20), reasoning_tokens=14,
                              reasoning="12 * 12: 10 * 12 + 2 * 12 = 120 + 24 = 144."),
    # Thinking turned off: no block, no thinking tokens; asked to show it, the field is null.
    "reasoning_effort_none": Answer("144.", usage=(100, 20), reasoning=""),
    # Both model calls' text, separated; usage is the sum of both calls.
    # Tools: the stand-in's calls, mapped back to the client's names; the usage of the answer
    # that made them (message_start's input, message_delta's output).
    "tool_call_single": Calls("Let me check.", (("get_weather", {"city": "Paris"}),)),
    "tool_calls_parallel": Calls(None, (("get_weather", {"city": "Paris"}),
                                        ("get_weather", {"city": "Tokyo"}))),
    "tool_round_trip": Answer("It is Sunny, 22 degrees in Paris."),
    # The prose attempt never reaches the client; the usage is the second attempt's.
    # The model answered prose first; the proxy's one correction made it call: two model
    # calls, one usage.
    "tool_choice_required_corrected": Calls(None, (("get_weather", {"city": "Madrid"}),),
                                            usage=(200, 24)),
    # The StructuredOutput input as the stand-in writes it (json.dumps), streamed as content.
    "structured_json_schema": Answer('{"name": "Bob", "age": 3}'),
    # The CLI asked once more ([structured-output-enforce]): two model calls, one usage.
    "structured_refusal": Declined("I cannot share that.", usage=(200, 24)),
    "tool_use_refused": Answer("Let me look.\n\nI cannot run tools here.", usage=(200, 24)),
    "upstream_401": Refused(503, "upstream_authentication_failed"),
    "upstream_429_retry_after": Refused(429, "rate_limit_exceeded", retry_after="2",
                                        type="rate_limit_error"),
    "upstream_429_then_ok": Answer("Third time lucky."),
    "upstream_500": Refused(502, "upstream_error"),
    "upstream_529": Refused(503, "upstream_overloaded", retry_after="1"),
    "upstream_529_fallback": Answer("Answered by claude-haiku-5-5."),
    "upstream_400_prompt_too_long": Refused(400, "context_length_exceeded",
                                            type="invalid_request_error"),
    # The plan limit says when it resets (anthropic-ratelimit-unified-reset): Retry-After
    # counts down to it. Billing refusals are OpenAI's insufficient_quota: no Retry-After.
    "usage_limit_five_hour": Refused(429, "usage_limit_reached", retry_after=4102444800,
                                     type="rate_limit_error"),
    "billing_extra_usage": Refused(429, "insufficient_quota", type="insufficient_quota"),
    "billing_credit_balance": Refused(429, "insufficient_quota", type="insufficient_quota"),
    "organization_disabled": Refused(503, "upstream_account_disabled"),
    "upstream_unreachable": Refused(502, "upstream_unreachable"),
    "not_logged_in": Refused(503, "claude_not_logged_in"),
    "killed_mid_stream": BrokenStream(502, "claude_cli_crashed", partial="Once upon "),
    # The CLI recovers from a dropped stream by asking again without streaming; the text it
    # had streamed is continued, not repeated. Usage counts both attempts.
    "upstream_dropped_mid_stream": Answer("Once upon a time the connection", usage=(200, 13)),
    # ...and from an error event the same way; its usage counts the abandoned attempt too.
    "upstream_error_event": Answer("Once upon a time the stream", usage=(200, 13)),
    "garbage_cli": Refused(502, "claude_cli_bad_output"),
    "slow_stream": Answer("Slow and steady wins the race."),
    # Conversations: the stand-in echoes each turn's user message (the last turn's here).
    "conversation_continued": Answer("Noted: And what do I build?"),
    "conversation_edited": Answer("Noted: What is the result?"),
    "conversation_image": Answer("Noted: Which colour was the pixel?"),
}
