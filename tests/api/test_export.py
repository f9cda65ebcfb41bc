"""GET /export: admin keys only, audited, and the download holds the database's rows."""

from __future__ import annotations

import io

import pandas as pd
import pytest

from tests.api.conftest import LiveApi
from tests.api.test_routes import assert_error, audit_rows
from tests.api.test_stats import summarised  # noqa: F401  (fixture)
from tests.export.test_export import RAW_SQL, assert_same, database_rows

pytestmark = pytest.mark.postgres

DAY = {"from": "2026-11-20", "to": "2026-11-21"}


@pytest.mark.usefixtures("summarised")
def test_export_download_is_admin_only_audited_and_exact(
    live_api: LiveApi, database_url: str
) -> None:
    with live_api.client("read,pii") as c:
        assert_error(c.get("/export", params=DAY), 403, "forbidden")
    with live_api.client(None) as c:
        assert_error(c.get("/export", params=DAY), 401, "unauthorized")
    raw = database_rows(database_url, RAW_SQL.format(where="true"))
    with live_api.client("read,admin") as c:
        r = c.get("/export", params=DAY)
        assert r.status_code == 200, r.text
        assert r.headers["content-type"].startswith("text/csv")
        assert "attachment" in r.headers["content-disposition"]
        got = pd.read_csv(io.BytesIO(r.content))
        assert_same(got, raw, ["ride_id", "elapsed_s"])

        r = c.get("/export", params={**DAY, "format": "parquet", "bike": "B"})
        assert r.headers["content-type"] == "application/vnd.apache.parquet"
        bike = database_rows(database_url, RAW_SQL.format(where="bike_serial = 'B'"))
        assert_same(pd.read_parquet(io.BytesIO(r.content)), bike, ["ride_id", "elapsed_s"])

        r = c.get("/export", params={**DAY, "format": "parquet", "resolution": "daily"})
        daily = pd.read_parquet(io.BytesIO(r.content))
        assert daily[["rides", "riders", "riding_s"]].values.tolist() == [[3, 2, 1100]]

        bad = {"from": "2026-11-21", "to": "2026-11-20"}
        assert_error(c.get("/export", params=bad), 422, "invalid_range")
        both = {**DAY, "resolution": "hourly", "bike": "B", "city": "Leeds"}
        assert_error(c.get("/export", params=both), 422, "invalid_filter")
        assert_error(c.get("/export", params={**DAY, "format": "xlsx"}), 422)
    exports = [a for a in audit_rows(database_url) if a["action"] == "export"]
    assert len(exports) == 3 and exports[0]["key_name"] == "key-read,admin"
