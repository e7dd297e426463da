"""The interactive labs: ensemble reliability, hedging, A/B statistics and causal traces.

[`lab`][crucible.labs.lab] serves them in the browser (next to the run viewer, `crucible lab` on the
command line); the functions below are the same computations for a notebook. Each runs real
crucible code (crucible-ensemble, crucible-hedging, crucible-bench, crucible-trace, the harness) on
simulated models and real datasets, and says so in its output.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

from crucible._labs._compute import (
    MEDICAL_SUBJECTS,
    MEMBERS,
    CompareLab,
    EnsembleLab,
    HedgingLab,
    TraceLab,
    compare_lab,
    ensemble_lab,
    hedging_lab,
    trace_lab,
)

if TYPE_CHECKING:
    from crucible_harness import Viewer

__all__ = (
    "MEDICAL_SUBJECTS",
    "MEMBERS",
    "CompareLab",
    "EnsembleLab",
    "HedgingLab",
    "TraceLab",
    "compare_lab",
    "ensemble_lab",
    "hedging_lab",
    "lab",
    "trace_lab",
)


def lab(
    runs: str | Path = "runs",
    *,
    datasets: str | Path | None = None,
    host: str = "127.0.0.1",
    port: int = 0,
    token: str | None = None,
    height: int = 900,
) -> Viewer:
    """Serve the labs (at `/labs`) and the run viewer (at `/`) from one local server.

    Args:
        runs: the runs root the viewer serves (created if missing); the A/B lab records its report
            runs under `runs/labs`.
        datasets: a directory holding `mmlu/` and `gsm8k/` in their original layout (default: the
            dataset cache, filled from the hub on first use).
        host: the address to bind; anything but loopback requires a token (one is generated).
        port: the port (0: any free port).
        token: a secret every request must carry; the URL carries it once.
        height: height of the notebook iframe in pixels.

    Returns:
        The running viewer (inline in a notebook; `stop()` it or use `with`).
    """
    from crucible._labs import extension
    from crucible_harness import view

    root = Path(runs).expanduser()
    root.mkdir(parents=True, exist_ok=True)
    source = None if datasets is None else Path(datasets).expanduser()
    return view(root, host=host, port=port, token=token, height=height, start="/labs",
                extensions=[extension(root=root, datasets=source)])  # fmt: skip
