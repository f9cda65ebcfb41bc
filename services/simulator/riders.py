"""Riders: who they are (the SYSTEM payload) and how their heart behaves."""

from __future__ import annotations

import json
from dataclasses import dataclass
from random import Random

from services.simulator import names

DAY_MS = 86_400_000
YEAR_DAYS = 365.2425
# Age bands (lower bound, weight): mostly working-age adults, some teens and over-75s.
_AGE_BANDS = ((14, 3), (18, 12), (25, 20), (35, 20), (45, 17), (55, 14), (65, 10), (75, 4))
_AGE_WIDTH = 10
# One rider in this many pushes past their safe maximum heart rate on every ride.
RISKY_EVERY = 25


@dataclass(frozen=True, slots=True)
class Rider:
    """A registered user: the SYSTEM fields plus the physiology the simulation needs."""

    user_id: int
    name: str
    gender: str
    address: str
    date_of_birth: int
    email_address: str
    height_cm: int
    weight_kg: int
    account_create_date: int
    original_source: str
    fitness: float
    resting_hr: float
    loyalty: float
    pushes_past_max: bool

    def age_at(self, epoch_ms: int) -> float:
        """Age in years at an instant."""
        return (epoch_ms - self.date_of_birth) / DAY_MS / YEAR_DAYS

    def system_json(self, bike_serial: str) -> str:
        """The compact JSON of a SYSTEM line, keys in the order of the real feed."""
        return json.dumps(
            {
                "user_id": self.user_id,
                "name": self.name,
                "gender": self.gender,
                "address": self.address,
                "date_of_birth": self.date_of_birth,
                "email_address": self.email_address,
                "height_cm": self.height_cm,
                "weight_kg": self.weight_kg,
                "account_create_date": self.account_create_date,
                "bike_serial": bike_serial,
                "original_source": self.original_source,
            },
            separators=(",", ":"),
        )


def safe_max_hr(age: float, gender: str) -> float:
    """Published maximum: Fox for men under 40, Tanaka for older men, Gulati otherwise."""
    if gender == "male":
        return 220.0 - age if age < 40 else 208.0 - 0.7 * age
    return 206.0 - 0.88 * age


def make_cities(seed: int, count: int = 24) -> list[str]:
    """A seeded set of towns, a few real ones first, so rides cluster by city."""
    rng = Random(f"{seed}:cities")
    cities = list(names.REAL_CITIES[:4])
    while len(cities) < count:
        city = rng.choice(names.SURNAMES).replace("'", "") + rng.choice(names.CITY_SUFFIXES)
        if city not in cities:
            cities.append(city)
    return cities


def make_rider(seed: int, index: int, now_ms: int, cities: list[str]) -> Rider:
    """Rider number `index` of a seeded population (independent of the population size)."""
    rng = Random(f"{seed}:rider:{index}")
    gender = _gender(rng)
    first, last = _first_name(rng, gender), _surname(rng)
    age = _age(rng)
    today = now_ms // DAY_MS
    dob_day = today - int(age * YEAR_DAYS) - rng.randrange(1, 365)
    height = _height(rng, gender)
    bmi = min(max(rng.normalvariate(26.0, 4.0), 17.0), 42.0)
    fitness = min(max(rng.betavariate(2.2, 2.2) - max(0.0, age - 50) * 0.006, 0.02), 0.98)
    return Rider(
        user_id=index + 1,
        name=_display_name(rng, gender, first, last),
        gender=gender,
        address=_address(rng, cities),
        date_of_birth=dob_day * DAY_MS,
        email_address=_email(rng, first, last),
        height_cm=height,
        weight_kg=round(bmi * (height / 100) ** 2),
        account_create_date=(today - rng.randrange(1, 4 * 365)) * DAY_MS,
        original_source=rng.choices(names.SOURCES, names.SOURCE_WEIGHTS)[0],
        fitness=fitness,
        resting_hr=78.0 - 26.0 * fitness + rng.uniform(-5.0, 5.0),
        loyalty=rng.uniform(0.15, 1.0),
        pushes_past_max=index % RISKY_EVERY == RISKY_EVERY // 3,
    )


def _gender(rng: Random) -> str:
    roll = rng.random()
    if roll < 0.485:
        return "male"
    if roll < 0.97:
        return "female"
    return rng.choice(names.OTHER_GENDERS)


def _first_name(rng: Random, gender: str) -> str:
    if gender == "male":
        return rng.choice(names.MALE_FIRST)
    if gender == "female":
        return rng.choice(names.FEMALE_FIRST)
    return rng.choice(names.NEUTRAL_FIRST)


def _surname(rng: Random) -> str:
    last = rng.choice(names.SURNAMES)
    if rng.random() < 0.1:
        last = f"{last}-{rng.choice(names.SURNAMES)}"
    return last


def _display_name(rng: Random, gender: str, first: str, last: str) -> str:
    if rng.random() >= 0.18:
        return f"{first} {last}"
    titles = {"male": names.TITLES_MALE, "female": names.TITLES_FEMALE}
    return f"{rng.choice(titles.get(gender, names.TITLES_OTHER))} {first} {last}"


def _age(rng: Random) -> float:
    low = rng.choices([b for b, _ in _AGE_BANDS], [w for _, w in _AGE_BANDS])[0]
    width = 4 if low == 14 else (7 if low == 18 else _AGE_WIDTH)
    return low + rng.random() * width


def _height(rng: Random, gender: str) -> int:
    mean, sd = {"male": (176.0, 7.0), "female": (163.0, 6.5)}.get(gender, (170.0, 8.0))
    return round(rng.normalvariate(mean, sd))


def _postcode(rng: Random) -> str:
    area = rng.choice(names.POSTCODE_AREAS)
    letters = "ABDEFGHJLNPQRSTUWXYZ"
    return f"{area}{rng.randrange(1, 99)} {rng.randrange(10)}{rng.choice(letters)}{rng.choice(letters)}"


def _address(rng: Random, cities: list[str]) -> str:
    # Zipf-like weights: a few big towns hold most riders.
    city = rng.choices(cities, [1.0 / (i + 1) for i in range(len(cities))])[0]
    street = f"{rng.choice(names.SURNAMES)} {rng.choice(names.STREET_SUFFIXES)}"
    if rng.random() < 0.35:
        unit = rng.choice(("Flat", "Flat", "Studio"))
        return f"{unit} {rng.randrange(1, 80)},{street},{city},{_postcode(rng)}"
    return f"{rng.randrange(0, 300)} {street},{city},{_postcode(rng)}"


def _email(rng: Random, first: str, last: str) -> str:
    f, surname = first.lower(), last.lower().replace("'", "")
    local = rng.choice(
        (
            f"{f}.{surname[0]}",
            f"{f}.{surname}",
            f"{f}{surname}{rng.randrange(1, 99)}",
            f"{f[0]}.{surname}",
            f"{f}_{surname}",
        )
    )
    return f"{local}@{rng.choice(names.EMAIL_DOMAINS)}"
