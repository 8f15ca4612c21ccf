"""Think times and conversation lengths: the distributions the conversation scenario draws."""

from __future__ import annotations

import math
import random
import statistics

import pytest

from loadtest.thinking import ThinkTime, draw_turns, parse_range


def test_lognormal_has_the_median_and_spread_asked_for() -> None:
    think = ThinkTime("lognormal", median_s=8.0, sigma=0.6, cap_s=1000.0)
    rng = random.Random(3)
    draws = [think.draw(rng) for _ in range(20_000)]
    assert statistics.median(draws) == pytest.approx(8.0, rel=0.03)
    assert statistics.stdev(math.log(d) for d in draws) == pytest.approx(0.6, rel=0.03)
    assert statistics.fmean(draws) == pytest.approx(8.0 * math.exp(0.18), rel=0.03)


def test_lognormal_is_capped_not_redrawn() -> None:
    think = ThinkTime("lognormal", median_s=8.0, sigma=1.5, cap_s=20.0)
    rng = random.Random(5)
    draws = [think.draw(rng) for _ in range(5_000)]
    assert max(draws) == 20.0
    # P(X > 20) for median 8, sigma 1.5 is 1 - Phi(ln(2.5) / 1.5) = 27 %: all of them at the cap.
    assert sum(d == 20.0 for d in draws) / len(draws) == pytest.approx(0.27, abs=0.03)


def test_sigma_zero_is_the_median_every_time() -> None:
    think = ThinkTime("lognormal", median_s=2.5, sigma=0.0)
    assert all(think.draw(random.Random(n)) == pytest.approx(2.5) for n in range(5))


def test_uniform_stays_in_its_bounds_and_a_fixed_value_is_that_value() -> None:
    rng = random.Random(1)
    draws = [ThinkTime("uniform", low_s=1.0, high_s=3.0).draw(rng) for _ in range(1000)]
    assert 1.0 <= min(draws) < 1.1 and 2.9 < max(draws) <= 3.0
    assert ThinkTime("uniform", low_s=2.0, high_s=2.0).draw(rng) == 2.0


def test_draws_are_reproducible_per_seed() -> None:
    think = ThinkTime("lognormal")
    first = [think.draw(random.Random(9)) for _ in range(3)]
    assert first == [think.draw(random.Random(9)) for _ in range(3)]


@pytest.mark.parametrize(
    ("kwargs", "says"),
    [
        ({"distribution": "pareto"}, "one of uniform, lognormal"),
        ({"distribution": "lognormal", "median_s": 0.0}, "median must be > 0"),
        ({"distribution": "lognormal", "sigma": -0.1}, "sigma must be >= 0"),
        ({"distribution": "lognormal", "cap_s": 0.0}, "cap must be > 0"),
        ({"distribution": "uniform", "low_s": 3.0, "high_s": 1.0}, "low <= high"),
    ],
)
def test_nonsense_distributions_are_refused_in_one_line(kwargs: dict, says: str) -> None:
    with pytest.raises(ValueError, match=says):
        ThinkTime(**kwargs)


def test_turn_ranges() -> None:
    assert parse_range("3-8") == (3, 8)
    assert parse_range("5") == (5, 5)
    rng = random.Random(2)
    turns = [draw_turns((3, 8), rng) for _ in range(500)]
    assert set(turns) == set(range(3, 9))
    assert draw_turns((4, 4), rng) == 4


@pytest.mark.parametrize("text", ["0", "8-3", "x", "1.5", "", "2-"])
def test_bad_turn_ranges_name_the_option(text: str) -> None:
    with pytest.raises(ValueError, match="--conversation-turns"):
        parse_range(text, "--conversation-turns")
