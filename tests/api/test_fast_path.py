"""The hot reads' shortcut at the app's edge, the asyncio pool, the key cache."""

from __future__ import annotations

import asyncio

import httpx
import psycopg
import pytest

from services.api import keys
from services.api.auth import KeyCache
from services.api.main import create_app
from services.common import pool
from tests.api.conftest import LiveApi, api_settings, make_key, serving
from tests.api.test_routes import audit_rows, psycopg_conn, rides  # noqa: F401  (a fixture)

pytestmark = pytest.mark.postgres


def same(a: httpx.Response, b: httpx.Response) -> None:
    assert (a.status_code, a.headers["content-type"], a.content) == (
        b.status_code,
        b.headers["content-type"],
        b.content,
    )
    assert a.headers.get("www-authenticate") == b.headers.get("www-authenticate")


# A path the shortcut takes, and one of the same request that only FastAPI's validation
# accepts (a leading zero, or a query string): both must answer the same bytes.
PAIRS = [
    ("/ride/11", "/ride/011"),
    ("/ride/11", "/ride/11?expanded=false"),
    ("/ride/13", "/ride/013"),  # in progress: summary computed on the fly
    ("/ride/404", "/ride/0404"),
    ("/rider/1", "/rider/01"),
    ("/rider/404", "/rider/00404"),
    ("/ride/11/", "/ride/011"),  # trailing slashes, as the whole app ignores them
    ("/rider/1//", "/rider/01"),
]


@pytest.mark.parametrize("scopes", ["read", "read,pii", None])
@pytest.mark.usefixtures("rides")
def test_shortcut_answers_what_fastapi_answers(live_api: LiveApi, scopes) -> None:
    with live_api.client(scopes) as c:
        for fast, slow in PAIRS:
            same(c.get(fast), c.get(slow))
        if scopes:
            assert c.get("/ride/11").json()["summary"]["alert_count"] == 1
            assert c.get("/rider/1").json()["rides"] == 3


@pytest.mark.usefixtures("rides")
def test_shortcut_reads_of_personal_data_are_audited(live_api: LiveApi, database_url) -> None:
    with live_api.client("read,pii") as c:
        assert c.get("/rider/1").json()["personal"]["first_name"] == "Ada"
        assert c.get("/rider/01").json()["personal"]["first_name"] == "Ada"
    assert [r["resource_id"] for r in audit_rows(database_url)] == ["1", "1"]


@pytest.mark.usefixtures("rides")
def test_ids_out_of_range_still_refused(live_api: LiveApi) -> None:
    with live_api.client() as c:
        for path in ("/ride/0", "/ride/9223372036854775808", "/ride/99999999999999999999",
                     "/rider/-1", "/ride/%C2%B9"):  # fmt: skip
            r = c.get(path)
            assert r.status_code == 422 and r.json()["code"] == "invalid_request", path
        assert c.get("/ride/9223372036854775807").status_code == 404


class CountRequests:
    """A pure ASGI middleware counting the HTTP requests that reach the app's stack."""

    def __init__(self, app, seen: list[str]) -> None:
        self.app, self.seen = app, seen

    async def __call__(self, scope, receive, send) -> None:
        if scope["type"] == "http":
            self.seen.append(scope["path"])
        await self.app(scope, receive, send)


@pytest.mark.usefixtures("rides")
def test_the_edge_takes_plain_hot_reads_and_leaves_the_rest_to_the_app(database_url: str) -> None:
    settings = api_settings(database_url)
    app = create_app(settings)
    seen: list[str] = []
    app.add_middleware(CountRequests, seen=seen)
    token = make_key(database_url, "edge", "read,pii")
    headers = {"Authorization": f"Bearer {token}"}
    with serving(settings, app) as url, httpx.Client(base_url=url, headers=headers) as c:
        for path in ("/ride/11", "/ride/11/", "/ride/404", "/rider/1", "/rider/404"):
            assert c.get(path).status_code in (200, 404), path
        assert seen == []
        # A refusal of the key is the shortcut's too.
        assert c.get("/ride/11", headers={"Authorization": ""}).status_code == 401
        assert seen == []
        # Not plain: a query string, a leading zero, HEAD, another route, a path padded past
        # the limit with slashes (414, as the app answers it).
        c.get("/ride/11?expanded=false")
        c.get("/ride/011")
        c.head("/ride/11")
        c.get("/ride/11/duration")
        assert c.get("/ride/11" + "/" * 3000).status_code == 414
        assert len(seen) == 5
        assert [r["resource_id"] for r in audit_rows(database_url)] == ["1"]
        metrics = c.get("/metrics").text
    for status in ("200", "404"):
        for route in ("/ride/{ride_id}", "/rider/{user_id}"):
            line = f'deloton_api_requests_total{{method="GET",route="{route}",status="{status}"}}'
            assert line in metrics, line


@pytest.mark.usefixtures("rides")
def test_the_edge_answers_a_database_outage_as_the_app_does(database_url: str) -> None:
    settings = api_settings(database_url)
    token = make_key(database_url, "edge-down", "read")
    headers = {"Authorization": f"Bearer {token}"}
    with (
        serving(settings) as url,
        httpx.Client(base_url=url, headers=headers, timeout=30) as c,
    ):
        assert c.get("/ride/11").status_code == 200  # the key is cached from here on
        name = psycopg.conninfo.conninfo_to_dict(database_url)["dbname"]
        elsewhere = psycopg.conninfo.make_conninfo(database_url, dbname="postgres")
        with psycopg.connect(elsewhere, autocommit=True) as admin:
            admin.execute(f'ALTER DATABASE "{name}" ALLOW_CONNECTIONS false')
            try:
                admin.execute(
                    "SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = %s",
                    (name,),
                )
                # Each waits for the pool's timeout (5 s) at most.
                answers = [c.get(p) for p in ("/ride/11", "/ride/011", "/rider/1")]
            finally:
                admin.execute(f'ALTER DATABASE "{name}" ALLOW_CONNECTIONS true')
        for r in answers:
            assert r.status_code == 503 and r.json()["code"] == "unavailable", r.text
            assert r.headers["content-type"] == "application/json" and r.headers["retry-after"]
        assert c.get("/ride/11").status_code == 200  # and back once the database is


class FakeClock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


@pytest.mark.usefixtures("rides")
def test_revoked_key_works_at_most_the_cache_ttl(database_url: str) -> None:
    settings = api_settings(database_url, api_key_cache_s=5.0)
    app = create_app(settings)
    clock = FakeClock()
    app.state.keys = KeyCache(settings.api_key_cache_s, clock=clock)
    token = make_key(database_url, "revoked-soon", "read")
    headers = {"Authorization": f"Bearer {token}"}
    with serving(settings, app) as url, httpx.Client(base_url=url, headers=headers) as c:
        assert c.get("/ride/11").status_code == 200
        with psycopg_conn(database_url) as w:
            keys.revoke(w, name="revoked-soon")
        clock.now += 5.0  # still within API_KEY_CACHE_S of the lookup: the cached key
        assert c.get("/ride/11").status_code == 200
        clock.now += 0.01  # past it: looked up again, and refused on every route
        for path in ("/ride/11", "/ride/011", "/rider/1", "/daily"):
            assert c.get(path).status_code == 401, path


def test_async_readers_cannot_write(database_url: str) -> None:
    async def attempt() -> None:
        readers = await pool.open_async_pool(database_url, max_size=1)
        try:
            async with pool.reading(readers) as conn:
                await conn.execute("SELECT 1 FROM api.keys LIMIT 1")
                with pytest.raises(psycopg.errors.ReadOnlySqlTransaction):
                    await conn.execute("DELETE FROM api.keys")
            async with pool.reading(readers) as conn:  # the connection went back usable
                assert await (await conn.execute("SELECT 1 AS one")).fetchone() == {"one": 1}
        finally:
            await readers.close()

    asyncio.run(attempt())


@pytest.mark.usefixtures("rides")
def test_leaderboard_since_is_reused_but_shows_a_delete_through_the_api_at_once(
    database_url: str,
) -> None:
    settings = api_settings(database_url, api_leaderboard_cache_s=3600.0)
    token = make_key(database_url, "boards", "read,admin")
    since = {"by": "rides", "since": "2026-11-20"}

    def board(c: httpx.Client) -> list[tuple[int, float]]:
        entries = c.get("/leaderboard", params=since).json()["entries"]
        return [(e["user_id"], e["value"]) for e in entries]

    headers = {"Authorization": f"Bearer {token}"}
    with serving(settings) as url, httpx.Client(base_url=url, headers=headers) as c:
        assert board(c) == [(1, 2.0), (2, 1.0)]
        # A change the API did not make (a roll-up) shows within API_LEADERBOARD_CACHE_S.
        with psycopg_conn(database_url) as w:
            w.execute("UPDATE historical.rides SET user_id = 2 WHERE ride_id = 11")
        assert board(c) == [(1, 2.0), (2, 1.0)]
        assert c.get("/leaderboard", params={"by": "rides"}).json()["entries"][0]["user_id"] == 2
        assert c.delete("/ride/12").status_code == 200
        assert board(c) == [(2, 2.0)]
