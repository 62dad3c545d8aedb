"""Durations: seconds or '90s', '15m', '1h30m'."""

import pytest
from traitlets import HasTraits, TraitError

from lsst_spawner.config import Duration, parse_duration


@pytest.mark.parametrize(
    ("value", "seconds"),
    [
        (90, 90.0),
        (2.5, 2.5),
        ("90", 90.0),
        ("90s", 90.0),
        ("15m", 900.0),
        ("1h30m", 5400.0),
        ("1d", 86400.0),
        ("250ms", 0.25),
        (" 2h 5s ", 7205.0),
        ("1.5h", 5400.0),
        (0, 0.0),
    ],
)
def test_parse_duration(value: object, seconds: float) -> None:
    assert parse_duration(value) == seconds


@pytest.mark.parametrize(
    "value",
    [
        "",
        "soon",
        "10x",
        "m",
        "1h30",
        "h1",
        "-5s",
        -1,
        True,
        None,
        [5],
        "1e400",
        float("nan"),
        "5s5",
    ],
)
def test_parse_duration_rejects(value: object) -> None:
    with pytest.raises(ValueError, match="duration"):
        parse_duration(value)


class Timeouts(HasTraits):
    spawn = Duration("5m", minimum=1)


def test_duration_trait_converts_and_names_itself() -> None:
    timeouts = Timeouts()
    assert timeouts.spawn == 300.0
    timeouts.spawn = "1h"
    assert timeouts.spawn == 3600.0
    with pytest.raises(TraitError, match=r"Timeouts\.spawn: cannot parse duration 'later'"):
        timeouts.spawn = "later"
    with pytest.raises(TraitError, match=r"Timeouts\.spawn: must be at least 1s, not '500ms'"):
        timeouts.spawn = "500ms"
