"""State stores: one narrow interface (:mod:`.base`), several real backends.

``postgres`` is the production store, ``sqlite`` the zero-setup default and
``memory`` the in-memory twin for unit tests of pure logic.

Import from the submodules: the package re-exports nothing, so no submodule's import
runs back through it (tests/unit/test_layout.py counts that as a cycle).
"""
