"""This package's Locust command-line options (``--pushpop-*``) and their parsed form.

Why a dataclass with defaults: the same code runs under ``locust -f``, where Locust
parsed the options, and under tools that build an ``Environment`` without them; both
must see the same defaults.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

from locust.env import Environment


@dataclass
class Options:
    """This package's command-line options, with defaults when Locust did not parse any."""

    model: str = "closed"
    out: str = ""
    run_id: str = ""
    time_scale: float = 1.0
    bucket: float = 1.0
    drain_limit: int = 20_000
    generators: int = 1
    depth_interval: float = 1.0

    @classmethod
    def of(cls, environment: Environment) -> Options:
        po = environment.parsed_options
        if po is None:
            return cls()
        d = cls()
        return cls(
            model=getattr(po, "pushpop_model", d.model) or d.model,
            out=getattr(po, "pushpop_out", d.out) or "",
            run_id=getattr(po, "pushpop_run_id", d.run_id) or "",
            time_scale=float(getattr(po, "pushpop_time_scale", d.time_scale) or d.time_scale),
            bucket=float(getattr(po, "pushpop_bucket", d.bucket) or d.bucket),
            drain_limit=int(getattr(po, "pushpop_drain_limit", d.drain_limit)),
            generators=int(getattr(po, "pushpop_generators", d.generators) or d.generators),
            depth_interval=float(
                getattr(po, "pushpop_depth_interval", d.depth_interval) or d.depth_interval
            ),
        )

    @property
    def out_dir(self) -> Path | None:
        """Where results go; ``None`` = keep nothing on disk (workers, quick web-UI runs)."""
        return Path(self.out) if self.out else None


def add_arguments(parser: Any) -> None:
    """``init_command_line_parser`` listener (registered by :mod:`.listeners`)."""
    parser.add_argument(
        "--pushpop-model",
        choices=["closed", "open"],
        default="closed",
        include_in_web_ui=True,
        help="closed: users wait for answers (Locust's model); open: arrivals on a timetable",
    )
    parser.add_argument(
        "--pushpop-out", default="", help="directory for histograms, ledger and depth samples"
    )
    parser.add_argument("--pushpop-run-id", default="", help="prefix of this run's queue ids")
    parser.add_argument(
        "--pushpop-time-scale",
        type=float,
        default=1.0,
        include_in_web_ui=True,
        help="multiply every shape's durations by this (0.1 = ten times faster)",
    )
    parser.add_argument("--pushpop-bucket", type=float, default=1.0, help="histogram bucket (s)")
    parser.add_argument(
        "--pushpop-drain-limit",
        type=int,
        default=20_000,
        help="drain (and check by id) at most this many leftover items; purge the rest",
    )
    parser.add_argument(
        "--pushpop-generators",
        type=int,
        default=1,
        help="open model: users (arrival generators) sharing a shape's rate",
    )
    parser.add_argument("--pushpop-depth-interval", type=float, default=1.0)
