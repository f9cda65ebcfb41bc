"""A bounded schemathesis run over every operation of a live API: used by the test suite
(tests/api/test_schemathesis.py) and by the hostile-input run (bench/hostile)."""

from __future__ import annotations

import schemathesis
from hypothesis import HealthCheck, Phase, given, settings


def run_operations(
    url: str, token: str, mode: schemathesis.GenerationMode, max_examples: int
) -> dict[str, str | None]:
    """Each documented operation -> None when every generated request passed (no 5xx, the
    response in its documented status codes, content type and schema), else the failure."""
    schema = schemathesis.openapi.from_url(f"{url}/openapi.json")
    headers = {"Authorization": f"Bearer {token}"}
    results: dict[str, str | None] = {}
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
            case.call_and_validate(base_url=url, headers=headers)

        try:
            call()
            results[operation.label] = None
        except (Exception, BaseExceptionGroup) as exc:  # each operation's failures are reported
            results[operation.label] = f"{type(exc).__name__}: {str(exc)[:2000]}"
    return results
