"""Missing optional stacks give the exact install line, never a bare ImportError."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

import crucible_lora as cl
from crucible_core.exceptions import MissingDependencyError


def test_local_adapter_without_torch_names_the_cpu_install(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setitem(sys.modules, "torch", None)  # makes `import torch` fail
    adapter = cl.LocalAdapter()
    with pytest.raises(
        MissingDependencyError, match=r"download\.pytorch\.org/whl/cpu"
    ) as info:
        adapter.start(cl.ExperimentConfig(base_model=cl.TINY_GPT2, backend="local"))
    assert info.value.module == "torch"
    assert isinstance(info.value, ImportError)
    assert cl.LOCAL_INSTALL in str(info.value)


def test_tinker_adapter_without_the_sdk_names_the_extra(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setitem(sys.modules, "tinker", None)
    with pytest.raises(MissingDependencyError, match=r"crucible-lora\[tinker\]"):
        cl.TinkerAdapter(service_client=object()).start(
            cl.ExperimentConfig(base_model="m")
        )


def test_an_experiment_builds_its_adapter_from_the_backend(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setitem(sys.modules, "torch", None)
    exp = cl.create_experiment(
        "x", config={"base_model": cl.TINY_GPT2, "backend": "local"}
    )
    with pytest.raises(MissingDependencyError):
        cl.train(exp, [cl.Example(prompt="a", completion="b")])
    assert isinstance(exp.adapter, cl.LocalAdapter) and not exp.started


def test_pretrain_tiny_base_checks_its_input_before_importing_torch(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.setitem(sys.modules, "torch", None)
    data = [cl.Example(prompt="a>", completion="a")]
    for bad in ({"steps": 0}, {"batch_size": 0}, {"steps": True}):
        with pytest.raises(cl.LoraConfigError, match="positive integer"):
            cl.pretrain_tiny_base(data, tmp_path, **bad)
    with pytest.raises(cl.LoraDataError, match="empty"):
        cl.pretrain_tiny_base([], tmp_path)
    with pytest.raises(MissingDependencyError, match=r"download\.pytorch\.org"):
        cl.pretrain_tiny_base(data, tmp_path)
    assert not list(tmp_path.iterdir())
