"""Scoring functions: exact match, token F1, BLEU, chrF, ROUGE-L, answer extraction, pass@k."""

from __future__ import annotations

import math
import re
import string
import unicodedata
from collections import Counter
from collections.abc import Sequence
from typing import Any, Literal

import numpy as np

from crucible_core._optional import import_optional
from crucible_core.exceptions import ValidationError

__all__ = (
    "Label",
    "bleu",
    "chrf",
    "exact_match",
    "extract_choice",
    "extract_number",
    "normalize_answer",
    "normalize_label",
    "pass_at_k",
    "rouge_l",
    "token_f1",
)

_ARTICLES = re.compile(r"\b(a|an|the)\b")
_PUNCT = set(string.punctuation)


def normalize_answer(text: object) -> str:
    """SQuAD normalization: lower case, drop punctuation and articles, collapse whitespace.

    Examples:
        >>> normalize_answer("  The  Eiffel-Tower! ")
        'eiffeltower'
    """
    s = unicodedata.normalize("NFKC", str(text)).lower()
    s = "".join(
        ch
        for ch in s
        if ch not in _PUNCT and not unicodedata.category(ch).startswith("P")
    )
    s = _ARTICLES.sub(" ", s)
    return " ".join(s.split())


_NUMBER = re.compile(r"^[-+]?(\d+(\.\d*)?|\.\d+)([eE][-+]?\d+)?$")


def _as_number(value: object) -> float | None:
    if isinstance(value, bool):
        return None
    if isinstance(value, int | float | np.integer | np.floating):
        x = float(value)
        return x if math.isfinite(x) else None
    if not isinstance(value, str):
        return None
    s = value.strip().replace(",", "").replace("$", "").replace("\u2212", "-")
    s = s.rstrip(".").strip()
    if s.endswith("%"):
        s = s[:-1].strip()
    if not _NUMBER.match(s):
        return None
    x = float(s)
    return x if math.isfinite(x) else None


def _references(reference: object) -> list[object]:
    if isinstance(reference, list | tuple | set | frozenset):
        return list(reference)
    return [reference]


def exact_match(
    prediction: object, reference: object, *, numeric_tolerance: float = 1e-6
) -> float:
    """1.0 if the prediction matches the reference (or any of a list of references), else 0.0.

    Numbers compare as numbers, within `numeric_tolerance` relative to the reference (at least
    absolute for small values): `"1,234.0"` matches `1234`. Everything else compares after
    [`normalize_answer`][crucible_datasets.normalize_answer] (case, whitespace, punctuation,
    articles); values of other types are compared through their text (`True` matches `"true"`).
    A `None` prediction never matches.

    Examples:
        >>> exact_match("The answer.", "answer"), exact_match("1,000", 1000), exact_match("7", "8")
        (1.0, 1.0, 0.0)
    """
    if numeric_tolerance < 0 or not math.isfinite(numeric_tolerance):
        raise ValidationError(
            f"numeric_tolerance must be a finite number >= 0, got {numeric_tolerance!r}",
            numeric_tolerance=numeric_tolerance,
        )
    if prediction is None:
        return 0.0
    pred_num = _as_number(prediction)
    pred_text = normalize_answer(prediction)
    for ref in _references(reference):
        if ref is None:
            continue
        ref_num = _as_number(ref)
        if pred_num is not None and ref_num is not None:
            if abs(pred_num - ref_num) <= numeric_tolerance * max(1.0, abs(ref_num)):
                return 1.0
            continue
        ref_text = normalize_answer(ref)
        if pred_text == ref_text and (
            pred_text or str(prediction).strip().lower() == str(ref).strip().lower()
        ):  # "A" and "the" both normalize to "": compare them as written
            return 1.0
    return 0.0


def _f1(pred_tokens: list[str], ref_tokens: list[str]) -> float:
    if not pred_tokens or not ref_tokens:
        return float(pred_tokens == ref_tokens)
    common = Counter(pred_tokens) & Counter(ref_tokens)
    same = sum(common.values())
    if same == 0:
        return 0.0
    precision = same / len(pred_tokens)
    recall = same / len(ref_tokens)
    return 2 * precision * recall / (precision + recall)


def token_f1(prediction: object, reference: object) -> float:
    """SQuAD token F1: overlap of normalized tokens counted as bags (repeats count), best reference.

    Examples:
        >>> round(token_f1("the cat sat on the mat", "a cat on a mat"), 3)
        0.857
    """
    if prediction is None:
        return 0.0
    pred = normalize_answer(prediction).split()
    scores = [
        _f1(pred, normalize_answer(ref).split())
        for ref in _references(reference)
        if ref is not None
    ]
    return max(scores, default=0.0)


def _sacrebleu() -> Any:
    return import_optional(
        "sacrebleu", extra="sacrebleu", distribution="crucible-datasets"
    )


def bleu(prediction: object, reference: object) -> float:
    """Sentence BLEU from sacrebleu (exponential smoothing), scaled to [0, 1].

    Needs the `sacrebleu` extra. A list of references counts as several references.
    """
    if prediction is None:
        return 0.0
    refs = [str(r) for r in _references(reference) if r is not None]
    if not refs:
        return 0.0
    score = _sacrebleu().sentence_bleu(str(prediction), refs).score
    return min(max(float(score) / 100.0, 0.0), 1.0)


def chrf(prediction: object, reference: object) -> float:
    """Sentence chrF from sacrebleu (character n-gram F-score, β = 2), scaled to [0, 1].

    Needs the `sacrebleu` extra.
    """
    if prediction is None:
        return 0.0
    refs = [str(r) for r in _references(reference) if r is not None]
    if not refs:
        return 0.0
    score = _sacrebleu().sentence_chrf(str(prediction), refs).score
    return min(max(float(score) / 100.0, 0.0), 1.0)


_WORD = re.compile(r"\w+", re.UNICODE)


def _lcs(a: Sequence[str], b: Sequence[str]) -> int:
    if len(a) < len(b):
        a, b = b, a
    prev = [0] * (len(b) + 1)
    for x in a:
        cur = [0]
        for j, y in enumerate(b, start=1):
            cur.append(prev[j - 1] + 1 if x == y else max(prev[j], cur[j - 1]))
        prev = cur
    return prev[-1]


def rouge_l(prediction: object, reference: object) -> float:
    """ROUGE-L F1: longest common subsequence of lower-cased word tokens (β = 1), best reference.

    Examples:
        >>> rouge_l("police killed the gunman", "police kill the gunman")
        0.75
    """
    if prediction is None:
        return 0.0
    pred = _WORD.findall(str(prediction).lower())
    best = 0.0
    for ref in _references(reference):
        if ref is None:
            continue
        tokens = _WORD.findall(str(ref).lower())
        if not pred or not tokens:
            best = max(best, float(pred == tokens))
            continue
        lcs = _lcs(pred, tokens)
        if lcs:
            p, r = lcs / len(pred), lcs / len(tokens)
            best = max(best, 2 * p * r / (p + r))
    return best


def extract_choice(text: object, *, choices: str = "ABCD") -> str | None:
    """The multiple-choice letter a model's answer commits to, or `None` if it names none.

    Recognizes "The answer is (B)", "Answer: B", "**B**", "B.", "(B) Paris", a lone "b", and
    "the correct option is C"; when several letters are named, the last explicit statement wins.

    Examples:
        >>> extract_choice("Let me think... The answer is (B).")
        'B'
        >>> extract_choice("**C**"), extract_choice("d) 42"), extract_choice("I am not sure")
        ('C', 'D', None)
    """
    if text is None:
        return None
    s = str(text).strip()
    if not s:
        return None
    letters = re.escape(choices)
    cls = f"[{letters}{letters.lower()}]"
    statements = list(
        re.finditer(
            rf"(?:answer|option|choice)\s*(?:is|:|=)?\s*(?:option|choice)?\s*[:\s]*[\(\[*]*\s*({cls})\b(?![\w'])",
            s,
            flags=re.IGNORECASE,
        )
    )
    if statements:
        return statements[-1].group(1).upper()
    bold = re.findall(rf"\*\*\(?({cls})\)?[.:)]?\*\*", s)
    if bold:
        return str(bold[-1]).upper()
    start = re.match(rf"^[\(\[]?({cls})(?:[\)\].:]|\s*$|\s+-|\s)", s)
    if start and (len(s) == 1 or not re.match(rf"^({cls})\s+[a-z]", s)):
        return start.group(1).upper()
    lone = re.fullmatch(rf"[\s\W]*({cls})[\s\W]*", s)
    if lone:
        return lone.group(1).upper()
    paren = re.findall(rf"\(({cls})\)", s)
    if len({p.upper() for p in paren}) == 1:
        return str(paren[-1]).upper()
    return None


_NUM = r"[-+\u2212]?\$?\s?(?:\d{1,3}(?:,\d{3})+|\d+)(?:\.\d+)?"


def _canonical_number(raw: str) -> str | None:
    x = _as_number(raw)
    if x is None:
        return None
    if x == int(x) and abs(x) < 1e15:
        return str(int(x))
    return repr(x)


def extract_number(text: object) -> str | None:
    r"""The final numeric answer in a worked solution, as a canonical string (`"1234.5"`).

    Looks for GSM8K's `#### 42`, then "the answer is 1,234.5" / "Answer: $12", then
    `\boxed{42}`, then takes the last number in the text. Commas, `$` and a trailing `.` are
    dropped; integral values lose their decimals (`"18.00"` → `"18"`).

    Examples:
        >>> extract_number("She makes 9 * 2 = $18 every day.\n#### 18")
        '18'
        >>> extract_number("So the answer is 1,234.5."), extract_number("no digits")
        ('1234.5', None)
    """
    if text is None:
        return None
    if isinstance(text, int | float) and not isinstance(text, bool):
        return _canonical_number(str(text))
    s = str(text)
    for pattern in (
        rf"####\s*({_NUM})",
        rf"answer\s*(?:is|:|=)?\s*[:=]?\s*\**\s*({_NUM})",
        rf"\\boxed\{{\s*({_NUM})\s*\}}",
    ):
        found = re.findall(pattern, s, flags=re.IGNORECASE)
        if found:
            return _canonical_number(str(found[-1]).replace(" ", ""))
    numbers = re.findall(_NUM, s)
    if numbers:
        return _canonical_number(str(numbers[-1]).replace(" ", ""))
    return None


Label = Literal["SUPPORTS", "REFUTES", "NOT ENOUGH INFO"]
"""A fact-verification label, as FEVER writes them."""

_LABEL_WORDS: dict[str, Label] = {
    "supports": "SUPPORTS",
    "support": "SUPPORTS",
    "supported": "SUPPORTS",
    "entailment": "SUPPORTS",
    "entails": "SUPPORTS",
    "true": "SUPPORTS",
    "refutes": "REFUTES",
    "refute": "REFUTES",
    "refuted": "REFUTES",
    "contradict": "REFUTES",
    "contradicts": "REFUTES",
    "contradiction": "REFUTES",
    "contradicted": "REFUTES",
    "false": "REFUTES",
    "not enough info": "NOT ENOUGH INFO",
    "not enough information": "NOT ENOUGH INFO",
    "notenoughinfo": "NOT ENOUGH INFO",
    "nei": "NOT ENOUGH INFO",
    "insufficient": "NOT ENOUGH INFO",
    "insufficient evidence": "NOT ENOUGH INFO",
    "insufficient information": "NOT ENOUGH INFO",
    "unverifiable": "NOT ENOUGH INFO",
    "neutral": "NOT ENOUGH INFO",
    "unknown": "NOT ENOUGH INFO",
}
_LABEL_SEARCH = re.compile(
    r"not\s+enough\s+info(?:rmation)?|insufficient|unverifiable|cannot\s+be\s+verified"
    r"|refute[sd]?|contradict(?:s|ed|ion)?|support(?:s|ed)?|entail(?:s|ment)?",
    re.IGNORECASE,
)


def normalize_label(text: object) -> Label | None:
    """A fact-verification answer as `"SUPPORTS"`, `"REFUTES"` or `"NOT ENOUGH INFO"`, or `None`.

    Accepts FEVER's and SciFact's spellings (`SUPPORT`, `CONTRADICT`, `NEI`), NLI words
    (entailment/contradiction/neutral), true/false, and a sentence naming one ("The claim is
    refuted by the evidence."): the first label word in the text wins. "not supported" is
    ambiguous and gives `None`.

    Examples:
        >>> normalize_label("CONTRADICT"), normalize_label("nei"), normalize_label("maybe")
        ('REFUTES', 'NOT ENOUGH INFO', None)
    """
    if text is None:
        return None
    s = " ".join(str(text).strip().lower().replace("_", " ").split())
    s_bare = s.strip(" .!*\"'`")
    if s_bare in _LABEL_WORDS:
        return _LABEL_WORDS[s_bare]
    for match in _LABEL_SEARCH.finditer(s):
        before = s[max(0, match.start() - 8) : match.start()]
        if re.search(r"\b(?:not|n't|no)\s*$", before):
            return None
        word = match.group(0).lower()
        if word.startswith(("not", "insufficient", "unverifiable", "cannot")):
            return "NOT ENOUGH INFO"
        if word.startswith(("refute", "contradict")):
            return "REFUTES"
        return "SUPPORTS"
    return None


def pass_at_k(n: int, c: int, k: int) -> float:
    """The unbiased pass@k estimator of Chen et al. (2021): 1 − C(n−c, k) / C(n, k).

    Args:
        n: completions sampled for the problem.
        c: how many of them passed.
        k: the k of pass@k, from 1 to `n`.

    Examples:
        >>> pass_at_k(10, 3, 1), round(pass_at_k(10, 3, 5), 4)
        (0.3, 0.9167)
    """
    for name, value in (("n", n), ("c", c), ("k", k)):
        if isinstance(value, bool) or not isinstance(value, int | np.integer):
            raise ValidationError(
                f"{name} must be a whole number, got {value!r}", **{name: value}
            )
    if not (0 <= c <= n and 1 <= k <= n):
        raise ValidationError(
            f"need 0 <= c <= n and 1 <= k <= n, got n={n}, c={c}, k={k} (sample at least k "
            "completions per problem to estimate pass@k)",
            n=n,
            c=c,
            k=k,
        )
    if n - c < k:
        return 1.0
    return float(1.0 - np.prod(1.0 - k / np.arange(n - c + 1, n + 1)))
