from __future__ import annotations

from pathlib import Path

import pytest

import crucible
from crucible._cli import main
from crucible._versions import check_member_versions
from crucible_core.exceptions import ConfigurationError
from crucible_core.export import load_records


def test_version(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as info:
        main(["--version"])
    assert info.value.code == 0
    assert capsys.readouterr().out.strip() == f"crucible {crucible.__version__}"


def test_no_command_prints_help(capsys: pytest.CaptureFixture[str]) -> None:
    assert main([]) == 2
    assert "demo" in capsys.readouterr().out


def test_models_list_and_run(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["models", "list", "--provider", "sim"]) == 0
    out = capsys.readouterr().out
    assert "sim:gpt-4" in out and "openai" not in out
    assert (
        main(
            [
                "models",
                "run",
                "sim:gpt-4",
                "What is 2 + 2?",
                "--reference",
                "4",
                "--seed",
                "3",
            ]
        )
        == 0
    )
    captured = capsys.readouterr()
    assert captured.out.strip()
    assert "via sim" in captured.err and "$0.005" in captured.err


def test_unknown_model_is_a_clear_error(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["models", "run", "nosuch:model", "hi"]) == 1
    err = capsys.readouterr().err
    assert err.startswith("crucible: error:") and "nosuch" in err


def test_demo_writes_report_and_results(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert (
        main(["demo", "--output", str(tmp_path), "--items", "40", "--seed", "1"]) == 0
    )
    out = capsys.readouterr().out
    assert "sim:gpt-4" in out and str(tmp_path / "report.md") in out
    rows = load_records(tmp_path / "results.jsonl")
    assert len(rows) == 5 * 40
    assert {r["model"] for r in rows} == {
        "sim:gpt-4",
        "sim:claude-3",
        "sim:gemini-pro",
        "sim:llama-3-70b",
        "sim:mixtral-8x7b",
    }
    report = (tmp_path / "report.md").read_text()
    assert report.count("| sim") == 5
    # deterministic: the same seed gives the same answers
    main(["demo", "--output", str(tmp_path / "again"), "--items", "40", "--seed", "1"])
    assert load_records(tmp_path / "again" / "results.jsonl") == rows


def test_demo_rejects_bad_items(
    capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    assert main(["demo", "--output", str(tmp_path), "--items", "0"]) == 1
    assert "--items" in capsys.readouterr().err


def test_version_guard_names_the_mismatch() -> None:
    check_member_versions(crucible.__version__, editable=False)
    with pytest.raises(
        ConfigurationError, match=r"needs every member at 9\.9\.9.*crucible-core=="
    ) as info:
        check_member_versions("9.9.9", editable=False)
    assert "crucible-bench==" + crucible.__version__ in info.value.found
