"""One public class name per concept across the workspace (#18), and the old names still resolve."""

from __future__ import annotations

import importlib
import inspect
import pkgutil
from collections import defaultdict
from types import ModuleType

import pytest

from crucible_core.exceptions import CrucibleDeprecationWarning

PACKAGES = (
    "crucible_core",
    "crucible_telemetry",
    "crucible_trace",
    "crucible_datasets",
    "crucible_bench",
    "crucible_ensemble",
    "crucible_hedging",
    "crucible_lora",
    "crucible_harness",
)

RENAMED = {
    ("crucible_trace", "Event"): "TraceEvent",
    ("crucible_hedging", "Budget"): "HedgeBudget",
    ("crucible_hedging", "Attempt"): "HedgeAttempt",
    ("crucible_telemetry", "Experiment"): "TelemetryExperiment",
    ("crucible_lora", "Experiment"): "LoraExperiment",
    ("crucible_lora", "EvaluationResult"): "AdapterEvaluation",
    ("crucible_ensemble", "EvaluationResult"): "EnsembleEvaluation",
}


def _public_modules(package: str) -> list[ModuleType]:
    """The package and every public submodule (no `_` in any part of the name)."""
    root = importlib.import_module(package)
    modules = [root]
    for info in pkgutil.walk_packages(root.__path__, prefix=f"{package}."):
        if any(part.startswith("_") for part in info.name.split(".")):
            continue
        try:
            modules.append(importlib.import_module(info.name))
        except (
            ImportError
        ):  # a module needing an optional heavy dependency (torch, ...)
            continue
    return modules


def test_no_two_public_classes_share_a_name() -> None:
    owners: dict[str, set[str]] = defaultdict(set)
    for package in PACKAGES:
        for module in _public_modules(package):
            for name in getattr(module, "__all__", ()):
                obj = getattr(module, name, None)
                if inspect.isclass(obj):
                    owners[name].add(f"{obj.__module__}.{obj.__qualname__}")
    clashes = {name: sorted(where) for name, where in owners.items() if len(where) > 1}
    assert not clashes, f"public classes sharing a name: {clashes}"
    assert len(owners) > 150  # the walk really saw the workspace


@pytest.mark.parametrize(("where", "new"), sorted(RENAMED.items()))
def test_old_names_warn_and_resolve_to_the_new_class(
    where: tuple[str, str], new: str
) -> None:
    package, old = where
    module = importlib.import_module(package)
    with pytest.warns(
        CrucibleDeprecationWarning, match=f"{package}.{old} is renamed {new}"
    ):
        value = getattr(module, old)
    assert value is getattr(module, new)
    assert old not in module.__all__ and new in module.__all__


def test_an_unknown_name_is_still_an_attribute_error() -> None:
    import crucible_trace

    with pytest.raises(AttributeError, match="has no attribute 'Evnt'"):
        _ = crucible_trace.Evnt  # type: ignore[attr-defined]
