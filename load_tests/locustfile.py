"""pushpop scenarios for Locust's own command line and web UI.

    locust -f load_tests/locustfile.py --headless --users 10 --spawn-rate 5 \
        --run-time 20s --csv r/run --host http://127.0.0.1:8000      # S3a, as the plan says
    locust -f load_tests/locustfile.py --host http://127.0.0.1:8000  # web UI, S3a ticked
    PUSHPOP_SCENARIOS=S3,S1a locust -f load_tests/locustfile.py      # other classes to pick
    locust -f load_tests/locustfile.py,load_tests/shapes.py          # ... and rate shapes

Why only S3a by default: Locust runs (and its class picker ticks) every user class a
locustfile exposes, so exposing all 27 would start the PostgreSQL-restart and
million-item scenarios next to the one a first run wants. ``PUSHPOP_SCENARIOS`` takes
variant ids, groups (``S4``) or ``all``, resolved through the catalogue.

Why shapes live in their own file: Locust ignores ``--users``, ``--spawn-rate`` and
``--run-time`` as soon as a locustfile exposes a ``LoadTestShape``; the plan's
commands must keep meaning what they say.

Why ``register_listeners(events)`` here: this package's command-line options,
measurement and ledger hang on Locust events; importing its modules registers
nothing, so the locustfile -- the one module Locust loads in every process, local,
master or worker -- adds them, once.

The class picker is on by default (``LOCUST_USERCLASS_PICKER``), so the web UI always
lets you untick or add classes; it changes nothing headless.
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
