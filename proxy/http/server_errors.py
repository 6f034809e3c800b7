"""waitress's own refusals in OpenAI's error shape.

waitress answers some requests before the app sees them: headers over
`max_request_header_size` (431), a body over `max_request_body_size` (413, decided from
Content-Length before the body is read, or while a chunked body arrives), a malformed request
(400). By default those answers are plain text; a client expecting OpenAI's JSON would choke on
them. The channel below makes them `{"error": {...}}` like every other answer.
"""

from __future__ import annotations

import json

from waitress.channel import HTTPChannel
from waitress.server import BaseWSGIServer
from waitress.task import ErrorTask

_CODES = {400: "invalid_request", 413: "request_too_large", 431: "headers_too_large",
          500: "internal_error", 501: "not_implemented"}


def _message(status: int, adj: object, detail: str, body_limit: int | None) -> str:
    if status == 413:
        limit = body_limit if body_limit is not None else getattr(adj, "max_request_body_size")
        return f"The request body is larger than the {limit} bytes this server accepts."
    if status == 431:
        return (f"The request line and headers are larger than the "
                f"{getattr(adj, 'max_request_header_size')} bytes this server accepts.")
    if status >= 500:
        return "The server could not handle the request; see its log."
    return f"The HTTP request is malformed: {detail}."


class OpenAIErrorTask(ErrorTask):
    body_limit: int | None = None  # the app's limit, which waitress's backstop sits a bit above

    def execute(self) -> None:
        error = self.request.error
        status = int(error.code)
        body = json.dumps({"error": {
            "message": _message(status, self.channel.server.adj, str(error.body)[:200],
                                self.body_limit),
            "type": "invalid_request_error" if status < 500 else "server_error",
            "param": None, "code": _CODES.get(status)}}).encode("utf-8")
        self.status = f"{status} {error.reason}"
        self.response_headers.append(("Content-Type", "application/json"))
        self.set_close_on_finish()
        self.content_length = len(body)
        self.write(body)


class OpenAIErrorChannel(HTTPChannel):
    error_task_class = OpenAIErrorTask


def install(server: object, body_limit: int | None = None) -> None:
    """Makes every listening socket of a waitress server answer its errors as above."""
    task = type("OpenAIErrorTask", (OpenAIErrorTask,), {"body_limit": body_limit})
    channel = type("OpenAIErrorChannel", (OpenAIErrorChannel,), {"error_task_class": task})
    listeners = getattr(server, "map", None) or getattr(server, "_map", {})
    for dispatcher in list(listeners.values()):
        if isinstance(dispatcher, BaseWSGIServer):
            dispatcher.channel_class = channel
