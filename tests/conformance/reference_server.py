"""A small, deliberately breakable OpenAI-compatible server for testing the conformance checks.

Without faults it conforms (the whole catalogue passes against it); each fault is one named
deviation, chosen so that a specific check must fail. It is a WSGI app served by waitress on a
loopback port, validating requests with the project's own contract (proxy.contract), and its
"model" is a few deterministic rules: repeat the user when the system prompt asks for it,
count when asked to count, otherwise greet. Tokens are whitespace-separated words.
"""

from __future__ import annotations

import contextlib
import json
import threading
import unicodedata
import uuid
from dataclasses import dataclass, field
from typing import Any, Callable, Iterable, Iterator

import waitress

from proxy.contract.document import load_document
from proxy.contract.validation import RequestValidator

MODEL = "ref-model"
CREATED = 1_750_000_000
MAX_BODY = 8 * 1024 * 1024
GREETING = "Hello! This is the reference server."
COUNT = " ".join(str(i) for i in range(1, 21))
REASONING = "Seventeen times three: ten threes are 30, seven threes are 21, together 51."

FAULTS = frozenset({
    "models_html", "models_no_created", "models_hide_model", "retrieve_missing", "retrieve_any",
    "chat_text_plain", "completion_choice_no_index", "completion_no_refusal", "created_ms",
    "wrong_model_echo", "empty_content", "finish_length_always", "fixed_id", "usage_bad_total",
    "sse_as_json_type", "sse_bad_line", "chunk_no_finish_key",
    "chunk_ids_vary", "no_role", "double_finish", "no_done", "stream_empty_content",
    "usage_always", "usage_in_choice_chunk", "stream_differs", "ignore_max_tokens",
    "ignore_max_completion_tokens", "stream_length_as_stop", "max_tokens_zero_unlimited", "ignore_stop", "stop_only_string",
    "stream_ignores_stop", "n_ignored", "reject_temperature_zero", "no_temperature_range",
    "reject_seed", "unknown_field_500", "tools_500", "ignore_response_format", "parts_500",
    "first_part_only", "image_500", "mojibake", "nfd", "split_utf8", "reject_developer",
    "reject_assistant", "bad_json_500", "accept_text_plain", "no_validation", "param_null",
    "error_type_wrong", "unknown_model_400", "unknown_model_no_code", "stream_error_in_band",
    "no_body_limit", "route_404_html", "method_405_plain", "sse_cacheable", "no_request_id",
    "auth_optional", "auth_any_key", "error_plain_text",
    "reasoning_effort_500", "reasoning_effort_unchecked", "reasoning_in_content",
    "reasoning_after_content", "reasoning_tokens_missing",
    # legacy completions
    "legacy_finish_null", "legacy_chat_object", "legacy_stream_no_finish",
    "legacy_no_usage_chunk", "legacy_first_prompt_only", "legacy_ignore_max_tokens",
    "legacy_echo_ignored", "legacy_no_validation",
    # tools and structured outputs
    "reject_tools", "tool_finish_stop", "tool_arguments_bad", "strict_ignored",
    "stream_tool_name_repeated", "stream_tool_args_truncated", "parallel_same_id",
    "parallel_same_index", "reject_tool_messages", "roundtrip_ignores_result",
    "ignore_tool_choice_none", "ignore_tool_choice_required", "ignore_named_choice",
    "schema_ignored",
    # the Responses API
    "responses_404", "responses_no_tools", "responses_empty_output", "responses_unknown_event",
    "responses_no_terminal", "responses_stream_differs", "responses_incomplete_as_completed",
    "responses_tool_as_text", "responses_no_store", "responses_outputs_need_call",
    "responses_unknown_previous_500", "responses_reasoning_last", "responses_reasoning_refused",
})
CITIES = ("Paris", "Tokyo", "Berlin", "Madrid", "Rome", "Oslo")
PERSON = '{"name": "Ada Lovelace", "age": 36}'


class HTTPFailure(Exception):
    def __init__(self, status: int, message: str, *, param: str | None = None,
                 code: str | None = None, type: str = "invalid_request_error") -> None:
        super().__init__(message)
        self.status, self.message, self.param, self.code, self.type = (
            status, message, param, code, type)


@dataclass
class Behaviour:
    faults: frozenset[str] = frozenset()
    api_key: str | None = None
    calls: list[str] = field(default_factory=list)

    def __post_init__(self) -> None:
        unknown = set(self.faults) - FAULTS
        if unknown:
            raise ValueError(f"unknown faults {sorted(unknown)}")

    def has(self, fault: str) -> bool:
        return fault in self.faults


_STATUS = {200: "200 OK", 400: "400 Bad Request", 401: "401 Unauthorized", 404: "404 Not Found",
           405: "405 Method Not Allowed", 413: "413 Payload Too Large",
           415: "415 Unsupported Media Type", 500: "500 Internal Server Error"}


class ReferenceApp:
    def __init__(self, behaviour: Behaviour) -> None:
        self.b = behaviour
        self.validator = RequestValidator()
        self.known_fields = set(load_document()["components"]["schemas"][
            "CreateChatCompletionRequest"]["properties"])
        self.stored: dict[str, dict] = {}   # the Responses API's stored responses

    # ------------------------------------------------------------------ WSGI

    def __call__(self, environ: dict, start_response: Callable) -> Iterable[bytes]:
        headers: list[tuple[str, str]] = []
        if not self.b.has("no_request_id"):
            headers.append(("x-request-id", "req_" + uuid.uuid4().hex[:16]))
        try:
            status, more, body = self.route(environ)
        except HTTPFailure as exc:
            status, more, body = self.error(exc)
        except Exception as exc:  # what a careless server does: a bare 500
            status, more, body = 500, [("Content-Type", "text/plain")], \
                f"Internal Server Error: {type(exc).__name__}".encode()
        start_response(_STATUS.get(status, f"{status} Error"), headers + more)
        return body if isinstance(body, list) or hasattr(body, "__next__") else [body]

    def error(self, exc: HTTPFailure) -> tuple[int, list, bytes]:
        if self.b.has("error_plain_text"):
            return exc.status, [("Content-Type", "text/plain")], exc.message.encode()
        error = {"message": exc.message,
                 "type": "error" if self.b.has("error_type_wrong") else exc.type,
                 "param": None if self.b.has("param_null") else exc.param, "code": exc.code}
        return exc.status, [("Content-Type", "application/json")], \
            json.dumps({"error": error}).encode()

    def route(self, environ: dict) -> tuple[int, list, Any]:
        method, path = environ["REQUEST_METHOD"], environ.get("PATH_INFO", "")
        self.b.calls.append(f"{method} {path}")
        self.authenticate(environ)
        if path == "/v1/models":
            if method != "GET":
                return self.wrong_method()
            return self.models()
        if path.startswith("/v1/models/"):
            return self.model(path[len("/v1/models/"):])
        if path == "/v1/chat/completions":
            if method != "POST":
                return self.wrong_method()
            return self.chat(environ)
        if path == "/v1/completions":
            if method != "POST":
                return self.wrong_method()
            return self.legacy(self.read_body(environ))
        if path.startswith("/v1/responses") and not self.b.has("responses_404"):
            return self.responses(environ, method, path)
        if self.b.has("route_404_html"):
            return 404, [("Content-Type", "text/html")], b"<h1>Not Found</h1>"
        raise HTTPFailure(404, f"Invalid URL ({method} {path})", code="not_found")

    def wrong_method(self) -> tuple[int, list, bytes]:
        if self.b.has("method_405_plain"):
            return 405, [("Content-Type", "text/plain")], b"Method Not Allowed"
        raise HTTPFailure(405, "Method not allowed", code="method_not_allowed")

    def authenticate(self, environ: dict) -> None:
        if not self.b.api_key:
            return
        given = environ.get("HTTP_AUTHORIZATION", "")
        if not given and self.b.has("auth_optional"):
            return
        if given and self.b.has("auth_any_key"):
            return
        if given != f"Bearer {self.b.api_key}":
            raise HTTPFailure(401, "Incorrect API key provided.", code="invalid_api_key",
                              type="authentication_error")

    # ------------------------------------------------------------------ models

    def model_object(self, model_id: str) -> dict:
        entry = {"id": model_id, "object": "model", "created": CREATED, "owned_by": "reference"}
        if self.b.has("models_no_created"):
            del entry["created"]
        return entry

    def models(self) -> tuple[int, list, bytes]:
        ids = ["other-model"] if self.b.has("models_hide_model") else [MODEL, "other-model"]
        body = json.dumps({"object": "list", "data": [self.model_object(i) for i in ids]})
        kind = "text/html" if self.b.has("models_html") else "application/json"
        return 200, [("Content-Type", kind)], body.encode()

    def model(self, model_id: str) -> tuple[int, list, bytes]:
        if (model_id == MODEL and not self.b.has("retrieve_missing")) or self.b.has("retrieve_any"):
            return 200, [("Content-Type", "application/json")], \
                json.dumps(self.model_object(model_id)).encode()
        raise HTTPFailure(404, f"The model '{model_id}' does not exist", param="model",
                          code="model_not_found")

    # ------------------------------------------------------------------ chat

    def read_body(self, environ: dict) -> Any:
        media = (environ.get("CONTENT_TYPE") or "").split(";")[0].strip().lower()
        if media != "application/json" and not self.b.has("accept_text_plain"):
            raise HTTPFailure(415, f"Unsupported Content-Type {media!r}",
                              code="unsupported_media_type")
        length = int(environ.get("CONTENT_LENGTH") or 0)
        raw = environ["wsgi.input"].read(length) if length else b""
        if length > MAX_BODY and not self.b.has("no_body_limit"):
            raise HTTPFailure(413, "The request body is too large.", code="request_too_large")
        try:
            return json.loads(raw)
        except ValueError:
            if self.b.has("bad_json_500"):
                raise RuntimeError("cannot parse") from None
            raise HTTPFailure(400, "We could not parse the JSON body of your request.",
                              code="invalid_json") from None

    def validate(self, body: Any) -> None:
        if self.b.has("no_validation"):
            return
        checked = body
        if self.b.has("no_temperature_range") and isinstance(body, dict) \
                and isinstance(body.get("temperature"), (int, float)):
            checked = {**body, "temperature": 1}
        if self.b.has("reasoning_effort_unchecked") and isinstance(body, dict) \
                and isinstance(body.get("reasoning_effort"), str):
            checked = {**checked, "reasoning_effort": "low"}
        issue = self.validator.validate("CreateChatCompletionRequest", checked)
        if issue is not None:
            raise HTTPFailure(400, issue.message, param=issue.param, code=issue.code)

    def chat(self, environ: dict) -> tuple[int, list, Any]:
        body = self.read_body(environ)
        stream = isinstance(body, dict) and body.get("stream") is True
        try:
            return self.complete(body, stream)
        except HTTPFailure as exc:
            if stream and self.b.has("stream_error_in_band"):
                error = {"error": {"message": exc.message, "type": exc.type,
                                   "param": exc.param, "code": exc.code}}
                return 200, [("Content-Type", "text/event-stream")], \
                    [f"data: {json.dumps(error)}\n\n".encode(), b"data: [DONE]\n\n"]
            raise

    def complete(self, body: Any, stream: bool) -> tuple[int, list, Any]:
        self.validate(body)
        if set(body) - self.known_fields and self.b.has("unknown_field_500"):
            raise RuntimeError("unexpected keyword argument")
        if body["model"] != MODEL:
            status = 400 if self.b.has("unknown_model_400") else 404
            raise HTTPFailure(status, f"The model '{body['model']}' does not exist",
                              param="model",
                              code=None if self.b.has("unknown_model_no_code")
                              else "model_not_found")
        if body.get("temperature") == 0 and self.b.has("reject_temperature_zero"):
            raise HTTPFailure(400, "temperature must be positive", param="temperature")
        if "seed" in body and self.b.has("reject_seed"):
            raise HTTPFailure(400, "seed is not supported", param="seed")
        if body.get("tools") and self.b.has("tools_500"):
            raise RuntimeError("tools")
        if body.get("reasoning_effort") and self.b.has("reasoning_effort_500"):
            raise RuntimeError("reasoning_effort")
        if body.get("tools") and self.b.has("reject_tools"):
            raise HTTPFailure(400, "tools are not supported", param="tools",
                              code="unsupported_parameter")
        messages = body["messages"]
        if self.b.has("reject_tool_messages") and any(m["role"] == "tool" for m in messages):
            raise HTTPFailure(400, "tool messages are not supported", param="messages")
        for message in messages:
            if message["role"] == "developer" and self.b.has("reject_developer"):
                raise HTTPFailure(400, "Unknown role developer", param="messages")
            if message["role"] == "assistant" and self.b.has("reject_assistant"):
                raise HTTPFailure(400, "Assistant messages are not supported", param="messages")
            content = message.get("content")
            if isinstance(content, list):
                if self.b.has("parts_500"):
                    raise RuntimeError("content parts")
                if self.b.has("image_500") and any(
                        isinstance(p, dict) and p.get("type") == "image_url" for p in content):
                    raise RuntimeError("image")
        limit = body.get("max_completion_tokens")
        if limit is None or self.b.has("ignore_max_completion_tokens"):
            limit = body.get("max_tokens")
        if self.b.has("ignore_max_tokens"):
            limit = None
        if isinstance(limit, int) and limit < 1 and self.b.has("max_tokens_zero_unlimited"):
            limit = None
        if isinstance(limit, int) and limit < 1:
            raise HTTPFailure(400, "max_tokens must be at least 1", param="max_tokens")
        stops = body.get("stop")
        stops = [stops] if isinstance(stops, str) else list(stops or [])
        if self.b.has("ignore_stop") or (self.b.has("stop_only_string")
                                         and isinstance(body.get("stop"), list)):
            stops = []
        if stream and self.b.has("stream_ignores_stop"):
            stops = []
        n = int(body.get("n") or 1)  # JSON Schema counts 2.0 as an integer too
        if self.b.has("n_ignored"):
            n = 1
        calls = self.tool_calls(body, messages)
        text = "" if calls else self.answer(body, messages)
        results = [self.generate(text, limit, stops) for _ in range(n)]
        if calls:
            finish = "stop" if self.b.has("tool_finish_stop") else "tool_calls"
            results = [(pieces, finish) for pieces, _ in results]
        prompt_tokens = sum(len(_text(m).split()) for m in messages)
        # It thinks when asked to show it (and not told `none`); its thinking counts as output.
        reasoning = REASONING if body.get("include_reasoning") is True \
            and body.get("reasoning_effort") != "none" else None
        if reasoning and self.b.has("reasoning_in_content"):
            results = [([f"<think>{reasoning}</think>", *pieces], finish)
                       for pieces, finish in results]
            reasoning = None
        if stream:
            return self.stream(body, results, prompt_tokens, calls, reasoning)
        return self.completion(body, results, prompt_tokens, calls, reasoning)

    def tool_calls(self, body: dict, messages: list) -> list[dict]:
        """The "model"'s calls: a weather lookup per city the last user message names, the
        function `tool_choice` forces, none after tool results or with tool_choice none."""
        tools = [t.get("function", {}) for t in body.get("tools") or []
                 if isinstance(t, dict) and t.get("type") == "function"]
        if not tools or messages[-1]["role"] == "tool":
            return []
        choice = body.get("tool_choice") or "auto"
        if choice == "none" and not self.b.has("ignore_tool_choice_none"):
            return []
        users = [m for m in messages if m["role"] == "user"]
        said = _text(users[-1]) if users else ""
        cities = [c for c in CITIES if c in said] or ["Paris"]
        named = choice.get("function", {}).get("name") if isinstance(choice, dict) else None
        if named and self.b.has("ignore_named_choice"):
            named = tools[0]["name"]
        if named:
            chosen = [t for t in tools if t["name"] == named][:1]
        elif choice == "required" and not self.b.has("ignore_tool_choice_required"):
            chosen = tools[:1]
        elif "weather" in said.lower() or choice == "none":
            chosen = tools[:1]
        else:
            return []
        calls = []
        for tool in chosen:
            for city in cities if tool["name"] == "get_weather" else cities[:1]:
                if tool["name"] == "get_time":
                    arguments = '{"timezone": "Europe/%s"}' % city
                elif tool.get("strict") and self.b.has("strict_ignored"):
                    arguments = '{"town": "%s"}' % city
                elif self.b.has("tool_arguments_bad"):
                    arguments = '{city: "%s"' % city
                else:
                    arguments = '{"city": "%s"}' % city
                number = 1 if self.b.has("parallel_same_id") else len(calls) + 1
                calls.append({"id": f"call_ref_{number}", "type": "function",
                              "function": {"name": tool["name"], "arguments": arguments}})
        return calls

    def answer(self, body: dict, messages: list) -> str:
        fmt = body.get("response_format")
        if isinstance(fmt, dict) and fmt.get("type") in ("json_object", "json_schema") \
                and not self.b.has("ignore_response_format"):
            if fmt["type"] == "json_schema" and not self.b.has("schema_ignored"):
                return PERSON
            return '{"greeting": "hello"}'
        if messages[-1]["role"] == "tool":
            result = _text(messages[-1])
            return "Done." if self.b.has("roundtrip_ignores_result") else \
                f"The weather: {result}."
        system = " ".join(_text(m) for m in messages if m["role"] in ("system", "developer"))
        users = [m for m in messages if m["role"] == "user"]
        last = users[-1] if users else messages[-1]
        if "Repeat the user's message exactly" in system:
            parts = _parts(last)
            if self.b.has("first_part_only"):
                parts = parts[:1]
            text = "\n".join(parts)
        elif "Count from 1 to 20" in _text(last):
            text = COUNT
        elif "what is 17 * 3?" in _text(last):
            text = "51"
        else:
            text = GREETING
        if self.b.has("mojibake"):
            text = "".join(c if ord(c) < 128 else "\ufffd" for c in text)
        if self.b.has("nfd"):
            text = unicodedata.normalize("NFD", text)
        if self.b.has("empty_content"):
            text = ""
        return text

    def generate(self, text: str, limit: int | None, stops: list[str]) -> tuple[list[str], str]:
        """(pieces of text, finish_reason): a piece is a word with its trailing space."""
        cut = min((text.find(s) for s in stops if s and s in text), default=-1)
        finish = "stop"
        if cut >= 0:
            text = text[:cut]
        pieces = _pieces(text)
        if limit is not None and len(pieces) > limit:
            pieces, finish = pieces[:limit], "length"
        if self.b.has("finish_length_always"):
            finish = "length"
        return pieces, finish

    def identity(self) -> dict:
        return {"id": "chatcmpl-fixed" if self.b.has("fixed_id")
                else "chatcmpl-" + uuid.uuid4().hex,
                "created": CREATED * 1000 + 123 if self.b.has("created_ms") else _now(),
                "model": "some-other-model" if self.b.has("wrong_model_echo") else MODEL}

    def usage(self, prompt: int, completion: int, reasoning: str | None = None) -> dict:
        thought = len(reasoning.split()) if reasoning else 0
        completion += thought
        total = prompt + completion + (5 if self.b.has("usage_bad_total") else 0)
        usage = {"prompt_tokens": prompt, "completion_tokens": completion, "total_tokens": total}
        if thought and not self.b.has("reasoning_tokens_missing"):
            usage["completion_tokens_details"] = {"reasoning_tokens": thought}
        return usage

    def completion(self, body: dict, results: list, prompt_tokens: int,
                   calls: list, reasoning: str | None = None) -> tuple[int, list, bytes]:
        choices = []
        for index, (pieces, finish) in enumerate(results):
            message: dict[str, Any] = {"role": "assistant", "content": "".join(pieces),
                                       "refusal": None}
            if reasoning:
                message["reasoning_content"] = reasoning
            if calls:
                message["content"] = None
                message["tool_calls"] = calls
            choice = {"index": index, "message": message, "logprobs": None,
                      "finish_reason": finish}
            if self.b.has("completion_choice_no_index"):
                del choice["index"]
            if self.b.has("completion_no_refusal"):
                del choice["logprobs"]
                del message["refusal"]
            choices.append(choice)
        completion_tokens = max(1, sum(len(p) for p, _ in results))
        out = {**self.identity(), "object": "chat.completion", "choices": choices,
               "usage": self.usage(prompt_tokens, completion_tokens, reasoning)}
        kind = "text/plain" if self.b.has("chat_text_plain") else "application/json"
        return 200, [("Content-Type", kind)], json.dumps(out, ensure_ascii=False).encode()

    def stream(self, body: dict, results: list, prompt_tokens: int,
               calls: list, reasoning: str | None = None) -> tuple[int, list, Iterator]:
        options = body.get("stream_options") or {}
        include_usage = options.get("include_usage") is True or self.b.has("usage_always")
        identity = self.identity()
        b = self.b

        def chunk(choices: list, usage: Any = None) -> bytes:
            data = {**identity, "object": "chat.completion.chunk", "choices": choices}
            if b.has("chunk_ids_vary"):
                data["id"] = "chatcmpl-" + uuid.uuid4().hex
            if include_usage:
                data["usage"] = usage
            return f"data: {json.dumps(data, ensure_ascii=False)}\n\n".encode()

        def choice(index: int, delta: dict, finish: str | None = None) -> dict:
            c: dict[str, Any] = {"index": index, "delta": delta, "logprobs": None,
                                 "finish_reason": finish}
            if b.has("chunk_no_finish_key") and finish is None:
                del c["finish_reason"]
            return c

        def call_deltas(index: int, number: int, call: dict) -> Iterator[bytes]:
            at = 0 if b.has("parallel_same_index") else number
            function = call["function"]
            yield chunk([choice(index, {"tool_calls": [{
                "index": at, "id": call["id"], "type": "function",
                "function": {"name": function["name"], "arguments": ""}}]})])
            text = function["arguments"]
            pieces = [text[i:i + 5] for i in range(0, len(text), 5)]
            if b.has("stream_tool_args_truncated"):
                pieces = pieces[:-1]
            for piece in pieces:
                again = {"name": function["name"]} if b.has("stream_tool_name_repeated") else {}
                yield chunk([choice(index, {"tool_calls": [{
                    "index": at, "function": {**again, "arguments": piece}}]})])

        def events() -> Iterator[bytes]:
            if b.has("sse_bad_line"):
                yield b"garbage-without-a-colon\n\n"
            thoughts = _pieces(reasoning or "")
            for index, (pieces, finish) in enumerate(results):
                role = {} if b.has("no_role") else {"role": "assistant"}
                yield chunk([choice(index, {**role, "content": ""})])
                if not b.has("reasoning_after_content"):
                    for thought in thoughts:
                        yield chunk([choice(index, {"reasoning_content": thought})])
                if b.has("stream_differs"):
                    pieces = pieces[:-1]
                if not b.has("stream_empty_content"):
                    for piece in pieces:
                        if b.has("split_utf8"):
                            raw = piece.encode("utf-8")
                            for i in range(len(raw)):
                                yield chunk([choice(index, {"content": raw[i:i + 1].decode(
                                    "utf-8", errors="replace")})])
                            continue
                        yield chunk([choice(index, {"content": piece})])
                if b.has("reasoning_after_content"):
                    for thought in thoughts:
                        yield chunk([choice(index, {"reasoning_content": thought})])
                for number, call in enumerate(calls):
                    yield from call_deltas(index, number, call)
                if finish == "length" and b.has("stream_length_as_stop"):
                    finish = "stop"
                yield chunk([choice(index, {}, finish)])
                if b.has("double_finish"):
                    yield chunk([choice(index, {}, finish)])
            if include_usage:
                usage = self.usage(prompt_tokens, max(1, sum(len(p) for p, _ in results)),
                                   reasoning)
                usage_choices = [choice(0, {})] if b.has("usage_in_choice_chunk") else []
                yield chunk(usage_choices, usage)
            if not b.has("no_done"):
                yield b"data: [DONE]\n\n"

        kind = "application/json" if b.has("sse_as_json_type") else "text/event-stream"
        headers = [("Content-Type", kind)]
        if not b.has("sse_cacheable"):
            headers.append(("Cache-Control", "no-cache"))
        return 200, headers, events()


    # ------------------------------------------------------------------ legacy completions

    def legacy(self, body: Any) -> tuple[int, list, Any]:
        b = self.b
        if not b.has("legacy_no_validation"):
            issue = self.validator.validate("CreateCompletionRequest", body)
            if issue is not None:
                raise HTTPFailure(400, issue.message, param=issue.param, code=issue.code)
        if body["model"] != MODEL:
            raise HTTPFailure(404, f"The model '{body['model']}' does not exist",
                              param="model", code="model_not_found")
        prompts = body.get("prompt", "")
        prompts = [prompts] if isinstance(prompts, str) else list(prompts)
        if b.has("legacy_first_prompt_only"):
            prompts = prompts[:1]
        limit = None if b.has("legacy_ignore_max_tokens") else body.get("max_tokens")
        stops = body.get("stop")
        stops = [stops] if isinstance(stops, str) else list(stops or [])
        results = []
        for prompt in prompts:
            text = COUNT if "Count from 1 to 20" in str(prompt) else GREETING
            pieces, finish = self.generate(text, limit, stops)
            if body.get("echo") and not b.has("legacy_echo_ignored"):
                pieces = [str(prompt), *pieces]
            results.append((pieces, finish))
        prompt_tokens = sum(len(str(p).split()) for p in prompts)
        completion_tokens = max(1, sum(len(p) for p, _ in results))
        identity = {**self.identity(), "object": "chat.completion"
                    if b.has("legacy_chat_object") else "text_completion"}
        if body.get("stream") is not True:
            choices = [{"text": "".join(pieces), "index": i, "logprobs": None,
                        "finish_reason": None if b.has("legacy_finish_null") else finish}
                       for i, (pieces, finish) in enumerate(results)]
            out = {**identity, "choices": choices,
                   "usage": self.usage(prompt_tokens, completion_tokens)}
            return 200, [("Content-Type", "application/json")], json.dumps(out).encode()
        include_usage = (body.get("stream_options") or {}).get("include_usage") is True \
            and not b.has("legacy_no_usage_chunk")

        def chunk(choices: list, **more: Any) -> bytes:
            return f"data: {json.dumps({**identity, 'choices': choices, **more})}\n\n".encode()

        def events() -> Iterator[bytes]:
            for index, (pieces, finish) in enumerate(results):
                for piece in pieces:
                    yield chunk([{"text": piece, "index": index, "logprobs": None,
                                  "finish_reason": None}])
                if not b.has("legacy_stream_no_finish"):
                    yield chunk([{"text": "", "index": index, "logprobs": None,
                                  "finish_reason": finish}])
            if include_usage:
                yield chunk([], usage=self.usage(prompt_tokens, completion_tokens))
            yield b"data: [DONE]\n\n"

        return 200, [("Content-Type", "text/event-stream"), ("Cache-Control", "no-cache")], \
            events()

    # ------------------------------------------------------------------ the Responses API

    def responses(self, environ: dict, method: str, path: str) -> tuple[int, list, Any]:
        if path != "/v1/responses":
            stored = self.stored.get(path[len("/v1/responses/"):])
            if method != "GET":
                return self.wrong_method()
            if stored is None or self.b.has("responses_no_store"):
                raise HTTPFailure(404, "Response not found.", code="response_not_found")
            return 200, [("Content-Type", "application/json")], json.dumps(stored).encode()
        if method != "POST":
            return self.wrong_method()
        body = self.read_body(environ)
        issue = self.validator.validate("CreateResponse", body)
        if issue is not None:
            raise HTTPFailure(400, issue.message, param=issue.param, code=issue.code)
        if body["model"] != MODEL:
            raise HTTPFailure(404, f"The model '{body['model']}' does not exist", param="model",
                              code="model_not_found")
        previous = body.get("previous_response_id")
        if previous and (previous not in self.stored or self.b.has("responses_no_store")):
            if self.b.has("responses_unknown_previous_500"):
                raise RuntimeError("no such response")
            raise HTTPFailure(404, f"Previous response with id '{previous}' not found.",
                              param="previous_response_id", code="previous_response_not_found")
        items = body.get("input")
        items = [{"role": "user", "content": items}] if isinstance(items, str) else items or []
        if any(i.get("type") == "reasoning" for i in items) \
                and self.b.has("responses_reasoning_refused"):
            raise HTTPFailure(400, "Reasoning items are not supported.", param="input")
        if items and all(i.get("type") == "function_call_output" for i in items) \
                and self.b.has("responses_outputs_need_call"):
            raise HTTPFailure(400, "No tool call found for function call output.",
                              param="input")
        response = self.response_object(body, items)
        if body.get("store") is not False:
            self.stored[response["id"]] = response
        if body.get("stream") is True:
            return 200, [("Content-Type", "text/event-stream"), ("Cache-Control", "no-cache")], \
                self.response_events(response)
        return 200, [("Content-Type", "application/json")], json.dumps(response).encode()

    def response_object(self, body: dict, items: list) -> dict:
        tools = [t for t in body.get("tools") or [] if t.get("type") == "function"]
        last = items[-1] if items else {}
        text = GREETING
        content = last.get("content")
        if isinstance(content, str) and "history of the printing press" in content:
            text = "The printing press changed everything about how"
        status, incomplete = "completed", None
        limit = body.get("max_output_tokens")
        pieces = _pieces(text)
        if limit is not None and len(pieces) > limit // 8:
            pieces, status, incomplete = pieces[:max(1, limit // 8)], "incomplete", \
                {"reason": "max_output_tokens"}
            if self.b.has("responses_incomplete_as_completed"):
                status, incomplete = "completed", None
        text = "".join(pieces)
        if tools and last.get("type") != "function_call_output" \
                and not self.b.has("responses_tool_as_text"):
            output = [{"id": "fc_" + uuid.uuid4().hex, "type": "function_call",
                       "status": "completed", "call_id": "call_" + uuid.uuid4().hex[:8],
                       "name": tools[0]["name"], "arguments": '{"city": "Paris"}'}]
        elif self.b.has("responses_empty_output"):
            output = []
        else:
            output = [{"id": "msg_" + uuid.uuid4().hex, "type": "message", "role": "assistant",
                       "status": status, "content": [{"type": "output_text", "text": text,
                                                      "annotations": [], "logprobs": []}]}]
        summary = (body.get("reasoning") or {}).get("summary")
        if summary and output and output[0]["type"] == "message":
            reasoning = {"id": "rs_" + uuid.uuid4().hex, "type": "reasoning",
                         "summary": [{"type": "summary_text", "text": "Greeting the user."}]}
            if "reasoning.encrypted_content" in (body.get("include") or ()):
                reasoning["encrypted_content"] = "reference-" + uuid.uuid4().hex
            output = output + [reasoning] if self.b.has("responses_reasoning_last") \
                else [reasoning] + output
        words = len(text.split())
        response = {
            "id": "resp_" + uuid.uuid4().hex, "object": "response", "created_at": _now(),
            "status": status, "error": None, "incomplete_details": incomplete,
            "instructions": body.get("instructions"), "model": MODEL, "output": output,
            "parallel_tool_calls": True, "previous_response_id": body.get("previous_response_id"),
            "tool_choice": body.get("tool_choice") or "auto", "tools": body.get("tools") or [],
            "metadata": {}, "temperature": 1.0, "top_p": 1.0,
            "usage": {"input_tokens": 10, "input_tokens_details": {
                "cached_tokens": 0, "cache_write_tokens": 0}, "output_tokens": words,
                "output_tokens_details": {"reasoning_tokens": 0}, "total_tokens": 10 + words}}
        if self.b.has("responses_no_tools"):
            del response["tools"]
        return response

    def response_events(self, response: dict) -> Iterator[bytes]:
        b = self.b
        counter = iter(range(10_000))

        def event(kind: str, **fields: Any) -> bytes:
            data = {"type": kind, **fields, "sequence_number": next(counter)}
            return f"event: {kind}\ndata: {json.dumps(data)}\n\n".encode()

        def events() -> Iterator[bytes]:
            start = {**response, "status": "in_progress", "output": []}
            start.pop("usage", None)
            yield event("response.created", response=start)
            yield event("response.in_progress", response=start)
            if b.has("responses_unknown_event"):
                yield event("codex.rate_limits", rate_limits={})
            for index, item in enumerate(response["output"]):
                added = {**item, "status": "in_progress", "content": []} \
                    if item["type"] == "message" else \
                    {**item, "summary": []} if item["type"] == "reasoning" else item
                yield event("response.output_item.added", output_index=index, item=added)
                if item["type"] == "message":
                    part = {"type": "output_text", "text": "", "annotations": [], "logprobs": []}
                    where = {"item_id": item["id"], "output_index": index, "content_index": 0}
                    yield event("response.content_part.added", **where, part=part)
                    pieces = _pieces(item["content"][0]["text"])
                    if b.has("responses_stream_differs"):
                        pieces = pieces[:-1]
                    for piece in pieces:
                        yield event("response.output_text.delta", **where, delta=piece,
                                    logprobs=[])
                    text = "".join(pieces)
                    yield event("response.output_text.done", **where, text=text, logprobs=[])
                    yield event("response.content_part.done", **where,
                                part={**part, "text": text})
                    item = {**item, "content": [{**item["content"][0], "text": text}]}
                elif item["type"] == "reasoning":
                    where = {"item_id": item["id"], "output_index": index, "summary_index": 0}
                    part = item["summary"][0]
                    yield event("response.reasoning_summary_part.added", **where,
                                part={**part, "text": ""})
                    for piece in _pieces(part["text"]):
                        yield event("response.reasoning_summary_text.delta", **where,
                                    delta=piece)
                    yield event("response.reasoning_summary_text.done", **where,
                                text=part["text"])
                    yield event("response.reasoning_summary_part.done", **where, part=part)
                yield event("response.output_item.done", output_index=index, item=item)
            if not b.has("responses_no_terminal"):
                final = response   # with stream_differs: the whole text, unlike the deltas
                kind = "response.incomplete" if response["status"] == "incomplete" \
                    else "response.completed"
                yield event(kind, response=final)

        return events()


def _now() -> int:
    import time
    return int(time.time())


def _pieces(text: str) -> list[str]:
    pieces, current = [], ""
    for char in text:
        current += char
        if char == " ":
            pieces.append(current)
            current = ""
    if current:
        pieces.append(current)
    return pieces


def _parts(message: dict) -> list[str]:
    content = message.get("content")
    if isinstance(content, str):
        return [content]
    return [p.get("text", "") for p in content or [] if isinstance(p, dict)
            and p.get("type") == "text"]


def _text(message: dict) -> str:
    return " ".join(_parts(message)) if isinstance(message, dict) else ""


@contextlib.contextmanager
def serve_reference(behaviour: Behaviour | None = None) -> Iterator[str]:
    """Serves the reference app on 127.0.0.1; yields its OpenAI base URL (…/v1)."""
    server = waitress.create_server(ReferenceApp(behaviour or Behaviour()), host="127.0.0.1",
                                    port=0, threads=4, max_request_body_size=64 * 1024 * 1024)
    closing = threading.Event()

    def run() -> None:
        try:
            server.run()
        except OSError:
            if not closing.is_set():   # closing from another thread can break select()
                raise

    thread = threading.Thread(target=run, daemon=True, name="reference-openai")
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.effective_port}/v1"
    finally:
        closing.set()
        server.close()
        thread.join(10)
