"""Pure pieces of the API: scopes, tokens, the Authorization header, key cache, rate limit."""

from __future__ import annotations

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
