"""CLI failures -> OpenAI errors with an honest status and a stable `code`.

Measured with CLI 2.1.332 against the stand-in upstream: a failed run exits 1 after a
`result` line with `is_error: true` (its `subtype` still says "success") and, for API errors,
`api_error_status`. The table (also in the README):

| what happened                                  | status | code                            |
|------------------------------------------------|--------|---------------------------------|
| CLI not logged in ("Not logged in")            | 503    | claude_not_logged_in            |
| upstream 401/403 (expired or revoked login)    | 503    | upstream_authentication_failed  |
| plan usage limit (5-hour, weekly; Retry-After  | 429    | usage_limit_reached             |
|   until the reset the CLI reports)             |        |                                 |
| upstream 429 (Retry-After from the CLI's wait) | 429    | rate_limit_exceeded             |
| billing: extra usage or credits needed         | 429    | insufficient_quota (as OpenAI)  |
| the account's organization is disabled         | 503    | upstream_account_disabled       |
| upstream 529 / overloaded                      | 503    | upstream_overloaded             |
| prompt too long                                | 400    | context_length_exceeded         |
| other upstream 4xx/5xx                         | 502    | upstream_error                  |
| upstream unreachable                           | 502    | upstream_unreachable            |
| CLI ended without a result, or printed garbage | 502    | claude_cli_crashed / claude_cli_bad_output |
| CLI missing                                    | 503    | claude_cli_not_found (raised by the runner) |
| time limit                                     | 504    | timeout                         |

Login problems are 503, not 401: the proxy's own 401 means the client's key to the proxy is
wrong, and a client must be able to tell the two apart.
"""

from __future__ import annotations

import re
import time
from typing import Any, Callable

from proxy.claude.rate_limit import is_plan_refusal
from proxy.errors import ProxyError

_GATEWAY_HINT = re.compile(r"\s*If it persists, check your inference gateway \([^)]*\)\.?")


def _clean(text: str) -> str:
    # The CLI names the upstream's host:port in some texts; clients need not learn it.
    return _GATEWAY_HINT.sub("", text).strip()


# Anthropic's billing refusals (HTTP 400 with these texts, measured as the CLI prints them):
# the plan does not cover the request and paid usage is needed. OpenAI says the same thing
# with 429 `insufficient_quota`, which clients already know not to retry blindly.
_BILLING = re.compile(r"extra usage|credit balance|out of credits|spend limit|billing",
                      re.IGNORECASE)
_ACCOUNT_DISABLED = re.compile(r"(organization|account) (has been|is) disabled", re.IGNORECASE)


def from_result(result: dict[str, Any], last_retry: dict[str, Any] | None = None,
                rate_limit: dict[str, Any] | None = None,
                now: Callable[[], float] = time.time) -> ProxyError:
    """Classifies a `result` line with `is_error: true` (or an error subtype).

    `last_retry` is the run's last `api_retry` line, `rate_limit` the `rate_limit_info` of its
    last `rate_limit_event` (sent for subscription logins only).
    """
    text = result.get("result")
    if not isinstance(text, str) or not text:
        errors = result.get("errors")
        text = "; ".join(map(str, errors)) if isinstance(errors, list) and errors else \
            f"The Claude Code CLI reported `{result.get('subtype')}`."
    text = _clean(text)
    status = result.get("api_error_status")
    status = status if isinstance(status, int) else None
    error_type = result.get("api_error_type") or ""
    lowered = text.lower()

    if "not logged in" in lowered or "please run /login" in lowered:
        return ProxyError(503, "The Claude Code CLI on the server is not logged in. Run `claude` "
                               "and `/login` as the user that runs the proxy (or set "
                               "CLAUDE_CODE_OAUTH_TOKEN). CLI said: " + text,
                          code="claude_not_logged_in")
    if status in (401, 403) or error_type in ("authentication_error", "permission_error"):
        return ProxyError(503, "Claude rejected the server's login (" + text + "). Log in again "
                               "with `claude` and `/login` on the server.",
                          code="upstream_authentication_failed")
    # A short-term 429 (no unified headers) also gets a `rejected` rate_limit_event, without a
    # window or a reset (measured): only a plan refusal is `usage_limit_reached`.
    if result.get("api_error") == "usage_limit_reached" \
            or status == 429 and is_plan_refusal(rate_limit):
        return ProxyError(429, "The Claude plan's usage limit is reached: " + text,
                          type="rate_limit_error", code="usage_limit_reached",
                          retry_after=_until_reset(rate_limit, now))
    if status in (400, 402, 403, 429, None) and _BILLING.search(text):
        return ProxyError(429, "Claude refused the request for billing reasons: " + text,
                          type="insufficient_quota", code="insufficient_quota")
    if _ACCOUNT_DISABLED.search(text):
        return ProxyError(503, "Claude refused the server's account: " + text,
                          code="upstream_account_disabled")
    if status == 429 or error_type == "rate_limit_error":
        return ProxyError(429, text, type="rate_limit_error", code="rate_limit_exceeded",
                          retry_after=_retry_after(last_retry))
    if status == 529 or error_type == "overloaded_error" or "overloaded" in lowered:
        return ProxyError(503, text, code="upstream_overloaded", retry_after=_retry_after(last_retry))
    if "prompt is too long" in lowered or "context window" in lowered and status == 400:
        return ProxyError(400, text, param="messages", code="context_length_exceeded")
    if result.get("api_error") == "connection_failed" or "connection refused" in lowered \
            or "econnrefused" in lowered or "unable to connect" in lowered:
        return ProxyError(502, "Claude's API could not be reached from the server: " + text,
                          code="upstream_unreachable")
    if status is not None:
        return ProxyError(502, text, code="upstream_error")
    if result.get("subtype") not in (None, "success"):
        return ProxyError(502, text, code="claude_cli_error")
    return ProxyError(502, text, code="upstream_error")


def _until_reset(rate_limit: dict[str, Any] | None, now: Callable[[], float]) -> float | None:
    resets_at = (rate_limit or {}).get("resetsAt")
    if isinstance(resets_at, (int, float)) and not isinstance(resets_at, bool):
        left = resets_at - now()
        return left if left > 0 else None
    return None


def _retry_after(last_retry: dict[str, Any] | None) -> float | None:
    if last_retry and isinstance(last_retry.get("retry_delay_ms"), (int, float)):
        return max(1.0, last_retry["retry_delay_ms"] / 1000.0)
    return None


def from_exit(returncode: int | None, stderr: str, saw_output: bool, garbage: int) -> ProxyError:
    """The CLI ended without a result line."""
    detail = stderr.strip().splitlines()[-1][:500] if stderr.strip() else ""
    if garbage and not saw_output:
        return ProxyError(502, "The Claude Code CLI printed output the proxy cannot read"
                               + (f" ({detail})" if detail else "") + ".",
                          code="claude_cli_bad_output")
    if returncode is not None and returncode < 0:
        how = f"was ended by signal {-returncode}"
    elif returncode in (143, 137):
        how = f"was ended by signal {returncode - 128}"
    else:
        how = f"exited with code {returncode}"
    return ProxyError(502, f"The Claude Code CLI {how} without a result"
                           + (f": {detail}" if detail else "."),
                      code="claude_cli_crashed")


def timeout(kind: str, seconds: float) -> ProxyError:
    if kind == "idle":
        message = f"The Claude Code CLI produced no output for {seconds:g} s; the request was ended."
    else:
        message = f"The request took longer than the {seconds:g} s limit and was ended."
    return ProxyError(504, message, code="timeout")
