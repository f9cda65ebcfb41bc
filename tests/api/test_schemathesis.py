"""Property-based run of every documented operation against the live /openapi.json.

Bounded: MAX_EXAMPLES generated requests per operation and mode (valid and invalid input),
with a valid key holding every scope. No 5xx, and every response matches its documented
status codes, content type and schema.
"""

from __future__ import annotations

from collections.abc import Iterator

import pytest
import schemathesis
from hypothesis import HealthCheck, Phase, assume, given, settings
from schemathesis.specs.openapi.checks import positive_data_acceptance

from tests.api.conftest import LiveApi, api_settings, make_key, serving
from tests.compress.builders import NOW, add_rider, at, write_ride

pytestmark = pytest.mark.postgres

MAX_EXAMPLES = 12

# /stats and /export have rules across its parameters (from before to, a longest range, bike or city) that
# OpenAPI cannot state, so schema-valid input may be refused there, but only by those rules.
CROSS_PARAMETER_ROUTES = {"/stats/{resolution}", "/export"}
CROSS_PARAMETER_CODES = {"invalid_range", "range_too_long", "invalid_filter"}


def refused_only_by_cross_parameter_rules(ctx, response, case) -> None:
    if response.status_code == 422:
        assert response.json()["code"] in CROSS_PARAMETER_CODES, response.text


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
    schema = schemathesis.openapi.from_url(f"{live.url}/openapi.json")
    headers = {"Authorization": f"Bearer {live.tokens['all']}"}
    operations = [result.ok() for result in schema.get_all_operations()]
    positive = mode is schemathesis.GenerationMode.POSITIVE
    assert len(operations) >= 10
    for operation in operations:
        if mode is schemathesis.GenerationMode.NEGATIVE and not list(operation.iter_parameters()):
            continue  # nothing to make invalid (/health, /metrics)

        @given(case=operation.as_strategy(generation_mode=mode))
        @settings(
            max_examples=MAX_EXAMPLES,
            deadline=None,
            database=None,
            phases=[Phase.explicit, Phase.generate],
            suppress_health_check=list(HealthCheck),
        )
        def call(case: schemathesis.Case) -> None:
            # A query parameter whose value is None or [] is not sent at all (the HTTP client
            # drops it), so such a "schema-violating" case reaches the server as a valid one.
            assume(not any(v is None or v == [] for v in (case.query or {}).values()))
            if positive and case.operation.path in CROSS_PARAMETER_ROUTES:
                case.call_and_validate(
                    base_url=live.url,
                    headers=headers,
                    excluded_checks=[positive_data_acceptance],
                    additional_checks=[refused_only_by_cross_parameter_rules],
                )
            else:
                case.call_and_validate(base_url=live.url, headers=headers)

        call()
