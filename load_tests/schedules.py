"""Arrival-rate schedules: the target requests/s of a run as a pure function of time.

Why a separate, Locust-free module: the same schedule drives three things that must
agree exactly -- the Locust shape (``shapes.py``), the open-model generators on every
worker (which rebuild it from :meth:`Schedule.to_spec` sent by the master), and the
analysis, which replays it to know the target rate of each second, the plateaus of a
step ramp (knee search) and the burst windows (recovery time). Keeping it pure also
means the analysis and the tests never import Locust (which monkey-patches the process
with gevent).

Every duration is in seconds; :meth:`Schedule.scaled` shrinks all of them by a
time-scale factor for quick runs while leaving the rates alone.
"""

from __future__ import annotations

import math
from abc import ABC, abstractmethod
from dataclasses import asdict, dataclass, fields, replace
from typing import Any, ClassVar

__all__ = [
    "Constant",
    "Schedule",
    "Sine",
    "Spike",
    "Square",
    "Steps",
    "schedule_from_spec",
]


@dataclass(frozen=True)
class Schedule(ABC):
    """Target arrival rate over ``[0, duration)``; ``rate_at`` is ``None`` once it is over."""

    kind: ClassVar[str] = "abstract"

    @property
    @abstractmethod
    def duration(self) -> float:
        """Total length of the schedule in seconds."""

    @abstractmethod
    def _rate(self, t: float) -> float:
        """Rate at ``0 <= t < duration``."""

    def rate_at(self, t: float) -> float | None:
        """Target requests/s at ``t`` seconds after the load started, ``None`` after the end."""
        if t >= self.duration:
            return None
        return self._rate(max(0.0, t))

    def steps(self) -> list[tuple[float, float, float]]:
        """Plateaus ``(start, end, rate)``; the knee search only makes sense on these."""
        return []

    def bursts(self) -> list[tuple[float, float]]:
        """Windows ``(start, end)`` of high load; recovery is measured from each ``end``."""
        return []

    def peak(self) -> float:
        """Highest target rate (sampled), used to size the generators' in-flight pools."""
        n = max(2, int(self.duration * 10))
        return max(self._rate(self.duration * i / n) for i in range(n))

    def mean_rate(self) -> float:
        """Average target rate: the expected request count is ``mean_rate * duration``."""
        n = max(2, int(self.duration * 20))
        return sum(self._rate(self.duration * (i + 0.5) / n) for i in range(n)) / n

    def scaled(self, factor: float) -> Schedule:
        """The same pattern with every duration multiplied by ``factor`` (rates unchanged)."""
        if factor <= 0:
            raise ValueError(f"time scale must be positive, got {factor}")
        changes = {f.name: getattr(self, f.name) * factor for f in fields(self) if _is_time(f.name)}
        return replace(self, **changes)

    def to_spec(self) -> dict[str, Any]:
        """JSON-able description; :func:`schedule_from_spec` rebuilds an equal schedule."""
        return {"kind": self.kind, **asdict(self)}

    def describe(self) -> str:
        """One line for reports."""
        params = ", ".join(f"{k}={v:g}" for k, v in asdict(self).items())
        return f"{self.kind}({params})"


def _is_time(name: str) -> bool:
    return name.endswith("_s")


@dataclass(frozen=True)
class Constant(Schedule):
    """A steady rate: most scenarios' "N req/s"."""

    kind: ClassVar[str] = "constant"
    rate: float
    length_s: float

    @property
    def duration(self) -> float:
        return self.length_s

    def _rate(self, t: float) -> float:
        return self.rate

    def steps(self) -> list[tuple[float, float, float]]:
        return [(0.0, self.length_s, self.rate)]


@dataclass(frozen=True)
class Steps(Schedule):
    """A staircase from ``start`` to ``end`` in ``count`` equal plateaus.

    Why steps rather than a straight ramp: the highest sustainable rate (the knee) is
    only well defined on plateaus long enough for queues and latency to settle.
    """

    kind: ClassVar[str] = "steps"
    start: float
    end: float
    count: int
    length_s: float

    @property
    def duration(self) -> float:
        return self.length_s

    def _step_rate(self, i: int) -> float:
        if self.count <= 1:
            return self.end
        return self.start + (self.end - self.start) * i / (self.count - 1)

    def _rate(self, t: float) -> float:
        i = min(self.count - 1, int(t / (self.length_s / self.count)))
        return self._step_rate(i)

    def steps(self) -> list[tuple[float, float, float]]:
        width = self.length_s / self.count
        return [(i * width, (i + 1) * width, self._step_rate(i)) for i in range(self.count)]


@dataclass(frozen=True)
class Sine(Schedule):
    """``low`` -> ``high`` -> ``low`` as a raised cosine, ``cycles`` times.

    Starting and ending at ``low`` gives a calm baseline before the swell and a calm
    tail after it, which is where recovery is observed.
    """

    kind: ClassVar[str] = "sine"
    low: float
    high: float
    period_s: float
    cycles: int = 1

    @property
    def duration(self) -> float:
        return self.period_s * self.cycles

    def _rate(self, t: float) -> float:
        phase = 2 * math.pi * (t % self.period_s) / self.period_s
        return self.low + (self.high - self.low) * (1 - math.cos(phase)) / 2

    def bursts(self) -> list[tuple[float, float]]:
        # above the midpoint between low and high: the middle half of every period
        return [
            (c * self.period_s + self.period_s / 4, c * self.period_s + 3 * self.period_s / 4)
            for c in range(self.cycles)
        ]


@dataclass(frozen=True)
class Square(Schedule):
    """A calm lead-in at ``low``, then ``cycles`` x (``high_s`` at ``high``, ``low_s`` at ``low``).

    The lead-in is there so the first burst has a measured baseline to recover to.
    """

    kind: ClassVar[str] = "square"
    high: float
    low: float
    high_s: float
    low_s: float
    cycles: int = 2

    @property
    def duration(self) -> float:
        return self.low_s + self.cycles * (self.high_s + self.low_s)

    def _rate(self, t: float) -> float:
        if t < self.low_s:
            return self.low
        offset = (t - self.low_s) % (self.high_s + self.low_s)
        return self.high if offset < self.high_s else self.low

    def bursts(self) -> list[tuple[float, float]]:
        out = []
        for c in range(self.cycles):
            start = self.low_s + c * (self.high_s + self.low_s)
            out.append((start, start + self.high_s))
        return out


@dataclass(frozen=True)
class Spike(Schedule):
    """``base_s`` at ``base``, ``spike_s`` at ``spike``, then ``tail_s`` at ``base`` again.

    The tail is not in the original plan (4 min + 1 min): without it the run would end
    at the top of the spike and there would be no recovery to measure.
    """

    kind: ClassVar[str] = "spike"
    base: float
    spike: float
    base_s: float
    spike_s: float
    tail_s: float

    @property
    def duration(self) -> float:
        return self.base_s + self.spike_s + self.tail_s

    def _rate(self, t: float) -> float:
        return self.spike if self.base_s <= t < self.base_s + self.spike_s else self.base

    def bursts(self) -> list[tuple[float, float]]:
        return [(self.base_s, self.base_s + self.spike_s)]


_KINDS: dict[str, type[Schedule]] = {
    cls.kind: cls for cls in (Constant, Steps, Sine, Square, Spike)
}


def schedule_from_spec(spec: dict[str, Any]) -> Schedule:
    """Rebuild a schedule from :meth:`Schedule.to_spec` (workers, analysis)."""
    params = dict(spec)
    kind = params.pop("kind")
    try:
        cls = _KINDS[kind]
    except KeyError:
        raise ValueError(f"unknown schedule kind {kind!r}; known: {sorted(_KINDS)}") from None
    return cls(**params)
