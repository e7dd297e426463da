"""Answer extraction on labelled sets, and metrics against the official scorers.

References: the official SQuAD v1.1 evaluation script (its functions are copied verbatim below
from `evaluate-v1.1.py`, which is not packaged), and sacrebleu's `corpus_bleu`/`corpus_chrf`.
"""

from __future__ import annotations

import re
import string
from collections import Counter

import pytest
from hypothesis import given
from hypothesis import strategies as st

import crucible_datasets as cd

# --- the official SQuAD v1.1 script (evaluate-v1.1.py), verbatim ------------------------------


def squad_normalize_answer(s):  # type: ignore[no-untyped-def]
    """Lower text and remove punctuation, articles and extra whitespace."""

    def remove_articles(text):  # type: ignore[no-untyped-def]
        return re.sub(r"\b(a|an|the)\b", " ", text)

    def white_space_fix(text):  # type: ignore[no-untyped-def]
        return " ".join(text.split())

    def remove_punc(text):  # type: ignore[no-untyped-def]
        exclude = set(string.punctuation)
        return "".join(ch for ch in text if ch not in exclude)

    def lower(text):  # type: ignore[no-untyped-def]
        return text.lower()

    return white_space_fix(remove_articles(remove_punc(lower(s))))


def squad_f1_score(prediction, ground_truth):  # type: ignore[no-untyped-def]
    prediction_tokens = squad_normalize_answer(prediction).split()
    ground_truth_tokens = squad_normalize_answer(ground_truth).split()
    common = Counter(prediction_tokens) & Counter(ground_truth_tokens)
    num_same = sum(common.values())
    if num_same == 0:
        return 0
    precision = 1.0 * num_same / len(prediction_tokens)
    recall = 1.0 * num_same / len(ground_truth_tokens)
    f1 = (2 * precision * recall) / (precision + recall)
    return f1


def squad_exact_match_score(prediction, ground_truth):  # type: ignore[no-untyped-def]
    return squad_normalize_answer(prediction) == squad_normalize_answer(ground_truth)


# ------------------------------------------------------------------------------------------------

squad_text = st.lists(
    st.sampled_from(
        [*"abcAB .,!?-'\"«»é", "the", "a", "an", "The", " cat", "Paris", "—", "–", " "]
    ),
    max_size=12,
).map("".join)


@given(squad_text, squad_text)
def test_squad_mode_is_the_official_script(pred: str, ref: str) -> None:
    assert cd.normalize_answer(pred, normalize="squad") == squad_normalize_answer(pred)
    assert cd.exact_match(pred, ref, normalize="squad") == float(
        squad_exact_match_score(pred, ref)
    )
    assert cd.token_f1(pred, ref, normalize="squad") == pytest.approx(
        squad_f1_score(pred, ref)
    )


@given(squad_text, squad_text)
def test_em_and_f1_agree_when_both_normalise_to_nothing(pred: str, ref: str) -> None:
    if cd.normalize_answer(pred) == "" and cd.normalize_answer(ref) == "":
        assert cd.exact_match(pred, ref) == cd.token_f1(pred, ref)
    if cd.exact_match(pred, ref) == 1.0 and cd.normalize_answer(pred) == "":
        assert cd.token_f1(pred, ref) == 1.0


def test_em_and_f1_on_empty_answers() -> None:
    assert cd.exact_match("a", "the") == cd.token_f1("a", "the") == 0.0
    assert cd.exact_match("The", "the") == cd.token_f1("The", "the") == 1.0
    # the official script gives EM 1, F1 0 here; normalize="squad" keeps that exactly
    assert cd.exact_match("a", "the", normalize="squad") == 1.0
    assert cd.token_f1("a", "the", normalize="squad") == 0.0


# --- exact match on numbers ------------------------------------------------------------------


@pytest.mark.parametrize(
    ("pred", "ref", "score"),
    [
        ("1,450,001", "1,450,000", 0.0),
        ("1450000", "1,450,000", 1.0),
        ("1450000.0", 1450000, 1.0),
        ("18.00", "18", 1.0),
        ("18.4", "18", 0.0),
        ("0.333", "0.33", 1.0),
        ("0.3", "0.33", 0.0),
        ("0.335", "0.34", 1.0),
        ("3.14159", "3.14", 1.0),
        ("3.15", "3.14", 0.0),
        ("2.50", "2.5", 1.0),
        ("$1,000", "1000", 1.0),
        ("-7", "7", 0.0),
        ("50%", "50", 1.0),
        (0.1 + 0.2, 0.3, 1.0),
        (10**17 + 1, 10**17, 0.0),
    ],
)
def test_numbers_compare_exactly_or_at_the_stated_precision(
    pred: object, ref: object, score: float
) -> None:
    assert cd.exact_match(pred, ref) == score


def test_numeric_tolerance_is_an_explicit_extra() -> None:
    assert cd.exact_match("1,450,001", "1450000", numeric_tolerance=1e-6) == 1.0
    assert cd.exact_match("3.0001", "3", numeric_tolerance=1e-3) == 1.0


# --- GSM8K number extraction, a labelled set -------------------------------------------------

NUMBERS = [
    ("The answer is 25 - 7 = 18.", "18"),
    ("The answer is .5", "0.5"),
    ("The answer is -.25.", "-0.25"),
    ("So she has 3 + 4 = 7 apples. The answer is 7.", "7"),
    ("Total: 12 * 3 = 36\n#### 36", "36"),
    ("#### -4", "-4"),
    ("#### 1,234,567", "1234567"),
    ("She paid $1,250.50 in total. The answer is $1,250.50.", "1250.5"),
    ("The answer is: 42", "42"),
    ("Answer: \u22123", "-3"),
    ("The final answer is \\boxed{17}.", "17"),
    ("\\boxed{\\$1{,}000}", "1000"),
    ("So \\boxed{\\frac{3}{4}}", "0.75"),
    ("\\boxed{-12}", "-12"),
    ("He runs 5 miles a day for 7 days, so 5 * 7 = 35 miles.", "35"),
    ("The price rose by 50%.", "50"),
    ("It is 0.5 of the total, i.e. .5", "0.5"),
    ("The answer is 1,000,000.", "1000000"),
    ("Step 1: 10-3=7. Step 2: 7*2=14", "14"),
    ("We get x = 4. Then y = 2x = 8", "8"),
    ("There are 3.0 liters", "3"),
    ("I cannot tell.", None),
    ("", None),
    (18.0, "18"),
    (-3, "-3"),
]


@pytest.mark.parametrize(("text", "number"), NUMBERS)
def test_extract_number_labelled(text: object, number: str | None) -> None:
    assert cd.extract_number(text) == number


# --- MMLU choice extraction, a labelled set --------------------------------------------------

CHOICES = [
    ("The answer is a tough one, but I think B.", "B"),
    ("It is not A. It is B.", "B"),
    ("I'd go with A", "A"),
    ("\\boxed{B}", "B"),
    ("\\boxed{\\text{C}}", "C"),
    ("Answer - C", "C"),
    ("Answer \u2013 D", "D"),
    ("The answer is (B).", "B"),
    ("answer: (d)", "D"),
    ("Answer: c", "C"),
    ("After thinking, the correct option is A because...", "A"),
    ("**B**", "B"),
    ("B.", "B"),
    ("c", "C"),
    ("(D) 42", "D"),
    ("A) Paris", "A"),
    ("Let's see: (A) is wrong, so the answer is (C).", "C"),
    ("I think it's (B)", "B"),
    ("Not B. The answer is D.", "D"),
    ("The answer is not C, it is A", "A"),
    ("I would choose D.", "D"),
    ("Option C is correct.", "C"),
    ("B is correct", "B"),
    ("The best answer would be A.", "A"),
    ("A cat is an animal", None),
    ("A or B, hard to say", None),
    ("The answer is A or B", None),
    ("Both A and C seem plausible.", None),
    ("The answer is a bit unclear", None),
    ("I am not sure.", None),
    ("It is not A.", None),
    ("", None),
    (None, None),
]


@pytest.mark.parametrize(("text", "letter"), CHOICES)
def test_extract_choice_labelled(text: str | None, letter: str | None) -> None:
    assert cd.extract_choice(text) == letter


# --- corpus-level BLEU and chrF --------------------------------------------------------------

HYPS = [
    "the cat sat on the mat",
    "a quick brown fox jumps",
    "hello there general kenobi",
    "",
    "completely unrelated words here",
]
REFS: list[object] = [
    "the cat is on the mat",
    ["the quick brown fox jumps over", "a fast brown fox leaps"],
    "hello there",
    "empty hypothesis",
    "nothing in common at all",
]


def test_corpus_scores_are_sacrebleu_corpus_scores() -> None:
    sacrebleu = pytest.importorskip("sacrebleu")
    streams = [
        [r if isinstance(r, str) else r[0] for r in REFS],
        [r if isinstance(r, str) else r[1] for r in REFS],
    ]
    assert cd.corpus_bleu(HYPS, REFS) == pytest.approx(
        sacrebleu.corpus_bleu(HYPS, streams).score / 100
    )
    assert cd.corpus_chrf(HYPS, REFS) == pytest.approx(
        sacrebleu.corpus_chrf(HYPS, streams).score / 100
    )
    sentence_mean = sum(cd.bleu(h, r) for h, r in zip(HYPS, REFS, strict=True)) / 5
    assert cd.corpus_bleu(HYPS, REFS) != pytest.approx(sentence_mean)


def test_evaluate_reports_corpus_bleu_and_sentence_bleu_by_name() -> None:
    sacrebleu = pytest.importorskip("sacrebleu")
    items = [
        cd.Item(id=f"s{i}", input={}, expected=r) for i, r in enumerate(REFS) if i != 1
    ]
    hyps = [h for i, h in enumerate(HYPS) if i != 1]
    ds = cd.Dataset.from_items("mt", items)
    result = cd.evaluate(
        {f"s{i}": h for i, h in enumerate(HYPS) if i != 1},
        dataset=ds,
        metrics=("bleu", "chrf", "sentence_bleu", "sentence_chrf"),
    )
    refs = [str(i.expected) for i in items]
    assert result.metrics["bleu"] == pytest.approx(
        sacrebleu.corpus_bleu(hyps, [refs]).score / 100
    )
    assert result.metrics["chrf"] == pytest.approx(
        sacrebleu.corpus_chrf(hyps, [refs]).score / 100
    )
    assert result.metrics["sentence_bleu"] == pytest.approx(
        sum(
            sacrebleu.sentence_bleu(h, [r]).score
            for h, r in zip(hyps, refs, strict=True)
        )
        / 400
    )
    ci = result.intervals["bleu"]
    assert ci.method == "bootstrap-percentile" and ci.low <= ci.estimate <= ci.high
