"""CLI failures -> OpenAI errors: the mapping table of proxy/claude/failures.py."""

from __future__ import annotations

import pytest

from proxy.claude import failures


def result(text: str, **fields) -> dict:
    return {"type": "result", "subtype": "success", "is_error": True, "result": text, **fields}


@pytest.mark.parametrize("res, status, code", [
    (result("Not logged in · Please run /login"), 503, "claude_not_logged_in"),
    (result("Failed to authenticate. API Error: 401 x", api_error_status=401,
            api_error_type="authentication_error"), 503, "upstream_authentication_failed"),
    (result("API Error: Request rejected (429)", api_error_status=429), 429,
     "rate_limit_exceeded"),
    (result("API Error: Repeated 529 Overloaded errors.", api_error_status=529), 503,
     "upstream_overloaded"),
    (result("API Error: 500 boom. If it persists, check your inference gateway (127.0.0.1:5).",
            api_error_status=500), 502, "upstream_error"),
    (result("API Error: Connection refused (ECONNREFUSED)", api_error="connection_failed"), 502,
     "upstream_unreachable"),
    (result("Prompt is too long", api_error_status=400), 400, "context_length_exceeded"),
    # Texts as CLI 2.1.332 prints them (fixtures/cassettes/billing_*, organization_disabled).
    (result("API Error: 400 Third-party apps now draw from your extra usage, not your plan "
            "limits.", api_error_status=400), 429, "insufficient_quota"),
    (result("Credit balance is too low", api_error_status=400), 429, "insufficient_quota"),
    (result("API Error: 400 This organization has been disabled.", api_error_status=400), 503,
     "upstream_account_disabled"),
    (result("You've hit your 5-hour limit · resets 3:51am (UTC)", api_error_status=429,
            api_error="usage_limit_reached"), 429, "usage_limit_reached"),
    (result("API Error: 400 messages.0: bad", api_error_status=400), 502, "upstream_error"),
    ({"type": "result", "subtype": "error_max_turns", "is_error": True,
      "errors": ["Reached maximum number of turns (1)"]}, 502, "claude_cli_error"),
])
def test_result_classification(res, status, code):
    error = failures.from_result(res)
    assert (error.status, error.code) == (status, code)
    assert "inference gateway" not in error.message


def test_retry_after_comes_from_the_clis_last_retry_wait():
    error = failures.from_result(result("429", api_error_status=429),
                                 {"subtype": "api_retry", "retry_delay_ms": 2300})
    assert error.response_headers()["Retry-After"] == "2"


def test_exit_without_result():
    assert failures.from_exit(1, "Error: bad flag\n", saw_output=False, garbage=0).code == \
        "claude_cli_crashed"
    assert "bad flag" in failures.from_exit(1, "Error: bad flag\n", False, 0).message
    assert failures.from_exit(0, "", saw_output=False, garbage=3).code == "claude_cli_bad_output"


def test_a_plan_limit_retries_after_its_reset():
    limit = result("You've hit your 5-hour limit", api_error_status=429,
                   api_error="usage_limit_reached")
    info = {"status": "rejected", "resetsAt": 1_003_600, "rateLimitType": "five_hour"}
    error = failures.from_result(limit, None, info, now=lambda: 1_000_000.0)
    assert (error.status, error.type) == (429, "rate_limit_error")
    assert error.response_headers()["Retry-After"] == "3600"
    # A reset already past, or none reported: no Retry-After rather than a wrong one.
    assert failures.from_result(limit, None, info, now=lambda: 2e6).retry_after is None
    assert failures.from_result(limit).retry_after is None


def test_a_rejected_rate_limit_event_marks_a_plain_429_as_the_plan_limit():
    error = failures.from_result(result("API Error: Request rejected (429)", api_error_status=429),
                                 None, {"status": "rejected", "resetsAt": 50}, now=lambda: 20.0)
    assert (error.code, error.retry_after) == ("usage_limit_reached", 30)


def test_a_short_term_429_is_not_the_plan_limit_even_under_a_subscription():
    # Measured: a 429 without the unified headers gets {"status":"rejected"} with no window or
    # reset, and the CLI itself says "not your usage limit".
    error = failures.from_result(
        result("API Error: Server is temporarily limiting requests (not your usage limit)",
               api_error_status=429), None, {"status": "rejected", "isUsingOverage": False})
    assert (error.status, error.code) == (429, "rate_limit_exceeded")


def test_billing_refusals_are_openais_insufficient_quota_without_retry_after():
    error = failures.from_result(result("Credit balance is too low", api_error_status=400))
    assert (error.type, error.code, error.retry_after) == (
        "insufficient_quota", "insufficient_quota", None)
