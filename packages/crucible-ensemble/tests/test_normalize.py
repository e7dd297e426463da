"""Answer normalizers."""

from __future__ import annotations

import pytest

from crucible_core.models import Request
from crucible_ensemble import (
    normalize_boolean,
    normalize_choice,
    normalize_code,
    normalize_label,
    normalize_number,
    normalize_text,
)
from crucible_ensemble._normalize import resolve_normalizer


@pytest.mark.parametrize(
    ("text", "choices", "expected"),
    [
        ("B", (), "B"),
        ("(c)", (), "C"),
        ("Answer: d", ("A", "B", "C", "D"), "D"),
        ("The answer is B.", ("A", "B", "C", "D"), "B"),
        ("I pick option (A) because", ("A", "B"), "A"),
        ("A or B", ("A", "B"), None),
        ("E", ("A", "B", "C", "D"), None),
        ("London", ("Paris", "London"), "London"),
        ("b) London", ("Paris", "London"), "London"),
        ("It is Paris, clearly", ("Paris", "London"), "Paris"),
        ("no idea", ("Paris", "London"), None),
    ],
)
def test_choice(text, choices, expected) -> None:
    assert normalize_choice(text, choices) == expected


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("42", "42"),
        ("The answer is 1,234.", "1234"),
        ("4.50", "4.5"),
        ("-3.0", "-3"),
        ("first 3 then 7", "7"),
        (".5", "0.5"),
        ("none", None),
    ],
)
def test_number(text, expected) -> None:
    assert normalize_number(text) == expected


def test_boolean_text_label_code() -> None:
    assert normalize_boolean("Yes.") == "true"
    assert normalize_boolean("I would say false") == "false"
    assert normalize_boolean("perhaps") is None
    assert normalize_text("The  Cat!") == "cat" and normalize_text("!!") is None
    assert normalize_label("NEGATIVE", ["positive", "negative"]) == "negative"
    assert normalize_label("positive or negative", ["positive", "negative"]) is None
    assert normalize_label("...", ["positive"]) is None
    assert normalize_code("x = 1  \n\n# c\ny = 2") == "x = 1\ny = 2"
    assert normalize_code("# only a comment") is None


def test_auto_follows_the_request() -> None:
    def auto(**fields):
        return resolve_normalizer("auto", Request(prompt="q", **fields))

    assert auto(kind="choice", choices=("A", "B"))("(b)") == "B"
    assert auto(kind="number")("= 12.0") == "12"
    assert auto(kind="code")("```\nreturn 1\n```") == "return 1"
    assert auto(kind="text", choices=("yes", "no"))("No!") == "no"
    assert auto(kind="text")("The End") == "end"
    assert resolve_normalizer("exact", Request(prompt="q"))(" X ") == "X"
    assert resolve_normalizer("boolean", Request(prompt="q"))("true") == "true"
    assert resolve_normalizer(str.upper, Request(prompt="q"))("x") == "X"
