"""A bounded schemathesis run over every operation of a live API: used by the test suite
(tests/api/test_schemathesis.py) and by the hostile-input run (bench/hostile)."""

from __future__ import annotations

from typing import Any

import schemathesis
from hypothesis import HealthCheck, Phase, assume, given, settings
from schemathesis.config import SchemathesisConfig
from schemathesis.specs.openapi.checks import positive_data_acceptance

# /stats and /export have rules across their parameters (from before to, a longest range, bike
# or city) that OpenAPI cannot state, so schema-valid input may be refused there, but only by
# those rules.
CROSS_PARAMETER_ROUTES = {"/stats/{resolution}", "/export"}
CROSS_PARAMETER_CODES = {"invalid_range", "range_too_long", "invalid_filter"}


def refused_only_by_cross_parameter_rules(ctx: Any, response: Any, case: Any) -> None:
    if response.status_code == 422:
        assert response.json()["code"] in CROSS_PARAMETER_CODES, response.text


def _config() -> SchemathesisConfig:
    """Schemathesis's defaults, with 414 (URI too long) among the statuses that refuse invalid
    input: a long invalid query is refused by its length before its values are read, and
    every operation documents that 414."""
    rejecting = SchemathesisConfig().projects.default.checks.negative_data_rejection
    statuses = sorted({*rejecting.expected_statuses, "414"})
    return SchemathesisConfig.from_dict(
        {"checks": {"negative_data_rejection": {"expected-statuses": statuses}}}
    )


def _sent_as_valid(value: Any) -> bool:
    return value is None or (isinstance(value, list | dict) and len(value) <= 1)


def run_operations(
    url: str, token: str, mode: schemathesis.GenerationMode, max_examples: int
) -> dict[str, str | None]:
    """Each documented operation -> None when every generated request passed (no 5xx, the
    response in its documented status codes, content type and schema), else the failure."""
    schema = schemathesis.openapi.from_url(f"{url}/openapi.json", config=_config())
    headers = {"Authorization": f"Bearer {token}"}
    results: dict[str, str | None] = {}
    positive = mode is schemathesis.GenerationMode.POSITIVE
    for operation in (result.ok() for result in schema.get_all_operations()):
        if mode is schemathesis.GenerationMode.NEGATIVE and not list(operation.iter_parameters()):
            continue  # nothing to make invalid (/health, /metrics)

        @given(case=operation.as_strategy(generation_mode=mode))
        @settings(
            max_examples=max_examples,
            deadline=None,
            database=None,
            phases=[Phase.explicit, Phase.generate],
            suppress_health_check=list(HealthCheck),
        )
        def call(case: schemathesis.Case) -> None:
            # A query parameter whose value is None or [] is not sent at all, and a one-item
            # list or a one-key object is sent as that one item or key (the HTTP client
            # flattens them): such a "schema-violating" case reaches the server as a valid one.
            assume(not any(_sent_as_valid(v) for v in (case.query or {}).values()))
            if positive and case.operation.path in CROSS_PARAMETER_ROUTES:
                case.call_and_validate(
                    base_url=url,
                    headers=headers,
                    excluded_checks=[positive_data_acceptance],
                    additional_checks=[refused_only_by_cross_parameter_rules],
                )
            else:
                case.call_and_validate(base_url=url, headers=headers)

        try:
            call()
            results[operation.label] = None
        except (Exception, BaseExceptionGroup) as exc:  # each operation's failures are reported
            results[operation.label] = f"{type(exc).__name__}: {str(exc)[:2000]}"
    return results
