"""instructor drives a claude-max-api server through the named flows, one after the other, and
prints each flow's outcome as JSON, `{flow: outcome}`, on stdout
(tests/clients/test_instructor.py checks it). Runs in instructor's own venv.

    BASE_URL=http://127.0.0.1:3456/v1 API_KEY=... python instructor_check.py FLOW...
"""

from __future__ import annotations

import json
import os
import sys

import httpx2
import instructor
import openai
from pydantic import BaseModel


class UserInfo(BaseModel):
    name: str
    age: int


sent: list[dict] = []   # the request bodies instructor sent


def _keep(request: httpx2.Request) -> None:
    if request.url.path.endswith("/chat/completions"):
        sent.append(json.loads(request.content))


def client(mode: instructor.Mode) -> instructor.Instructor:
    http = httpx2.Client(event_hooks={"request": [_keep]}, timeout=60)
    return instructor.from_openai(openai.OpenAI(base_url=os.environ["BASE_URL"],
                                                api_key=os.environ["API_KEY"], max_retries=0,
                                                http_client=http), mode=mode)


def extract(mode: instructor.Mode, prompt: str) -> dict:
    user, completion = client(mode).chat.completions.create_with_completion(
        model="claude-sonnet-4", response_model=UserInfo, max_retries=0,
        messages=[{"role": "user", "content": prompt}])
    choice = completion.choices[0]
    return {"user": user.model_dump(), "finish_reason": choice.finish_reason,
            "tool_calls": [c.function.name for c in choice.message.tool_calls or []],
            "usage": [completion.usage.prompt_tokens, completion.usage.completion_tokens]}


def partial(prompt: str) -> dict:
    snapshots = [p.model_dump() for p in client(instructor.Mode.TOOLS).chat.completions
                 .create_partial(model="claude-sonnet-4", response_model=UserInfo,
                                 max_retries=0, messages=[{"role": "user", "content": prompt}])]
    return {"user": snapshots[-1], "snapshots": len(snapshots)}


FLOWS = {
    "tools": lambda: extract(instructor.Mode.TOOLS, "Ada Lovelace was 36."),
    "tools_steered": lambda: extract(instructor.Mode.TOOLS, "Steer: Grace Hopper was 85."),
    "tools_never": lambda: extract(instructor.Mode.TOOLS, "Never: Barbara Liskov was born in 1939."),
    "tools_partial": lambda: partial("Partial: Alan Turing was 41."),
    "json": lambda: extract(instructor.Mode.JSON, "Structured: Marie Curie was 66."),
    "json_schema": lambda: extract(instructor.Mode.JSON_SCHEMA, "Structured: Marie Curie was 66."),
}

def run(name: str) -> dict:
    sent.clear()
    out: dict = {}
    try:
        out["result"] = FLOWS[name]()
    except Exception as exc:  # reported, and judged by the test
        cause = exc
        while getattr(cause, "__cause__", None) is not None and \
                not isinstance(cause, openai.APIStatusError):
            cause = cause.__cause__
        out["error"] = {"class": type(cause).__name__,
                        "status": getattr(cause, "status_code", None),
                        "body": getattr(cause, "body", None), "message": str(cause)[:500]}
    out["sent"] = [{k: v for k, v in body.items() if k != "messages"} for body in sent]
    return out


if __name__ == "__main__":
    print(json.dumps({"versions": {"instructor": instructor.__version__,
                                   "openai": openai.__version__},
                      **{name: run(name) for name in sys.argv[1:]}}))
