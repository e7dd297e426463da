"""Later loads from the cache: stamps instead of re-hashing, and the Arrow copy of each Parquet file.

Each test counts what a load really does (files hashed, Parquet files decoded) by wrapping the
functions that do it, and attacks the cache the way a user or a broken disk would: same-size
edits, an mtime set back, truncated and garbage copies, forged stamps, an unwritable cache.
"""

from __future__ import annotations

import os
import time
from collections import Counter
from pathlib import Path
from typing import Any

import orjson
import pytest

import crucible_datasets as cd
from crucible_datasets import ChecksumError, _cache, _load

GSM = "main/test-00000-of-00001.parquet"


class Calls:
    """What the loads did: files hashed and Parquet files decoded, by file name."""

    def __init__(self, monkeypatch: pytest.MonkeyPatch) -> None:
        self.hashed: Counter[str] = Counter()
        self.decoded: Counter[str] = Counter()
        hashed, decode = _cache._hashed, _load.read_table

        def counted_hash(path: Path) -> Any:
            self.hashed[path.name] += 1
            return hashed(path)

        def counted_decode(path: Path) -> Any:
            self.decoded[path.name] += 1
            return decode(path)

        monkeypatch.setattr(_cache, "_hashed", counted_hash)
        monkeypatch.setattr(_load, "read_table", counted_decode)

    def reset(self) -> None:
        self.hashed.clear()
        self.decoded.clear()


@pytest.fixture
def calls(monkeypatch: pytest.MonkeyPatch) -> Calls:
    return Calls(monkeypatch)


@pytest.fixture
def settled(monkeypatch: pytest.MonkeyPatch) -> None:
    """Every file counts as settled at once, as it will a couple of seconds after it was written."""
    monkeypatch.setattr("crucible_core._stamps.RACY_NS", 0)


def _paths(commit: str) -> tuple[Path, Path, Path]:
    root = Path(cd.list_cached().root)
    local = root / "files" / "openai--gsm8k" / commit / GSM
    derived = root / "derived" / "openai--gsm8k" / commit
    return local, derived / f"{GSM}.json", derived / f"{GSM}.arrow"


def _stamps(path: Path) -> dict[str, Any]:
    data: dict[str, Any] = orjson.loads(path.read_bytes())
    return data


def test_settled_files_are_neither_hashed_nor_decoded_again(
    hub: Any, calls: Calls, settled: None
) -> None:
    first = cd.load("gsm8k")
    local, stamps, copy = _paths(first.version.commit or "")
    assert calls.decoded == {local.name: 1}
    assert copy.is_file() and stamps.is_file()
    written = _stamps(stamps)
    assert written["arrow"]["from"] == next(iter(cd.list_cached())).files[0].sha256
    assert (
        "file" not in written
    )  # the download hashed the stream; the file is stamped later
    assert written["arrow"]["rows"] == 1319
    assert (
        written["arrow"]["at"] is None
    )  # just written: its own hash vouches next time

    calls.reset()
    second = cd.load("gsm8k")  # online: the hub is asked, the cached file checked
    assert calls.decoded == {}  # read from the Arrow copy, its bytes hashed in memory
    assert calls.hashed == {
        local.name: 1
    }  # the download hashed the stream, not this file
    assert isinstance(_stamps(stamps)["arrow"]["at"], int)  # now trusted by its stamp

    calls.reset()
    third = cd.load("gsm8k", offline=True)
    assert calls.decoded == {} and calls.hashed == {}
    assert len(hub.gets()) == 1
    assert first.items == second.items == third.items
    assert first.version == second.version == third.version
    assert third.to_arrow().equals(first.to_arrow())


def test_every_hub_dataset_is_the_same_through_its_arrow_copy(
    hub: Any, calls: Calls, settled: None
) -> None:
    cases = [
        ("gsm8k", "test", None),
        ("mmlu", "test", None),
        ("mmlu", "dev", "anatomy"),
        ("scifact", "validation", None),
        ("scifact", "train", None),
        ("fever", "paper_dev", None),
    ]
    for name, split, subset in cases:
        calls.reset()
        first = cd.load(name, split=split, subset=subset)
        assert sum(calls.decoded.values()) == 1, name
        for _ in range(2):
            calls.reset()
            again = cd.load(name, split=split, subset=subset, offline=True)
            assert calls.decoded == {}, name
            assert again.items == first.items, name
            assert [i.id for i in again] == [i.id for i in first], name
            assert again.to_arrow().equals(first.to_arrow()), name


def test_a_same_size_edit_is_caught_after_the_stamp_is_trusted(
    hub: Any, calls: Calls, settled: None, monkeypatch: pytest.MonkeyPatch
) -> None:
    first = cd.load("gsm8k")
    cd.load("gsm8k")
    local, _, _ = _paths(first.version.commit or "")
    data = bytearray(local.read_bytes())
    data[200] ^= 0xFF
    local.write_bytes(bytes(data))  # same size, new mtime and ctime
    calls.reset()
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    with pytest.raises(ChecksumError, match="do not match"):
        cd.load("gsm8k")
    assert calls.hashed == {local.name: 1}
    monkeypatch.delenv("HF_HUB_OFFLINE")
    again = cd.load("gsm8k")  # online: downloaded again
    assert len(hub.gets()) == 2
    assert again.items == first.items


def test_an_edit_that_sets_the_mtime_back_is_still_caught(
    hub: Any, calls: Calls, settled: None
) -> None:
    first = cd.load("gsm8k")
    cd.load("gsm8k")
    local, _, _ = _paths(first.version.commit or "")
    before = local.stat()
    data = bytearray(local.read_bytes())
    data[300] ^= 0x01
    local.write_bytes(bytes(data))
    os.utime(local, ns=(before.st_atime_ns, before.st_mtime_ns))
    assert local.stat().st_mtime_ns == before.st_mtime_ns
    assert local.stat().st_size == before.st_size
    calls.reset()
    with pytest.raises(ChecksumError):
        cd.load("gsm8k", offline=True)  # the ctime moved, so it was hashed and failed
    assert calls.hashed == {local.name: 1}


def test_files_changed_just_before_they_were_hashed_are_hashed_again(
    hub: Any, calls: Calls, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A file that changed within the window before its hash is never trusted by its stamp."""
    monkeypatch.setattr("crucible_core._stamps.RACY_NS", 3600 * 10**9)
    first = cd.load("gsm8k")
    local, stamps, _ = _paths(first.version.commit or "")
    for _ in range(3):
        calls.reset()
        cd.load("gsm8k", offline=True)
        assert calls.hashed == {local.name: 1}
    assert "file" not in _stamps(stamps)  # a racy stamp is not worth recording


def test_a_corrupt_or_truncated_arrow_copy_is_rebuilt_from_the_parquet_file(
    hub: Any, calls: Calls, settled: None
) -> None:
    first = cd.load("gsm8k")
    cd.load("gsm8k")
    local, stamps, copy = _paths(first.version.commit or "")
    good = copy.read_bytes()
    written = _stamps(stamps)["arrow"]["sha256"]

    middle = bytearray(good)
    middle[len(good) // 2] ^= 0xFF
    for broken in (bytes(middle), good[: len(good) // 3], b""):
        copy.write_bytes(broken)
        calls.reset()
        again = cd.load("gsm8k", offline=True)
        assert calls.decoded == {local.name: 1}
        assert again.items == first.items
        assert copy.read_bytes() == good  # rewritten, byte for byte
        assert _stamps(stamps)["arrow"]["sha256"] == written

    copy.unlink()
    calls.reset()
    assert cd.load("gsm8k", offline=True).items == first.items
    assert calls.decoded == {local.name: 1} and copy.is_file()


def _forge(stamps: Path, copy: Path, *, trusted: bool) -> None:
    """Make the stamp match the copy now on disk, as a bad disk or a hostile user could."""
    data = _stamps(stamps)
    data["arrow"]["stat"] = _cache.stamp(copy.stat())
    data["arrow"]["at"] = (
        time.time_ns() if trusted else None
    )  # None: its hash must vouch
    stamps.write_bytes(orjson.dumps(data))


def _other_copy() -> bytes:
    """A valid Arrow copy of other data (MMLU anatomy dev: 5 rows, not GSM8K's 1319)."""
    cd.load("mmlu", split="dev", subset="anatomy")
    root = Path(cd.list_cached().root)
    (found,) = (root / "derived" / "cais--mmlu").rglob("*.arrow")
    return found.read_bytes()


def _forgery(kind: str, good: bytes, first: cd.Dataset) -> bytes:
    if kind == "zeros":
        return b"\x00" * len(good)
    if kind == "garbage":
        return b"ARROW1" + b"\xff" * 4000
    if kind == "other rows":
        return _other_copy()
    head = first[0].input["question"].encode()[:40]
    assert good.count(head) == 1
    return good.replace(head, head.upper())  # still valid Arrow, the same rows


@pytest.mark.parametrize(
    ("trusted", "kind"),
    [
        (True, "zeros"),
        (True, "garbage"),
        (True, "other rows"),
        (False, "same rows edited"),
        (False, "other rows"),
    ],
)
def test_a_forged_arrow_copy_is_rebuilt_from_the_parquet_file(
    hub: Any, calls: Calls, settled: None, trusted: bool, kind: str
) -> None:
    """A copy whose stamp was made to match (a bad disk, a hostile user) never reaches the
    builders unless it parses with the rows recorded; one that only its hash can vouch for
    must hash to what was written. (A trusted stamp over a same-rows edit is the one case a
    stamp cannot catch, as for any file.)"""
    first = cd.load("gsm8k")
    cd.load("gsm8k")
    local, stamps, copy = _paths(first.version.commit or "")
    copy.write_bytes(_forgery(kind, copy.read_bytes(), first))
    _forge(stamps, copy, trusted=trusted)
    calls.reset()
    again = cd.load("gsm8k", offline=True)
    assert calls.decoded == {local.name: 1}
    assert again.items == first.items


def test_unreadable_stamps_are_ignored_and_rewritten(
    hub: Any, calls: Calls, settled: None
) -> None:
    first = cd.load("gsm8k")
    local, stamps, _ = _paths(first.version.commit or "")
    for junk in (b"{not json", b"[1, 2]", b'{"format": 99, "file": {}}'):
        stamps.write_bytes(junk)
        calls.reset()
        assert cd.load("gsm8k", offline=True).items == first.items
        assert calls.hashed == {local.name: 1}
        assert _stamps(stamps)["format"] == 1


def test_a_cache_whose_derived_directory_cannot_be_written_still_loads(
    hub: Any, calls: Calls, settled: None
) -> None:
    root = Path(cd.list_cached().root)
    root.mkdir(parents=True, exist_ok=True)
    (root / "derived").write_text("not a directory")  # unwritable, even for root
    first = cd.load("gsm8k")
    for _ in range(2):
        calls.reset()
        assert cd.load("gsm8k", offline=True).items == first.items
        assert sum(calls.hashed.values()) == 1 and sum(calls.decoded.values()) == 1


def test_invalidate_and_clear_remove_the_derived_files(hub: Any, settled: None) -> None:
    first = cd.load("gsm8k")
    cd.load("mmlu", split="dev", subset="anatomy")
    local, stamps, copy = _paths(first.version.commit or "")
    assert copy.is_file() and stamps.is_file()
    assert cd.invalidate_cache("gsm8k") == 1
    assert not copy.exists() and not stamps.exists() and not local.exists()
    root = Path(cd.list_cached().root)
    assert list((root / "derived" / "cais--mmlu").rglob("*.arrow"))
    assert cd.clear_cache() == 1
    assert not (root / "derived").exists()
