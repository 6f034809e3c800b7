"""The Responses backend: the chat backend, plus the stored responses.

`prepare()` resolves `previous_response_id` (and item references) in the caller's own store,
translates the request (proxy/responses/request.py) and has `ChatService.prepare` check and
render it, so a Responses request becomes exactly the run the same chat completion would be:
native turns, a kept CLI process continued, tool calls held, the referee, structured output.
`start()` is ChatService.start. `save()` writes the record (proxy/responses/store.py).
Reasoning items' encrypted_content is sealed and opened with the caller's key name
(proxy/responses/reasoning.py); the thinking a valid one holds joins the history's turns.
"""

from __future__ import annotations

import dataclasses
import json
from dataclasses import dataclass
from typing import Any, Callable

from proxy.claude.run import CLIRun
from proxy.errors import ProxyError
from proxy.responses.items import dumps, new_id
from proxy.responses.output import ResponseState, ResponseWriter
from proxy.responses.reasoning import ThinkingSeal, with_thinking
from proxy.responses.request import Translation, echo, translate
from proxy.responses.store import ResponseStore
from proxy.backend import ChatRequest, ChatService


def not_found(response_id: str, param: str | None = None) -> ProxyError:
    if param == "previous_response_id":
        return ProxyError(404, f"Previous response with id '{response_id}' not found.",
                          param=param, code="previous_response_not_found")
    return ProxyError(404, f"Response with id '{response_id}' not found.", param=param,
                      code="response_not_found")


@dataclass
class PreparedResponse:
    chat: ChatRequest
    translation: Translation
    state: ResponseState
    owner: str
    store: bool
    history: tuple[str, ...]       # the stored conversation it continues
    inputs: tuple[str, ...]        # its own input items, as stored

    @property
    def stream(self) -> bool:
        return self.chat.stream

    @property
    def one_call(self) -> bool:
        return not self.chat.tools.parallel


class ResponsesService:
    def __init__(self, chat: ChatService, store: ResponseStore,
                 seal: ThinkingSeal | None = None) -> None:
        self.chat = chat
        self.store = store
        self.seal = seal if seal is not None else ThinkingSeal()

    def prepare(self, body: dict[str, Any], owner: str = "") -> PreparedResponse:
        history: tuple[str, ...] = ()
        previous = body.get("previous_response_id")
        if previous:
            record = self.store.get(previous, owner)
            if record is None:
                raise not_found(previous, "previous_response_id")
            if not record.finished:
                raise ProxyError(400, f"Previous response with id '{previous}' is still in "
                                      f"progress; send the follow-up when it has finished.",
                                 param="previous_response_id",
                                 code="previous_response_in_progress")
            history = record.conversation

        def resolve(item_id: str, param: str) -> dict[str, Any]:
            found = self.store.find_item(item_id, owner)
            if found is None:
                raise ProxyError(404, f"Item with id '{item_id}' not found.", param=param,
                                 code="item_not_found")
            return json.loads(found)

        translation = translate(body, [json.loads(t) for t in history], resolve,
                                lambda token: self.seal.open(owner, token))
        try:
            chat = self.chat.prepare(translation.chat_body, owner=owner)
        except ProxyError as exc:
            raise translation.remap(exc) from None
        if translation.thinking and chat.prompt.history and chat.prompt.fallback is None:
            prompt = dataclasses.replace(chat.prompt, history=with_thinking(
                chat.prompt.history, translation.thinking))
            chat = dataclasses.replace(chat, prompt=prompt)
        state = ResponseState(new_id("resp"), body["model"], echo(body, translation.tools))
        return PreparedResponse(chat, translation, state, owner,
                                store=body.get("store") is not False, history=history,
                                inputs=tuple(dumps(i) for i in translation.input_items))

    def start(self, prepared: PreparedResponse, is_disconnected: Callable[[], bool]) -> CLIRun:
        return self.chat.start(prepared.chat, is_disconnected)

    def writer(self, prepared: PreparedResponse, *, streaming: bool) -> ResponseWriter:
        owner = prepared.owner
        return ResponseWriter(prepared.state, prepared.translation.tools.names,
                              one_call=prepared.one_call, streaming=streaming,
                              reasoning=prepared.translation.reasoning,
                              seal=lambda block, message: self.seal.seal(
                                  owner, [block], dict(message)))

    def save(self, prepared: PreparedResponse) -> None:
        """Writes the response as it stands; a finished one with its output in the
        conversation a follow-up continues. Nothing for `store: false`."""
        if not prepared.store:
            return
        state = prepared.state
        finished = state.status != "in_progress"
        conversation = prepared.history + prepared.inputs
        if finished:
            conversation += tuple(dumps(item) for item in state.output)
        self.store.put(state.id, prepared.owner, state.object(), prepared.inputs, conversation,
                       finished)
