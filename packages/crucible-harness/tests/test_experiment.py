from __future__ import annotations

from typing import Any

import pytest

from crucible_harness import (
    AnalysisConfig,
    Budget,
    Condition,
    Experiment,
    ExperimentDefinitionError,
    HarnessItem,
    RunConfig,
    condition,
)

ITEMS = [
    HarnessItem(id=f"q{i}", input=f"{i}+{i}", expected=str(2 * i)) for i in range(5)
]


def make(**kw: Any) -> Experiment:
    base: dict[str, Any] = {
        "name": "exp",
        "dataset": ITEMS,
        "conditions": {"a": "sim:gpt-4", "b": "sim:claude-3"},
    }
    base.update(kw)
    return Experiment(**base)


@pytest.mark.parametrize(
    ("kwargs", "field", "match"),
    [
        ({"name": "bad name!"}, "name", "letters"),
        ({"conditions": {}}, "conditions", "at least one"),
        (
            {"conditions": [("a", "sim:gpt-4"), ("a", "sim:claude-3")]},
            "conditions",
            r"unique; repeated: \['a'\]",
        ),
        ({"conditions": {"a": "gpt-4"}}, "conditions", "provider prefix"),
        ({"conditions": {"a": 42}}, "conditions", "target must be"),
        ({"repeats": 0}, "repeats", "positive"),
        ({"sample_size": -1}, "sample_size", "positive"),
        ({"dataset": []}, "dataset", "no items"),
        (
            {"dataset": [{"id": "x", "input": 1}, {"id": "x", "input": 2}]},
            "dataset",
            "unique",
        ),
        ({"dataset": [{"input": 1}]}, "dataset", "id"),
        ({"dataset": None}, "dataset", "needs a dataset"),
        (
            {"analysis": AnalysisConfig(primary=("a", "zzz"))},
            "analysis.primary",
            "two conditions",
        ),
    ],
)
def test_validation_names_the_field(
    kwargs: dict[str, Any], field: str, match: str
) -> None:
    with pytest.raises(ExperimentDefinitionError, match=match) as info:
        make(**kwargs)
    assert info.value.field == field
    assert isinstance(info.value, ValueError)


def test_repeated_ids_of_a_large_dataset_are_named_in_one_pass() -> None:
    """The duplicate check counted each id with `list.count` (quadratic: hours at 200k items)."""
    items = [
        HarnessItem(id=f"q{i:06d}", input=str(i), expected="1") for i in range(200_000)
    ]
    items += [items[7], items[123_456], items[7], items[99]]
    with pytest.raises(ExperimentDefinitionError, match="ids must be unique") as info:
        make(dataset=items)
    assert str(info.value).endswith("repeated: ['q000007', 'q000099', 'q123456']")
    assert info.value.field == "dataset"
    many = [HarnessItem(id=f"d{k % 9}", input="x", expected="1") for k in range(40)]
    with pytest.raises(ExperimentDefinitionError) as info:
        make(dataset=many)  # the first five, sorted
    assert str(info.value).endswith("repeated: ['d0', 'd1', 'd2', 'd3', 'd4']")


@pytest.mark.parametrize(
    ("factory", "field"),
    [
        (lambda: RunConfig(max_concurrency=0), "run.max_concurrency"),
        (lambda: RunConfig(timeout=0), "run.timeout"),
        (lambda: RunConfig(retries=-1), "run.retries"),
        (lambda: Budget(max_per_condition=float("nan")), "budget.max_per_condition"),
        (lambda: Budget(max_total=-1), "budget.max_total"),
        (lambda: AnalysisConfig(alpha=1.5), "analysis.alpha"),
    ],
)
def test_settings_validated_at_construction(factory: Any, field: str) -> None:
    with pytest.raises(ExperimentDefinitionError) as info:
        factory()
    assert info.value.field == field


def test_class_dsl_reads_like_the_seeds() -> None:
    class Arithmetic:
        """Does the model add?"""

        name = "arith"
        dataset = ITEMS
        repeats = 2
        budget = Budget(max_total=1.0)
        conditions = {"gpt4": "sim:gpt-4"}  # noqa: RUF012 - read once by from_class

        @condition
        def echo(item: HarnessItem, ctx: Any) -> str:
            """Answers with the reference."""
            return str(item.expected)

        @condition(name="async-wrong", cost_per_task=0.01)
        async def wrong(item: HarnessItem, ctx: Any) -> str:
            return "0"

    exp = Experiment.from_class(Arithmetic)
    assert [c.name for c in exp.conditions] == ["gpt4", "echo", "async-wrong"]
    assert exp.description == "Does the model add?"
    assert exp.conditions[1].description == "Answers with the reference."
    assert exp.conditions[2].cost_per_task == 0.01
    assert [c.kind for c in exp.conditions] == ["model-string", "callable", "callable"]
    assert exp.task_count() == 3 * 5 * 2


def test_fingerprint_tracks_what_decides_the_tasks() -> None:
    a = make()
    assert (
        a.fingerprint()
        == make(description="other words", budget=Budget(max_total=3)).fingerprint()
    )
    assert a.fingerprint() != make(repeats=2).fingerprint()
    assert (
        a.fingerprint()
        != make(conditions={"a": "sim:gpt-4", "b": "sim:gemini-pro"}).fingerprint()
    )
    assert a.fingerprint() != make(run=RunConfig(seed=1)).fingerprint()
    assert a.fingerprint() != make(dataset=ITEMS[:4]).fingerprint()


def test_items_from_mappings_and_objects() -> None:
    class Obj:
        def __init__(self, i: int) -> None:
            self.id, self.input, self.expected, self.metadata = (
                i,
                f"q{i}",
                "x",
                {"k": i},
            )

    exp = make(dataset=[{"id": 1, "input": "a", "expected": "b"}, Obj(2)])
    assert [(i.id, i.input, i.expected) for i in exp.items] == [
        ("1", "a", "b"),
        ("2", "q2", "x"),
    ]
    assert exp.items[1].metadata == {"k": 2}
    assert Condition(name="x", target="sim:gpt-4").kind == "model-string"
