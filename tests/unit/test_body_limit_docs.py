"""The request body limit: what the docs and the Compose proxy say is what the service does.

The nginx example (once in the README, now in docs/security.md) said 8 MiB "matches
PUSHPOP_MAX_BODY_BYTES" while the setting was 72 MiB: a proxy set up from it refused
full pushes with nginx's own HTML 413. These tests read the documents (the nginx
example, the limits table of docs/operations.md) and compare them with the setting's
default, and check that the default takes the largest push the API allows.
"""

from __future__ import annotations

import json
import re
from dataclasses import fields
from pathlib import Path

from actor_service.serializer import dumps
from api.settings import Settings
from api.validation import MAX_PUSH

ROOT = Path(__file__).resolve().parents[2]
UNITS = {"": 1, "k": 1024, "m": 1024**2, "g": 1024**3}


def default(name: str) -> int:
    value = next(f.default for f in fields(Settings) if f.name == name)
    assert isinstance(value, int)
    return value


def nginx_sizes(text: str) -> list[int]:
    """Every ``client_max_body_size N[kmg];`` in ``text``, in bytes."""
    found = re.findall(r"client_max_body_size\s+([0-9]+)([kKmMgG]?)\s*;", text)
    return [int(n) * UNITS[unit.lower()] for n, unit in found]


def test_nginx_example_matches_the_default_body_limit() -> None:
    security = (ROOT / "docs" / "security.md").read_text()
    block = re.search(r"```nginx\n(.*?)```", security, re.S)
    assert block, "docs/security.md has no nginx example"
    assert nginx_sizes(block.group(1)) == [default("max_body_bytes")]


def test_compose_proxy_takes_what_the_service_takes() -> None:
    conf = (ROOT / "deploy" / "compose" / "nginx.conf").read_text()
    sizes = nginx_sizes(conf)
    assert sizes and all(s == default("max_body_bytes") for s in sizes), sizes


def test_docs_state_the_default_in_mib() -> None:
    """The limits table of docs/operations.md, and the README's settings table."""
    mib = default("max_body_bytes") // 1024**2
    operations = (ROOT / "docs" / "operations.md").read_text()
    row = re.search(r"^\| `PUSHPOP_MAX_BODY_BYTES` \| ([0-9]+) MiB \|", operations, re.M)
    assert row and int(row.group(1)) == mib
    readme = (ROOT / "README.md").read_text()
    pair = re.search(r"^\|[^\n]*`PUSHPOP_MAX_BODY_BYTES` \|[^|\n]* ([0-9]+) MiB \|", readme, re.M)
    assert pair and int(pair.group(1)) == mib


def test_default_body_limit_takes_a_full_push() -> None:
    """1000 items of exactly the item limit, in the bulk form a client sends with Python's
    default separators and every optional field: under the body limit."""
    item_limit = default("max_item_bytes")
    filler = "x" * (item_limit - len(dumps({"p": ""})))
    item = {"p": filler}
    assert len(dumps(item)) == item_limit
    entry = {"item": item, "priority": 2**31 - 1, "delay_seconds": 86400}
    body = json.dumps({"items": [entry] * MAX_PUSH}).encode()
    assert len(body) <= default("max_body_bytes"), len(body)
