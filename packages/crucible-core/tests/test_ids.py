from __future__ import annotations

import datetime as dt
import threading

import pytest

from crucible_core.exceptions import ValidationError
from crucible_core.ids import id_time, is_id, new_id


def test_ids_are_unique_and_sorted_in_creation_order() -> None:
    ids = [new_id("run") for _ in range(20_000)]
    assert ids == sorted(ids)
    assert len(set(ids)) == len(ids)
    assert all(is_id(i) for i in ids)


def test_ids_unique_across_threads() -> None:
    out: list[list[str]] = [[] for _ in range(4)]

    def work(k: int) -> None:
        out[k].extend(new_id() for _ in range(5_000))

    threads = [threading.Thread(target=work, args=(k,)) for k in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    flat = [i for part in out for i in part]
    assert len(set(flat)) == len(flat)
    for part in out:
        assert part == sorted(part)


def test_id_time_is_now() -> None:
    before = dt.datetime.now(dt.UTC) - dt.timedelta(seconds=1)
    when = id_time(new_id("exp"))
    assert before <= when <= dt.datetime.now(dt.UTC) + dt.timedelta(seconds=1)


@pytest.mark.parametrize("prefix", ["Exp", "1x", "a-b", "x" * 17, "../etc", "exp\n"])
def test_bad_prefix(prefix: str) -> None:
    with pytest.raises(ValidationError, match="prefix"):
        new_id(prefix)


@pytest.mark.parametrize(
    "value", ["", "exp_123", "../../etc/passwd", 5, "exp_" + "U" * 26]
)
def test_not_ids(value: object) -> None:
    assert not is_id(value)
    with pytest.raises(ValidationError):
        id_time(value)  # type: ignore[arg-type]


def test_an_id_with_a_trailing_newline_is_not_an_id() -> None:
    value = new_id("chain")
    assert is_id(value)
    assert not is_id(value + "\n") and not is_id(value + "\r\n")
    with pytest.raises(ValidationError):
        id_time(value + "\n")
