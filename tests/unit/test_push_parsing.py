"""The one-pass push parsing answers exactly what the standard library's path answers.

``api.validation.parse_json`` takes msgspec's value only when it is certainly the
standard library's (with its duplicate-key, NaN and range checks); everything else goes
the standard library's way. These tests compare both paths on generated and hostile
bodies, and check that the bytes a pushed item carries are the ones ``dumps`` gives.
"""

from __future__ import annotations

import hashlib
import json
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from starlette.requests import Request

from actor_service.errors import InvalidRequest, ItemTooLarge
from actor_service.serializer import EncodedItem, SegmentEncoder, dumps, encode_entry
from api import validation as v

# text that stresses the colon count: colons raw and escaped, backslashes, quotes
TEXT = st.text(alphabet=st.sampled_from(list('a:b\\"é😀\u2028\x00 ')), max_size=8)
KEYS = st.sampled_from(["a", "b", "a:", ":", "item", "priority", "x\\:y"]) | TEXT
SCALARS = (
    st.none()
    | st.booleans()
    | st.integers(-(2**70), 2**70)
    | st.floats(allow_nan=False, allow_infinity=False)
    | TEXT
)
VALUES = st.recursive(
    SCALARS,
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(KEYS, inner, max_size=4),
    max_leaves=20,
)


def slow(body: bytes) -> tuple[str, Any]:
    """The standard library's answer: ("ok", value) or ("error", code and message)."""
    try:
        return "ok", v._slow_json(body)
    except InvalidRequest as err:
        return "error", (err.code, err.message)


def fast(body: bytes) -> tuple[str, Any]:
    try:
        return "ok", v.parse_json(body)
    except InvalidRequest as err:
        return "error", (err.code, err.message)


def same(a: tuple[str, Any], b: tuple[str, Any]) -> bool:
    """Equal answers, values compared by their exact JSON (1 vs 1.0, -0.0 vs 0.0)."""
    if a[0] != b[0]:
        return False
    if a[0] == "error":
        return a == b
    return json.dumps(a[1]) == json.dumps(b[1]) and a[1] == b[1]


def with_duplicate(text: str) -> str:
    """``text`` (an object's JSON) with its first key given again."""
    head, _, rest = text.partition(",")
    return head + "," + head[1:] + ("," + rest if rest else "}") if rest else text


@settings(max_examples=400, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(VALUES, st.booleans(), st.booleans())
def test_any_body_answers_as_the_standard_library_does(
    value: Any, ascii_escapes: bool, duplicate: bool
) -> None:
    text = json.dumps(value, ensure_ascii=ascii_escapes)  # \u escapes of ':' and the rest too
    if duplicate and isinstance(value, dict) and value:
        text = with_duplicate(text)
    body = text.encode("utf-8", "surrogatepass")
    assert same(fast(body), slow(body)), body


@pytest.mark.parametrize(
    "body",
    [
        b'{"a":1,"a":2}',
        b'{"item":{"k":1,"k":1}}',
        b'{"a":1,"a":"\\u003a"}',  # an escaped colon cannot hide a duplicate
        b'{"a":1,"a":"\\u003A"}',
        b'{"a":"\\u003a","a":1}',
        b'{"a:":1,"a:":2}',
        b'{"items":[{"item":{"x":1}},{"item":{"y":[{"z":1,"z":2}]}}]}',
        b'{"a":"\\ud800"}',
        b'{"a":"\\ud83d\\ude00"}',
        b'{"a":"\xff"}',
        b'\xef\xbb\xbf{"a":1}',
        b'{"a":NaN}',
        b'{"a":-Infinity}',
        b'{"a":1e999}',
        b'{"a":' + b"7" * 4300 + b"}",
        b'{"a":' + b"7" * 4301 + b"}",
        b'{"a":1.5' + b"0" * 3000 + b"}",
        b'{"a":01}',
        b'{"a":1}x',
        b"",
        b" ",
        b'"just a string"',
        b"[" * 129 + b"]" * 129,
        b"[" * 100_000,
        b'{"a":"\\\\u003a","a":2}',
    ],
)
def test_hostile_bodies_answer_as_the_standard_library_does(body: bytes) -> None:
    assert same(fast(body), slow(body))


def test_the_fast_path_is_taken_for_an_ordinary_body() -> None:
    """Not a test of speed: that the common body does not silently take the slow way."""
    body = b'{"item": {"url": "http://x/y", "n": 1.5, "tags": ["a"]}, "priority": 3}'
    assert v._fast_json(body) is not v._SLOW
    assert v._fast_json(b'{"a":1,"a":2}') is v._SLOW


@settings(max_examples=200, deadline=None)
@given(
    st.lists(
        st.tuples(
            st.dictionaries(KEYS, VALUES, max_size=4),
            st.integers(0, 2**31 - 1),
            st.none() | st.integers(0, 86_400),
        ),
        min_size=1,
        max_size=4,
    )
)
def test_pushed_items_carry_their_dumps_and_the_fingerprint_is_of_the_body_as_parsed(
    entries: list[tuple[dict[str, Any], int, int | None]],
) -> None:
    body_entries = []
    for item, priority, delay in entries:
        entry: dict[str, Any] = {"item": item, "priority": priority}
        if delay is not None:
            entry["delay_seconds"] = delay
        body_entries.append(entry)
    body = json.dumps({"items": body_entries}).encode()
    parsed = v.push_body(body, 1 << 20)
    for got in parsed:
        assert type(got["item"]) is EncodedItem
        assert got["item"].json == dumps(dict(got["item"]))
    plain = [{**e, "item": dict(e["item"])} for e in parsed]
    assert v.fingerprint(parsed) == hashlib.sha256(dumps(plain)).hexdigest()
    # each entry as the state machine queues it, encoded as a fresh encoding would
    for n, got in enumerate(parsed):
        queued = [n + 1, got["item"], 1_765_000_000.25 + n / 7]
        want = dumps([n + 1, dict(got["item"]), queued[2]])
        assert encode_entry(queued) == want
        assert encode_entry(queued) == want  # the carried bytes are used once, then dropped


def test_a_segment_of_pushed_items_encodes_as_dumps_does() -> None:
    items = v.push_body(b'{"items":[{"item":{"a":1e300}},{"item":{"b":"\\u003a\\u00e9"}}]}', 99)
    seg = {"start": 7, "items": [[7 + i, e["item"], 1.5 * i] for i, e in enumerate(items)]}
    assert SegmentEncoder().encode("s:1:0", seg) == dumps(seg)


def test_an_item_too_large_is_measured_as_stored() -> None:
    item = {"a": 1e-05}  # stored as 1e-05 (11 bytes with the braces)
    body = json.dumps({"item": item}).encode()
    assert len(dumps(item)) == 11
    assert v.push_body(body, 11)[0]["item"] == item
    with pytest.raises(ItemTooLarge, match="11 bytes serialized"):
        v.push_body(body, 10)


def test_a_header_reads_as_starlettes_request_headers_get() -> None:
    raw = [(b"host", b"x"), (b"idempotency-key", b"k\xe9-1"), (b"idempotency-key", b"second")]
    scope = {"type": "http", "headers": raw}
    for name in (b"idempotency-key", b"host", b"authorization"):
        assert v.header(scope, name) == Request(scope).headers.get(name.decode())
