"""`deloton export`: the file holds exactly the database's rows, filters apply, memory stays
bounded by streaming (CSV and Parquet, read back with pandas)."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pandas as pd
import psycopg
import pytest
from psycopg.rows import dict_row

from services.common.reads.export import ExportQuery, columns
from services.export import export
from tests.compress.builders import NOW, add_rider, at, write_ride

pytestmark = pytest.mark.postgres

TEXT = {"bike_serial", "scope", "key"}
DAY = (at("2026-11-20 00:00:00"), at("2026-11-21 00:00:00"))


@pytest.fixture
def data(conn, compress_settings):
    """Two riders in two cities over three bikes; two rides summarised, one deleted."""
    from services.compress import run

    with conn, conn.cursor() as cur:
        add_rider(cur, 1, details_at=at("2026-11-20 08:00:00"), city="Leeds")
        add_rider(cur, 2, details_at=at("2026-11-20 08:00:00"), city="Hôrsham")
        write_ride(cur, 11, 1, started_at=at("2026-11-20 09:50:00"), seconds=900)
        write_ride(cur, 12, 2, started_at=at("2026-11-20 10:00:00"), seconds=300, bike_serial="B")
        write_ride(cur, 13, 2, started_at=at("2026-11-20 11:00:00"), seconds=200, bike_serial="C")
        cur.execute("INSERT INTO historical.deleted_rides (ride_id) VALUES (13)")
    run(conn, now=NOW, settings=compress_settings)


def database_rows(dsn: str, sql: str) -> pd.DataFrame:
    with psycopg.connect(dsn, row_factory=dict_row) as c:
        return pd.DataFrame(c.execute(sql).fetchall())


RAW_SQL = """SELECT r.ride_id, d.bike_serial, d.user_id, r.elapsed_s, r.recorded_at,
                    r.resistance, r.heart_rate, r.rpm, r.power
             FROM daily.readings r JOIN daily.rides d USING (ride_id)
             JOIN daily.riders u USING (user_id) WHERE {where}"""


def read_back(path: Path, fmt: str) -> pd.DataFrame:
    if fmt == "parquet":
        return pd.read_parquet(path)
    frame = pd.read_csv(path, keep_default_na=False, na_values=[""])
    for name, kind in columns("raw") + columns("daily"):
        if name in frame and kind == "timestamptz":
            frame[name] = pd.to_datetime(frame[name], utc=True, format="ISO8601")
    return frame


def assert_same(got: pd.DataFrame, want: pd.DataFrame, keys: list[str]) -> None:
    assert len(got) == len(want) > 0
    got = got[list(want.columns)].sort_values(keys).reset_index(drop=True)
    want = want.sort_values(keys).reset_index(drop=True)
    for name in want.columns:
        g, w = got[name], want[name]
        if name in ("recorded_at", "bucket"):
            assert (pd.to_datetime(g, utc=True) == pd.to_datetime(w, utc=True)).all(), name
        elif name in TEXT:
            assert g.astype(object).fillna("").tolist() == w.astype(object).fillna("").tolist(), (
                name
            )
        else:
            assert g.astype("float64").fillna(-1).tolist() == pytest.approx(
                w.astype("float64").fillna(-1).tolist(), rel=1e-12
            ), name


@pytest.mark.parametrize("fmt", ["csv", "parquet"])
def test_export_equals_the_database_rows_with_filters(data, database_url, tmp_path, fmt) -> None:
    def run(resolution: str, *, bike: str | None = None, city: str | None = None) -> pd.DataFrame:
        out = tmp_path / f"{resolution}-{bike}-{city}.{fmt}"
        rows = export(
            database_url,
            query=ExportQuery(resolution, *DAY, bike=bike, city=city),  # type: ignore[arg-type]
            fmt=fmt,  # type: ignore[arg-type]
            out=out,
        )
        frame = read_back(out, fmt)
        assert rows == len(frame)
        assert not list(tmp_path.glob("*.partial"))
        return frame

    keys = ["ride_id", "elapsed_s"]
    assert_same(
        run("raw"), database_rows(database_url, RAW_SQL.format(where="ride_id <> 13")), keys
    )
    assert_same(
        run("raw", bike="B"),
        database_rows(database_url, RAW_SQL.format(where="ride_id = 12")),
        keys,
    )
    leeds = database_rows(database_url, RAW_SQL.format(where="u.city = 'Leeds'"))
    assert_same(run("raw", city="LEEDS"), leeds, keys)

    stats_sql = """SELECT bucket, scope, key, rides, riders, riding_s, hr_readings, avg_heart_rate,
                          max_heart_rate, avg_power, max_power, energy_kj
                   FROM historical.stats WHERE resolution = '{res}' AND scope = '{scope}'
                     AND key = '{key}'"""
    for resolution, res in (("hourly", "hour"), ("daily", "day")):
        fleet = run(resolution)
        assert_same(
            fleet,
            database_rows(database_url, stats_sql.format(res=res, scope="fleet", key="")),
            ["bucket"],
        )
        city = run(resolution, city="horsham")
        assert_same(
            city,
            database_rows(database_url, stats_sql.format(res=res, scope="city", key="Hôrsham")),
            ["bucket"],
        )
        bike = run(resolution, bike="SN0001")
        assert_same(
            bike,
            database_rows(database_url, stats_sql.format(res=res, scope="bike", key="SN0001")),
            ["bucket"],
        )


def test_cli_is_quiet_off_a_terminal_and_refuses_a_bad_range(data, database_url, tmp_path) -> None:
    env = {**os.environ, "DATABASE_URL": database_url}
    out = tmp_path / "raw.csv"
    args = [sys.executable, "-m", "services.export", "--from", "2026-11-20", "--to", "2026-11-21"]
    done = subprocess.run(
        [*args, "--format", "csv", "--out", str(out)],
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    assert done.stdout == "" and "rows" not in done.stderr
    assert len(pd.read_csv(out)) == 900 + 300
    bad = [
        sys.executable,
        "-m",
        "services.export",
        "--from",
        "2026-11-21",
        "--to",
        "2026-11-20",
        "--format",
        "parquet",
        "--out",
        str(tmp_path / "x.parquet"),
    ]
    done = subprocess.run(bad, env=env, capture_output=True, text=True, timeout=120, check=False)
    assert done.returncode == 2 and "from must be before to" in done.stderr
    assert not (tmp_path / "x.parquet").exists()
