"""Experiment configuration and sweeps: validation and bookkeeping."""

from __future__ import annotations

import pytest

import crucible_lora as cl


def test_defaults_and_alpha() -> None:
    c = cl.ExperimentConfig(base_model="m", lora_rank=8)
    assert c.lora_alpha == 16.0 and c.backend == "tinker"
    assert (
        cl.to_config({"base_model": "m", "lora_rank": 4, "lora_alpha": 4}).lora_alpha
        == 4.0
    )
    assert cl.ExperimentConfig(
        base_model="m", target_modules="c_attn"
    ).target_modules == ("c_attn",)


@pytest.mark.parametrize(
    ("options", "field"),
    [
        ({"base_model": "m", "lora_rank": 0}, "lora_rank"),
        ({"base_model": "m", "lora_rank": -3}, "lora_rank"),
        ({"base_model": "m", "lora_rank": 2.5}, "lora_rank"),
        ({"base_model": "m", "learning_rate": 0.0}, "learning_rate"),
        ({"base_model": "m", "learning_rate": float("nan")}, "learning_rate"),
        ({"base_model": "m", "lora_dropout": 1.0}, "lora_dropout"),
        ({"base_model": "m", "backend": "gpu"}, "backend"),
        ({"base_model": " "}, "base_model"),
        ({"base_model": "m", "max_length": 0}, "max_length"),
        ({"base_model": "m", "rank": 8}, "rank"),
        ({"lora_rank": 8}, "base_model"),
    ],
)
def test_bad_config(options: dict[str, object], field: str) -> None:
    with pytest.raises(cl.LoraConfigError) as info:
        cl.to_config(options)
    assert info.value.field == field
    assert isinstance(info.value, ValueError)


def test_create_experiment_checks_name_and_adapter() -> None:
    with pytest.raises(cl.LoraConfigError, match="non-empty name"):
        cl.create_experiment("", config={"base_model": "m"})
    with pytest.raises(cl.LoraConfigError, match="LoraAdapter"):
        cl.create_experiment("x", config={"base_model": "m"}, adapter=object())  # type: ignore[arg-type]
    with pytest.raises(cl.LoraConfigError, match="ExperimentConfig or a mapping"):
        cl.create_experiment("x", config=3)  # type: ignore[arg-type]
    exp = cl.create_experiment("x", config={"base_model": "m"})
    assert exp.step == 0 and exp.id.startswith("lora") and exp.adapter is None


def test_sweep_grid_replications_and_seeds() -> None:
    base = {"base_model": "m"}
    runs = cl.sweep(
        base, {"lora_rank": [4, 8], "learning_rate": [1e-4, 1e-3]}, replications=3
    )
    assert len(runs) == 12
    assert {(r.config.lora_rank, r.config.learning_rate) for r in runs} == {
        (4, 1e-4),
        (4, 1e-3),
        (8, 1e-4),
        (8, 1e-3),
    }
    seeds = [r.config.seed for r in runs]
    assert len(set(seeds)) == 12
    assert runs[0].params == {"lora_rank": 4, "learning_rate": 1e-4, "replication": 0}
    assert runs[0].name == "lora_rank=4,learning_rate=0.0001#r0"
    again = cl.sweep(
        base, {"lora_rank": [4, 8], "learning_rate": [1e-4, 1e-3]}, replications=3
    )
    assert [r.config for r in again] == [r.config for r in runs]
    assert [r.config.seed for r in cl.sweep(base, {"lora_rank": [4]}, seed=1)] != seeds[
        :1
    ]


def test_bad_sweeps() -> None:
    with pytest.raises(cl.LoraConfigError, match="not an ExperimentConfig field"):
        cl.sweep({"base_model": "m"}, {"rnak": [1]})
    with pytest.raises(cl.LoraConfigError, match="seeds come from"):
        cl.sweep({"base_model": "m"}, {"seed": [1]})
    with pytest.raises(cl.LoraConfigError, match="non-empty list"):
        cl.sweep({"base_model": "m"}, {"lora_rank": []})
    with pytest.raises(cl.LoraConfigError, match="replications"):
        cl.sweep({"base_model": "m"}, {}, replications=0)
    with pytest.raises(cl.LoraConfigError, match="lora_rank"):
        cl.sweep({"base_model": "m"}, {"lora_rank": [8, 0]})
