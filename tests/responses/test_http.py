"""POST /v1/responses and the stored responses over the real waitress server, driven by the
official Python SDK (and plain HTTP where the SDK hides what is checked), with a CLI scripted
per invocation. Every answer is also judged by the official-spec tee (official Response,
ResponseStreamEvent and ResponseItemList schemas, and the Responses stream rules)."""

from __future__ import annotations

import json
import threading
import time

import openai
import pydantic
import pytest
import requests

from conformance.responses_stream import check_responses_stream
from proxy.settings import Settings
from tests.responses.fake_cli import Call, Crash, Stop, Structured, Text

WEATHER = {"type": "function", "name": "get_weather", "description": "The weather, now.",
           "parameters": {"type": "object", "properties": {"city": {"type": "string"}},
                          "required": ["city"]}, "strict": False}
TIME = {"type": "function", "name": "get_time", "parameters": {"type": "object"}, "strict": None}
AGENTS = {"type": "namespace", "name": "multi_agent_v1", "description": "Sub-agents.",
          "tools": [{"type": "function", "name": "spawn_agent", "description": "Spawn one.",
                     "parameters": {"type": "object",
                                    "properties": {"message": {"type": "string"}}}}]}


def post(proxy, body, **kwargs):
    return requests.post(proxy.base_url + "/responses", json=body, timeout=30, **kwargs)


def events_of(response: requests.Response) -> list[dict]:
    report = check_responses_stream(response.content).assert_ok()
    return report.events


# ---------------------------------------------------------------------------- plain answers

def test_a_plain_response_and_what_the_cli_was_given(scripted):
    proxy = scripted()
    result = proxy.client.responses.create(model="sonnet", instructions="Be brief.",
                                           input="What is 2 + 2?", metadata={"k": "v"})
    assert (result.object, result.status, result.model) == ("response", "completed", "sonnet")
    assert result.id.startswith("resp_") and result.output_text == "Hello from the fake CLI."
    (message,) = result.output
    assert (message.type, message.role, message.status) == ("message", "assistant", "completed")
    assert message.id.startswith("msg_") and message.content[0].annotations == []
    assert (result.usage.input_tokens, result.usage.output_tokens,
            result.usage.total_tokens) == (10, 5, 15)
    assert result.usage.input_tokens_details.cached_tokens == 0
    assert result.usage.output_tokens_details.reasoning_tokens == 0
    assert (result.instructions, result.metadata, result.tools) == ("Be brief.", {"k": "v"}, [])
    assert result.error is None and result.incomplete_details is None
    (invocation,) = proxy.runner.invocations
    assert (invocation.system_prompt, invocation.blocks, invocation.history) == \
        ("Be brief.", ("What is 2 + 2?",), ())


def test_a_stream_is_the_official_event_sequence(scripted):
    proxy = scripted()
    response = post(proxy, {"model": "sonnet", "input": "Hi", "stream": True})
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("text/event-stream")
    assert b"[DONE]" not in response.content
    events = events_of(response)
    assert [e["type"] for e in events] == [
        "response.created", "response.in_progress", "response.output_item.added",
        "response.content_part.added", *["response.output_text.delta"] * 3,
        "response.output_text.done", "response.content_part.done",
        "response.output_item.done", "response.completed"]
    assert [e["sequence_number"] for e in events] == list(range(len(events)))
    assert b"event: response.output_text.delta\ndata: " in response.content
    created, final = events[0]["response"], events[-1]["response"]
    assert created["status"] == "in_progress" and created["output"] == []
    assert "usage" not in created and final["usage"]["total_tokens"] == 15
    assert final["output"][0]["content"][0]["text"] == "Hello from the fake CLI."
    stored = proxy.client.responses.retrieve(final["id"])
    assert stored.model_dump(exclude_none=True) == \
        openai.types.responses.Response.model_validate(final).model_dump(exclude_none=True)


def test_the_sdk_stream_helper_and_the_plain_answer_agree(scripted):
    proxy = scripted()
    with proxy.client.responses.stream(model="sonnet", input="Hi") as stream:
        deltas = [e.delta for e in stream if e.type == "response.output_text.delta"]
        streamed = stream.get_final_response()
    plain = proxy.client.responses.create(model="sonnet", input="Hi")
    assert "".join(deltas) == streamed.output_text == plain.output_text


# ---------------------------------------------------------------------------- tool calls

def calls(*steps):
    return lambda invocation: [*steps, Stop("tool_use")]


def test_text_then_calls_stream_as_items_with_claudes_ids(scripted):
    proxy = scripted(calls(Text("Checking."), Call("get_weather", {"city": "Paris"}),
                           Call("get_time", {}, id="toolu_fake00000000000000000002")))
    response = post(proxy, {"model": "sonnet", "input": "Weather and time?", "stream": True,
                            "tools": [WEATHER, TIME]})
    events = events_of(response)
    assert [e["type"] for e in events if not e["type"].endswith(".delta")] == [
        "response.created", "response.in_progress",
        "response.output_item.added", "response.content_part.added",
        "response.output_text.done", "response.content_part.done", "response.output_item.done",
        "response.output_item.added", "response.function_call_arguments.done",
        "response.output_item.done",
        "response.output_item.added", "response.function_call_arguments.done",
        "response.output_item.done", "response.completed"]
    final = events[-1]["response"]
    message, weather, clock = final["output"]
    assert message["content"][0]["text"] == "Checking."
    assert (weather["type"], weather["call_id"], weather["name"], json.loads(weather["arguments"]),
            weather["status"]) == ("function_call", "toolu_fake00000000000000000001",
                                   "get_weather", {"city": "Paris"}, "completed")
    assert (clock["call_id"], clock["name"], clock["arguments"]) == \
        ("toolu_fake00000000000000000002", "get_time", "{}")
    assert final["status"] == "completed" and [t["name"] for t in final["tools"]] == \
        ["get_weather", "get_time"]
    (invocation,) = proxy.runner.invocations
    assert [t.name for t in invocation.tools] == ["get_weather", "get_time"]


def test_parallel_tool_calls_false_gives_the_first_call_only(scripted):
    proxy = scripted(calls(Call("get_weather", {"city": "A"}),
                           Call("get_time", {}, id="toolu_fake00000000000000000002")))
    result = proxy.client.responses.create(model="sonnet", input="?", tools=[WEATHER, TIME],
                                           parallel_tool_calls=False)
    assert [(o.type, o.name) for o in result.output] == [("function_call", "get_weather")]
    assert result.parallel_tool_calls is False


def test_a_namespaced_function_comes_back_with_its_namespace(scripted):
    proxy = scripted(calls(Call("multi_agent_v1__spawn_agent", {"message": "go"})))
    first = proxy.client.responses.create(model="sonnet", input="Spawn.", tools=[AGENTS])
    (call,) = first.output
    assert (call.type, call.namespace, call.name) == \
        ("function_call", "multi_agent_v1", "spawn_agent")
    assert first.tools[0].type == "namespace"
    (invocation,) = proxy.runner.invocations
    assert [t.upstream_name for t in invocation.tools] == ["mcp__c__multi_agent_v1__spawn_agent"]
    # Sent back (as Codex does, the whole history), the call maps to the same tool.
    proxy.runner.script = lambda invocation: [Text("Spawned."), Stop()]
    proxy.client.responses.create(model="sonnet", tools=[AGENTS], store=False, input=[
        {"role": "user", "content": "Spawn."}, call.model_dump(exclude_none=True),
        {"type": "function_call_output", "call_id": call.call_id, "output": "agent 7"}])
    second = proxy.runner.invocations[-1]
    (use,) = [json.loads(b) for t in second.history for b in t.blocks if '"tool_use"' in b]
    assert (use["name"], use["id"]) == ("mcp__c__multi_agent_v1__spawn_agent", call.call_id)
    assert [json.loads(r)["content"] for r in second.tool_results] == ["agent 7"]


def test_hosted_tools_are_not_offered_and_say_so(scripted):
    proxy = scripted()
    response = post(proxy, {"model": "sonnet", "input": "Search.", "tools": [
        WEATHER, {"type": "web_search", "external_web_access": False},
        {"type": "file_search", "vector_store_ids": ["vs_1"]}, {"type": "web_search"}]})
    assert response.status_code == 200
    assert response.headers["x-claude-tools-not-offered"] == "web_search,file_search"
    assert [t["name"] for t in response.json()["tools"]] == ["get_weather"]
    assert [t.name for t in proxy.runner.invocations[0].tools] == ["get_weather"]


@pytest.mark.parametrize("choice", [{"type": "web_search_preview"},
                                    {"type": "mcp", "server_label": "x"}])
def test_a_tool_choice_forcing_a_hosted_tool_is_a_400(scripted, choice):
    proxy = scripted()
    response = post(proxy, {"model": "sonnet", "input": "x", "tools": [WEATHER],
                            "tool_choice": choice})
    assert response.status_code == 400
    assert response.json()["error"]["param"] == "tool_choice"
    assert proxy.runner.invocations == []


def test_results_answer_a_stored_response_with_only_function_call_outputs(scripted):
    """GitHub Copilot's follow-up: previous_response_id, and nothing but the outputs."""
    proxy = scripted(calls(Text("Let me see."), Call("get_weather", {"city": "Paris"})))
    first = proxy.client.responses.create(model="sonnet", input="Weather?", tools=[WEATHER])
    proxy.runner.script = lambda invocation: [Text("Sunny, it says."), Stop()]
    second = proxy.client.responses.create(
        model="sonnet", previous_response_id=first.id, tools=[WEATHER],
        input=[{"type": "function_call_output", "call_id": first.output[1].call_id,
                "output": "sunny"}])
    assert second.output_text == "Sunny, it says." and second.previous_response_id == first.id
    invocation = proxy.runner.invocations[-1]
    assert [(t.role, [json.loads(b)["type"] for b in t.blocks]) for t in invocation.history] == \
        [("user", ["text"]), ("assistant", ["text", "tool_use"])]
    assert [json.loads(r) for r in invocation.tool_results] == [
        {"type": "tool_result", "tool_use_id": first.output[1].call_id, "content": "sunny"}]
    assert invocation.blocks == ()


def test_an_output_without_its_call_is_a_400_naming_it(scripted):
    proxy = scripted()
    response = post(proxy, {"model": "sonnet", "input": [
        {"role": "user", "content": "x"},
        {"type": "function_call_output", "call_id": "call_9", "output": "?"}]})
    assert response.status_code == 400
    assert response.json()["error"]["param"] == "input[1].call_id"
    response = post(proxy, {"model": "sonnet", "tools": [WEATHER], "input": [
        {"role": "user", "content": "x"},
        {"type": "function_call", "call_id": "call_1", "name": "get_weather",
         "arguments": "{}"},
        {"role": "user", "content": "and?"}]})
    assert response.status_code == 400
    assert response.json()["error"]["param"] == "input[1]"


# ---------------------------------------------------------------------------- endings

def test_max_output_tokens_is_response_incomplete(scripted):
    proxy = scripted(lambda invocation: [Text("Once upon a"), Stop("max_tokens")])
    result = proxy.client.responses.create(model="sonnet", input="Story.", max_output_tokens=16)
    assert result.status == "incomplete"
    assert result.incomplete_details.reason == "max_output_tokens"
    assert result.output[0].status == "incomplete" and result.output_text == "Once upon a"
    assert proxy.runner.invocations[0].max_output_tokens == 16
    events = events_of(post(proxy, {"model": "sonnet", "input": "Story.",
                                    "max_output_tokens": 16, "stream": True}))
    assert events[-1]["type"] == "response.incomplete"
    assert events[-1]["response"]["incomplete_details"] == {"reason": "max_output_tokens"}


def test_a_failure_before_the_first_event_is_a_real_status(scripted):
    proxy = scripted(lambda invocation: [Crash()])
    for stream in (False, True):
        response = post(proxy, {"model": "sonnet", "input": "x", "stream": stream})
        assert response.status_code == 502
        assert response.json()["error"]["code"] == "claude_cli_crashed"
    with pytest.raises(openai.APIStatusError) as caught:
        proxy.client.responses.create(model="sonnet", input="x")
    assert caught.value.status_code == 502


def test_a_failure_after_the_first_event_is_response_failed_then_the_end(scripted):
    proxy = scripted(lambda invocation: [Text("Half an ans"), Crash()])
    response = post(proxy, {"model": "sonnet", "input": "x", "stream": True})
    assert response.status_code == 200
    events = events_of(response)
    assert events[-1]["type"] == "response.failed"
    failed = events[-1]["response"]
    assert failed["status"] == "failed" and failed["error"]["code"] == "server_error"
    assert "claude_cli_crashed" in failed["error"]["message"]
    assert failed["output"][0]["status"] == "incomplete"
    assert proxy.client.responses.retrieve(failed["id"]).status == "failed"


def test_structured_output_through_text_format(scripted):
    class Answer(pydantic.BaseModel):
        city: str
        degrees: int

    proxy = scripted(lambda invocation: [Structured({"city": "Paris", "degrees": 21}), Stop()])
    parsed = proxy.client.responses.parse(model="sonnet", input="Weather?", text_format=Answer)
    assert parsed.output_parsed == Answer(city="Paris", degrees=21)
    schema = json.loads(proxy.runner.invocations[0].json_schema)
    assert schema["properties"]["degrees"] == {"title": "Degrees", "type": "integer"}
    result = proxy.client.responses.create(model="sonnet", input="x",
                                           text={"format": {"type": "json_object"}})
    assert json.loads(result.output_text) == {"city": "Paris", "degrees": 21}


# ---------------------------------------------------------------------------- stored responses

def test_previous_response_id_continues_the_stored_conversation(scripted):
    proxy = scripted()
    first = proxy.client.responses.create(model="sonnet", input="My name is Ada.",
                                          instructions="Be kind.")
    second = proxy.client.responses.create(model="sonnet", input="What is my name?",
                                           previous_response_id=first.id,
                                           instructions="Be brief.")
    invocation = proxy.runner.invocations[-1]
    assert invocation.system_prompt == "Be brief."   # instructions are not carried over
    assert [(t.role, [json.loads(b)["text"] for b in t.blocks]) for t in invocation.history] \
        == [("user", ["My name is Ada."]), ("assistant", ["Hello from the fake CLI."])]
    assert invocation.blocks == ("What is my name?",)
    third = proxy.client.responses.create(model="sonnet", input="And now?",
                                          previous_response_id=second.id)
    assert len(proxy.runner.invocations[-1].history) == 4 and third.status == "completed"


def test_unknown_ids_are_404s_in_openais_envelope(scripted):
    proxy = scripted()
    response = post(proxy, {"model": "sonnet", "input": "x", "previous_response_id": "resp_no"})
    assert response.status_code == 404
    assert response.json()["error"] == {
        "message": "Previous response with id 'resp_no' not found.",
        "type": "invalid_request_error", "param": "previous_response_id",
        "code": "previous_response_not_found"}
    for method, path in (("GET", "/responses/resp_no"), ("DELETE", "/responses/resp_no"),
                         ("GET", "/responses/resp_no/input_items")):
        answer = requests.request(method, proxy.base_url + path, timeout=10)
        assert answer.status_code == 404 and answer.json()["error"]["code"] == \
            "response_not_found"
    assert proxy.runner.invocations == []


def test_store_false_keeps_nothing(scripted):
    proxy = scripted()
    result = proxy.client.responses.create(model="sonnet", input="x", store=False)
    with pytest.raises(openai.NotFoundError):
        proxy.client.responses.retrieve(result.id)
    response = post(proxy, {"model": "sonnet", "input": "y", "previous_response_id": result.id})
    assert response.status_code == 404


def test_responses_are_private_to_their_api_key(scripted):
    proxy = scripted(settings=Settings(api_keys=["alice=sk-alice", "bob=sk-bob"]),
                     api_key="sk-alice")
    mine = proxy.client.responses.create(model="sonnet", input="x")
    bob = openai.OpenAI(base_url=proxy.base_url, api_key="sk-bob", max_retries=0)
    with pytest.raises(openai.NotFoundError):
        bob.responses.retrieve(mine.id)
    with pytest.raises(openai.NotFoundError):
        bob.responses.create(model="sonnet", input="y", previous_response_id=mine.id)
    with pytest.raises(openai.NotFoundError):
        bob.responses.delete(mine.id)
    assert proxy.client.responses.retrieve(mine.id).id == mine.id


def test_delete_then_gone(scripted):
    proxy = scripted()
    result = proxy.client.responses.create(model="sonnet", input="x")
    response = requests.delete(proxy.base_url + f"/responses/{result.id}", timeout=10)
    assert response.json() == {"id": result.id, "object": "response", "deleted": True}
    with pytest.raises(openai.NotFoundError):
        proxy.client.responses.retrieve(result.id)
    assert requests.delete(proxy.base_url + f"/responses/{result.id}",
                           timeout=10).status_code == 404


def test_input_items_are_listed_with_ids_and_pages(scripted):
    proxy = scripted()
    items = [{"role": "developer", "content": "Rules."},
             {"type": "message", "role": "user", "id": "msg_given",
              "content": [{"type": "input_text", "text": "one"}]},
             {"role": "assistant", "content": "two"},
             {"role": "user", "content": [{"type": "input_text", "text": "three"}]}]
    result = proxy.client.responses.create(model="sonnet", input=items)
    listed = proxy.client.responses.input_items.list(result.id, order="asc")
    assert [(i.type, i.role) for i in listed.data] == [
        ("message", "developer"), ("message", "user"), ("message", "assistant"),
        ("message", "user")]
    assert listed.data[1].id == "msg_given" and all(i.id for i in listed.data)
    assert listed.data[0].content[0].text == "Rules." and listed.data[2].content[0].text == "two"
    newest_first = proxy.client.responses.input_items.list(result.id, limit=2)
    assert [i.id for i in newest_first.data] == [listed.data[3].id, listed.data[2].id]
    assert newest_first.has_more and newest_first.first_id == listed.data[3].id
    rest = proxy.client.responses.input_items.list(result.id, limit=2,
                                                   after=newest_first.last_id)
    assert [i.id for i in rest.data] == [listed.data[1].id, listed.data[0].id]
    assert not rest.has_more
    for query, param in (("limit=0", "limit"), ("limit=x", "limit"), ("order=up", "order"),
                         ("after=nope", "after")):
        answer = requests.get(proxy.base_url + f"/responses/{result.id}/input_items?{query}",
                              timeout=10)
        assert answer.status_code == 400 and answer.json()["error"]["param"] == param


def test_an_item_reference_names_a_stored_item(scripted):
    proxy = scripted()
    first = proxy.client.responses.create(model="sonnet", input="Remember this.")
    proxy.client.responses.create(model="sonnet", input=[
        {"type": "item_reference", "id": first.output[0].id},
        {"role": "user", "content": "Again?"}])
    invocation = proxy.runner.invocations[-1]
    assert [t.role for t in invocation.history] == []   # a leading assistant turn: transcript
    assert "Hello from the fake CLI." in "".join(invocation.blocks)
    response = post(proxy, {"model": "sonnet", "input": [{"type": "item_reference", "id": "x"}]})
    assert response.status_code == 404 and response.json()["error"]["param"] == "input[0].id"


def test_a_client_that_leaves_mid_stream_leaves_a_cancelled_response(scripted):
    proxy = scripted(lambda invocation: [Text("first words", pieces=1)])
    _held_open(proxy)
    with requests.post(proxy.base_url + "/responses", stream=True, timeout=30,
                       json={"model": "sonnet", "input": "x", "stream": True}) as response:
        first = next(response.iter_lines(delimiter=b"\n\n"))
        created = json.loads(first.split(b"data: ", 1)[1])
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:
        if proxy.client.responses.retrieve(created["response"]["id"]).status == "cancelled":
            break
        time.sleep(0.1)
    assert proxy.client.responses.retrieve(created["response"]["id"]).status == "cancelled"
    assert all(p.closed for p in proxy.runner.processes)


# ---------------------------------------------------------------------------- errors

@pytest.mark.parametrize("body, param, code", [
    ({"input": "x"}, "model", "missing_required_parameter"),
    ({"model": "sonnet"}, "input", "missing_required_parameter"),
    ({"model": "nope", "input": "x"}, "model", "model_not_found"),
    ({"model": "sonnet", "input": "x", "max_output_tokens": 15}, "max_output_tokens",
     "integer_below_min_value"),
    ({"model": "sonnet", "input": "x", "background": True}, "background",
     "unsupported_parameter"),
    ({"model": "sonnet", "input": "x", "conversation": "conv_1"}, "conversation",
     "unsupported_parameter"),
    ({"model": "sonnet", "input": "x", "include": ["message.output_text.logprobs"]},
     "include", "unsupported_parameter"),
    ({"model": "sonnet", "input": [{"role": "user", "content": [
        {"type": "input_text", "text": "see"},
        {"type": "input_image", "detail": "auto", "image_url": "ftp://x/y.png"}]}]},
     "input[0].content[1].image_url", "invalid_image_url"),
    ({"model": "sonnet", "input": [{"role": "user", "content": [
        {"type": "input_image", "detail": "auto", "file_id": "file_1"}]}]},
     "input[0].content[0].file_id", "unsupported_content"),
    ({"model": "sonnet", "input": "x", "tools": [WEATHER, WEATHER]}, "tools[1].name",
     "duplicate_tool_name"),
    ({"model": "sonnet", "input": "x", "tools": [{**WEATHER, "parameters": {"type": "array"}}]},
     "tools[0].parameters", "invalid_function_parameters"),
    ({"model": "sonnet", "input": "x", "tools": [AGENTS, {**WEATHER, "name": "a.b"}]},
     "tools[1].name", "invalid_function_name"),
    ({"model": "sonnet", "input": "x", "tools": [WEATHER],
      "tool_choice": {"type": "function", "name": "nope"}}, "tool_choice", "tool_not_found"),
    ({"model": "sonnet", "input": "x", "text": {"format": {
        "type": "json_schema", "name": "a", "schema": {"type": "nonsense"}}}},
     "text.format.schema", "invalid_response_format"),
    ({"model": "sonnet", "input": [{"type": "message", "role": "user",
                                    "content": [{"type": "output_text", "text": "x",
                                                 "annotations": [], "logprobs": []}]}]},
     "input[0]", None),
])
def test_bad_requests_name_the_responses_parameter(scripted, body, param, code):
    proxy = scripted()
    response = post(proxy, body)
    assert response.status_code in (400, 404), response.text
    error = response.json()["error"]
    assert error["param"] is not None and error["param"].startswith(param), error
    assert code is None or error["code"] == code, error
    assert "messages" not in error["message"] and "messages" not in error["param"], error
    assert proxy.runner.invocations == []


def test_concurrent_follow_ups_each_find_their_previous_response(scripted):
    """The id is stored before it is sent: a follow-up sent the moment the answer arrives
    always finds it (LiteLLM's failure, BerriAI/litellm#12364)."""
    proxy = scripted()
    failures: list[str] = []

    def chain() -> None:
        try:
            previous = None
            for turn in range(4):
                with proxy.client.responses.stream(model="sonnet", input=f"turn {turn}",
                                                   previous_response_id=previous) as stream:
                    previous = stream.get_final_response().id
        except Exception as exc:  # noqa: BLE001 - reported below
            failures.append(repr(exc))

    threads = [threading.Thread(target=chain) for _ in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(60)
    assert failures == []
    assert max(len(i.history) for i in proxy.runner.invocations) == 6


def _held_open(proxy):
    """Makes the scripted process say its words, then wait (no result line) until closed."""
    original = proxy.runner.start

    def start(invocation):
        process = original(invocation)
        process._lines = process._lines[:-1]
        read = process.read_line

        def read_line(timeout):
            if process._next >= len(process._lines) and not process.closed:
                time.sleep(min(timeout, 0.05))
                return None
            return read(timeout)

        process.read_line = read_line
        return process

    proxy.runner.start = start


def test_a_silent_stream_gets_sse_comments_as_heartbeats(scripted):
    proxy = scripted(lambda invocation: [Text("thinking...", pieces=1)],
                     settings=Settings(heartbeat_interval=0.2))
    _held_open(proxy)
    with requests.post(proxy.base_url + "/responses", stream=True, timeout=30,
                       json={"model": "sonnet", "input": "x", "stream": True}) as response:
        seen = b""
        for chunk in response.iter_content(chunk_size=None):
            seen += chunk
            if seen.count(b": keep-alive\n\n") >= 2:
                break
    assert b"event: response.output_text.delta" in seen
    assert seen.count(b": keep-alive\n\n") >= 2   # comments: no event outside the spec


def test_content_is_logged_only_when_asked(scripted, caplog):
    import logging
    caplog.set_level(logging.INFO, logger="claude_max_api.access")
    quiet = scripted()
    quiet.client.responses.create(model="sonnet", input="secret question")
    loud = scripted(settings=Settings(log_content=True))
    loud.client.responses.create(model="sonnet", input="open question")
    lines = [r.getMessage() for r in caplog.records if "/v1/responses" in r.getMessage()]
    assert not any("secret question" in line or "Hello from" in line for line in lines[:1])
    assert any("open question" in line and "Hello from the fake CLI." in line for line in lines)


def test_readiness_reports_the_store(scripted):
    proxy = scripted(settings=Settings(responses_max=5))
    proxy.client.responses.create(model="sonnet", input="x")
    proxy.client.responses.create(model="sonnet", input="y", store=False)
    state = requests.get(proxy.url + "/health/ready", timeout=10).json()["responses"]
    assert (state["stored"], state["max"]) == (1, 5) and 0 < state["bytes"] < state["memory_budget"]
    assert state["evictions"] == {"count": 0, "memory": 0, "expired": 0}


def test_a_response_still_streaming_is_in_progress_and_cannot_be_continued_yet(scripted):
    proxy = scripted(lambda invocation: [Text("first words", pieces=1)])
    _held_open(proxy)
    with requests.post(proxy.base_url + "/responses", stream=True, timeout=30,
                       json={"model": "sonnet", "input": "x", "stream": True}) as response:
        events = response.iter_lines(delimiter=b"\n\n")   # kept: its end would close the body
        first = next(events)
        response_id = json.loads(first.split(b"data: ", 1)[1])["response"]["id"]
        stored = proxy.client.responses.retrieve(response_id)
        assert (stored.status, stored.output) == ("in_progress", [])
        follow_up = post(proxy, {"model": "sonnet", "input": "y",
                                 "previous_response_id": response_id})
        assert follow_up.status_code == 400
        assert follow_up.json()["error"]["code"] == "previous_response_in_progress"
