"""Compatibility for ``load_tests/headless.py``, the one importer outside this package.

The shared scenario code now lives in modules by role (``users``, ``api_calls``,
``api_client``, ``run_state``, ``options``, ``listeners``, ``lifecycle``, ``drain``).
``headless.py`` still imports this module, uses ``base.QueueUser`` and
``base.FINISHED``, and relies on the import registering the listeners on Locust's
global ``events`` before it builds its parser. Until it calls
:func:`~load_tests.scenarios.listeners.register_listeners` itself, this module does
that here; nothing else should import it.
"""

from __future__ import annotations

import locust

from load_tests.scenarios.listeners import register_listeners
from load_tests.scenarios.run_state import STATE
from load_tests.scenarios.users import QueueUser

FINISHED = STATE.finished  # the same event for the whole process (RunState keeps it)

register_listeners(locust.events)

__all__ = ["FINISHED", "QueueUser"]
