"""Replayed runs feed the plan state like live ones (no CLI needed): the recorded 5-hour limit
shows in the refusal's headers, /metrics and /health/ready; a replayed plan never makes a
replay server unready."""

from __future__ import annotations

import openai
import pytest
from prometheus_client.parser import text_string_to_metric_families

from proxy.settings import Settings
from tests.replay.conftest import CASSETTES
from tests.support.http import call
from tests.support.servers import running_proxy

RESET = 4102444800  # what the usage_limit_five_hour cassette's upstream said


@pytest.fixture
def replay_server():
    with running_proxy(Settings(replay=str(CASSETTES))) as proxy:
        yield proxy


def test_a_replayed_plan_limit(replay_server):
    client = openai.OpenAI(base_url=replay_server.base_url, api_key="x", max_retries=0)
    assert call(replay_server.url, "GET", "/health/ready").json()["plan"]["status"] == "unknown"
    with pytest.raises(openai.RateLimitError) as caught:
        client.chat.completions.create(model="claude-sonnet-4", messages=[
            {"role": "user", "content": "Hello? (5-hour limit reached)"}])
    headers = caught.value.response.headers
    assert caught.value.code == "usage_limit_reached"
    assert (headers["x-claude-plan-status"], headers["x-claude-plan-limiting-window"],
            headers["x-claude-plan-reset"], headers["x-claude-plan-reset-5h"],
            headers["x-claude-plan-overage-in-use"]) == (
        "rejected", "five_hour", str(RESET), str(RESET), "false")

    ready = call(replay_server.url, "GET", "/health/ready")
    body = ready.json()
    assert ready.status == 200 and body["mode"] == "replay"      # a recording, not the plan
    assert body["plan"]["status"] == "rejected"
    assert body["plan"]["resets_at"] == "2100-01-01T00:00:00Z"
    assert body["plan"]["last_refusal"]["code"] == "usage_limit_reached"

    metrics = call(replay_server.url, "GET", "/metrics").body.decode()
    samples = {(s.name, tuple(sorted(s.labels.items()))): s.value
               for family in text_string_to_metric_families(metrics) for s in family.samples}
    assert samples[("claude_max_api_plan_status", (("status", "rejected"),))] == 1
    assert samples[("claude_max_api_plan_reset_seconds", (("window", "five_hour"),))] > 2e9
