"""Retry-After parsing, backoff bounds, what is retried, and the token bucket."""

import random
from datetime import UTC, datetime, timedelta
from email.utils import format_datetime

import httpx
import pytest

from holovitals_sync.fhir.ratelimit import RateLimiter, limiter_for
from holovitals_sync.fhir.retry import (
    RetryPolicy,
    backoff_delay,
    parse_retry_after,
    retry_delay,
    should_retry_error,
    should_retry_status,
)

NOW = datetime(2026, 11, 26, 3, 30, tzinfo=UTC)


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ("3", 3.0),
        ("0.25", 0.25),
        (" 10 ", 10.0),
        ("-5", 0.0),
        (None, None),
        ("", None),
        ("soon", None),
    ],
)
def test_parse_retry_after_seconds(value: str | None, expected: float | None) -> None:
    assert parse_retry_after(value, now=NOW) == expected


def test_parse_retry_after_http_date() -> None:
    value = format_datetime(NOW + timedelta(seconds=42), usegmt=True)
    assert parse_retry_after(value, now=NOW) == pytest.approx(42)
    past = format_datetime(NOW - timedelta(seconds=42), usegmt=True)
    assert parse_retry_after(past, now=NOW) == 0.0


def test_retry_after_is_capped() -> None:
    policy = RetryPolicy(max_retry_after=5)
    response = httpx.Response(429, headers={"Retry-After": "600"})
    assert retry_delay(policy, 1, response) == 5
    assert retry_delay(policy, 1, httpx.Response(429, headers={"Retry-After": "2"})) == 2


def test_backoff_full_jitter_bounds() -> None:
    policy = RetryPolicy(base_delay=0.1, max_delay=1.0)
    rng = random.Random(7)
    for attempt in range(1, 10):
        ceiling = min(1.0, 0.1 * 2 ** (attempt - 1))
        delays = [backoff_delay(policy, attempt, rng) for _ in range(200)]
        assert all(0 <= d <= ceiling for d in delays)
        assert max(delays) > ceiling / 2  # jitter spreads over the whole range


@pytest.mark.parametrize("status", [408, 429, 502, 503, 504])
def test_retryable_statuses(status: int) -> None:
    assert should_retry_status(status, "GET")


@pytest.mark.parametrize("status", [400, 401, 403, 404, 409, 410, 412, 422, 500, 501])
def test_other_statuses_not_retried(status: int) -> None:
    assert not should_retry_status(status, "GET")


def test_non_idempotent_retried_only_when_not_processed() -> None:
    assert should_retry_status(429, "POST")
    assert should_retry_status(503, "POST")
    assert not should_retry_status(502, "POST")
    assert not should_retry_status(504, "PATCH")
    request = httpx.Request("POST", "https://x.example")
    assert should_retry_error(httpx.ConnectError("no", request=request), "POST")
    assert not should_retry_error(httpx.ReadTimeout("slow", request=request), "POST")
    assert should_retry_error(httpx.ReadTimeout("slow", request=request), "GET")
    assert should_retry_error(httpx.RemoteProtocolError("drop", request=request), "PUT")


def test_policy_validation() -> None:
    with pytest.raises(ValueError):
        RetryPolicy(max_attempts=0)


class FakeClock:
    def __init__(self) -> None:
        self.now = 0.0
        self.slept: list[float] = []

    def clock(self) -> float:
        return self.now

    def sleep(self, seconds: float) -> None:
        self.slept.append(seconds)
        self.now += seconds


def test_token_bucket_paces_after_burst() -> None:
    fake = FakeClock()
    limiter = RateLimiter(60, burst=2, clock=fake.clock, sleep=fake.sleep)  # 1 per second
    for _ in range(5):
        limiter.acquire()
    assert fake.now == pytest.approx(3.0)  # two free, then one per second


def test_token_bucket_refills() -> None:
    fake = FakeClock()
    limiter = RateLimiter(120, burst=1, clock=fake.clock, sleep=fake.sleep)
    assert limiter.acquire() == 0
    fake.now += 10
    assert limiter.acquire() == 0


def test_limiter_shared_per_base_url() -> None:
    a = limiter_for("https://ecw.example/fhir/r4/P1/", 250)
    b = limiter_for("https://ecw.example/fhir/r4/P1", 250)
    assert a is b
    assert limiter_for("https://ecw.example/fhir/r4/P2", 250) is not a
    assert limiter_for("https://x.example", None) is None
