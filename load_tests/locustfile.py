"""pushpop scenarios for Locust's own command line and web UI (load_tests/README.md).

Only S3a by default, and no shape: Locust runs every user class a locustfile exposes,
and ignores ``--users``/``--run-time`` once it exposes a ``LoadTestShape`` (those are in
``shapes.py``). ``PUSHPOP_SCENARIOS`` takes ids, groups or ``all``. The listeners are
registered here, the one module Locust loads in every process.
"""

from __future__ import annotations

import os

from locust import events

from load_tests import catalog
from load_tests.scenarios.listeners import register_listeners

DEFAULT_SCENARIOS = "S3a"


def exposed_classes(selector: str) -> dict[str, type]:
    """User classes of the variants ``selector`` names (``S3a,S1`` or ``all``), by name."""
    out: dict[str, type] = {}
    for part in filter(None, (p.strip() for p in selector.split(","))):
        for variant in catalog.resolve(part, include_extra=True):
            cls = catalog.load_user_class(variant.user)
            out[cls.__name__] = cls
    return out


register_listeners(events)
os.environ.setdefault("LOCUST_USERCLASS_PICKER", "true")
globals().update(exposed_classes(os.environ.get("PUSHPOP_SCENARIOS", DEFAULT_SCENARIOS)))
