"""Property: for any CLI event stream, recorded or generated, the proxy's streamed answer and
its non-streamed answer to the same request are one completion in two encodings.

The real app is driven twice per example, `stream: true` (with the usage chunk) and not, by a
runner that plays the same stdout lines both times. Then:

* a finished stream's deltas joined are the non-streamed content, with the same finish_reason
  and the same usage (and, without a stop sequence, exactly the text blocks the CLI streamed
  and the token counts it reported);
* a stream refused before it began is the same HTTP error as the non-streamed answer;
* a stream that failed after it began ends with the error the non-streamed answer has (the
  one exception: an abandoned answer the CLI replaced with a different one, which a buffered
  answer can take and a stream, having sent the old text, cannot: the stream ends there with
  `upstream_stream_interrupted`, whatever the run does next);
* every answer passes the official schemas and the stream rules.
"""

from __future__ import annotations

import falcon.testing
import pytest
from hypothesis import event, given, note
from hypothesis import strategies as st

from proxy.app import create_app
from proxy.claude.events import STOP_REASONS
from proxy.settings import Settings
from tests.properties.budget import budget
from tests.properties.cli_streams import cli_runs
from tests.support.fidelity import official_problems
from tests.support.runners import LinesRunner, all_cassettes
from tests.support.stream_rules import check_stream

PATH = "/v1/chat/completions"
HEADERS = {"Host": "127.0.0.1"}
REQUEST = {"model": "claude-sonnet-4", "messages": [{"role": "user", "content": "hi"}]}
REPLACED = "upstream_stream_interrupted"
EXAMPLES = budget(300)


@pytest.fixture(scope="module")
def harness():
    runner = LinesRunner([])
    app = create_app(Settings(), runner)
    yield runner, falcon.testing.TestClient(app, headers=HEADERS)
    runner.close()


def _answer(client, body):
    result = client.simulate_post(PATH, json=body)
    problems = official_problems("POST", PATH, result.status_code,
                                 result.headers.get("content-type", ""), result.content,
                                 request_body=body)
    assert problems == [], problems
    return result


def both_ways(runner, client, lines, returncode, body=REQUEST):
    """(non-streamed result, streamed result, stream report or None) for the same lines."""
    runner.lines, runner.returncode = list(lines), returncode
    whole = _answer(client, body)
    streamed = _answer(client, {**body, "stream": True, "stream_options": {"include_usage": True}})
    report = None
    if streamed.status_code == 200:
        assert streamed.headers["content-type"].startswith("text/event-stream")
        report = check_stream(streamed.content, include_usage=True).assert_ok()
    return whole, streamed, report


def assert_equivalent(whole, streamed, report):
    if report is None:  # refused before the stream began: the same error both ways
        assert streamed.status_code == whole.status_code
        assert streamed.json["error"]["code"] == whole.json["error"]["code"]
        assert streamed.headers.get("retry-after") == whole.headers.get("retry-after")
        return None
    if report.error is not None:
        if report.error["code"] == REPLACED:
            return None  # the stream ended there; the buffered answer went on (either way)
        assert whole.status_code != 200, (report.error, whole.json)
        assert report.error["code"] == whole.json["error"]["code"]
        assert report.error["type"] == whole.json["error"]["type"]
        return None
    assert whole.status_code == 200, whole.json
    choice = whole.json["choices"][0]
    assert report.text == choice["message"]["content"]
    assert report.finish_reason == choice["finish_reason"]
    assert report.usage == whole.json["usage"]
    return whole.json


@EXAMPLES
@given(run=cli_runs(), stop=st.one_of(st.none(), st.text(min_size=1, max_size=3)))
def test_generated_streams_agree(harness, run, stop):
    runner, client = harness
    note("CLI stdout:\n" + "\n".join(run.lines) + f"\nexit {run.returncode}")
    body = dict(REQUEST, **({"stop": stop} if stop is not None else {}))
    whole, streamed, report = both_ways(runner, client, run.lines, run.returncode, body)
    completion = assert_equivalent(whole, streamed, report)
    event(f"{run.outcome}: {whole.status_code}, stream "
          f"{'refused' if report is None else 'failed' if report.error else 'finished'}")
    if stop is not None:
        return  # a stop sequence can end the answer before the run's own ending
    if run.outcome in ("api_error", "crash"):
        assert whole.status_code >= 400
        assert report is None or report.error is not None
    if run.outcome == "crash":
        assert whole.status_code == 502
    if completion is None:
        return
    # Without a stop sequence, the answer is exactly what the CLI said.
    assert run.outcome in ("success", "length")
    assert completion["choices"][0]["message"]["content"] == run.content
    assert completion["choices"][0]["finish_reason"] == STOP_REASONS[run.stop_reason]
    usage = completion["usage"]
    if run.outcome == "success":
        assert (usage["prompt_tokens"], usage["completion_tokens"]) == run.usage
    assert usage["total_tokens"] == usage["prompt_tokens"] + usage["completion_tokens"]


@pytest.mark.parametrize("cassette", all_cassettes(), ids=lambda c: c.name)
def test_recorded_streams_agree(harness, cassette):
    runner, client = harness
    whole, streamed, report = both_ways(runner, client, cassette.stdout,
                                        cassette.ending.returncode or 0)
    assert_equivalent(whole, streamed, report)
