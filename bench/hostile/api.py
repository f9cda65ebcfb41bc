"""The API over the hostile run's database: schemathesis over every operation, and every
route against every kind of key."""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import date, timedelta

import httpx
import schemathesis

from bench.hostile.checks import Row, row
from bench.hostile.feed import RiderFacts
from tests.api.fuzz import run_operations

KEYS = ("none", "read", "read,pii", "read,admin")
# The scope each documented operation needs (None: open). A route missing here fails the run,
# so a new route cannot go unchecked.
SCOPES: dict[tuple[str, str], str | None] = {
    ("GET", "/ride/{ride_id}"): "read",
    ("GET", "/ride/{ride_id}/duration"): "read",
    ("DELETE", "/ride/{ride_id}"): "admin",
    ("GET", "/rider/{user_id}"): "read",
    ("GET", "/rider/{user_id}/rides"): "read",
    ("GET", "/rider/{user_id}/duration"): "read",
    ("GET", "/daily"): "read",
    ("GET", "/leaderboard"): "read",
    ("GET", "/city/{city}"): "read",
    ("GET", "/fleet/health"): "read",
    ("GET", "/stats/{resolution}"): "read",
    ("GET", "/export"): "admin",
    ("GET", "/settings"): "admin",
    ("PATCH", "/settings"): "admin",  # without a body: changes nothing, answers the settings
    ("GET", "/settings/audit"): "admin",
    ("GET", "/health"): None,
    ("GET", "/metrics"): None,
}
PERSONAL_ROUTE = ("GET", "/rider/{user_id}")


@dataclass(frozen=True)
class Target:
    """Existing ids the routes are called with."""

    ride_id: int
    deletable: tuple[int, ...]  # one ride per key for the DELETE column (only admin's goes)
    rider: RiderFacts
    day: str


def expected_status(scope: str | None, key: str) -> int:
    if scope is None:
        return 200
    if key == "none":
        return 401
    return 200 if scope in key.split(",") else 403


def _path(template: str, t: Target, ride_id: int) -> str:
    path = template.format(
        ride_id=ride_id, user_id=t.rider.user_id, city=t.rider.city, resolution="daily"
    )
    query = {
        "/daily": f"?date={t.day}",
        "/export": f"?from={t.day}&to={date.fromisoformat(t.day) + timedelta(days=1)}",
    }
    return path + query.get(template, "")


def _strings(body: object) -> str:
    """Every string of a JSON body, one a line (escapes undone)."""
    if isinstance(body, dict):
        return "\n".join(_strings(v) for v in body.values())
    if isinstance(body, list):
        return "\n".join(_strings(v) for v in body)
    return body if isinstance(body, str) else ""


def authorization(url: str, tokens: dict[str, str], t: Target, personal: set[str]) -> list[Row]:
    """Every route x every key: the status expected, and personal data only with `pii`."""
    schema = json.loads(httpx.get(f"{url}/openapi.json", timeout=30).text)
    routes = [(m.upper(), p) for p, ops in schema["paths"].items() for m in ops]
    unknown = [r for r in routes if r not in SCOPES]
    cells, wrong, leaks, personal_ok = 0, [], [], False
    ordered = sorted(routes, key=lambda r: r[0] == "DELETE")  # deletions last
    for method, template in ordered:
        if (method, template) not in SCOPES:
            continue
        for i, key in enumerate(KEYS):
            ride_id = t.deletable[i] if method == "DELETE" else t.ride_id
            headers = {"Authorization": f"Bearer {tokens[key]}"} if key != "none" else {}
            r = httpx.request(
                method, url + _path(template, t, ride_id), headers=headers, timeout=30
            )
            cells += 1
            want = expected_status(SCOPES[(method, template)], key)
            if r.status_code != want:
                wrong.append(f"{method} {template} [{key}]: {r.status_code} (want {want})")
            body = r.json() if "json" in r.headers.get("content-type", "") else r.text
            text = _strings(body) if not isinstance(body, str) else body
            may_show = (method, template) == PERSONAL_ROUTE and "pii" in key
            found = sorted(s for s in personal if s in text)
            if found and not may_show:
                leaks.append(f"{method} {template} [{key}]: {found[:3]}")
            if may_show and r.status_code == 200:
                p = body["personal"]
                personal_ok = (
                    p["first_name"], p["last_name"], p["email_address"], p["postcode"],
                    p["address_line"], p["date_of_birth"],
                ) == (
                    t.rider.first_name, t.rider.last_name, t.rider.email_address,
                    t.rider.postcode, t.rider.address_line, t.rider.date_of_birth.isoformat(),
                )  # fmt: skip
            elif (
                (method, template) == PERSONAL_ROUTE
                and r.status_code == 200
                and body.get("personal") is not None
            ):
                leaks.append(f"{method} {template} [{key}]: personal block")
    return [
        row("API routes documented without an expected scope", [], unknown),
        row("authorization cells with the expected status", cells, cells - len(wrong), "; ".join(wrong[:5])),
        row("responses with personal data without pii", 0, len(leaks), "; ".join(leaks[:3])),
        row("personal data with pii equals what was sent", True, personal_ok),
    ]  # fmt: skip


def fuzz(url: str, token: str, max_examples: int) -> list[Row]:
    """schemathesis, valid and invalid requests, over every documented operation."""
    rows = []
    for mode in schemathesis.GenerationMode:
        results = run_operations(url, token, mode, max_examples)
        failed = {label: why for label, why in results.items() if why}
        note = "; ".join(f"{k}: {v[:300]}" for k, v in list(failed.items())[:2])
        rows.append(
            row(f"schemathesis {mode.value}: operations passing", len(results), len(results) - len(failed), note)
        )  # fmt: skip
    return rows
