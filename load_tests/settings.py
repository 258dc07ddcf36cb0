"""How variants are run: one :class:`RunSettings` from the command line to the load generator.

Why the child options are declared here, on the fields: the orchestrator hands the
settings to ``python -m load_tests.headless`` as command-line options, and the child
parses them back. Both directions are generated from the same field metadata
(:meth:`RunSettings.headless_argv` and :func:`add_headless_arguments` /
:meth:`RunSettings.from_headless_args`), so an option cannot be added on one side and
forgotten on the other.
"""

from __future__ import annotations

import argparse
from dataclasses import asdict, dataclass, field, fields
from pathlib import Path
from typing import Any


def _child(flag: str, **argparse_kw: Any) -> dict[str, Any]:
    """Field metadata: this setting goes to the load-generator child as ``flag``."""
    return {"child": flag, "argparse": argparse_kw}


@dataclass
class RunSettings:
    """How to run variants (the command line's options, minus what to run)."""

    duration: float | None = field(  # steady variants' length; None = the catalogue's 60 s
        default=None, metadata=_child("--duration", type=float, help="seconds (steady variants)")
    )
    time_scale: float = field(  # shrinks the intrinsic shapes (S6)
        default=1.0, metadata=_child("--time-scale", type=float)
    )
    bucket: float = field(  # histogram bucket width (s)
        default=1.0, metadata=_child("--bucket", type=float)
    )
    workers: int = field(  # Locust workers (0 = one local process)
        default=0, metadata=_child("--workers", type=int)
    )
    model: str = field(default="open", metadata=_child("--model", choices=["open", "closed"]))
    users: int = field(  # closed model only
        default=8, metadata=_child("--users", type=int, help="closed model: concurrent users")
    )
    drain_limit: int = field(default=20_000, metadata=_child("--drain-limit", type=int))
    monitor_interval: float = 1.0
    thresholds: Path | None = None
    overrides: list[str] = field(  # user class attributes k=v
        default_factory=list,
        metadata=_child("--set", action="append", help="user class attribute k=v"),
    )
    report: bool = True
    label: str = ""  # prefix of queue ids (unique per invocation)
    fault_outage: float | None = None  # seconds a fault keeps its component down
    abort: list[str] = field(default_factory=list)  # thresholds that stop the run early
    abort_grace: float | None = None  # seconds of load before they count (default 10)
    live_port: int | None = None  # serve live metrics on this port (0: any free one)

    def to_dict(self) -> dict[str, Any]:
        d = asdict(self)
        d["thresholds"] = str(self.thresholds) if self.thresholds else None
        return d

    # ------------------------------------------------------------------ the child's argv
    def headless_argv(self, *, variant: str, host: str, out: Path, run_id: str) -> list[str]:
        """The options of ``python -m load_tests.headless`` for one variant run."""
        argv = ["--variant", variant, "--host", host, "--out", str(out), "--run-id", run_id]
        for f in _child_fields():
            value = getattr(self, f.name)
            flag = f.metadata["child"]
            if isinstance(value, list):
                for item in value:
                    argv += [flag, str(item)]
            elif value is not None:
                argv += [flag, str(value)]
        return argv

    @classmethod
    def from_headless_args(cls, args: argparse.Namespace) -> RunSettings:
        """The settings back from what :func:`add_headless_arguments` parsed."""
        return cls(**{f.name: getattr(args, f.name) for f in _child_fields()})


def _child_fields() -> list[Any]:
    return [f for f in fields(RunSettings) if "child" in f.metadata]


def add_headless_arguments(parser: argparse.ArgumentParser) -> None:
    """The child's options for every setting it receives, with the settings' defaults."""
    defaults = RunSettings()
    for f in _child_fields():
        default = getattr(defaults, f.name)
        parser.add_argument(
            f.metadata["child"], dest=f.name, default=default, **f.metadata["argparse"]
        )
