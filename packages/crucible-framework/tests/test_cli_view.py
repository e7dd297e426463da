"""`crucible view`: serves a runs directory until interrupted, with a token when asked."""

from __future__ import annotations

import json
import re
import signal
import subprocess
import sys
import urllib.error
import urllib.request
from pathlib import Path

import pytest

from crucible_core.models import SimulatedModel
from crucible_harness import Condition, Experiment, HarnessItem, run

pytestmark = pytest.mark.network


@pytest.fixture(scope="module")
def runs(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("runs")
    items = [
        HarnessItem(id=f"q{i}", input=f"{i} + {i}?", expected=str(2 * i))
        for i in range(6)
    ]
    model = SimulatedModel("gpt-4", seed=1, virtual_time=True)
    run(Experiment(name="tiny", dataset=items, conditions=[Condition(name="m", target=model)]),
        output_dir=root, formats=())  # fmt: skip
    return root


def _serve(*args: str) -> tuple[subprocess.Popen[str], str]:
    proc = subprocess.Popen(
        [sys.executable, "-m", "crucible", "view", *args, "--port", "0", "--no-browser"],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
    )  # fmt: skip
    assert proc.stdout is not None
    line = proc.stdout.readline()
    found = re.search(r"(http://\S+)", line)
    assert found, line + (proc.stderr.read() if proc.stderr else "")
    return proc, found.group(1)


def _stop(proc: subprocess.Popen[str]) -> int:
    proc.send_signal(signal.SIGINT)
    code = proc.wait(20)
    for pipe in (proc.stdout, proc.stderr):
        if pipe is not None:
            pipe.close()
    return code


def _get(target: str | urllib.request.Request) -> bytes:
    with urllib.request.urlopen(target, timeout=10) as response:
        body: bytes = response.read()
    return body


def test_view_serves_the_runs_until_interrupted(runs: Path) -> None:
    proc, url = _serve(str(runs))
    try:
        assert url.endswith("/") and "token" not in url
        body = json.loads(_get(url + "api/runs"))
        assert [r["name"] for r in body["runs"]] == ["tiny"]
        assert body["runs"][0]["state"] == "complete"
    finally:
        code = _stop(proc)
    assert code == 130


def test_view_with_a_generated_token_refuses_requests_without_it(runs: Path) -> None:
    proc, url = _serve(str(runs), "--token")
    try:
        token = re.search(r"token=([\w-]+)", url)
        assert token and len(token.group(1)) >= 24
        base = url.split("?")[0]
        with pytest.raises(urllib.error.HTTPError) as refused:
            _get(base + "api/runs")
        assert refused.value.code == 401
        refused.value.close()
        request = urllib.request.Request(
            base + "api/runs", headers={"Authorization": f"Bearer {token.group(1)}"}
        )
        assert json.loads(_get(request))["runs"]
    finally:
        _stop(proc)


def test_view_of_a_missing_directory_fails_clearly(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    from crucible._cli import main

    assert main(["view", str(tmp_path / "nope"), "--no-browser"]) == 1
    assert "is not a directory" in capsys.readouterr().err
