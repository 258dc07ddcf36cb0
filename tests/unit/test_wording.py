"""api.wording names JSON values as a client would, never with Python's type names."""

from __future__ import annotations

import json
from typing import Any

import pytest

from api.wording import describe, names, quoted


@pytest.mark.parametrize(
    ("value", "said"),
    [
        ("2", 'the string "2"'),
        ("", 'the string ""'),
        ('say "hi"', 'the string "say \\"hi\\""'),
        ("é", 'the string "é"'),
        (None, "null"),
        (True, "true"),
        (False, "false"),
        (2, "the number 2"),
        (2.5, "the number 2.5"),
        (-0.0, "the number -0.0"),
        ([1, 2], "a list"),
        ([], "a list"),
        ({}, "an object"),
        ({"a": 1}, "an object"),
    ],
    ids=repr,
)
def test_describe_in_json_words(value: Any, said: str) -> None:
    assert describe(value) == said


def test_long_text_and_numbers_are_cut() -> None:
    said = describe("x" * 500)
    assert said == 'the string "' + "x" * 40 + '…"'
    assert describe(10**100) == "the number " + "1" + "0" * 39 + "…"


def test_lone_surrogate_is_escaped_so_the_answer_can_be_encoded() -> None:
    literal = quoted("a\ud800b")
    literal.encode()  # would raise if the surrogate were kept raw
    assert json.loads(literal) == "a\ud800b"


def test_names() -> None:
    assert names({"b", "a", "c"}) == "a, b or c"
    assert names({"depth"}) == "depth"
    assert names(set()) == "nothing"
