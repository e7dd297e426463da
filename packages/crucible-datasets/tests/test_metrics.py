"""Metrics: known values, extraction on realistic answers, and invariants."""

from __future__ import annotations

import math
from itertools import pairwise, product

import pytest
from hypothesis import given
from hypothesis import strategies as st

import crucible_datasets as cd

words = st.lists(
    st.sampled_from(
        ["the", "cat", "sat", "on", "a", "mat", "dog", "ran", "Paris", "42"]
    ),
    max_size=12,
).map(" ".join)
texts = st.one_of(words, st.text(max_size=30))


def test_exact_match_normalization_numbers_and_types() -> None:
    em = cd.exact_match
    assert em("The Eiffel Tower.", "eiffel tower") == 1.0
    assert em("  PARIS  ", "paris") == 1.0
    assert em("1,234", 1234) == 1.0
    assert em("$18.00", "18") == 1.0
    assert em(0.1 + 0.2, 0.3) == 1.0
    assert em("3.0001", "3", numeric_tolerance=1e-3) == 1.0
    assert em("3.01", "3", numeric_tolerance=1e-3) == 0.0
    assert em(True, "true") == 1.0
    assert em("Lyon", ["Paris", "lyon"]) == 1.0
    assert em("A", "the") == 0.0  # both normalize to "", but they are different answers
    assert em("A", "a") == 1.0
    assert em(None, "x") == 0.0
    assert em("7", "8") == 0.0
    with pytest.raises(ValueError, match="numeric_tolerance"):
        em("1", "1", numeric_tolerance=-1)


def test_token_f1_is_squad_style_bag_of_tokens() -> None:
    assert cd.token_f1("cat cat", "cat") == pytest.approx(2 / 3)  # bags, not sets
    assert cd.token_f1("the cat sat on the mat", "a cat on a mat") == pytest.approx(
        6 / 7
    )
    assert cd.token_f1("", "") == 1.0
    assert cd.token_f1("x", "") == 0.0
    assert cd.token_f1(
        "Barack Obama", ["Obama", "Barack Hussein Obama"]
    ) == pytest.approx(0.8)
    assert cd.token_f1(None, "a") == 0.0


def test_bleu_chrf_rouge_known_values() -> None:
    import sacrebleu

    hyp, ref = "the cat is on the mat", "there is a cat on the mat"
    assert cd.bleu(hyp, ref) == pytest.approx(
        sacrebleu.sentence_bleu(hyp, [ref]).score / 100
    )
    assert cd.chrf(hyp, ref) == pytest.approx(
        sacrebleu.sentence_chrf(hyp, [ref]).score / 100
    )
    assert cd.bleu(ref, ref) == pytest.approx(1.0)
    assert cd.chrf(ref, ref) == pytest.approx(1.0)
    assert cd.rouge_l(
        "police killed the gunman", "police kill the gunman"
    ) == pytest.approx(0.75)
    assert cd.rouge_l(
        "the gunman police killed", "police killed the gunman"
    ) == pytest.approx(0.5)
    assert cd.rouge_l("", "") == 1.0
    assert cd.bleu(None, "x") == cd.chrf(None, "x") == cd.rouge_l(None, "x") == 0.0


@pytest.mark.parametrize(
    ("text", "letter"),
    [
        ("The answer is (B).", "B"),
        ("The answer is B", "B"),
        ("Answer: C", "C"),
        ("answer: (d)", "D"),
        ("After thinking, the correct option is A because...", "A"),
        ("**B**", "B"),
        ("I pick **(C)**.", "C"),
        ("B.", "B"),
        ("B", "B"),
        ("c", "C"),
        ("(D) 42", "D"),
        ("A) Paris", "A"),
        ("Let's see: (A) is wrong, so the answer is (C).", "C"),
        ("I think it's (B)", "B"),
        ("I am not sure.", None),
        ("A cat is an animal", None),
        ("", None),
        (None, None),
    ],
)
def test_extract_choice(text: str | None, letter: str | None) -> None:
    assert cd.extract_choice(text) == letter


@pytest.mark.parametrize(
    ("text", "number"),
    [
        ("She sells 9 eggs.\n#### 18", "18"),
        ("#### 1,234", "1234"),
        ("So the answer is 1,234.5.", "1234.5"),
        ("The answer is $12.", "12"),
        ("Answer: -3", "-3"),
        ("Thus \\boxed{42}.", "42"),
        ("5 apples and 7 pears make 12", "12"),
        ("It costs 18.00 dollars", "18"),
        ("no digits here", None),
        (42, "42"),
        (None, None),
    ],
)
def test_extract_number(text: object, number: str | None) -> None:
    assert cd.extract_number(text) == number


@pytest.mark.parametrize(
    ("text", "label"),
    [
        ("SUPPORTS", "SUPPORTS"),
        ("supported", "SUPPORTS"),
        ("SUPPORT", "SUPPORTS"),
        ("entailment", "SUPPORTS"),
        ("REFUTES", "REFUTES"),
        ("CONTRADICT", "REFUTES"),
        ("false", "REFUTES"),
        ("NOT ENOUGH INFO", "NOT ENOUGH INFO"),
        ("not_enough_info", "NOT ENOUGH INFO"),
        ("NEI", "NOT ENOUGH INFO"),
        ("The claim is refuted by the evidence.", "REFUTES"),
        ("There is not enough information to support it.", "NOT ENOUGH INFO"),
        ("The evidence does not support the claim.", None),
        ("banana", None),
        (None, None),
    ],
)
def test_normalize_label(text: str | None, label: str | None) -> None:
    assert cd.normalize_label(text) == label


def test_pass_at_k_matches_the_combinatorial_definition() -> None:
    for n, c, k in product(range(1, 12), range(12), range(1, 12)):
        if c > n or k > n:
            continue
        exact = 1 - math.comb(n - c, k) / math.comb(n, k)
        assert cd.pass_at_k(n, c, k) == pytest.approx(exact, abs=1e-12)
    assert cd.pass_at_k(1, 1, 1) == 1.0
    assert cd.pass_at_k(5, 0, 3) == 0.0
    for bad in ((3, 4, 1), (3, 1, 4), (3, 1, 0), (3, -1, 1)):
        with pytest.raises(ValueError, match="c <= n"):
            cd.pass_at_k(*bad)
    with pytest.raises(ValueError, match="whole number"):
        cd.pass_at_k(3.0, 1, 1)  # type: ignore[arg-type]


@given(texts, texts)
def test_text_metrics_are_bounded(a: str, b: str) -> None:
    for metric in (cd.exact_match, cd.token_f1, cd.rouge_l, cd.bleu, cd.chrf):
        assert 0.0 <= metric(a, b) <= 1.0


@given(texts, texts)
def test_symmetric_metrics(a: str, b: str) -> None:
    assert cd.exact_match(a, b) == cd.exact_match(b, a)
    assert cd.token_f1(a, b) == pytest.approx(cd.token_f1(b, a))
    assert cd.rouge_l(a, b) == pytest.approx(cd.rouge_l(b, a))


@given(words)
def test_identity_scores_one(a: str) -> None:
    assert cd.exact_match(a, a) == 1.0
    assert cd.token_f1(a, a) == 1.0
    assert cd.rouge_l(a, a) == 1.0


@given(st.integers(1, 40), st.data())
def test_pass_at_k_is_bounded_and_monotone(n: int, data: st.DataObject) -> None:
    c = data.draw(st.integers(0, n))
    values = [cd.pass_at_k(n, c, k) for k in range(1, n + 1)]
    assert all(0.0 <= v <= 1.0 for v in values)
    assert all(a <= b + 1e-12 for a, b in pairwise(values))
    assert values[0] == pytest.approx(c / n)


@given(st.integers(-(10**9), 10**9), st.sampled_from(["", "$"]), st.booleans())
def test_extract_number_reads_formatted_integers(
    x: int, prefix: str, commas: bool
) -> None:
    shown = f"{abs(x):,}" if commas else str(abs(x))
    sign = "-" if x < 0 else ""
    assert cd.extract_number(f"so the answer is {sign}{prefix}{shown}.") == str(x)
