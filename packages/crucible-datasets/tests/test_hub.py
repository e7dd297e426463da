"""The real download path against a local hub: download, cache, checksums, resume, offline."""

from __future__ import annotations

import hashlib
import pickle
from pathlib import Path
from typing import Any

import pytest

import crucible_datasets as cd
from crucible_core.events import attach, detach
from crucible_datasets import (
    ChecksumError,
    DatasetNotFoundError,
    DownloadError,
    OfflineError,
)

GSM = "main/test-00000-of-00001.parquet"


def test_first_load_downloads_second_loads_from_cache(hub: Any) -> None:
    first = cd.load("gsm8k", split="test")
    assert len(first) == 1319
    assert len(hub.gets()) == 1
    commit = hub.refs[("openai/gsm8k", "main")]
    assert first.version.commit == commit
    expected_sha = hashlib.sha256(hub.files("openai/gsm8k")[GSM]).hexdigest()
    assert first.version.checksum.startswith("sha256:")
    entry = next(iter(cd.list_cached()))
    assert entry.commit == commit
    assert entry.files[0].sha256 == expected_sha

    second = cd.load("gsm8k", split="test")
    assert len(hub.gets()) == 1  # no second download
    assert second.items == first.items
    assert second.version == first.version


def test_matches_the_local_files(hub: Any, data_dir: Path) -> None:
    from_hub = cd.load("gsm8k", split="test")
    local = cd.load("gsm8k", split="test", source=data_dir / "gsm8k")
    assert from_hub.items == local.items


def test_mmlu_subject_counts_match_the_release(hub: Any, data_dir: Path) -> None:
    ds = cd.load("mmlu", split="test")
    assert len(ds) == 14042
    counts: dict[str, int] = {}
    for item in ds:
        counts[item.metadata["subject"]] = counts.get(item.metadata["subject"], 0) + 1
    assert set(counts) == set(cd.MMLU_SUBJECTS)
    import csv

    for subject, n in counts.items():
        with (data_dir / "mmlu" / "test" / f"{subject}_test.csv").open(
            newline=""
        ) as fh:
            assert n == sum(1 for _ in csv.reader(fh)) - 1, subject  # minus the header
    for subject in ("anatomy", "professional_law", "world_religions"):
        alone = cd.load("mmlu", split="test", subset=subject)
        assert alone.items == tuple(i for i in ds if i.metadata["subject"] == subject)
    assert counts["abstract_algebra"] == 100
    assert counts["professional_law"] == 1534
    local = cd.load("mmlu", split="test", source=data_dir / "mmlu")
    assert ds.items == local.items


def test_mmlu_group_filters_subjects(hub: Any) -> None:
    stem = cd.load("mmlu_stem", split="dev")
    assert {i.metadata["subject"] for i in stem} == set(cd.MMLU_GROUPS["stem"])
    assert len(stem) == 5 * len(cd.MMLU_GROUPS["stem"])
    assert stem.metadata.subset == "stem"


def test_other_datasets_from_the_hub_equal_the_originals(
    hub: Any, data_dir: Path
) -> None:
    for name, split, source in (
        ("scifact", "validation", data_dir / "scifact"),
        ("scifact", "test", data_dir / "scifact"),
        ("scifact", "train", data_dir / "scifact"),
        ("fever", "paper_dev", data_dir / "fever"),
        ("humaneval", "test", data_dir / "humaneval"),
    ):
        revision = "main" if name == "humaneval" else None
        remote = cd.load(name, split=split, revision=revision)
        local = cd.load(name, split=split, source=source)
        assert [(i.id, i.input, i.expected) for i in remote] == [
            (i.id, i.input, i.expected) for i in local
        ], name
        if name == "fever":
            assert [i.metadata["evidence_sentences"] for i in remote] == [
                i.metadata["evidence_sentences"] for i in local
            ]


def test_corrupted_cache_file_is_detected_and_downloaded_again(hub: Any) -> None:
    first = cd.load("gsm8k")
    entry = next(iter(cd.list_cached()))
    cached = (
        Path(cd.list_cached().root) / "files" / "openai--gsm8k" / entry.commit / GSM
    )
    data = bytearray(cached.read_bytes())
    data[100] ^= 0xFF
    cached.write_bytes(bytes(data))
    again = cd.load("gsm8k")
    assert len(hub.gets()) == 2
    assert again.items == first.items
    assert hashlib.sha256(cached.read_bytes()).hexdigest() == entry.files[0].sha256


def test_corrupted_cache_offline_is_an_error_not_silently_used(
    hub: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    cd.load("gsm8k")
    entry = next(iter(cd.list_cached()))
    cached = (
        Path(cd.list_cached().root) / "files" / "openai--gsm8k" / entry.commit / GSM
    )
    cached.write_bytes(cached.read_bytes()[:-10] + b"0123456789")
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    with pytest.raises(ChecksumError, match="offline"):
        cd.load("gsm8k")


def test_served_bytes_that_differ_from_the_hub_checksum_fail(hub: Any) -> None:
    hub.corrupt.add(GSM)
    with pytest.raises(ChecksumError, match="SHA-256") as info:
        cd.load("gsm8k")
    assert (
        info.value.expected
        == hashlib.sha256(hub.files("openai/gsm8k")[GSM]).hexdigest()
    )
    assert isinstance(info.value, ValueError)
    assert len(hub.gets()) == 2  # one fresh retry, then the error
    assert len(cd.list_cached()) == 0  # nothing recorded


def test_interrupted_download_resumes_with_a_range_request(hub: Any) -> None:
    size = len(hub.files("openai/gsm8k")[GSM])
    hub.abort_after[GSM] = size // 3
    ds = cd.load("gsm8k")
    assert len(ds) == 1319
    gets = hub.gets()
    assert len(gets) == 2
    assert gets[0][2] is None
    assert gets[1][2] is not None and gets[1][2].startswith("bytes=")
    assert 0 < int(gets[1][2][6:-1]) < size


def test_server_that_ignores_range_restarts_the_file(hub: Any) -> None:
    hub.abort_after[GSM] = 1000
    hub.no_range = True
    assert len(cd.load("gsm8k")) == 1319


def test_transient_errors_are_retried(hub: Any) -> None:
    hub.statuses[GSM] = [503, 502]
    assert len(cd.load("gsm8k")) == 1319
    assert len(hub.gets()) == 3


def test_auth_failure_says_to_set_hf_token(
    hub: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    hub.token = "secret"
    with pytest.raises(DownloadError, match="HF_TOKEN") as info:
        cd.load("gsm8k")
    assert info.value.status == 401
    monkeypatch.setenv("HF_TOKEN", "secret")
    assert len(cd.load("gsm8k")) == 1319


def test_unknown_revision_and_missing_split_file(hub: Any) -> None:
    with pytest.raises(DatasetNotFoundError, match="revision"):
        cd.load("gsm8k", revision="no-such-branch")
    with pytest.raises(DatasetNotFoundError, match="no file"):
        cd.load("mmlu", split="validation")  # the shared copy has no validation split


def test_pinned_commit_loads_from_cache_without_the_hub(hub: Any) -> None:
    commit = hub.refs[("openai/gsm8k", "main")]
    first = cd.load("gsm8k", revision=commit)
    assert first.version.commit == commit
    n = len(hub.log)
    second = cd.load("gsm8k", revision=commit)
    assert len(hub.log) == n  # not even the revision lookup
    assert second.items == first.items


def test_new_commit_on_main_is_downloaded_and_old_pin_still_works(hub: Any) -> None:
    old = cd.load("gsm8k")
    files = dict(hub.files("openai/gsm8k"))
    files[GSM] = hub.files("openai/gsm8k")["main/train-00000-of-00001.parquet"]
    new_commit = hub.publish("openai/gsm8k", "main", files)
    new = cd.load("gsm8k")
    assert new.version.commit == new_commit
    assert len(new) == 500
    assert new.version.checksum != old.version.checksum
    pinned = cd.load("gsm8k", revision=old.version.commit)
    assert pinned.items == old.items


def test_offline_with_nothing_cached_says_what_to_do(
    hub: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("CRUCIBLE_OFFLINE", "1")
    with pytest.raises(OfflineError, match="Load it once online") as info:
        cd.load("gsm8k")
    assert isinstance(info.value, FileNotFoundError)
    assert "openai/gsm8k" in str(info.value)
    assert hub.log == []


def test_offline_after_caching_uses_the_cache(hub: Any) -> None:
    online = cd.load("gsm8k")
    n = len(hub.log)
    offline = cd.load("gsm8k", offline=True)
    assert len(hub.log) == n
    assert offline.items == online.items
    assert offline.version.commit == online.version.commit


def test_unreachable_hub_is_a_download_error(
    hub: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    import socket

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    monkeypatch.setenv("HF_ENDPOINT", f"http://127.0.0.1:{port}")
    with pytest.raises(DownloadError, match="cannot reach") as info:
        cd.load("gsm8k")
    assert isinstance(info.value, ConnectionError)


def test_cache_management(hub: Any, tmp_path: Path) -> None:
    cd.load("gsm8k")
    cd.load("mmlu", split="dev", subset="anatomy")
    listing = cd.list_cached()
    assert [(e.dataset, e.subset, e.split) for e in listing] == [
        ("gsm8k", None, "test"),
        ("mmlu", "anatomy", "dev"),
    ]
    assert "gsm8k" in listing.render()
    assert "<table>" in listing._repr_html_()
    assert cd.invalidate_cache("gsm8k") == 1
    assert [e.dataset for e in cd.list_cached()] == ["mmlu"]
    cd.load("gsm8k")
    assert len(hub.gets()) == 3  # gsm8k downloaded again
    assert cd.clear_cache() == 2
    assert len(cd.list_cached()) == 0
    other = tmp_path / "elsewhere"
    cd.load("gsm8k", cache_dir=other)
    assert len(cd.list_cached(cache_dir=other)) == 1
    assert len(cd.list_cached()) == 0


def test_load_events(hub: Any) -> None:
    seen: list[tuple[tuple[str, ...], dict[str, float], dict[str, Any]]] = []
    attach(
        "test-datasets",
        [("crucible", "dataset")],
        lambda n, m, md: seen.append((n, dict(m), dict(md))),
    )
    try:
        cd.load("gsm8k")
        with pytest.raises(DatasetNotFoundError):
            cd.load("gsm8k", split="nope")
    finally:
        detach("test-datasets")
    names = [n[-2:] for n, _, _ in seen]
    assert ("load", "start") in names
    assert ("download", "stop") in names
    assert ("load", "stop") in names
    assert ("load", "exception") in names
    stop = next(m for n, m, _ in seen if n[-2:] == ("load", "stop"))
    assert stop["items"] == 1319 and stop["downloaded_bytes"] > 0


async def test_load_async_inside_a_running_loop(hub: Any) -> None:
    ds = await cd.load_async("gsm8k", sample_size=10, seed=3)
    assert len(ds) == 10
    again = cd.load("gsm8k", sample_size=10, seed=3)  # sync call from a running loop
    assert again.items == ds.items


def test_errors_pickle_with_context(hub: Any) -> None:
    with pytest.raises(DatasetNotFoundError) as info:
        cd.load("gsm8k", split="validation")
    err = pickle.loads(pickle.dumps(info.value))
    assert err.available == ["train", "test"]
    assert str(err) == str(info.value)
    assert isinstance(err, KeyError)


@pytest.mark.parametrize(
    "sha",
    [
        "../../../../../pwned",
        "/tmp/crucible-pwned",
        "a" * 39 + "/",
        "A" * 40,
        "0" * 41,
        "..",
    ],
)
def test_hostile_commit_sha_is_refused_and_nothing_is_written(
    hub: Any, tmp_path: Path, sha: str
) -> None:
    from crucible_datasets.exceptions import DownloadError

    files = hub.files("openai/gsm8k")
    hub.commits[sha] = dict(files)
    hub.refs[("openai/gsm8k", "main")] = sha
    outside = tmp_path / "outside"
    outside.mkdir()
    (outside / "victim.txt").write_text("precious")
    before = sorted(p for p in tmp_path.rglob("*"))
    with pytest.raises(DownloadError, match="40 hex characters") as info:
        cd.load("gsm8k")
    assert "nothing was written" in str(info.value)
    assert sorted(p for p in tmp_path.rglob("*")) == before
    assert (outside / "victim.txt").read_text() == "precious"
    assert hub.gets() == []  # no file was even requested
    assert len(cd.list_cached()) == 0


def test_cache_paths_are_checked_to_stay_in_the_cache(tmp_path: Path) -> None:
    from crucible_datasets import _cache
    from crucible_datasets.exceptions import DownloadError

    root = tmp_path / "cache"
    good = _cache.file_path(root, "openai/gsm8k", "a" * 40, "main/test.parquet")
    assert good.is_relative_to(root)
    for repo, commit, path in [
        ("openai/gsm8k", "a" * 40, "../../../../etc/passwd"),
        ("openai/gsm8k", "a" * 40, "/etc/passwd"),
        ("openai/gsm8k", "../" * 3 + "x" * 31, "f"),
        ("..", "a" * 40, "f"),
    ]:
        if repo == "..":
            assert _cache.file_path(root, repo, commit, path).is_relative_to(root)
            continue
        with pytest.raises(DownloadError, match="refusing"):
            _cache.file_path(root, repo, commit, path)
    (root / "files").mkdir(parents=True)
    (root / "files" / "evil--repo").symlink_to(tmp_path)  # a tampered cache
    with pytest.raises(DownloadError, match="outside the cache"):
        _cache.file_path(root, "evil/repo", "a" * 40, "f")
    assert _cache.ref_path(root, "openai/gsm8k", "..").is_relative_to(root)
