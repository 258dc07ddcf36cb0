"""Locust load shapes: thin adapters from a pure :class:`~load_tests.schedules.Schedule`.

A shape answers Locust's "how many users now?" from the schedule: in the open model a
fixed number of generators for the whole run (each reading its share of the rate), in
the closed model enough users that ``users * rate_per_user`` matches the rate. Time
starts when the load starts (after prepopulation). ``--pushpop-time-scale`` shortens them.
"""

from __future__ import annotations

from typing import Any, ClassVar

from locust import LoadTestShape

from load_tests.scenarios.options import Options
from load_tests.scenarios.run_state import STATE
from load_tests.scenarios.users import MAX_LATENESS, QueueUser, target_users
from load_tests.schedules import Constant, Schedule, Sine, Spike, Square, Steps

SPAWN_RATE = 200.0  # users/s: shapes change load by rate, never by slow spawning


class RateShape(LoadTestShape):
    """Run a schedule; instantiate with one (``pushpop-bench``) or subclass with a default."""

    abstract = True
    default: ClassVar[Schedule | None] = None

    def __init__(self, schedule: Schedule | None = None, generators: int | None = None) -> None:
        super().__init__()
        self._schedule = schedule
        self._generators = generators

    def _options(self) -> Options:
        env = self.runner.environment if self.runner else None
        return Options.of(env) if env else Options()

    @property
    def schedule(self) -> Schedule:
        if self._schedule is None:
            if self.default is None:
                raise TypeError(f"{type(self).__name__} needs a schedule")
            self._schedule = self.default.scaled(self._options().time_scale)
        return self._schedule

    @property
    def generators(self) -> int:
        return self._generators or self._options().generators

    def get_run_time(self) -> float:
        return STATE.run.elapsed()

    def tick(self) -> tuple[int, float] | None:
        elapsed = self.get_run_time()
        rate = self.schedule.rate_at(elapsed)
        open_model = self._options().model == "open"
        if rate is None:
            # open model: a generator running late (a busy host) still owes the arrivals
            # due before the end; it starts each within MAX_LATENESS of its slot or counts
            # it dropped, so keep it alive that long rather than cut its last ones off
            if open_model and elapsed < self.schedule.duration + MAX_LATENESS:
                return self.generators, SPAWN_RATE
            return None
        if open_model:
            return self.generators, SPAWN_RATE
        return target_users(rate, self._per_user_rate()), SPAWN_RATE

    def _per_user_rate(self) -> float:
        classes: list[Any] = list(self.runner.environment.user_classes) if self.runner else []
        rates = [c.rate_per_user for c in classes if issubclass(c, QueueUser)]
        return min(rates) if rates else 10.0


class ConstantRateShape(RateShape):
    """50 req/s for a minute: the steady scenarios."""

    default = Constant(rate=50, length_s=60)


class StepRampShape(RateShape):
    """10 -> 100 req/s in ten 12-second plateaus (S1a, S2a): where is the knee?"""

    default = Steps(start=10, end=100, count=10, length_s=120)


class SineBurstShape(RateShape):
    """S6a: 10 -> 200 -> 10 req/s over five minutes."""

    default = Sine(low=10, high=200, period_s=300)


class SquareBurstShape(RateShape):
    """S6b: 30 s at 200 / 30 s at 10 req/s, after a 30 s calm lead-in."""

    default = Square(high=200, low=10, high_s=30, low_s=30, cycles=2)


class SpikeBurstShape(RateShape):
    """S6c: four minutes at 50, one at 500, then a minute at 50 to watch recovery."""

    default = Spike(base=50, spike=500, base_s=240, spike_s=60, tail_s=60)


__all__ = [
    "ConstantRateShape",
    "RateShape",
    "SineBurstShape",
    "SpikeBurstShape",
    "SquareBurstShape",
    "StepRampShape",
]
