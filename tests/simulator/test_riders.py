"""The rider population looks like the real one: titles, hyphens, both address shapes, old riders."""

from __future__ import annotations

import json
import re

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from services.simulator.fleet import Fleet, FleetConfig
from services.simulator.pool import RiderPool, pool_size
from services.simulator.riders import Rider, make_cities, make_rider, safe_max_hr
from tests.simulator import grammar
from tests.simulator.conftest import START

NOW_MS = int(START.timestamp() * 1000)


@pytest.fixture(scope="module")
def riders() -> list[Rider]:
    cities = make_cities(0)
    return [make_rider(0, i, NOW_MS, cities) for i in range(400)]


def test_every_system_payload_passes_the_grammar(riders: list[Rider]) -> None:
    for rider in riders:
        data = grammar.check_system(rider.system_json("SN0042"))
        assert data["bike_serial"] == "SN0042"


def test_names_carry_titles_with_and_without_dots(riders: list[Rider]) -> None:
    titles = {r.name.split()[0] for r in riders if len(r.name.split()) == 3}
    assert {"Mr", "Mrs", "Miss", "Ms", "Mx", "Dr", "Prof"} <= {t.rstrip(".") for t in titles}
    assert any(t.endswith(".") for t in titles) and any(not t.endswith(".") for t in titles)
    assert any("-" in r.name.split()[-1] for r in riders)


def test_both_address_shapes(riders: list[Rider]) -> None:
    flats = [r for r in riders if re.match(r"(Flat|Studio) \d+,", r.address)]
    streets = [r for r in riders if re.match(r"\d+ [^,]+,[^,]+,[^,]+$", r.address)]
    assert flats and streets
    assert len(flats) + len(streets) == len(riders)


def test_ages_genders_and_dates(riders: list[Rider]) -> None:
    assert any(r.date_of_birth < 0 for r in riders), "nobody born before 1970"
    assert any(r.age_at(NOW_MS) < 18 for r in riders)
    assert any(r.age_at(NOW_MS) >= 75 for r in riders)
    genders = {r.gender for r in riders}
    assert {"male", "female"} < genders
    assert all(r.date_of_birth < r.account_create_date < NOW_MS for r in riders)


def test_cities_repeat_so_rides_cluster(riders: list[Rider]) -> None:
    cities = [r.address.split(",")[-2] for r in riders]
    assert len(set(cities)) < len(cities) / 5


def test_rider_depends_only_on_seed_and_index() -> None:
    cities = make_cities(3)
    assert make_rider(3, 17, NOW_MS, cities) == make_rider(3, 17, NOW_MS, cities)
    assert make_rider(3, 17, NOW_MS, cities) != make_rider(4, 17, NOW_MS, cities)


@pytest.mark.parametrize(
    ("age", "gender", "expected"),
    [(30, "male", 190.0), (50, "male", 173.0), (50, "female", 162.0), (50, "other", 162.0)],
)
def test_safe_maximum_formulas(age: float, gender: str, expected: float) -> None:
    assert safe_max_hr(age, gender) == pytest.approx(expected)


def test_pool_is_smaller_than_the_rides_and_bigger_than_the_fleet() -> None:
    assert bikes_fit(pool_size(10, 20), 10, 200)
    assert bikes_fit(pool_size(100, 30), 100, 3000)
    assert pool_size(10, None) >= 15


def bikes_fit(size: int, bikes: int, rides: int) -> bool:
    return bikes < size < rides


def test_pool_hands_out_each_rider_once() -> None:
    pool = RiderPool(0, 5, NOW_MS)
    taken = [pool.acquire() for _ in range(5)]
    assert len({r.user_id for r in taken}) == 5
    with pytest.raises(RuntimeError):
        pool.acquire()
    pool.release(taken[2])
    assert pool.acquire() == taken[2]


RESERVED_SECOND_LEVEL = ("example.com", "example.org", "example.net")
RESERVED_TLDS = ("example", "test")


def is_reserved_domain(address: str) -> bool:
    """Whether an address's domain is reserved for examples (RFC 2606 / RFC 6761)."""
    domain = address.rpartition("@")[2].lower()
    labels = domain.split(".")
    return labels[-1] in RESERVED_TLDS or ".".join(labels[-2:]) in RESERVED_SECOND_LEVEL


@settings(max_examples=40, deadline=None)
@given(
    seed=st.integers(min_value=0, max_value=2**32),
    bikes=st.integers(min_value=1, max_value=60),
    rides=st.integers(min_value=1, max_value=3),
)
def test_every_simulated_address_is_under_a_reserved_domain(
    seed: int, bikes: int, rides: int
) -> None:
    # Load tests drive hundreds of these riders over their limit: a real domain would mail
    # health warnings to strangers once SES is real.
    fleet = Fleet(FleetConfig(bikes=bikes, rides=rides, seconds=2, seed=seed, start=START))
    for rider in fleet.pool.riders:
        assert is_reserved_domain(rider.email_address), rider.email_address
    sent = 0
    for msg in fleet.messages():
        line = grammar.parse_value(msg.value)
        kind, found = grammar.classify(line)
        if kind == "system":
            address = json.loads(found["json"])["email_address"]
            assert is_reserved_domain(address), address
            sent += 1
    assert sent == bikes * rides


def test_reserved_domains_keep_their_variety(riders: list[Rider]) -> None:
    domains = {r.email_address.rpartition("@")[2] for r in riders}
    assert len(domains) >= 6, domains
    assert "btinternet.example" in domains
