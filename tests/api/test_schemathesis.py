"""Property-based run of every documented operation against the live /openapi.json.

Bounded: MAX_EXAMPLES generated requests per operation and mode (valid and invalid input),
with a valid key holding every scope. No 5xx, and every response matches its documented
status codes, content type and schema.
"""

from __future__ import annotations

from collections.abc import Iterator

import pytest
import schemathesis

from tests.api.conftest import LiveApi, api_settings, make_key, serving
from tests.api.fuzz import run_operations
from tests.compress.builders import NOW, add_rider, at, write_ride

pytestmark = pytest.mark.postgres

MAX_EXAMPLES = 12


@pytest.fixture
def live(database_url: str, conn, compress_settings) -> Iterator[LiveApi]:
    from services.compress import run

    with conn, conn.cursor() as cur:
        add_rider(cur, 1, details_at=at("2026-11-20 08:00:00"), city="Leeds")
        write_ride(cur, 1, 1, started_at=at("2026-11-20 09:00:00"), seconds=120)
        write_ride(cur, 2, 1, started_at=at("2026-11-20 10:00:00"), seconds=60)
    run(conn, now=NOW, settings=compress_settings)
    token = make_key(database_url, "fuzz", "read,pii,admin")
    settings_ = api_settings(database_url)
    with serving(settings_) as url:
        yield LiveApi(url, {"all": token}, settings_)


@pytest.mark.parametrize("mode", list(schemathesis.GenerationMode), ids=lambda m: m.value)
def test_no_server_errors_and_responses_match_the_schema(live: LiveApi, mode) -> None:
    results = run_operations(live.url, live.tokens["all"], mode, MAX_EXAMPLES)
    assert len(results) >= 10 or mode is schemathesis.GenerationMode.NEGATIVE
    failures = {label: why for label, why in results.items() if why}
    assert not failures, failures
