"""Line formatting: values byte-identical to json.dumps, power as a raw float repr."""

from __future__ import annotations

import json

import pytest

from services.simulator import lines
from services.simulator.models import Bike


def test_fast_values_equal_json_dumps() -> None:
    prefix = "2022-11-03 18:42:12.422793 mendoza v9: "
    ride = lines.ride_value(prefix, 12, 30)
    assert ride == lines.log_value(prefix + "[INFO]: Ride - duration = 12.0; resistance = 30")
    telemetry = lines.telemetry_value(prefix, 117, 45, "11.75724842")
    expected = prefix + "[INFO]: Telemetry - hrt = 117; rpm = 45; power = 11.75724842\n"
    assert telemetry == json.dumps({"log": expected}).encode()


def test_log_value_escapes_like_the_real_feed() -> None:
    value = lines.log_value('x [SYSTEM] data = {"name":"Zoë"}')
    assert value == b'{"log": "x [SYSTEM] data = {\\"name\\":\\"Zo\\u00eb\\"}\\n"}'


@pytest.mark.parametrize(("resistance", "rpm"), [(30, 40), (99, 67), (170, 100), (10, 1)])
def test_power_is_a_raw_float_repr_of_ten_significant_digits(resistance: int, rpm: int) -> None:
    text = lines.power_text(resistance, rpm)
    assert text == repr(float(text))
    assert float(text) == pytest.approx(lines.power_watts(resistance, rpm), rel=1e-9)
    assert "e" not in text


def test_power_is_zero_without_resistance_or_cadence() -> None:
    assert lines.power_text(0, 80) == "0.0"
    assert lines.power_text(30, 0) == "0.0"


def test_power_is_close_to_the_real_capture() -> None:
    # (resistance, rpm) -> power seen in the real sample.
    for (resistance, rpm), real in {(30, 45): 11.757, (99, 85): 135.28, (170, 110): 565.35}.items():
        assert lines.power_watts(resistance, rpm) == pytest.approx(real, rel=0.3)


def test_power_keeps_the_feeds_float_noise_sometimes() -> None:
    texts = {lines.power_text(r, rpm) for r in (30, 99, 170) for rpm in range(1, 150)}
    assert any(len(t.split(".")[1]) > 10 for t in texts)


def test_seconds_text() -> None:
    assert lines.SecondsText()(1667500920) == "2022-11-03 18:42:00"


def test_bike_model_must_be_plain() -> None:
    assert Bike("SN0001", "mendoza v9", 0).key == b"SN0001"
    with pytest.raises(ValueError):
        Bike("SN0001", 'bad"model v1', 0)
