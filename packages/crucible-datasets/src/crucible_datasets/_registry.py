"""What each dataset is: its splits, hub files, local layouts, license, and how rows become items."""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping, Sequence
from typing import Any

import attrs

from crucible_datasets._parse import LINE, Row, field
from crucible_datasets._types import Columns
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
# Builders: canonical rows → item columns. Each accepts both the original files' shape and the
# hub's. The Arrow builders do the same on a Parquet table with column expressions, and return
# None for anything off the expected schema (a null, an odd type, a malformed value) so that the
# row builder handles it, with the same items or the same error naming the line.

Builder = Callable[[Sequence[Row], str, "str | None", str], Columns]
ArrowBuilder = Callable[[Any, str, "str | None", str], "Columns | None"]


def _final_number(solution: str) -> str | None:
    match = re.search(r"####\s*(.+?)\s*$", solution.strip())
    if match is None:
        return None
    return match.group(1).replace(",", "").replace("$", "").strip()


def _gsm8k(rows: Sequence[Row], split: str, subset: str | None, path: str) -> Columns:
    questions, finals, solutions = [], [], []
    for row in rows:
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
        questions.append(question)
        finals.append(final)
        solutions.append(answer)
    return Columns(
        ids=[f"gsm8k/{split}/{k}" for k in range(len(questions))],
        input={"question": questions},
        expected=finals,
        metadata={"solution": solutions},
    )


# Python's str.strip() and `\s` on ASCII text (RE2's `\s` lacks \v and \x1c-\x1f).
_SPACE = "\t\n\x0b\x0c\r\x1c\x1d\x1e\x1f "
_FINAL = rf"####[{_SPACE}]*(?P<n>.+?)[{_SPACE}]*$"


def _is_text(kind: Any) -> bool:
    import pyarrow as pa

    return bool(pa.types.is_string(kind) or pa.types.is_large_string(kind))


def _text_columns(table: Any, names: tuple[str, ...]) -> list[Any] | None:
    """The columns `names` if all are null-free strings, else None."""
    if not set(names) <= set(table.column_names):
        return None
    out = []
    for name in names:
        col = table[name]
        if not _is_text(col.type):
            return None
        if col.null_count:
            return None
        out.append(col)
    return out


def _gsm8k_arrow(
    table: Any, split: str, subset: str | None, path: str
) -> Columns | None:
    import pyarrow as pa
    import pyarrow.compute as pc

    cols = _text_columns(table, ("question", "answer"))
    if cols is None:
        return None
    question, answer = cols
    flat = answer.combine_chunks()
    found = pc.extract_regex(pc.utf8_trim(flat, characters=_SPACE), _FINAL)
    final = pc.struct_field(found, "n")
    for char in (",", "$"):
        final = pc.replace_substring(final, char, "")
    final = pc.utf8_trim(final, characters=_SPACE)
    unicode = pc.invert(pc.string_is_ascii(flat))
    if pc.any(unicode).as_py():
        # Python's Unicode whitespace rules (str.strip, `\s`) for the few non-ASCII answers
        odd = pc.filter(flat, unicode).to_pylist()
        fixed = [_final_number(text) for text in odd]
        final = pc.replace_with_mask(final, unicode, pa.array(fixed, type=final.type))
    if final.null_count:
        return None  # an answer without its `####` line: the row builder names it
    ids = pc.binary_join_element_wise(
        f"gsm8k/{split}/", pc.cast(_positions(table.num_rows), "string"), ""
    )
    return Columns(
        ids=ids,
        input={"question": question},
        expected=final,
        metadata={"solution": answer},
    )


def _positions(n: int) -> Any:
    import numpy as np
    import pyarrow as pa

    return pa.array(np.arange(n, dtype=np.int64))


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


def _mmlu(rows: Sequence[Row], split: str, subset: str | None, path: str) -> Columns:
    ids, questions, choice_lists, subjects, letters, answers = [], [], [], [], [], []
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
        ids.append(f"mmlu/{subject}/{split}/{k}")
        questions.append(str(row["question"]))
        choice_lists.append([str(c) for c in choices])
        subjects.append(subject)
        letters.append(_LETTERS[answer])
        answers.append(answer)
    return Columns(
        ids=ids,
        input={"question": questions, "choices": choice_lists, "subject": subjects},
        expected=letters,
        metadata={"subject": list(subjects), "answer_index": answers},
    )


def _mmlu_answers(answer: Any) -> Any | None:
    """Answer indices 0–3 from ints 0–3 or the texts A–D / 0–3 (else None: the row path)."""
    import pyarrow as pa
    import pyarrow.compute as pc

    if answer.null_count:
        return None
    if pa.types.is_integer(answer.type):
        index = pc.cast(answer, pa.int64())
    elif _is_text(answer.type):
        found = pc.index_in(
            pc.utf8_trim(answer, characters=_SPACE),
            value_set=pa.array(["A", "B", "C", "D", "0", "1", "2", "3"]),
        )
        if found.null_count or not pc.all(pc.string_is_ascii(answer)).as_py():
            return None
        index = pc.cast(pc.bit_wise_and(found, 3), pa.int64())
    else:
        return None
    if len(index) and (pc.min(index).as_py() < 0 or pc.max(index).as_py() > 3):
        return None
    return index


def _counts_within(codes: Any) -> Any:
    """For each position, how many earlier positions hold the same code (0, 1, 2, … per code)."""
    import numpy as np

    n = len(codes)
    order = np.argsort(codes, kind="stable")
    ordered = codes[order]
    starts = np.flatnonzero(np.r_[True, ordered[1:] != ordered[:-1]])
    sizes = np.diff(np.r_[starts, n])
    out = np.empty(n, dtype=np.int64)
    out[order] = np.arange(n, dtype=np.int64) - np.repeat(starts, sizes)
    return out


def _mmlu_arrow(
    table: Any, split: str, subset: str | None, path: str
) -> Columns | None:
    import pyarrow as pa
    import pyarrow.compute as pc

    names = set(table.column_names)
    texts = _text_columns(table, ("question", "subject"))
    if texts is None or not {"choices", "answer"} <= names:
        return None
    question, subject = texts
    choices = table["choices"]
    if not (
        pa.types.is_list(choices.type) or pa.types.is_large_list(choices.type)
    ) or not _is_text(choices.type.value_type):
        return None
    if choices.null_count or pc.list_flatten(choices).null_count:
        return None
    if (
        table.num_rows
        and not pc.all(pc.equal(pc.list_value_length(choices), 4)).as_py()
    ):
        return None
    index = _mmlu_answers(table["answer"])
    if index is None:
        return None
    codes = pc.dictionary_encode(subject).combine_chunks().indices.to_numpy()
    k = pa.array(_counts_within(codes))
    ids = pc.binary_join_element_wise(
        "mmlu", pc.cast(subject, pa.string()), split, pc.cast(k, pa.string()), "/"
    )
    return Columns(
        ids=ids,
        input={"question": question, "choices": choices, "subject": subject},
        expected=pc.take(pa.array(list(_LETTERS)), index),
        metadata={"subject": subject, "answer_index": index},
    )


_HUMANEVAL = ("task_id", "prompt", "entry_point", "canonical_solution", "test")


def _humaneval(
    rows: Sequence[Row], split: str, subset: str | None, path: str
) -> Columns:
    values: dict[str, list[Any]] = {name: [] for name in _HUMANEVAL}
    for row in rows:
        for name in _HUMANEVAL:
            values[name].append(field(row, name, path, kind=str))
    return _humaneval_columns(*values.values())


def _humaneval_columns(
    task_id: Any, prompt: Any, entry_point: Any, solution: Any, test: Any
) -> Columns:
    return Columns(
        ids=task_id,
        input={"prompt": prompt, "entry_point": entry_point},
        expected=solution,
        metadata={
            "test": test,
            "entry_point": list(entry_point)
            if isinstance(entry_point, list)
            else entry_point,
        },
    )


def _humaneval_arrow(
    table: Any, split: str, subset: str | None, path: str
) -> Columns | None:
    cols = _text_columns(table, _HUMANEVAL)
    return None if cols is None else _humaneval_columns(*cols)


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


def _scifact(rows: Sequence[Row], split: str, subset: str | None, path: str) -> Columns:
    if subset == "corpus":
        ids, titles, abstracts = [], [], []
        for row in rows:
            ids.append(f"scifact/corpus/{field(row, 'doc_id', path)}")
            titles.append(field(row, "title", path, kind=str))
            abstracts.append(list(field(row, "abstract", path, kind=(list, tuple))))
        return Columns(
            ids=ids,
            input={"title": titles, "abstract": abstracts},
            expected=[None] * len(ids),
            metadata={"structured": [row.get("structured") for row in rows]},
        )
    if rows and "evidence_doc_id" in rows[0]:
        rows = _scifact_regroup(rows, path)
    ids, claims, verdicts, evidences, cited = [], [], [], [], []
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
        ids.append(f"scifact/{split}/{cid}")
        claims.append(field(row, "claim", path, kind=str))
        verdicts.append(expected)
        evidences.append(evidence or {})
        cited.append(list(row.get("cited_doc_ids") or []))
    return Columns(
        ids=ids,
        input={"claim": claims},
        expected=verdicts,
        metadata={"evidence": evidences, "cited_doc_ids": cited},
    )


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


def _fever(rows: Sequence[Row], split: str, subset: str | None, path: str) -> Columns:
    if rows and "evidence_id" in rows[0]:
        rows = _fever_regroup(rows, path)
    ids, claims, labels, verifiable, evidences, sentences = [], [], [], [], [], []
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
        ids.append(f"fever/{split}/{field(row, 'id', path)}")
        claims.append(field(row, "claim", path, kind=str))
        labels.append(label)
        verifiable.append(
            row.get(
                "verifiable",
                "NOT VERIFIABLE" if label == "NOT ENOUGH INFO" else "VERIFIABLE",
            )
        )
        evidences.append(evidence)
        sentences.append([list(p) for p in pages])
    return Columns(
        ids=ids,
        input={"claim": claims},
        expected=labels,
        metadata={
            "verifiable": verifiable,
            "evidence": evidences,
            "evidence_sentences": sentences,
        },
    )


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
    arrow_builder: ArrowBuilder | None = None
    """The builder over a Parquet table's columns (None: rows through `builder`)."""
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
        arrow_builder=_gsm8k_arrow,
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
        arrow_builder=_mmlu_arrow,
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
        arrow_builder=_humaneval_arrow,
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
