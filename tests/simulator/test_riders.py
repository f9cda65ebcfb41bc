"""The rider population looks like the real one: titles, hyphens, both address shapes, old riders."""

from __future__ import annotations

import re

import pytest

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
