"""Values named in error messages, in the API's words rather than Python's.

A client sent JSON (or a query string), so a message says what it sent in those terms:
``the string "2"``, ``null``, ``true``, ``a list``, not ``str``, ``NoneType``, ``True``
or ``'2'``. Every message of :mod:`api.validation` and :mod:`api.auth` that describes a
value goes through here.
"""

from __future__ import annotations

import json
from typing import Any

SHOWN = 40  # characters of a client's text quoted back at most


def quoted(text: str) -> str:
    """``text`` as a JSON string literal, cut to :data:`SHOWN` characters (``"abc…"``)."""
    cut = text if len(text) <= SHOWN else text[:SHOWN] + "…"
    literal = json.dumps(cut, ensure_ascii=False)
    try:
        literal.encode()
    except UnicodeEncodeError:  # a lone surrogate ("\ud800"): escaped, or the answer fails
        literal = json.dumps(cut)
    return literal


def describe(value: Any) -> str:
    """A JSON value as a client would name it: ``the string "2"``, ``null``, ``true``,
    ``the number 2.5``, ``a list``, ``an object``."""
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int | float):
        digits = json.dumps(value)
        return f"the number {digits if len(digits) <= SHOWN else digits[:SHOWN] + '…'}"
    if isinstance(value, str):
        return f"the string {quoted(value)}"
    if isinstance(value, list):
        return "a list"
    if isinstance(value, dict):
        return "an object"
    return "a value of no JSON type"  # not reachable from a parsed JSON body


def names(allowed: frozenset[str] | set[str]) -> str:
    """``a, b or c`` (sorted), for "takes ..." messages; ``nothing`` when empty."""
    items = sorted(allowed)
    if not items:
        return "nothing"
    return items[0] if len(items) == 1 else ", ".join(items[:-1]) + " or " + items[-1]
