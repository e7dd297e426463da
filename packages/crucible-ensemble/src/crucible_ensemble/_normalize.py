"""Answer normalization: turn each member's raw text into a canonical answer that can be counted.

Two members that say `"The answer is (B)."` and `"B"` must vote for the same thing. A normalizer is
any callable `text -> str | None`; `None` means "no answer could be read", and such a response is
recorded but casts no vote.
"""

from __future__ import annotations

import re
import string
import threading
import weakref
from collections.abc import Callable, Sequence
from decimal import Decimal, InvalidOperation
from functools import lru_cache
from typing import Literal, TypeAlias

from crucible_core.models import Request
from crucible_ensemble.exceptions import EnsembleConfigurationError

__all__ = (
    "NormalizeName",
    "Normalizer",
    "normalize_boolean",
    "normalize_choice",
    "normalize_code",
    "normalize_label",
    "normalize_number",
    "normalize_text",
)

Normalizer: TypeAlias = Callable[[str], str | None]
"""Maps a member's raw text to a canonical answer, or `None` when no answer can be read."""

NormalizeName: TypeAlias = Literal[
    "auto", "choice", "number", "boolean", "text", "code", "exact"
]
"""The built-in normalizers by name; `"auto"` picks one from the request's `kind` and `choices`."""

_NAMES: tuple[str, ...] = (
    "auto",
    "choice",
    "number",
    "boolean",
    "text",
    "code",
    "exact",
)
_LETTERS = string.ascii_uppercase
_LETTER_ONLY = re.compile(r"^\W*([A-Za-z])\W*$")
_LETTER_AFTER_ANSWER = re.compile(
    r"\banswer\b\W{0,3}(?:is\W{0,3})?(?:option\W{0,3})?\(?([A-Za-z])\)?(?![A-Za-z])",
    re.IGNORECASE,
)
_LETTER_TOKEN = re.compile(r"(?<![A-Za-z])\(?([A-Z])\)?(?![A-Za-z])")
_NUMBER = re.compile(r"[-+]?\d[\d,]*(?:\.\d+)?|[-+]?\.\d+")
_PUNCT = re.compile(r"[^\w\s]")
_ARTICLES = re.compile(r"\b(a|an|the)\b")
_SPACES = re.compile(r"\s+")
_TRUE = frozenset({"yes", "true", "correct", "y", "1"})
_FALSE = frozenset({"no", "false", "incorrect", "n", "0"})


def normalize_text(text: str) -> str | None:
    """Free text: lower case, punctuation and articles removed, whitespace collapsed (SQuAD style).

    Examples:
        >>> normalize_text("  The Eiffel Tower! ")
        'eiffel tower'
    """
    out = _SPACES.sub(" ", _ARTICLES.sub(" ", _PUNCT.sub(" ", text.lower()))).strip()
    return out or None


def normalize_number(text: str) -> str | None:
    """The last number in the text, canonical: no thousands separators, no trailing zeros.

    The last number is taken because answers usually end with it (`"... so the total is 1,200"`).

    Examples:
        >>> normalize_number("The total is $1,200.50")
        '1200.5'
        >>> normalize_number("4.0") == normalize_number("4")
        True
        >>> normalize_number("no idea") is None
        True
    """
    found = _NUMBER.findall(text)
    if not found:
        return None
    try:
        value = Decimal(found[-1].replace(",", ""))
    except (
        InvalidOperation
    ):  # pragma: no cover - the pattern only admits valid decimals
        return None
    if value == value.to_integral_value():
        return str(int(value))
    return format(value.normalize(), "f")


def normalize_boolean(text: str) -> str | None:
    """`"true"` for yes/true/correct, `"false"` for no/false/incorrect: the first such word wins.

    Examples:
        >>> normalize_boolean("Yes, it is."), normalize_boolean("false"), normalize_boolean("maybe")
        ('true', 'false', None)
    """
    words = _SPACES.split(_PUNCT.sub(" ", text.lower()).strip())
    for word in words:
        if word in _TRUE:
            return "true"
        if word in _FALSE:
            return "false"
    return None


def normalize_code(text: str) -> str | None:
    r"""Code: fenced blocks unwrapped, trailing spaces, blank lines and whole-line comments dropped.

    Examples:
        >>> normalize_code("```python\ndef f():\n    return 1  \n\n# done\n```")
        'def f():\n    return 1'
    """
    fenced = re.search(r"```[\w+-]*\n(.*?)```", text, re.DOTALL)
    body = fenced.group(1) if fenced else text
    lines = [
        line.rstrip()
        for line in body.splitlines()
        if line.strip() and not line.strip().startswith("#")
    ]
    return "\n".join(lines) or None


def normalize_label(text: str, labels: Sequence[str]) -> str | None:
    """The one label of `labels` that the text is, or mentions (case-insensitive, whole words).

    Returns `None` when the text mentions none of the labels or more than one.

    Examples:
        >>> normalize_label("I think it is Positive.", ["positive", "negative", "neutral"])
        'positive'
    """
    return _label_reader(tuple(labels))(text)


def normalize_choice(text: str, choices: Sequence[str] = ()) -> str | None:
    """A multiple-choice answer: the letter, or the choice text when the choices are texts.

    With single-letter choices (or none) the result is an upper-case letter; `"(b)"`,
    `"Answer: B"`, `"The answer is B."` all read as `"B"`. With text choices (`["Paris",
    "London"]`) the result is the chosen text, read from the text itself or from its letter
    (`"B"` is the second choice).

    Examples:
        >>> normalize_choice("The answer is (b).")
        'B'
        >>> normalize_choice("b) London", ["Paris", "London"])
        'London'
    """
    return _choice_reader(tuple(choices))(text)


# Readers are built once per set of labels or choices (requests of one dataset share them), so
# reading a member's answer does no per-call set-up.


@lru_cache(maxsize=1024)
def _label_reader(labels: tuple[str, ...]) -> Normalizer:
    by_norm = {normalize_text(label): label for label in labels}
    patterns = [
        (re.compile(rf"\b{re.escape(key)}\b"), label)
        for key, label in by_norm.items()
        if key
    ]

    def read(text: str) -> str | None:
        norm = normalize_text(text)
        if norm is None:
            return None
        if norm in by_norm:
            return by_norm[norm]
        hits = [label for pattern, label in patterns if pattern.search(norm)]
        return hits[0] if len(hits) == 1 else None

    return read


@lru_cache(maxsize=1024)
def _choice_reader(choices: tuple[str, ...]) -> Normalizer:
    letter_choices = all(len(c) == 1 and c.upper() in _LETTERS for c in choices)
    texts = choices if choices and not letter_choices else ()
    allowed = frozenset(
        {c.upper() for c in choices}
        if choices and letter_choices
        else _LETTERS[: len(choices)]
        if choices
        else _LETTERS
    )
    label = _label_reader(texts) if texts else None
    exact_of = {label_: normalize_text(label_) for label_ in texts}

    def read(text: str) -> str | None:
        if label is not None:
            exact = label(text)
            if exact is not None and normalize_text(text) == exact_of[exact]:
                return exact
        stripped = text.strip()
        letter: str | None = None
        if len(stripped) == 1:  # the usual bare letter, without a regular expression
            upper = stripped.upper()
            letter = upper if upper in allowed else None
        else:
            for pattern in (_LETTER_ONLY, _LETTER_AFTER_ANSWER):
                match = pattern.search(stripped)
                if match and (upper := match.group(1).upper()) in allowed:
                    letter = upper
                    break
        if letter is None:
            tokens = [m for m in _LETTER_TOKEN.findall(text) if m in allowed]
            if len(set(tokens)) == 1:
                letter = tokens[0]
        if letter is not None:
            return texts[_LETTERS.index(letter)] if texts else letter
        return label(text) if label is not None else None

    return read


def _exact(text: str) -> str | None:
    return text.strip() or None


def check_normalize(normalize: object) -> None:
    """Raise `EnsembleConfigurationError` unless `normalize` is a built-in name or a callable."""
    if callable(normalize):
        return
    if normalize not in _NAMES:
        raise EnsembleConfigurationError(
            f"unknown `normalize={normalize!r}`; use one of {_NAMES} or a callable "
            "`text -> str | None`",
            normalize=normalize,
        )


def resolve_normalizer(
    normalize: NormalizeName | Normalizer, request: Request
) -> Normalizer:
    """The normalizer to apply to answers to `request` (binding its `choices` where needed).

    A built-in one remembers what it read from short texts (see `resolve_reading`).
    """
    if callable(normalize):
        return normalize
    return _resolve(normalize, request.kind, request.choices).memoized


def resolve_reading(normalize: NormalizeName | Normalizer, request: Request) -> Reading:
    """The normalizer for `request`, not memoized, with its memo (`None` for a caller's function).

    For a hot path that looks a text up in the memo itself and calls the normalizer (then
    `remember`) only for a text not seen before. Only a plain `str` may be looked up, and only
    one of at most `MEMO_TEXT` characters remembered. A caller's own normalizer is never
    memoized: it need not be a pure function. Whoever keeps the memo keeps the `Reading` (the
    memos are emptied through it when they hold `MEMO_ENTRIES` answers).
    """
    if callable(normalize):
        return Reading(normalize, memo=None)
    return _resolve(normalize, request.kind, request.choices)


def _reader(name: str, kind: str, choices: tuple[str, ...]) -> Normalizer:
    if name == "auto":
        if kind in ("choice", "number", "code"):
            name = kind
        elif choices:
            return _label_reader(choices)
        else:
            name = "text"
    if name == "choice":
        return _choice_reader(choices)
    return _BY_NAME[name]


_BY_NAME: dict[str, Normalizer] = {
    "number": normalize_number,
    "boolean": normalize_boolean,
    "text": normalize_text,
    "code": normalize_code,
    "exact": _exact,
}

# --- memos: what a built-in normalizer read, by text ------------------------------------------------
#
# The members of an ensemble, and the items of a dataset, give the same few short answers over and
# over ("B", "The answer is B."). A built-in normalizer is a pure function of the text, so what it
# read from a text is remembered, by the exact text. Only a plain `str` (a subclass could compare
# equal to a text it is not) of at most `MEMO_TEXT` characters is remembered, and at most
# `MEMO_ENTRIES` of them over all memos (when full, every memo is emptied and fills again), so the
# memory held stays small whatever the members answer.

Memo: TypeAlias = dict[str, str | None]
"""What one built-in normalizer read, by text."""

MEMO_TEXT = 256
"""The longest text whose answer is remembered (characters)."""
MEMO_ENTRIES = 8192
"""The most answers remembered, over all memos (give or take a few when threads race)."""


class Reading:
    """A normalizer bound to a request's kind and choices, with its memo if it is a built-in."""

    __slots__ = ("__weakref__", "memo", "memoized", "read")

    def __init__(self, read: Normalizer, *, memo: Memo | None) -> None:
        self.read = read
        """The normalizer itself."""
        self.memo = memo
        """What it read, by text (`None`: not memoized)."""
        self.memoized = read if memo is None else _memoized(read, memo)
        """The normalizer, through the memo."""


_readings: weakref.WeakSet[Reading] = weakref.WeakSet()  # the ones with a memo
_readings_lock = threading.Lock()  # adding to `_readings` while another thread walks it
_remembered = 0


@lru_cache(maxsize=1024)
def _resolve(name: str, kind: str, choices: tuple[str, ...]) -> Reading:
    reading = Reading(_reader(name, kind, choices), memo={})
    with _readings_lock:
        _readings.add(reading)
    return reading


def remember(memo: Memo, text: str, answer: str | None) -> None:
    """Remember that `text` (a plain `str` of at most `MEMO_TEXT` characters) reads as `answer`."""
    global _remembered
    if _remembered >= MEMO_ENTRIES:
        with _readings_lock:
            for reading in list(_readings):
                if reading.memo is not None:
                    reading.memo.clear()
            _remembered = 0
    memo[text] = answer
    _remembered += 1


def _memoized(read: Normalizer, memo: Memo) -> Normalizer:
    def memoized(text: str) -> str | None:
        if type(text) is not str or len(text) > MEMO_TEXT:
            return read(text)
        try:
            return memo[text]
        except KeyError:
            answer = read(text)
            remember(memo, text, answer)
            return answer

    memoized.__name__ = memoized.__qualname__ = getattr(read, "__name__", "read")
    memoized.__doc__ = read.__doc__
    return memoized
