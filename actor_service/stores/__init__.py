"""State stores: one narrow interface (:mod:`.base`), several real backends.

``postgres`` is the production store, ``sqlite`` the zero-setup default and
``memory`` the in-memory twin for unit tests of pure logic.
"""

from actor_service.stores.base import StateStore, actor_key
from actor_service.stores.factory import open_store

__all__ = ["StateStore", "actor_key", "open_store"]
