"""Named API keys, per-key limits and the limiter that enforces them (with a fake clock)."""

from __future__ import annotations

import threading

import pytest

from proxy.errors import ProxyError
from proxy.http.middleware.auth import KeyRing
from proxy.http.middleware.key_limits import KeyLimiter, duration
from proxy.keys import KeyLimit, key_limits, masked, named_keys, split_key
from proxy.settings import Settings


@pytest.mark.parametrize("entry, expected", [
    ("alice=s3cret", ("alice", "s3cret")),
    (" ci.bot-2 = tok ", ("ci.bot-2", "tok")),
    ("bare-key", (None, "bare-key")),
    ("YWJjZA==", (None, "YWJjZA==")),            # base64 padding is not a name
    ("YWJjZGU=", (None, "YWJjZGU=")),
    ("=secret", (None, "=secret")),
    ("bad name=secret", (None, "bad name=secret")),
    ("a" * 65 + "=x", (None, "a" * 65 + "=x")),
])
def test_split_key(entry, expected):
    assert split_key(entry) == expected


def test_names_in_order_and_repeats_counted_once():
    keys = named_keys(["k1-secret", "alice=a-secret", "k2-secret", "k1-secret", "a-secret", ""])
    assert [(k.name, k.secret) for k in keys] == [
        ("key-1", "k1-secret"), ("alice", "a-secret"), ("key-2", "k2-secret")]
    assert "secret" not in repr(keys)


@pytest.mark.parametrize("entries, message", [
    (["alice=A", "alice=B"], "two different API keys are named 'alice'"),
    (["alice=A", "bob=A"], "'alice' and 'bob' are the same key"),
])
def test_ambiguous_names_are_refused(entries, message):
    with pytest.raises(ValueError, match=message):
        named_keys(entries)


def test_config_shows_names_never_secrets():
    settings = Settings(api_keys=["alice=s3cret", "bare"])
    assert settings.public_dict()["api_keys"] == ["alice=***", "***"]
    assert masked("x=y") == "x=***"


def test_the_key_ring_names_the_key_it_matches():
    ring = KeyRing(["alice=A", "B"])
    assert ring.names == ["alice", "key-1"]
    assert (ring.identify("A"), ring.identify("B"), ring.identify("alice=A")) == ("alice", "key-1", None)
    assert ring.accepts("A") and not ring.accepts("C")


def test_limits_defaults_and_overrides():
    limits = key_limits(["alice", "bob"], 10, 2, ["bob:rpm=3", "alice:concurrent=0"])
    assert limits == {"alice": KeyLimit(10, 0), "bob": KeyLimit(3, 2)}


def test_limits_from_the_environment_variable():
    from proxy.settings import load_settings
    settings = load_settings(environ={"CLAUDE_MAX_API_KEY": "alice=a1,bob=b2",
                                      "CLAUDE_MAX_API_KEY_LIMITS": "alice:rpm=5,concurrent=1,bob:rpm=2"})
    assert key_limits(["alice", "bob"], overrides=settings.key_limits) == {
        "alice": KeyLimit(5, 1), "bob": KeyLimit(2, 0)}


@pytest.mark.parametrize("names, kwargs, message", [
    (["alice"], {"overrides": ["carol:rpm=1"]}, "not a configured API key"),
    (["alice"], {"overrides": ["alice"]}, "expected NAME:rpm=N"),
    (["alice"], {"overrides": ["alice:rpm=x"]}, "not a whole number"),
    (["alice"], {"overrides": ["alice:burst=3"]}, "is not rpm=N"),
    (["alice"], {"overrides": ["alice:rpm=-1"]}, "0 \\(none\\) or more"),
    (["alice"], {"requests_per_minute": -1}, "0 \\(no limit\\) or more"),
    ([], {"requests_per_minute": 5}, "need API keys"),
])
def test_bad_limits_are_refused(names, kwargs, message):
    with pytest.raises(ValueError, match=message):
        key_limits(names, **kwargs)


@pytest.mark.parametrize("seconds, text", [(0.02, "20ms"), (1, "1s"), (1.2, "2s"), (59.5, "1m0s"),
                                           (360, "6m0s"), (61, "1m1s")])
def test_openai_duration_format(seconds, text):
    assert duration(seconds) == text


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def test_requests_per_minute_slide():
    clock = Clock()
    limiter = KeyLimiter({"alice": KeyLimit(requests_per_minute=2), "bob": KeyLimit()}, clock)
    first = limiter.admit("alice")
    assert first.headers() == {"x-ratelimit-limit-requests": "2",
                               "x-ratelimit-remaining-requests": "1",
                               "x-ratelimit-reset-requests": "1m0s"}
    limiter.release(first)
    clock.now += 20
    limiter.release(limiter.admit("alice"))
    with pytest.raises(ProxyError) as refused:
        limiter.admit("alice")
    error = refused.value
    assert (error.status, error.code, error.type) == (429, "rate_limit_exceeded", "requests")
    assert error.response_headers()["Retry-After"] == "40"     # when the first one leaves
    assert error.response_headers()["x-ratelimit-remaining-requests"] == "0"
    assert "Limit 2, Used 2" in error.message
    assert limiter.admit("bob").headers() == {}                 # other keys are not affected
    clock.now += 40
    assert limiter.admit("alice").remaining == 0
    assert limiter.stats()["alice"]["rejected"] == {"requests_per_minute": 1, "concurrent": 0}


def test_concurrent_requests_and_release_once():
    limiter = KeyLimiter({"alice": KeyLimit(concurrent=1)})
    held = limiter.admit("alice")
    with pytest.raises(ProxyError) as refused:
        limiter.admit("alice")
    assert refused.value.response_headers()["Retry-After"] == "1"
    limiter.release(held)
    limiter.release(held)                                       # a second release is nothing
    assert limiter.stats()["alice"]["active"] == 0
    limiter.release(limiter.admit("alice"))


def test_the_limits_hold_under_threads():
    limiter = KeyLimiter({"alice": KeyLimit(requests_per_minute=50, concurrent=5)})
    admitted, refused, peak, active = [], [], [0], [0]
    lock = threading.Lock()
    barrier = threading.Barrier(20)

    def client() -> None:
        barrier.wait()
        for _ in range(10):
            try:
                admission = limiter.admit("alice")
            except ProxyError:
                with lock:
                    refused.append(1)
                continue
            with lock:
                admitted.append(1)
                active[0] += 1
                peak[0] = max(peak[0], active[0])
            with lock:
                active[0] -= 1
            limiter.release(admission)

    threads = [threading.Thread(target=client) for _ in range(20)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert len(admitted) == 50 and len(refused) == 150
    assert peak[0] <= 5 and limiter.stats()["alice"]["active"] == 0
