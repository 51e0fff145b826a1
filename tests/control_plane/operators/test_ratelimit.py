"""The token bucket: a burst of ``rate``, then one request per 60/rate seconds."""

from __future__ import annotations

import pytest

from control_plane.operators.errors import RateLimited
from control_plane.operators.ratelimit import TokenBuckets


class Monotonic:
    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


def test_a_burst_of_rate_requests_passes_then_the_next_waits() -> None:
    clock = Monotonic()
    buckets = TokenBuckets(rate=60, clock=clock)
    for _ in range(60):
        buckets.take("client")

    with pytest.raises(RateLimited) as refused:
        buckets.take("client")

    assert refused.value.retry_after == 1
    assert refused.value.headers == {"Retry-After": "1"}
    assert refused.value.first


def test_only_the_first_refusal_of_a_burst_is_marked_first() -> None:
    clock = Monotonic()
    buckets = TokenBuckets(rate=1, clock=clock)
    buckets.take("client")
    firsts = []
    for _ in range(3):
        with pytest.raises(RateLimited) as refused:
            buckets.take("client")
        firsts.append(refused.value.first)

    assert firsts == [True, False, False]


def test_the_bucket_refills_with_time() -> None:
    clock = Monotonic()
    buckets = TokenBuckets(rate=2, clock=clock)
    buckets.take("client")
    buckets.take("client")
    with pytest.raises(RateLimited) as refused:
        buckets.take("client")
    assert refused.value.retry_after == 30

    clock.now += 30
    buckets.take("client")


def test_clients_have_buckets_of_their_own() -> None:
    buckets = TokenBuckets(rate=1, clock=Monotonic())
    buckets.take(("10.0.0.1", "op-a"))

    buckets.take(("10.0.0.1", "op-b"))
    buckets.take(("10.0.0.2", "op-a"))
    with pytest.raises(RateLimited):
        buckets.take(("10.0.0.1", "op-a"))


def test_many_quiet_clients_do_not_grow_memory_without_bound() -> None:
    clock = Monotonic()
    buckets = TokenBuckets(rate=10, clock=clock)
    for client in range(10_001):
        buckets.take(client)
    clock.now += 61
    buckets.take("late")

    assert len(buckets._buckets) < 10
