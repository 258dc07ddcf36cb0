"""The segment encoder must produce exactly what a fresh encoding would, whatever happened."""

from __future__ import annotations

import json
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from actor_service.serializer import SegmentEncoder, dumps

ops = st.lists(
    st.one_of(
        st.tuples(st.just("push"), st.integers(1, 5)),
        st.tuples(st.just("pop"), st.integers(1, 5)),
        st.tuples(st.just("give_back"), st.integers(1, 3)),
        st.tuples(st.just("switch"), st.integers(0, 2)),
    ),
    max_size=60,
)


@settings(max_examples=300, deadline=None)
@given(ops)
def test_encoding_matches_a_fresh_encoding(script: list[tuple[str, int]]) -> None:
    """Random appends, pops and give-backs over three segments, through a tiny cache
    (so that evictions happen): every encoding decodes to the segment as it is now."""
    enc = SegmentEncoder(max_segments=2)
    segments: dict[str, dict[str, Any]] = {f"s:1:{k}": {"start": 0, "items": []} for k in range(3)}
    key = "s:1:0"
    n = 0
    for op, arg in script:
        seg = segments[key]
        if op == "push":
            for _ in range(arg):
                n += 1
                seg["items"].append([n, {"n": n, "text": 'é\u2028"x\\'}, n / 3])
        elif op == "pop":
            taken = seg["items"][:arg]
            del seg["items"][:arg]
            seg["start"] += len(taken)
        elif op == "give_back":
            # like a released lock: fresh lists with the same content go back in front
            back = [[n + i + 1000, {"back": i}, 0.5] for i in range(arg)]
            seg["items"][0:0] = back
            seg["start"] -= arg
        else:
            key = f"s:1:{arg}"
            continue
        out = enc.encode(key, seg)
        assert json.loads(out) == json.loads(dumps(seg))


def test_a_recycled_object_id_is_never_mistaken_for_a_cached_entry() -> None:
    enc = SegmentEncoder()
    seg: dict[str, Any] = {"start": 0, "items": [[1, {"v": "old"}, 1.0]]}
    enc.encode("s:1:0", seg)
    seg["items"].pop()  # the old entry may be freed and its id() reused right away
    for i in range(200):
        seg["items"] = [[i, {"v": f"new{i}"}, 2.0]]
        assert json.loads(enc.encode("s:1:0", seg))["items"] == [[i, {"v": f"new{i}"}, 2.0]]


json_values = st.recursive(
    st.none()
    | st.booleans()
    | st.integers(-(2**80), 2**80)
    | st.floats(allow_nan=False, allow_infinity=False)
    | st.text(),
    lambda inner: st.lists(inner, max_size=5) | st.dictionaries(st.text(), inner, max_size=5),
    max_leaves=30,
)


@settings(max_examples=300, deadline=None)
@given(json_values)
def test_dumps_is_the_standard_librarys_compact_json(value: Any) -> None:
    """The C encoder built once encodes as ``json.dumps`` with the same options does."""
    want = json.dumps(value, separators=(",", ":"), ensure_ascii=False, allow_nan=False)
    assert dumps(value) == want.encode()


def test_dumps_refuses_a_lone_surrogate() -> None:
    """What api.validation.item answers INVALID_ITEM for: no UTF-8 for that text."""
    with pytest.raises(UnicodeEncodeError):
        dumps({"a": ["x\ud800"]})


@pytest.mark.parametrize("value", [float("nan"), {"a": [float("inf")]}, -float("inf")])
def test_dumps_refuses_nan_and_infinity(value: Any) -> None:
    with pytest.raises(ValueError, match="not JSON compliant"):
        dumps(value)


def test_dumps_refuses_what_json_cannot_carry() -> None:
    with pytest.raises(TypeError, match="not JSON serializable"):
        dumps({"a": object()})
