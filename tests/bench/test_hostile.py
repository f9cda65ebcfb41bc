"""The hostile-input run (`python -m bench.hostile`) at a small size, through the real services."""

from __future__ import annotations

from pathlib import Path

from bench.hostile.__main__ import table
from bench.hostile.feed import build
from bench.hostile.logscan import scan
from bench.hostile.run import run


def test_hostile_lines_through_the_running_services(
    broker: str, pg_server: str, tmp_path: Path
) -> None:
    outcome = run(3_000, bootstrap=broker, server_dsn=pg_server, workdir=tmp_path, examples=3)
    assert outcome.ok, table(outcome)
    checks = {r.check for r in outcome.rows}
    # Every part ran: the ingest accounting, alerts, the API and every service's log.
    assert "sent = rejected + 2 x readings + SYSTEM + banners" in checks
    assert "authorization cells with the expected status" in checks
    assert {
        f"log of {s}: secrets" for s in ("ingest", "alerts", "api", "dashboard", "compress")
    } <= checks


def test_the_feed_covers_every_category_and_says_what_must_happen() -> None:
    feed = build(3_000, seed=1)
    kinds = {ln.kind for ln in feed.lines}
    assert {"900 KB lines", "invalid UTF-8", "NUL bytes", "year 1 / year 9999"} <= kinds
    assert {"SYSTEM of unknown bikes", "other bikes' readings", "good"} <= kinds
    assert all((ln.outcome == "reject") == (ln.reason is not None) for ln in feed.lines)
    assert max(len(ln.value) for ln in feed.lines) > 900_000
    invalid = {f.email_invalid for f in feed.riders.values()}
    assert {None, "control_characters", "several_addresses", "display_name"} <= invalid


def test_the_log_scan_finds_personal_data_and_secrets(tmp_path: Path) -> None:
    log = tmp_path / "ingest.log"
    log.write_text("INFO batch written\nWARNING rider Zoë Ñúñez-Ünal at 1 Quarry Road\npw-s3cret\n")
    rows = {
        r.check: r for r in scan({"ingest": log}, {"Ñúñez-Ünal", "LS1 1AA"}, {"db": "pw-s3cret"})
    }
    assert rows["log of ingest: personal data"].actual == 1
    assert rows["log of ingest: secrets"].actual == ["db"]
    assert not rows["log of ingest: personal data"].ok and not rows["log of ingest: secrets"].ok
    assert rows["log of ingest: tracebacks"].ok
