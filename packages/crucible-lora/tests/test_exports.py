"""Public surface of crucible_lora."""

from __future__ import annotations

from crucible_core.testing import NOT_AT_IMPORT, check_exports


def test_exports() -> None:
    check_exports(
        "crucible_lora",
        forbidden=(*NOT_AT_IMPORT, "torch", "transformers", "peft", "tinker"),
    )


def test_the_old_name_evaluation_result_warns_and_resolves() -> None:
    import pytest

    import crucible_lora
    from crucible_core.exceptions import CrucibleDeprecationWarning

    with pytest.warns(CrucibleDeprecationWarning, match="renamed AdapterEvaluation"):
        old = crucible_lora.EvaluationResult
    assert old is crucible_lora.AdapterEvaluation
    assert "EvaluationResult" not in crucible_lora.__all__
