"""Scoring functions: exact match, token F1, BLEU, chrF, ROUGE-L, answer extraction, pass@k."""

from __future__ import annotations

import math
import re
import string
import unicodedata
from collections import Counter
from collections.abc import Sequence
from decimal import ROUND_HALF_UP, Decimal
from typing import Any, Literal

import numpy as np

from crucible_core._optional import import_optional
from crucible_core.exceptions import ValidationError

__all__ = (
    "Label",
    "Normalize",
    "bleu",
    "chrf",
    "corpus_bleu",
    "corpus_chrf",
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

Normalize = Literal["default", "squad"]
"""How text is normalised before comparison: crucible's (`"default"`: Unicode NFKC, every
Unicode punctuation character) or the official SQuAD v1.1 script's (`"squad"`: ASCII
punctuation only, exactly as `evaluate-v1.1.py` does)."""


def normalize_answer(text: object, *, normalize: Normalize = "default") -> str:
    """SQuAD-style normalisation: lower case, drop punctuation and articles, collapse whitespace.

    `normalize="squad"` is the official SQuAD v1.1 script's `normalize_answer`, character for
    character; the default also folds Unicode (NFKC) and drops non-ASCII punctuation.

    Examples:
        >>> normalize_answer("  The  Eiffel-Tower! ")
        'eiffeltower'
        >>> normalize_answer("« Paris »"), normalize_answer("« Paris »", normalize="squad")
        ('paris', '« paris »')
    """
    if normalize == "squad":
        s = "".join(ch for ch in str(text).lower() if ch not in _PUNCT)
        return " ".join(_ARTICLES.sub(" ", s).split())
    if normalize != "default":
        raise ValidationError(
            f"normalize must be 'default' or 'squad', got {normalize!r}",
            normalize=normalize,
        )
    s = unicodedata.normalize("NFKC", str(text)).lower()
    s = "".join(
        ch
        for ch in s
        if ch not in _PUNCT and not unicodedata.category(ch).startswith("P")
    )
    s = _ARTICLES.sub(" ", s)
    return " ".join(s.split())


_NUMBER = re.compile(r"\A[-+]?(\d+(\.\d*)?|\.\d+)([eE][-+]?\d+)?\Z")


def _number_text(value: object) -> str | None:
    """The number a value states, as plain decimal text (`"1,234.50"` → `"1234.50"`)."""
    if isinstance(value, bool):
        return None
    if isinstance(value, int | np.integer):
        return str(int(value))
    if isinstance(value, float | np.floating):
        x = float(value)
        return repr(x) if math.isfinite(x) else None
    if not isinstance(value, str):
        return None
    s = value.strip().replace(",", "").replace("\u2212", "-")
    s = re.sub(r"^([-+]?)\s*[$€£]\s*", r"\1", s).rstrip(".").strip()
    if s.endswith("%"):
        s = s[:-1].strip()
    return s if _NUMBER.match(s) else None


def _as_number(value: object) -> float | None:
    s = _number_text(value)
    if s is None:
        return None
    x = float(s)
    return x if math.isfinite(x) else None


def _same_number(pred: str, ref: str, tolerance: float) -> bool:
    """Integers compare exactly; decimals at the number of places the reference states."""
    p, r = Decimal(pred), Decimal(ref)
    exponent = r.as_tuple().exponent
    places = -exponent if isinstance(exponent, int) and exponent < 0 else 0
    if places == 0 and r == r.to_integral_value():
        same = p == r
    else:
        same = p.quantize(Decimal(1).scaleb(-places), rounding=ROUND_HALF_UP) == r
    if same or tolerance == 0:
        return same
    return abs(float(p) - float(r)) <= tolerance * max(1.0, abs(float(r)))


def _references(reference: object) -> list[object]:
    if isinstance(reference, list | tuple | set | frozenset):
        return list(reference)
    return [reference]


def _empty_match(prediction: object, reference: object) -> bool:
    # "A" and "the" both normalise to "": compare them as written
    return str(prediction).strip().lower() == str(reference).strip().lower()


def exact_match(
    prediction: object,
    reference: object,
    *,
    numeric_tolerance: float = 0.0,
    normalize: Normalize = "default",
) -> float:
    """1.0 if the prediction matches the reference (or any of a list of references), else 0.0.

    Numbers compare as numbers: integers exactly (1,450,001 is not 1,450,000), decimals at the
    precision the reference states (`"0.333"` matches `"0.33"`, not `"0.3"`), after dropping
    commas, currency signs and `%`. `numeric_tolerance` adds a relative tolerance on top.
    Everything else compares after [`normalize_answer`][crucible_datasets.normalize_answer];
    two texts that both normalise to nothing are compared as written, the same rule
    [`token_f1`][crucible_datasets.token_f1] uses, so the two agree. With
    `normalize="squad"` this is the official SQuAD v1.1 `exact_match_score` (text only).
    A `None` prediction never matches.

    Examples:
        >>> exact_match("The answer.", "answer"), exact_match("1,000", 1000), exact_match("7", "8")
        (1.0, 1.0, 0.0)
        >>> exact_match("1,450,001", "1450000"), exact_match("0.333", "0.33")
        (0.0, 1.0)
    """
    if numeric_tolerance < 0 or not math.isfinite(numeric_tolerance):
        raise ValidationError(
            f"numeric_tolerance must be a finite number >= 0, got {numeric_tolerance!r}",
            numeric_tolerance=numeric_tolerance,
        )
    if prediction is None:
        return 0.0
    if normalize == "squad":
        pred = normalize_answer(prediction, normalize="squad")
        return float(
            any(
                pred == normalize_answer(ref, normalize="squad")
                for ref in _references(reference)
                if ref is not None
            )
        )
    pred_num = _number_text(prediction)
    pred_text = normalize_answer(prediction, normalize=normalize)
    for ref in _references(reference):
        if ref is None:
            continue
        ref_num = _number_text(ref)
        if pred_num is not None and ref_num is not None:
            if _same_number(pred_num, ref_num, numeric_tolerance):
                return 1.0
            continue
        ref_text = normalize_answer(ref, normalize=normalize)
        if pred_text == ref_text and (pred_text or _empty_match(prediction, ref)):
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


def token_f1(
    prediction: object, reference: object, *, normalize: Normalize = "default"
) -> float:
    """SQuAD token F1: overlap of normalized tokens counted as bags (repeats count), best reference.

    When prediction and reference both normalise to nothing, they score 1.0 if they are the same
    as written and 0.0 otherwise, as [`exact_match`][crucible_datasets.exact_match] does. With
    `normalize="squad"` this is the official SQuAD v1.1 `f1_score` exactly (which gives 0.0
    whenever no token is shared, even for two empty answers).

    Examples:
        >>> round(token_f1("the cat sat on the mat", "a cat on a mat"), 3)
        0.857
        >>> token_f1("a", "the"), exact_match("a", "the")
        (0.0, 0.0)
    """
    if prediction is None:
        return 0.0
    pred = normalize_answer(prediction, normalize=normalize).split()
    scores = []
    for ref in _references(reference):
        if ref is None:
            continue
        tokens = normalize_answer(ref, normalize=normalize).split()
        if normalize == "squad":
            scores.append(_f1(pred, tokens) if pred and tokens else 0.0)
        elif not pred and not tokens:
            scores.append(float(_empty_match(prediction, ref)))
        else:
            scores.append(_f1(pred, tokens))
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


def _corpus_streams(
    predictions: Sequence[object], references: Sequence[object]
) -> tuple[list[str], list[list[str]]]:
    """Hypotheses and sacrebleu's reference streams.

    A missing reference repeats the item's first one: BLEU clips by the best reference and chrF
    takes the best one, so a repeat changes nothing.
    """
    if len(predictions) != len(references):
        raise ValidationError(
            f"{len(predictions)} predictions but {len(references)} references"
        )
    refs = [[str(r) for r in _references(ref) if r is not None] for ref in references]
    if any(not r for r in refs):
        raise ValidationError("every prediction needs at least one reference")
    width = max((len(r) for r in refs), default=1)
    streams = [[r[min(k, len(r) - 1)] for r in refs] for k in range(width)]
    hyps = ["" if p is None else str(p) for p in predictions]
    return hyps, streams


def corpus_bleu(predictions: Sequence[object], references: Sequence[object]) -> float:
    """Corpus BLEU, as sacrebleu's `corpus_bleu` (n-gram counts pooled over all sentences), in [0, 1].

    A reference may be a list of references. `None` predictions count as empty. Needs the
    `sacrebleu` extra.

    Examples:
        >>> round(corpus_bleu(["the cat sat on the mat"], ["the cat sat on the mat"]), 3)
        1.0
    """
    hyps, streams = _corpus_streams(predictions, references)
    if not hyps:
        return 0.0
    return float(_sacrebleu().corpus_bleu(hyps, streams).score) / 100.0


def corpus_chrf(predictions: Sequence[object], references: Sequence[object]) -> float:
    """Corpus chrF (β = 2), as sacrebleu's `corpus_chrf` (statistics pooled), in [0, 1].

    Needs the `sacrebleu` extra.
    """
    hyps, streams = _corpus_streams(predictions, references)
    if not hyps:
        return 0.0
    return float(_sacrebleu().corpus_chrf(hyps, streams).score) / 100.0


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


_NEGATION = re.compile(
    r"(?:\bnot|n't|\bnever|\bnor|\brather\s+than|\binstead\s+of|\bexcept|\bbut\s+not)"
    r"\s*(?:option|choice|answer)?\s*[\(\[]?\s*$",
    re.IGNORECASE,
)
_COMMIT = (
    r"(?i:(?:final\s+|correct\s+|right\s+|best\s+)?(?:answer|option|choice)"
    r"(?:\s+(?:is|would\s+be|will\s+be|must\s+be|should\s+be))?\s*(?:[:=\-\u2013\u2014]\s*)?"
    r"|\b(?:go(?:ing)?\s+with|choose|chose|pick|select|opt\s+for|i\s+think|i'd\s+say|i\s+say"
    r"|i\s+believe|it's|it\s+is|that's|that\s+is|must\s+be|should\s+be|would\s+be)\s*"
    r"(?:option|choice|answer)?\s*(?:[:=\-\u2013\u2014]\s*)?)"
)


def _negated(text: str, start: int) -> bool:
    return bool(_NEGATION.search(text[max(0, start - 24) : start]))


_NOT_ARTICLE = re.compile(
    r"A\s+(?:or|and|is|was|seems|looks|would|could|might|must|should|also|nor)\b"
)


def _article(text: str, at: int) -> bool:
    """Whether the capital "A" at `at` starts a sentence as the article ("A cat is ...")."""
    sentence_start = at == 0 or bool(re.search(r"[.!?]\s+$", text[:at]))
    return (
        sentence_start
        and bool(re.match(r"A\s+[a-z]", text[at:]))
        and not _NOT_ARTICLE.match(text, at)
    )


def extract_choice(text: object, *, choices: str = "ABCD") -> str | None:
    r"""The multiple-choice letter a model's answer commits to, or `None` if it commits to none.

    The rules, first that applies wins:

    1. `\boxed{B}` (the last one).
    2. A committing statement: "the answer is (B)", "Answer: B", "Answer - C", "the correct
       option is C", "I'd go with A", "I think B", "it is B", "choose D" (the last one that is
       not negated: "It is not A. It is B." gives B).
    3. A bold letter, `**C**`.
    4. A letter opening the answer: "B.", "(B) Paris", "b) 42", or the answer alone ("c").
    5. Otherwise, the letters named as choices (`(B)`, or a capital letter on its own) that are
       not negated: exactly one distinct letter gives it; several, or none, give `None`.

    Upper-case letters count anywhere; lower-case ones only when set off as a choice (alone,
    "(b)", "b)", "b." at the end, after "answer:"), so the article in "The answer is a tough
    one, but I think B." is not read as A.

    Examples:
        >>> extract_choice("Let me think... The answer is (B).")
        'B'
        >>> extract_choice("It is not A. It is B."), extract_choice(r"\boxed{C}")
        ('B', 'C')
        >>> extract_choice("A or B, hard to say"), extract_choice("I am not sure")
        (None, None)
    """
    if text is None:
        return None
    s = str(text).strip()
    if not s:
        return None
    up = re.escape(choices.upper())
    low = re.escape(choices.lower())
    # a letter: upper case as a word, or lower case set off (end, punctuation, closing bracket)
    letter = rf"(?:([{up}])(?![\w'])|([{low}])(?=\s*(?:$|[\).:,;!?*\]]|\s+-|\s+or\b)))"

    def pick(m: re.Match[str]) -> str:
        return (m.group(1) or m.group(2)).upper()

    boxed = list(re.finditer(rf"\\boxed\{{\s*(?:\\text\{{)?\s*\(?({letter})", s))
    if boxed:
        m = re.match(letter, boxed[-1].group(1))
        if m:
            return pick(m)
    statements = [
        m
        for m in re.finditer(rf"{_COMMIT}[\(\[*]*\s*{letter}", s)
        if not _negated(s, m.start())
        and not re.match(rf"[\)\]*]*\s*(?:or|/)\s*[\(\[]?[{up}{low}]\b", s[m.end() :])
    ]
    if statements:
        last = statements[-1]
        found = re.search(rf"{letter}\s*[\)\]*]*$", last.group(0))
        if found:
            return pick(found)
    bold = re.findall(rf"\*\*\(?([{up}{low}])\)?[.:)]?\*\*", s)
    if bold:
        return str(bold[-1]).upper()
    start = re.match(rf"^[\(\[]?([{up}{low}])(?:[\)\].:]|\s*$|\s+-)", s) or re.match(
        rf"^([{up}])\s+(?![a-z])", s
    )
    if start:
        return start.group(1).upper()
    named = {
        pick(m)
        for m in re.finditer(rf"(?<![\w'])[\(\[]?{letter}", s)
        if not _negated(s, m.start())
        and not (m.group(1) == "A" and _article(s, m.start(1)))
    }
    if len(named) == 1:
        return named.pop()
    return None


_SIGNED = r"(?:[-+\u2212](?=[$€£\d.])\s?[$€£]?|[$€£]\s?(?:[-+\u2212](?=[\d.]))?)?"
_NUM = rf"(?<![\w.]){_SIGNED}(?:(?:\d{{1,3}}(?:,\d{{3}})+|\d+)(?:\.\d+)?|\.\d+)(?![\d])"
_FRAC = re.compile(r"\\d?frac\{\s*(-?\d+(?:\.\d+)?)\s*\}\{\s*(-?\d+(?:\.\d+)?)\s*\}")


def _canonical_number(raw: str) -> str | None:
    s = _number_text(raw.replace(" ", ""))
    if s is None:
        return None
    d = Decimal(s)
    if d == d.to_integral_value() and abs(d) < Decimal(10) ** 15:
        return str(int(d))
    x = float(d)
    return repr(x) if math.isfinite(x) else None


def _last_number(text: str) -> str | None:
    numbers = re.findall(_NUM, text)
    return _canonical_number(str(numbers[-1])) if numbers else None


def extract_number(text: object) -> str | None:
    r"""The final numeric answer in a worked solution, as a canonical string (`"1234.5"`).

    In order: GSM8K's `#### 42`; `\boxed{42}` (also `\boxed{\frac{1}{2}}`); the last statement
    "the answer is …" / "Answer: …", taking the *last* number of that sentence, so an
    expression gives its result ("25 - 7 = 18" → 18); else the last number in the text.
    Leading-dot decimals (".5"), signs, currency signs, thousands separators and a trailing
    `.` are read; integral values lose their decimals (`"18.00"` → `"18"`).

    Examples:
        >>> extract_number("She makes 9 * 2 = $18 every day.\n#### 18")
        '18'
        >>> extract_number("The answer is 25 - 7 = 18."), extract_number("The answer is .5")
        ('18', '0.5')
        >>> extract_number("So the answer is 1,234.5."), extract_number("no digits")
        ('1234.5', None)
    """
    if text is None:
        return None
    if isinstance(text, int | float) and not isinstance(text, bool):
        return _canonical_number(repr(text) if isinstance(text, float) else str(text))
    s = str(text)
    hashes = re.findall(rf"####\s*({_NUM})", s)
    if hashes:
        return _canonical_number(str(hashes[-1]))
    boxed = re.findall(r"\\boxed\{((?:[^{}]|\{[^{}]*\})*)\}", s)
    for raw in reversed(boxed):
        content = raw.replace("\\$", "$").replace("\\%", "%").replace("\\!", "")
        content = content.replace("{,}", ",")
        frac = _FRAC.search(content)
        if frac:
            value = Decimal(frac.group(1)) / Decimal(frac.group(2))
            return _canonical_number(str(value.normalize()))
        found = _last_number(content)
        if found is not None:
            return found
    clauses = re.findall(
        r"answer\s*(?:is|:|=|would\s+be|will\s+be)\s*[:=]?\s*(.*?)(?:\.(?!\d)|\n|$)",
        s,
        flags=re.IGNORECASE,
    )
    for clause in reversed(clauses):
        found = _last_number(clause)
        if found is not None:
            return found
    return _last_number(s)


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
