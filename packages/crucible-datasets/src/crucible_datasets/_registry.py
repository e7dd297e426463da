"""What each dataset is: its splits, hub files, local layouts, license, and how rows become items."""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping, Sequence
from typing import Any

import attrs

from crucible_datasets._parse import LINE, Row, field
from crucible_datasets._types import Item
from crucible_datasets.exceptions import DatasetNotFoundError, MalformedDataError

__all__ = (
    "DATASETS",
    "MMLU_GROUPS",
    "MMLU_SUBJECTS",
    "DatasetSpec",
    "spec_for",
)

# --------------------------------------------------------------------------------------------
# MMLU subjects and the four category groups of the Hendrycks repository (categories.py).

_STEM = [
    "abstract_algebra",
    "astronomy",
    "college_biology",
    "college_chemistry",
    "college_computer_science",
    "college_mathematics",
    "college_physics",
    "computer_security",
    "conceptual_physics",
    "electrical_engineering",
    "elementary_mathematics",
    "high_school_biology",
    "high_school_chemistry",
    "high_school_computer_science",
    "high_school_mathematics",
    "high_school_physics",
    "high_school_statistics",
    "machine_learning",
]
_HUMANITIES = [
    "formal_logic",
    "high_school_european_history",
    "high_school_us_history",
    "high_school_world_history",
    "international_law",
    "jurisprudence",
    "logical_fallacies",
    "moral_disputes",
    "moral_scenarios",
    "philosophy",
    "prehistory",
    "professional_law",
    "world_religions",
]
_SOCIAL = [
    "econometrics",
    "high_school_geography",
    "high_school_government_and_politics",
    "high_school_macroeconomics",
    "high_school_microeconomics",
    "high_school_psychology",
    "human_sexuality",
    "professional_psychology",
    "public_relations",
    "security_studies",
    "sociology",
    "us_foreign_policy",
]
_OTHER = [
    "anatomy",
    "business_ethics",
    "clinical_knowledge",
    "college_medicine",
    "global_facts",
    "human_aging",
    "management",
    "marketing",
    "medical_genetics",
    "miscellaneous",
    "nutrition",
    "professional_accounting",
    "professional_medicine",
    "virology",
]

MMLU_GROUPS: Mapping[str, tuple[str, ...]] = {
    "stem": tuple(_STEM),
    "humanities": tuple(_HUMANITIES),
    "social_sciences": tuple(_SOCIAL),
    "other": tuple(_OTHER),
}
"""MMLU's four subject groups, as in the Hendrycks repository's `categories.py`."""

MMLU_SUBJECTS: tuple[str, ...] = tuple(sorted(_STEM + _HUMANITIES + _SOCIAL + _OTHER))
"""The 57 MMLU subjects."""

_LETTERS = "ABCD"

# --------------------------------------------------------------------------------------------
# Builders: canonical rows → items. Each accepts both the original files' shape and the hub's.

Builder = Callable[[Sequence[Row], str, "str | None", str], list[Item]]


def _final_number(solution: str) -> str | None:
    match = re.search(r"####\s*(.+?)\s*$", solution.strip())
    if match is None:
        return None
    return match.group(1).replace(",", "").replace("$", "").strip()


def _gsm8k(
    rows: Sequence[Row], split: str, subset: str | None, path: str
) -> list[Item]:
    items = []
    for k, row in enumerate(rows):
        question = field(row, "question", path, kind=str)
        answer = field(row, "answer", path, kind=str)
        final = _final_number(answer)
        if final is None:
            raise MalformedDataError(
                f"{path!r} line {row.get(LINE)}: the answer has no final `#### <number>` line",
                path=path,
                line=row.get(LINE),
                field="answer",
            )
        items.append(
            Item(
                id=f"gsm8k/{split}/{k}",
                input={"question": question},
                expected=final,
                metadata={"solution": answer},
            )
        )
    return items


def _mmlu_answer(value: Any, row: Row, path: str) -> int:
    if isinstance(value, int) and not isinstance(value, bool) and 0 <= value <= 3:
        return value
    text = str(value).strip()
    if text in _LETTERS and text:
        return _LETTERS.index(text)
    if text in {"0", "1", "2", "3"}:
        return int(text)
    raise MalformedDataError(
        f"{path!r} line {row.get(LINE)}: answer {value!r} is not A–D or 0–3",
        path=path,
        line=row.get(LINE),
        field="answer",
    )


def _require_keys(rows: Sequence[Row], keys: tuple[str, ...], path: str) -> None:
    wanted = set(keys)
    for row in rows:
        if not wanted <= row.keys():
            for key in keys:
                field(row, key, path)


def _mmlu(rows: Sequence[Row], split: str, subset: str | None, path: str) -> list[Item]:
    items = []
    counters: dict[str, int] = {}
    _require_keys(rows, ("subject", "choices", "answer", "question"), path)
    for row in rows:
        subject = row["subject"]
        choices = row["choices"]
        if not isinstance(subject, str) or not isinstance(choices, list | tuple):
            field(row, "subject", path, kind=str)
            field(row, "choices", path, kind=(list, tuple))
        if len(choices) != 4:
            raise MalformedDataError(
                f"{path!r} line {row.get(LINE)}: {len(choices)} choices, expected 4",
                path=path,
                line=row.get(LINE),
                field="choices",
            )
        answer = _mmlu_answer(row["answer"], row, path)
        k = counters.get(subject, 0)
        counters[subject] = k + 1
        items.append(
            Item(
                id=f"mmlu/{subject}/{split}/{k}",
                input={
                    "question": str(row["question"]),
                    "choices": [str(c) for c in choices],
                    "subject": subject,
                },
                expected=_LETTERS[answer],
                metadata={"subject": subject, "answer_index": answer},
            )
        )
    return items


def _humaneval(
    rows: Sequence[Row], split: str, subset: str | None, path: str
) -> list[Item]:
    items = []
    for row in rows:
        task_id = field(row, "task_id", path, kind=str)
        items.append(
            Item(
                id=task_id,
                input={
                    "prompt": field(row, "prompt", path, kind=str),
                    "entry_point": field(row, "entry_point", path, kind=str),
                },
                expected=field(row, "canonical_solution", path, kind=str),
                metadata={
                    "test": field(row, "test", path, kind=str),
                    "entry_point": row["entry_point"],
                },
            )
        )
    return items


_SCIFACT_LABELS = {"SUPPORT": "SUPPORTS", "CONTRADICT": "REFUTES"}


def _scifact_regroup(rows: Sequence[Row], path: str) -> list[Row]:
    """The hub's flat rows (one per evidence annotation) back into one row per claim."""
    grouped: dict[int, Row] = {}
    for row in rows:
        cid = int(field(row, "id", path))
        claim = grouped.setdefault(
            cid,
            {
                "id": cid,
                "claim": field(row, "claim", path, kind=str),
                "evidence": {},
                "cited_doc_ids": list(row.get("cited_doc_ids") or []),
                LINE: row.get(LINE),
                "_labelled": False,
            },
        )
        doc = str(row.get("evidence_doc_id") or "")
        label = str(row.get("evidence_label") or "")
        if label:
            claim["_labelled"] = True
        if doc:
            claim["evidence"].setdefault(doc, []).append(
                {"sentences": list(row.get("evidence_sentences") or []), "label": label}
            )
    return list(grouped.values())


def _scifact(
    rows: Sequence[Row], split: str, subset: str | None, path: str
) -> list[Item]:
    if subset == "corpus":
        return [
            Item(
                id=f"scifact/corpus/{field(row, 'doc_id', path)}",
                input={
                    "title": field(row, "title", path, kind=str),
                    "abstract": list(field(row, "abstract", path, kind=(list, tuple))),
                },
                expected=None,
                metadata={"structured": row.get("structured")},
            )
            for row in rows
        ]
    if rows and "evidence_doc_id" in rows[0]:
        rows = _scifact_regroup(rows, path)
    items = []
    for row in rows:
        cid = field(row, "id", path)
        evidence = row.get("evidence")
        labelled = row.get("_labelled", evidence is not None)
        if evidence is None or (not labelled and not evidence):
            expected = None if split == "test" else "NOT ENOUGH INFO"
        else:
            labels = {e["label"] for sets in evidence.values() for e in sets}
            if not labels:
                expected = "NOT ENOUGH INFO"
            elif len(labels) == 1 and (only := labels.pop()) in _SCIFACT_LABELS:
                expected = _SCIFACT_LABELS[only]
            else:
                raise MalformedDataError(
                    f"{path!r} line {row.get(LINE)}: evidence labels {sorted(labels)} are not "
                    "one of SUPPORT/CONTRADICT",
                    path=path,
                    line=row.get(LINE),
                    field="evidence",
                )
        items.append(
            Item(
                id=f"scifact/{split}/{cid}",
                input={"claim": field(row, "claim", path, kind=str)},
                expected=expected,
                metadata={
                    "evidence": evidence or {},
                    "cited_doc_ids": list(row.get("cited_doc_ids") or []),
                },
            )
        )
    return items


_FEVER_LABELS = ("SUPPORTS", "REFUTES", "NOT ENOUGH INFO")


def _fever_regroup(rows: Sequence[Row], path: str) -> list[Row]:
    """The hub's flat rows (one per evidence sentence) back into one row per claim."""
    grouped: dict[int, Row] = {}
    sets: dict[int, dict[int, list[list[Any]]]] = {}
    for row in rows:
        cid = int(field(row, "id", path))
        if cid not in grouped:
            grouped[cid] = {
                "id": cid,
                "label": field(row, "label", path, kind=str),
                "claim": field(row, "claim", path, kind=str),
                LINE: row.get(LINE),
            }
            sets[cid] = {}
        page = row.get("evidence_wiki_url") or None
        sentence = row.get("evidence_sentence_id")
        sentence = None if sentence is None or sentence < 0 else int(sentence)
        eid = row.get("evidence_id")
        eid = None if eid is None or eid < 0 else int(eid)
        sets[cid].setdefault(
            eid if eid is not None else -len(sets[cid]) - 1, []
        ).append([row.get("evidence_annotation_id"), eid, page, sentence])
    for cid, row in grouped.items():
        row["evidence"] = list(sets[cid].values())
    return list(grouped.values())


def _fever(
    rows: Sequence[Row], split: str, subset: str | None, path: str
) -> list[Item]:
    if rows and "evidence_id" in rows[0]:
        rows = _fever_regroup(rows, path)
    items = []
    for row in rows:
        label = field(row, "label", path, kind=str).strip().upper()
        if label not in _FEVER_LABELS:
            raise MalformedDataError(
                f"{path!r} line {row.get(LINE)}: label {label!r} is not one of {_FEVER_LABELS}",
                path=path,
                line=row.get(LINE),
                field="label",
            )
        evidence = field(row, "evidence", path, kind=list)
        pages = sorted(
            {
                (str(s[2]), int(s[3]))
                for group in evidence
                for s in group
                if len(s) == 4 and s[2] is not None and s[3] is not None
            }
        )
        items.append(
            Item(
                id=f"fever/{split}/{field(row, 'id', path)}",
                input={"claim": field(row, "claim", path, kind=str)},
                expected=label,
                metadata={
                    "verifiable": row.get(
                        "verifiable",
                        "NOT VERIFIABLE"
                        if label == "NOT ENOUGH INFO"
                        else "VERIFIABLE",
                    ),
                    "evidence": evidence,
                    "evidence_sentences": [list(p) for p in pages],
                },
            )
        )
    return items


# --------------------------------------------------------------------------------------------
# Specs.


@attrs.define(frozen=True, kw_only=True)
class DatasetSpec:
    """Everything the loader knows about one dataset."""

    name: str
    splits: tuple[str, ...]
    default_split: str
    license: str
    domain: str
    repo: str
    revision: str
    hub_path: Callable[[str, str | None], str]
    local_names: Callable[[str, str | None], tuple[str, ...]]
    builder: Builder
    subsets: tuple[str, ...] = ()
    homepage: str = ""

    def check(self, split: str | None, subset: str | None) -> tuple[str, str | None]:
        """The split and subset to use, or `DatasetNotFoundError` listing what exists."""
        split = self.default_split if split is None else split
        if split not in self.splits:
            raise DatasetNotFoundError(
                f"dataset {self.name!r} has no split {split!r}; choose one of {list(self.splits)}",
                dataset=self.name,
                split=split,
                available=list(self.splits),
            )
        if subset is not None and subset not in self.subsets:
            shown = list(self.subsets) if self.subsets else "none"
            raise DatasetNotFoundError(
                f"dataset {self.name!r} has no subset {subset!r}; subsets: {shown}",
                dataset=self.name,
                subset=subset,
                available=list(self.subsets),
            )
        return split, subset


def _mmlu_hub(split: str, subset: str | None) -> str:
    config = subset if subset in MMLU_SUBJECTS else "all"
    return f"{config}/{split}-00000-of-00001.parquet"


def _mmlu_local(split: str, subset: str | None) -> tuple[str, ...]:
    subjects = mmlu_subjects(subset)
    folder = {"validation": "val"}.get(split, split)
    return tuple(f"{folder}/{s}_{folder}.csv" for s in subjects)


def mmlu_subjects(subset: str | None) -> tuple[str, ...]:
    """The subjects a subset covers (all 57 for `None` or `"all"`)."""
    if subset is None or subset == "all":
        return MMLU_SUBJECTS
    if subset in MMLU_GROUPS:
        return tuple(sorted(MMLU_GROUPS[subset]))
    return (subset,)


DATASETS: dict[str, DatasetSpec] = {
    "gsm8k": DatasetSpec(
        name="gsm8k",
        splits=("train", "test"),
        default_split="test",
        license="MIT",
        domain="math",
        repo="openai/gsm8k",
        revision="main",
        hub_path=lambda split, subset: f"main/{split}-00000-of-00001.parquet",
        local_names=lambda split, subset: (f"{split}.jsonl",),
        builder=_gsm8k,
        homepage="https://github.com/openai/grade-school-math",
    ),
    "mmlu": DatasetSpec(
        name="mmlu",
        splits=("test", "validation", "dev"),
        default_split="test",
        license="MIT",
        domain="knowledge",
        repo="cais/mmlu",
        revision="main",
        hub_path=_mmlu_hub,
        local_names=_mmlu_local,
        builder=_mmlu,
        subsets=("all", *MMLU_GROUPS, *MMLU_SUBJECTS),
        homepage="https://github.com/hendrycks/test",
    ),
    "humaneval": DatasetSpec(
        name="humaneval",
        splits=("test",),
        default_split="test",
        license="MIT",
        domain="code",
        repo="openai/openai_humaneval",
        revision="main",
        hub_path=lambda split, subset: "openai_humaneval/test-00000-of-00001.parquet",
        local_names=lambda split, subset: ("HumanEval.jsonl.gz",),
        builder=_humaneval,
        homepage="https://github.com/openai/human-eval",
    ),
    "scifact": DatasetSpec(
        name="scifact",
        splits=("train", "validation", "test"),
        default_split="validation",
        license="CC BY 4.0 (claims); ODC-By 1.0 (corpus)",
        domain="fact-checking",
        repo="allenai/scifact",
        revision="refs/convert/parquet",
        hub_path=lambda split, subset: (
            "corpus/train/0000.parquet"
            if subset == "corpus"
            else f"claims/{split}/0000.parquet"
        ),
        local_names=lambda split, subset: (
            ("corpus.jsonl",)
            if subset == "corpus"
            else (f"claims_{ {'validation': 'dev'}.get(split, split) }.jsonl",)
        ),
        builder=_scifact,
        subsets=("claims", "corpus"),
        homepage="https://github.com/allenai/scifact",
    ),
    "fever": DatasetSpec(
        name="fever",
        splits=("train", "labelled_dev", "paper_dev", "paper_test"),
        default_split="paper_dev",
        license="CC BY-SA 3.0",
        domain="fact-checking",
        repo="fever/fever",
        revision="refs/convert/parquet",
        hub_path=lambda split, subset: f"v1.0/{split}/0000.parquet",
        local_names=lambda split, subset: (f"{split}.jsonl",),
        builder=_fever,
        homepage="https://fever.ai/dataset/fever.html",
    ),
}
"""Every built-in dataset by name."""

_ALIASES = {f"mmlu_{group}": ("mmlu", group) for group in MMLU_GROUPS}


def spec_for(name: str, subset: str | None) -> tuple[DatasetSpec, str | None]:
    """The spec for `name` (resolving aliases such as `mmlu_stem`) and the subset to use."""
    key = name.strip().lower()
    if key in _ALIASES:
        base, group = _ALIASES[key]
        if subset is not None and subset != group:
            raise DatasetNotFoundError(
                f"{name!r} already selects subset {group!r}; load `mmlu` with subset={subset!r}",
                dataset=name,
                subset=subset,
                available=[group],
            )
        return DATASETS[base], group
    if key not in DATASETS:
        known = [*DATASETS, *_ALIASES, "custom"]
        raise DatasetNotFoundError(
            f"unknown dataset {name!r}; choose one of {known}, or `custom` with `source=`",
            dataset=name,
            available=known,
        )
    return DATASETS[key], subset
