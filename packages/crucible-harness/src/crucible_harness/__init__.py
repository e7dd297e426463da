"""crucible-harness: declare an experiment, run it durably within a budget, analyse it, report it.

```python
from crucible_harness import Experiment, HarnessItem, run

items = [HarnessItem(id=f"q{i}", input=f"What is {i} + {i}?", expected=str(2 * i)) for i in range(50)]
exp = Experiment(name="arith", dataset=items, conditions={"gpt4": "sim:gpt-4", "llama": "sim:llama-3-70b"},
                 repeats=3)
result = run(exp, output_dir="runs")
print(result.analysis)
```

A run writes every finished task to its run directory as it completes, so a killed run resumes
(`resume(run_dir, experiment)`) without repeating or losing work, and never spends past its budget.
"""

from __future__ import annotations

from crucible_core._lazy import lazy_getattr as _lazy_getattr
from crucible_harness._analysis import (
    Analysis,
    Comparison,
    ConditionSummary,
    EffectSize,
    MetricComparison,
    PlanRow,
    analyse,
)
from crucible_harness._experiment import (
    AnalysisConfig,
    Budget,
    Condition,
    ConditionOutput,
    EarlyStopping,
    Experiment,
    HarnessItem,
    RunConfig,
    TaskContext,
    condition,
)
from crucible_harness._plan import Estimate, estimate
from crucible_harness._ray_executor import RayExecutor
from crucible_harness._record import RunProgress, RunResult, load_run, status
from crucible_harness._runner import resume, resume_async, run, run_async
from crucible_harness._sequential import SequentialComparison, SequentialStop
from crucible_harness._store import RepairResult, repair
from crucible_harness._version import __version__
from crucible_harness._view import Viewer, view
from crucible_harness.exceptions import (
    BudgetStopError,
    ExperimentDefinitionError,
    HarnessError,
    ResumeMismatchError,
    RunDirectoryError,
    RunDirectoryWarning,
    RunLockedError,
    RunRecordsError,
    RunWriteError,
)

__getattr__ = _lazy_getattr(__name__)

__all__ = (
    # defining
    "Experiment",
    "Condition",
    "condition",
    "HarnessItem",
    "TaskContext",
    "ConditionOutput",
    "RunConfig",
    "RayExecutor",
    "Budget",
    "AnalysisConfig",
    "EarlyStopping",
    "SequentialStop",
    "SequentialComparison",
    # running
    "run",
    "run_async",
    "resume",
    "resume_async",
    "estimate",
    "load_run",
    "status",
    "repair",
    "RepairResult",
    "Estimate",
    "RunProgress",
    "RunResult",
    # analysis
    "analyse",
    "Analysis",
    "ConditionSummary",
    "Comparison",
    "EffectSize",
    "MetricComparison",
    "PlanRow",
    # viewing
    "view",
    "Viewer",
    # errors
    "HarnessError",
    "ExperimentDefinitionError",
    "RunDirectoryError",
    "ResumeMismatchError",
    "RunLockedError",
    "RunRecordsError",
    "RunWriteError",
    "BudgetStopError",
    "RunDirectoryWarning",
    # metadata
    "__version__",
)
