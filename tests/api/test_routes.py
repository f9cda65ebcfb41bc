"""Every route: success, not found, bad input, and each way of being refused."""

from __future__ import annotations

import json

import httpx
import pytest

from tests.api.conftest import LiveApi, api_settings, make_key, serving
from tests.compress.builders import NOW, add_alert, add_rider, at, write_ride

pytestmark = pytest.mark.postgres

PERSONAL = ("Ada", "Lovelace", "ada@example.com", "1 Main St", "LS1 1AA", "1980-05-17")


@pytest.fixture
def rides(conn, compress_settings):
    """Rider 1 (Leeds): two summarised rides, one ride still in progress; rider 2: one ride."""
    from services.compress import run

    with conn, conn.cursor() as cur:
        add_rider(cur, 1, details_at=at("2026-11-20 08:00:00"), city="Leeds")
        add_rider(cur, 2, details_at=at("2026-11-20 08:00:00"), city="Hôrsham", first_name="Bo")
        write_ride(cur, 11, 1, started_at=at("2026-11-20 09:00:00"), seconds=600)
        write_ride(cur, 12, 1, started_at=at("2026-11-20 10:00:00"), seconds=300)
        write_ride(cur, 21, 2, started_at=at("2026-11-20 09:30:00"), seconds=200, bike_serial="B")
        add_alert(cur, 11, 1, 1, detected_at=at("2026-11-20 09:05:00"))
    run(conn, now=NOW, settings=compress_settings)
    with conn, conn.cursor() as cur:
        write_ride(cur, 13, 1, started_at=at("2026-11-20 11:59:00"), seconds=25, ended=False)


def assert_error(response, status: int, code: str | None = None) -> dict:
    assert response.status_code == status, response.text
    assert response.headers["content-type"].startswith("application/json")
    body = response.json()
    assert isinstance(body["detail"], str) and body["code"]
    if code:
        assert body["code"] == code
    return body


def test_ride_with_summary_and_paged_readings(live_api: LiveApi, rides) -> None:
    with live_api.client() as c:
        ride = c.get("/ride/11").json()
        assert ride["user_id"] == 1 and ride["summarised"] and not ride["in_progress"]
        assert ride["summary"]["readings_count"] == 600 and ride["summary"]["alert_count"] == 1
        assert ride["duration_s"] == 601 and ride["readings"] is None
        assert c.get("/ride/11/").json() == ride  # trailing slash served, not redirected
        live = c.get("/ride/13").json()
        assert live["ended_at"] is None and live["in_progress"] and not live["summarised"]
        first = c.get("/ride/11", params={"expanded": "true", "limit": 250}).json()["readings"]
        assert len(first["items"]) == 250 and first["next_after"] == 250
        seen = [r["elapsed_s"] for r in first["items"]]
        after = first["next_after"]
        while after is not None:
            page = c.get("/ride/11", params={"expanded": "true", "limit": 250, "after": after})
            readings = page.json()["readings"]
            seen += [r["elapsed_s"] for r in readings["items"]]
            after = readings["next_after"]
        assert seen == list(range(1, 601))
        assert c.get("/ride/11/duration").json() == {
            "ride_id": 11,
            "duration_s": 601,
            "in_progress": False,
        }
        assert c.get("/ride/13/duration/").json()["in_progress"] is True


@pytest.mark.parametrize(
    "path",
    ["/ride/abc", "/ride/0", "/ride/-1", f"/ride/{2**63}", "/ride/1.5", "/ride/1e3",
     "/ride/11?expanded=maybe", "/ride/11?expanded=true&limit=0",
     "/ride/11?expanded=true&limit=1000000000", "/ride/abc/duration",
     "/daily?date=1.4632623023043625e-84", "/daily?date=1700000000", "/daily?date=2026-11-20T00",
     "/leaderboard?since=0", "/leaderboard?since=2026-1-5"],
)  # fmt: skip
def test_bad_ride_ids_and_parameters_are_422(live_api: LiveApi, rides, path: str) -> None:
    with live_api.client() as c:
        assert_error(c.get(path), 422, "invalid_request")


def test_missing_ride_is_404_and_unknown_parameter_400(live_api: LiveApi, rides) -> None:
    with live_api.client() as c:
        assert_error(c.get("/ride/999"), 404, "not_found")
        assert_error(c.get("/ride/999/duration"), 404, "not_found")
        assert_error(c.get("/ride/11", params={"expand": "true"}), 400, "unknown_parameter")
        assert_error(c.get("/nowhere"), 404)
        assert_error(c.post("/ride/11"), 405)


def test_auth_paths(live_api: LiveApi, rides, database_url: str) -> None:
    with live_api.client(None) as c:
        r = c.get("/ride/11")
        assert_error(r, 401, "unauthorized")
        assert r.headers["www-authenticate"].startswith("Bearer")
        for header in ("Bearer nope", "Basic abc", "Bearer", "Bearer " + "x" * 5000):
            assert_error(c.get("/ride/11", headers={"Authorization": header}), 401)
        token = make_key(database_url, "soon-revoked", "read")
        assert c.get("/ride/11", headers={"Authorization": f"Bearer {token}"}).status_code == 200
        with psycopg_conn(database_url) as w:
            from services.api import keys

            keys.revoke(w, name="soon-revoked")
        assert_error(c.get("/ride/11", headers={"Authorization": f"Bearer {token}"}), 401)
    with live_api.client("read,pii") as c:
        assert_error(c.delete("/ride/11"), 403, "forbidden")
    # Health, metrics and the docs need no key.
    with live_api.client(None) as c:
        for path in ("/health", "/metrics", "/openapi.json", "/docs"):
            assert c.get(path).status_code == 200, path


class RawResponse:
    """The parts of a response assert_error reads, from http.client (httpx caps URL length)."""

    def __init__(self, status: int, headers: dict[str, str], body: bytes) -> None:
        self.status_code = status
        self.headers = {k.lower(): v for k, v in headers.items()}
        self.text = body.decode()

    def json(self) -> dict:
        return json.loads(self.text)


def raw_get(url: str, path: str, token: str | None = None) -> RawResponse:
    import http.client
    from urllib.parse import urlsplit

    parts = urlsplit(url)
    conn = http.client.HTTPConnection(parts.hostname, parts.port, timeout=30)
    try:
        conn.request("GET", path, headers={"Authorization": f"Bearer {token}"} if token else {})
        r = conn.getresponse()
        return RawResponse(r.status, dict(r.getheaders()), r.read())
    finally:
        conn.close()


def psycopg_conn(dsn: str):
    import psycopg
    from psycopg.rows import dict_row

    return psycopg.connect(dsn, row_factory=dict_row)


def audit_rows(dsn: str) -> list[dict]:
    with psycopg_conn(dsn) as c:
        return c.execute(
            "SELECT key_name, action, route, resource_id FROM api.audit_log ORDER BY audit_id"
        ).fetchall()


def test_rider_personal_data_only_with_pii_scope_and_audited(
    live_api: LiveApi, rides, database_url: str
) -> None:
    with live_api.client("read") as c:
        r = c.get("/rider/1")
    body = r.json()
    assert r.status_code == 200 and body["personal"] is None
    assert body["age_bracket"] == "45-54" and body["city"] == "Leeds"
    assert body["rides"] == 3 and body["total_duration_s"] == 601 + 301 + 25
    assert not any(text in r.text for text in PERSONAL)
    assert audit_rows(database_url) == []
    with live_api.client("read,pii") as c:
        r = c.get("/rider/1")
    personal = r.json()["personal"]
    assert personal["first_name"] == "Ada" and personal["date_of_birth"] == "1980-05-17"
    assert personal["email_address"] == "ada@example.com" and personal["postcode"] == "LS1 1AA"
    assert audit_rows(database_url) == [
        {"key_name": "key-read,pii", "action": "pii_read", "route": "GET /rider/{user_id}",
         "resource_id": "1"}
    ]  # fmt: skip
    with live_api.client() as c:
        assert_error(c.get("/rider/404"), 404, "not_found")
        assert_error(c.get("/rider/x"), 422)


def test_rider_rides_pages_and_duration(live_api: LiveApi, rides) -> None:
    with live_api.client() as c:
        p1 = c.get("/rider/1/rides", params={"limit": 2}).json()
        assert [r["ride_id"] for r in p1["items"]] == [13, 12] and p1["next_offset"] == 2
        p2 = c.get("/rider/1/rides/", params={"limit": 2, "offset": 2}).json()
        assert [r["ride_id"] for r in p2["items"]] == [11] and p2["next_offset"] is None
        assert c.get("/rider/1/duration").json() == {
            "user_id": 1,
            "total_duration_s": 927,
            "rides": 3,
        }
        for params in ({"limit": 0}, {"limit": 10**9}, {"offset": -1}, {"offset": 10**12}):
            assert_error(c.get("/rider/1/rides", params=params), 422)
        assert_error(c.get("/rider/404/rides"), 404)
        assert_error(c.get("/rider/404/duration"), 404)


def test_daily(live_api: LiveApi, rides) -> None:
    with live_api.client() as c:
        day = c.get("/daily", params={"date": "2026-11-20"}).json()
        assert [r["ride_id"] for r in day["items"]] == [11, 21, 12, 13]
        assert day["date"] == "2026-11-20"
        assert c.get("/daily/", params={"date": "2026-11-21"}).json()["items"] == []
        assert c.get("/daily").status_code == 200  # today
        for bad in ("2026-02-30", "2026-13-01", "yesterday", "10000-01-01", "2026-1-1", ""):
            assert_error(c.get("/daily", params={"date": bad}), 422)
        for edge in ("0001-01-01", "9999-12-31"):
            assert c.get("/daily", params={"date": edge}).json()["items"] == []


def test_leaderboard(live_api: LiveApi, rides) -> None:
    with live_api.client() as c:
        board = c.get("/leaderboard").json()
        assert [(e["user_id"], e["value"]) for e in board["entries"]] == [(1, 2.0), (2, 1.0)]
        longest = c.get("/leaderboard/", params={"by": "longest_ride", "limit": 1}).json()
        assert [(e["user_id"], e["value"]) for e in longest["entries"]] == [(1, 601.0)]
        since = c.get("/leaderboard", params={"by": "duration", "since": "2026-11-21"}).json()
        assert since["entries"] == []
        for params in ({"by": "wins"}, {"limit": 0}, {"limit": 101}, {"since": "2026-02-30"}):
            assert_error(c.get("/leaderboard", params=params), 422)


def test_city_is_case_and_accent_insensitive_and_safe(live_api: LiveApi, rides) -> None:
    with live_api.client() as c:
        assert [r["ride_id"] for r in c.get("/city/LEEDS").json()["items"]] == [13, 12, 11]
        assert [r["ride_id"] for r in c.get("/city/horsham/").json()["items"]] == [21]
        assert [r["ride_id"] for r in c.get("/city/H%C3%94RSHAM").json()["items"]] == [21]
        for trick in ("' OR 1=1 --", "Leeds'; DROP TABLE daily.rides; --", "%E2%80%AE", "🚲"):
            assert c.get(f"/city/{trick}").json()["items"] == []
        assert_error(c.get("/city/Le%00eds"), 422)
        assert_error(c.get("/city/" + "x" * 101), 422)
        assert_error(raw_get(live_api.url, "/city/" + "x" * 1_000_000), 414)
        assert_error(c.get("/city/Leeds", params={"limit": 501}), 422)
        assert c.get("/ride/11").status_code == 200  # nothing dropped


def test_delete_is_admin_only_audited_and_final(
    live_api: LiveApi, rides, database_url: str
) -> None:
    with live_api.client("read,admin") as c:
        r = c.delete("/ride/12")
        assert r.status_code == 200, r.text
        body = r.json()
        assert body["ride"]["ride_id"] == 12 and body["summary_deleted"]
        assert body["daily_ride_deleted"] and body["readings_deleted"] == 300
        assert_error(c.delete("/ride/12"), 404)
        assert_error(c.get("/ride/12"), 404)
        live = c.delete("/ride/13/").json()  # in progress, only in daily
        assert not live["summary_deleted"] and live["readings_deleted"] == 25
        assert [r["ride_id"] for r in c.get("/rider/1/rides").json()["items"]] == [11]
        assert c.get("/rider/1").json()["rides"] == 1
        assert c.get("/leaderboard").json()["entries"][0]["rides"] == 1
    with psycopg_conn(database_url) as w:
        left = w.execute(
            """SELECT (SELECT count(*) FROM historical.rides WHERE ride_id IN (12, 13)) AS h,
                      (SELECT count(*) FROM daily.rides WHERE ride_id IN (12, 13)) AS d,
                      (SELECT count(*) FROM daily.readings WHERE ride_id IN (12, 13)) AS r,
                      (SELECT count(*) FROM historical.deleted_rides) AS t"""
        ).fetchone()
    assert left == {"h": 0, "d": 0, "r": 0, "t": 2}
    assert [(a["action"], a["resource_id"]) for a in audit_rows(database_url)] == [
        ("delete", "12"),
        ("delete", "13"),
    ]


def test_rate_limit_per_key_answers_429_with_retry_after(database_url: str, rides) -> None:
    token = make_key(database_url, "limited", "read")
    other = make_key(database_url, "other", "read")
    settings = api_settings(database_url, api_rate_limit_per_s=0.5, api_rate_limit_burst=3)
    import httpx

    with serving(settings) as url, httpx.Client(base_url=url) as c:
        auth = {"Authorization": f"Bearer {token}"}
        codes = [c.get("/ride/11", headers=auth).status_code for _ in range(4)]
        assert codes == [200, 200, 200, 429]
        r = c.get("/ride/11", headers=auth)
        assert_error(r, 429, "rate_limited")
        assert int(r.headers["retry-after"]) >= 1
        # another key is not held back by this one
        assert c.get("/ride/11", headers={"Authorization": f"Bearer {other}"}).status_code == 200


def test_health_and_metrics(live_api: LiveApi, rides, database_url: str) -> None:
    with live_api.client() as c:
        health = c.get("/health").json()
        assert health["status"] == "ok" and health["database"]
        assert health["migration_applied"] == health["migration_expected"] >= 8
        c.get("/ride/11")
        c.get("/ride/999")
        text = c.get("/metrics").text
    assert 'deloton_api_requests_total{method="GET",route="/ride/{ride_id}",status="200"}' in text
    assert 'deloton_api_requests_total{method="GET",route="/ride/{ride_id}",status="404"}' in text
    assert "deloton_api_request_duration_seconds_bucket" in text
    with psycopg_conn(database_url) as w:
        # The newest migration "not applied" (whichever number it is: later ones follow 8).
        w.execute(
            "DELETE FROM public.schema_migrations "
            "WHERE version = (SELECT max(version) FROM public.schema_migrations)"
        )
    with live_api.client(None) as c:
        r = c.get("/health")
    assert r.status_code == 503 and r.json()["status"] == "unavailable"


def test_openapi_documents_models_examples_and_errors(live_api: LiveApi) -> None:
    with live_api.client(None) as c:
        spec = c.get("/openapi.json").json()
    paths = spec["paths"]
    for path in ("/ride/{ride_id}", "/ride/{ride_id}/duration", "/rider/{user_id}",
                 "/rider/{user_id}/rides", "/rider/{user_id}/duration", "/daily",
                 "/leaderboard", "/city/{city}", "/health", "/metrics"):  # fmt: skip
        assert path in paths, path
    get_ride = paths["/ride/{ride_id}"]["get"]
    for status in ("401", "403", "404", "422", "429"):
        schema = get_ride["responses"][status]["content"]["application/json"]["schema"]
        assert schema["$ref"].endswith("/ErrorBody")
    assert "delete" in paths["/ride/{ride_id}"]
    assert spec["components"]["schemas"]["RideOut"]["examples"]
    assert spec["components"]["securitySchemes"]["HTTPBearer"]["scheme"] == "bearer"
    assert json.dumps(spec)  # serialisable


def test_concurrent_requests_never_wait_on_each_other_for_connections(
    database_url: str, rides
) -> None:
    """Each request holds at most one pooled connection at a time: with a pool of two and
    many requests at once (keys looked up every time, PII reads audited), none times out."""
    from concurrent.futures import ThreadPoolExecutor

    import httpx

    token = make_key(database_url, "many", "read,pii")
    settings = api_settings(database_url, api_pool_size=2)
    with serving(settings) as url, httpx.Client(base_url=url, timeout=60) as c:
        auth = {"Authorization": f"Bearer {token}"}
        paths = ["/ride/11", "/rider/1", "/daily?date=2026-11-20", "/city/leeds"] * 8
        with ThreadPoolExecutor(16) as workers:
            codes = list(workers.map(lambda p: c.get(p, headers=auth).status_code, paths))
    assert codes == [200] * len(paths)


def test_served_under_a_path_prefix_behind_the_load_balancer(database_url: str) -> None:
    """The load balancer forwards /api/* unchanged: every route, the health check and the
    docs answer under API_PATH_PREFIX, and nothing answers outside it."""
    token = make_key(database_url, "prefixed", "read")
    with serving(api_settings(database_url, api_path_prefix="/api")) as url:
        auth = {"Authorization": f"Bearer {token}"}
        with httpx.Client(base_url=url, timeout=30) as c:
            assert c.get("/api/health").json()["status"] == "ok"
            assert c.get("/api/daily", headers=auth).status_code == 200
            assert c.get("/api/ride/1", headers=auth).status_code == 404
            assert c.get("/api/docs").status_code == 200
            assert "/api/leaderboard" in c.get("/api/openapi.json").json()["paths"]
            assert c.get("/daily", headers=auth).status_code == 404
