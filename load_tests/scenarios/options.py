"""This package's Locust command-line options (``--pushpop-*``) and their parsed form.

Why a dataclass with defaults: the same code runs under ``locust -f``, where Locust
parsed the options, and under tools that build an ``Environment`` without them; both
must see the same defaults.
"""

from __future__ import annotations

from dataclasses import dataclass, field, fields
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:  # importing Locust monkey-patches the process (gevent)
    from locust.env import Environment


def _flag(
    help: str, *, web_ui: bool = False, zero_ok: bool = False, **argparse_kw: Any
) -> dict[str, Any]:
    """Field metadata: the option's help (its flag is ``--pushpop-<field name>``);
    ``zero_ok``: 0 is a value, not "use the default" (as blank and 0 are elsewhere)."""
    return {"help": help, "web_ui": web_ui, "zero_ok": zero_ok, "argparse": argparse_kw}


@dataclass
class Options:
    """This package's command-line options, with defaults when Locust did not parse any.

    Each option is declared once, as a field: :func:`add_arguments` builds Locust's
    ``--pushpop-*`` options from the fields and :meth:`of` reads them back.
    """

    model: str = field(
        default="closed",
        metadata=_flag(
            "closed: users wait for answers (Locust's model); open: arrivals on a timetable",
            web_ui=True, choices=["closed", "open"],
        ),
    )  # fmt: skip
    out: str = field(
        default="", metadata=_flag("directory for histograms, ledger and depth samples")
    )
    run_id: str = field(default="", metadata=_flag("prefix of this run's queue ids"))
    time_scale: float = field(
        default=1.0,
        metadata=_flag("multiply every shape's durations by this (0.1 = ten times faster)",
                       web_ui=True),
    )  # fmt: skip
    bucket: float = field(default=1.0, metadata=_flag("histogram bucket (s)"))
    drain_limit: int = field(
        default=20_000,
        metadata=_flag(
            "drain (and check by id) at most this many leftover items; purge the rest",
            zero_ok=True,
        ),
    )
    generators: int = field(
        default=1, metadata=_flag("open model: users (arrival generators) sharing a shape's rate")
    )
    depth_interval: float = field(
        default=1.0, metadata=_flag("seconds between queue-depth samples")
    )

    @classmethod
    def of(cls, environment: Environment) -> Options:
        po = environment.parsed_options
        if po is None:
            return cls()
        values: dict[str, Any] = {}
        for f in fields(cls):
            raw = getattr(po, f"pushpop_{f.name}", None)
            # blank (the web UI's empty field) or 0 means the default, unless 0 is a value
            if raw not in (None, "") and (raw or f.metadata["zero_ok"]):
                values[f.name] = type(f.default)(raw)
        return cls(**values)

    def to_argv(self) -> list[str]:
        """These options as Locust's command line (what :func:`add_arguments` parses)."""
        argv: list[str] = []
        for f in fields(self):
            argv += [f"--pushpop-{f.name.replace('_', '-')}", str(getattr(self, f.name))]
        return argv

    @property
    def out_dir(self) -> Path | None:
        """Where results go; ``None`` = keep nothing on disk (workers, quick web-UI runs)."""
        return Path(self.out) if self.out else None


def add_arguments(parser: Any) -> None:
    """``init_command_line_parser`` listener (registered by :mod:`.listeners`)."""
    for f in fields(Options):
        extra: dict[str, Any] = dict(f.metadata["argparse"])
        if f.metadata["web_ui"]:
            extra["include_in_web_ui"] = True
        if not isinstance(f.default, str):
            extra.setdefault("type", type(f.default))
        parser.add_argument(
            f"--pushpop-{f.name.replace('_', '-')}",
            default=f.default,
            help=f.metadata["help"],
            **extra,
        )
