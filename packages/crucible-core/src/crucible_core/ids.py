"""Sortable, unique, time-ordered ids (ULIDs) for experiments, runs and events.

An id is an optional prefix and a 26-character ULID in Crockford base32: 48 bits of Unix milliseconds
then 80 random bits. Ids made later sort after ids made earlier; within one millisecond the random
part is incremented, so ids made by one process are strictly increasing.

Examples:
    >>> from crucible_core.ids import new_id, id_time
    >>> a, b = new_id("exp"), new_id("exp")
    >>> a < b and a.startswith("exp_") and len(a) == 30
    True
"""

from __future__ import annotations

import datetime as dt
import os
import re
import threading
import time

from crucible_core.exceptions import ValidationError

__all__ = ("id_time", "is_id", "new_id")

_ALPHABET = "0123456789ABCDEFGHJKMNPQRSTVWXYZ"
_DECODE = {c: i for i, c in enumerate(_ALPHABET)}
_PREFIX_RE = re.compile(
    r"\A[a-z][a-z0-9]{0,15}\Z"
)  # \Z: `$` would allow a final newline
_ID_RE = re.compile(r"\A(?:([a-z][a-z0-9]{0,15})_)?([0-9A-HJKMNP-TV-Z]{26})\Z")
_lock = threading.Lock()
_last_ms = -1
_last_rand = 0


def _encode(value: int) -> str:
    out = []
    for _ in range(26):
        out.append(_ALPHABET[value & 31])
        value >>= 5
    return "".join(reversed(out))


def new_id(prefix: str = "") -> str:
    """A new id, `"<prefix>_<ULID>"` or a bare ULID when `prefix` is empty.

    Raises:
        ValidationError: if `prefix` is not 1–16 lowercase letters/digits starting with a letter.
    """
    global _last_ms, _last_rand
    if prefix and not _PREFIX_RE.match(prefix):
        raise ValidationError(
            f"id prefix {prefix!r} must be 1-16 lowercase letters or digits starting with a letter, "
            "e.g. 'exp'",
            prefix=prefix,
        )
    with _lock:
        ms = time.time_ns() // 1_000_000
        if ms <= _last_ms:
            ms = _last_ms
            _last_rand += 1
            if _last_rand >= 1 << 80:  # pragma: no cover - 2**80 ids in one millisecond
                ms += 1
                _last_rand = int.from_bytes(os.urandom(10), "big") >> 1
        else:
            _last_rand = (
                int.from_bytes(os.urandom(10), "big") >> 1
            )  # headroom for increments
        _last_ms = ms
        ulid = _encode((ms << 80) | _last_rand)
    return f"{prefix}_{ulid}" if prefix else ulid


def is_id(value: object) -> bool:
    """Whether `value` is an id made by [`new_id`][crucible_core.ids.new_id]."""
    return isinstance(value, str) and _ID_RE.match(value) is not None


def id_time(value: str) -> dt.datetime:
    """The UTC time (millisecond precision) at which an id was made.

    Raises:
        ValidationError: if `value` is not an id.
    """
    match = _ID_RE.match(value) if isinstance(value, str) else None  # type: ignore[redundant-expr]
    if match is None:
        raise ValidationError(
            f"{value!r} is not a crucible id (prefix_ULID)", value=value
        )
    number = 0
    for char in match.group(2):
        number = number * 32 + _DECODE[char]
    return dt.datetime.fromtimestamp((number >> 80) / 1000, tz=dt.UTC)
