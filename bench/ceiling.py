"""The throughput ceiling: a bare waitress app that answers every request with fixed bytes.

It sends exactly what the proxy sends for the benchmark's request (captured from the proxy in
the same run): one body with Content-Length, or the same SSE events written one by one. Same
waitress, same thread count, same disconnect lookahead; no routing, validation or CLI work.
"""

from __future__ import annotations

import argparse

import waitress


def app_for(body: bytes, stream: bool):
    events = [event + b"\n\n" for event in body.split(b"\n\n") if event] if stream else [body]
    content_type = "text/event-stream" if stream else "application/json"

    def app(environ, start_response):
        environ["wsgi.input"].read(int(environ.get("CONTENT_LENGTH") or 0))
        headers = [("Content-Type", content_type)]
        if not stream:
            headers.append(("Content-Length", str(len(body))))
        start_response("200 OK", headers)
        return iter(events)

    return app


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--body-file", required=True)
    parser.add_argument("--stream", action="store_true")
    parser.add_argument("--threads", type=int, default=8)
    args = parser.parse_args()
    with open(args.body_file, "rb") as fh:
        body = fh.read()
    waitress.serve(app_for(body, args.stream), host="127.0.0.1", port=args.port,
                   threads=args.threads, channel_request_lookahead=1, connection_limit=1000,
                   ident="ceiling", _quiet=True)


if __name__ == "__main__":
    main()
