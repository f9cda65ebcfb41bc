"""Pure pieces of the API: scopes, tokens, the Authorization header, key cache, rate limit."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable

import pytest

from services.api import auth
from services.api.ratelimit import RateLimiter, retry_after_header


class Clock:
    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


def test_scopes_imply_read_keep_a_fixed_order_and_reject_unknowns() -> None:
    assert auth.parse_scopes("admin,pii") == ["read", "pii", "admin"]
    assert auth.parse_scopes("") == ["read"]
    assert auth.parse_scopes(" read , pii ") == ["read", "pii"]
    with pytest.raises(ValueError, match="root"):
        auth.parse_scopes("read,root")


def test_tokens_are_random_and_only_their_hash_is_kept() -> None:
    a, prefix = auth.new_token()
    b, _ = auth.new_token()
    assert a != b and a.startswith("dlt_") and a.startswith(prefix) and len(a) >= 40
    assert auth.token_hash(a) == auth.token_hash(a) != auth.token_hash(b)
    assert len(auth.token_hash(a)) == 32


@pytest.mark.parametrize(
    ("header", "token"),
    [
        ("Bearer abc", "abc"),
        ("bearer  abc ", "abc"),
        (None, None),
        ("", None),
        ("Bearer", None),
        ("Basic abc", None),
        ("Bearer " + "x" * 201, None),
    ],
)
def test_bearer_header(header: str | None, token: str | None) -> None:
    assert auth.bearer_token(header) == token


def test_key_cache_expires_and_remembers_unknown_tokens() -> None:
    clock = Clock()
    cache = auth.KeyCache(5.0, clock=clock)
    key = auth.ApiKey(1, "ana", "dlt_abc", frozenset({"read"}))
    assert cache.get(b"a") == (False, None)
    cache.put(b"a", key)
    cache.put(b"unknown", None)
    assert cache.get(b"a") == (True, key) and cache.get(b"unknown") == (True, None)
    clock.now += 5.1
    assert cache.get(b"a") == (False, None)


def test_rate_limit_allows_a_burst_then_the_rate_per_key() -> None:
    clock = Clock()
    limiter = RateLimiter(2.0, 3, clock=clock)
    assert [limiter.acquire(1) for _ in range(3)] == [0.0, 0.0, 0.0]
    wait = limiter.acquire(1)
    assert wait == pytest.approx(0.5) and retry_after_header(wait) == "1"
    assert limiter.acquire(2) == 0.0  # another key has its own bucket
    clock.now += 0.5
    assert limiter.acquire(1) == 0.0
    assert RateLimiter(0, 1, clock=clock).acquire(1) == 0.0  # 0: no limit
    assert retry_after_header(2.01) == "3"


def test_every_route_refuses_unknown_query_parameters() -> None:
    """Each API route uses ApiRoute, the class that answers an unknown parameter with 400;
    a router added without it would silently ignore misspelt filters."""
    from fastapi.routing import APIRoute

    from services.api.deps import ApiRoute
    from services.api.main import create_app
    from services.common.config import Settings

    app = create_app(Settings(_env_file=None))  # type: ignore[call-arg]
    routers = [getattr(r, "original_router", None) for r in app.routes]
    routes = [r for router in routers if router for r in router.routes if isinstance(r, APIRoute)]
    assert len(routes) >= 10
    assert [r.path for r in routes if not isinstance(r, ApiRoute)] == []


def test_answer_cache_reuses_an_answer_for_its_ttl_and_forgets_it_on_clear() -> None:
    from services.api.cache import AnswerCache

    now = [100.0]
    cache: AnswerCache[int] = AnswerCache(5.0, clock=lambda: now[0])
    calls: list[str] = []

    def compute(value: int) -> Callable[[], int]:
        def run() -> int:
            calls.append("x")
            return value

        return run

    assert cache.get("a", compute(1)) == 1
    now[0] += 5.0
    assert cache.get("a", compute(2)) == 1  # within the TTL: reused
    assert cache.get("b", compute(3)) == 3  # another key
    now[0] += 5.01
    assert cache.get("a", compute(4)) == 4  # more than twice the TTL old: computed
    cache.clear()
    assert cache.get("a", compute(5)) == 5
    assert len(calls) == 4
    assert AnswerCache(0.0).get("a", compute(6)) == 6  # 0: never reused


class Held:
    """A computation that runs until released: its value, else the number of its calls."""

    def __init__(self, value: int | None = None) -> None:
        self.started, self.release = threading.Event(), threading.Event()
        self.calls = 0
        self.value = value

    def __call__(self) -> int:
        self.calls += 1
        self.started.set()
        self.release.wait(10)
        return self.value if self.value is not None else self.calls


def test_answer_cache_computes_once_for_concurrent_requests_and_not_across_a_clear() -> None:
    from services.api.cache import AnswerCache

    def run(clear_meanwhile: bool) -> tuple[list[int], int]:
        cache: AnswerCache[int] = AnswerCache(60.0)
        slow = Held()
        started, release = slow.started, slow.release

        results: list[int] = []
        first = threading.Thread(target=lambda: results.append(cache.get("k", slow)))
        first.start()
        assert started.wait(10)
        second = threading.Thread(target=lambda: results.append(cache.get("k", slow)))
        second.start()
        while not any(g.locked() for g in cache._gates.values()):
            time.sleep(0.001)
        if clear_meanwhile:
            cache.clear()  # e.g. a DELETE committed while the first computation ran
        release.set()
        first.join(10)
        second.join(10)
        return sorted(results), cache.get("k", slow)

    # The second request waited for the first computation and took its answer.
    assert run(clear_meanwhile=False) == ([1, 1], 1)
    # After a clear the answer computed before it is neither kept nor handed to the waiter.
    assert run(clear_meanwhile=True) == ([1, 2], 2)


def test_an_expired_answer_is_answered_at_once_and_refreshed_in_the_background() -> None:
    from services.api.cache import AnswerCache

    now = [100.0]
    cache: AnswerCache[int] = AnswerCache(5.0, clock=lambda: now[0])
    assert cache.get("k", lambda: 1) == 1
    now[0] += 6.0  # expired, within twice the TTL
    slow = Held(2)
    started, release = slow.started, slow.release

    # The request that finds it expired is answered at once; one refresh starts.
    assert cache.get("k", slow) == 1
    assert started.wait(10)
    assert cache.get("k", slow) == 1  # the refresh is running: no second one
    release.set()
    deadline = time.monotonic() + 10
    while cache.get("k", lambda: 3) != 2 and time.monotonic() < deadline:
        time.sleep(0.01)
    assert cache.get("k", lambda: 3) == 2 and slow.calls == 1
    # A refresh that fails leaves the expired answer; the next request tries again.
    now[0] += 6.0

    def failing() -> int:
        raise RuntimeError("database gone")

    assert cache.get("k", failing) == 2
    deadline = time.monotonic() + 10
    while cache._gates["k"].locked() and time.monotonic() < deadline:
        time.sleep(0.01)
    assert cache.get("k", lambda: 4) == 2  # and this one's refresh succeeds
    while cache.get("k", lambda: 4) != 4 and time.monotonic() < deadline:
        time.sleep(0.01)
    # A refresh that started before a clear (a DELETE here) is not kept.
    now[0] += 6.0
    release.clear()
    started.clear()
    assert cache.get("k", slow) == 4
    assert started.wait(10)
    cache.clear()
    release.set()
    while cache._gates["k"].locked() and time.monotonic() < deadline:
        time.sleep(0.01)
    assert cache.get("k", lambda: 5) == 5


@pytest.mark.parametrize("model_name", ["DailyRides", "CityRides", "RidePage", "RideOut"])
def test_a_model_serialised_once_is_the_bytes_fastapi_answers_for_it(model_name: str) -> None:
    import asyncio
    from datetime import UTC, date, datetime

    import httpx
    from fastapi import FastAPI

    from services.api import schemas
    from services.api.routes.common import json_response, page_of, ride_out
    from services.common.reads.rides import SUMMARY_FIELDS, Ride, RideSummary

    figures = {"avg_power": 101.25, "total_energy_kj": 0.1 + 0.2, "avg_heart_rate": None}
    summary = RideSummary(**{f: 1 for f in SUMMARY_FIELDS} | figures)
    started = datetime(2026, 11, 20, 9, 0, 0, 123456, tzinfo=UTC)
    rides = [
        Ride(
            ride_id=i,
            user_id=7,
            bike_serial="SN1",
            model=None if i % 2 else "m",
            started_at=started,
            ended_at=None if i == 3 else started,
            duration_s=i,
            summarised=i % 2 == 0,
            summary=summary,
        )
        for i in range(1, 5)
    ]
    page = page_of(rides, limit=4, offset=0)
    model = {
        "DailyRides": lambda: schemas.DailyRides.model_validate({**page, "date": date.today()}),
        "CityRides": lambda: schemas.CityRides.model_validate({**page, "city": "Hôrsham"}),
        "RidePage": lambda: schemas.RidePage.model_validate(page),
        "RideOut": lambda: ride_out(rides[2]),
    }[model_name]()
    app = FastAPI()
    app.get("/m", response_model=type(model))(lambda: model)

    async def get() -> bytes:
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://api") as client:
            return (await client.get("/m")).content

    assert json_response(model).body == asyncio.run(get())
