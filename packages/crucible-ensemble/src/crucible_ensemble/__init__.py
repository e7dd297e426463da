"""Several models voting as one model, with execution strategies and the numbers to prove it helps.

```python
from crucible_core.models import Request, SimulatedModel
from crucible_ensemble import Ensemble

members = [SimulatedModel(p, virtual_time=True) for p in ("gpt-4", "claude-3", "gemini-pro")]
ensemble = Ensemble(members, strategy="majority", execution="sequential")
result = ensemble.predict(Request(prompt="2 + 2 = ?", reference="4", kind="number"))
result.answer, result.consensus, result.members_called
```

- [`Ensemble`][crucible_ensemble.Ensemble] implements the `Model` protocol, so it stands wherever a
  model does; [`predict`][crucible_ensemble.predict] / `predict_async` are one-off shortcuts.
- Voting: `"majority"`, `"weighted"`, `"best_confidence"`, `"unanimous"`, or your own function.
- Execution: `"parallel"`, `"sequential"` (stops when the outcome cannot change), `"hedged"`
  (through crucible-hedging: backups after a policy's delay), `"cascade"` (cheapest first).
- [`evaluate_ensemble`][crucible_ensemble.evaluate_ensemble] scores the ensemble and every member
  on the same items; `crucible_ensemble.simulation.correlated` makes members err together.
"""

from __future__ import annotations

from crucible_core._lazy import lazy_getattr as _lazy_getattr
from crucible_ensemble import simulation
from crucible_ensemble._ensemble import Ensemble, ModelSpec, predict, predict_async
from crucible_ensemble._evaluate import (
    ENSEMBLE,
    EnsembleEvaluation,
    ItemOutcome,
    Scorer,
    evaluate_ensemble,
    evaluate_ensemble_async,
)
from crucible_ensemble._execution import (
    Cascade,
    Execution,
    ExecutionName,
    Hedged,
    Parallel,
    Sequential,
)
from crucible_ensemble._normalize import (
    NormalizeName,
    Normalizer,
    normalize_boolean,
    normalize_choice,
    normalize_code,
    normalize_label,
    normalize_number,
    normalize_text,
)
from crucible_ensemble._results import EnsembleResult, MemberResponse, MemberStatus
from crucible_ensemble._version import __version__
from crucible_ensemble._voting import (
    Ballot,
    BestConfidence,
    Custom,
    Decision,
    Majority,
    StrategyName,
    Unanimous,
    VotingStrategy,
    Weighted,
    log_odds_weights,
)
from crucible_ensemble.exceptions import (
    EnsembleConfigurationError,
    EnsembleError,
    EnsembleTimeoutError,
    InsufficientResponsesError,
)

__getattr__ = _lazy_getattr(
    __name__,
    renamed={
        "EvaluationResult": (
            "EnsembleEvaluation",
            "one public class name per concept across the workspace (crucible_datasets.EvaluationResult is a different class)",
        )
    },
)

__all__ = (
    # ensemble
    "Ensemble",
    "ModelSpec",
    "predict",
    "predict_async",
    # results
    "EnsembleResult",
    "MemberResponse",
    "MemberStatus",
    # voting
    "VotingStrategy",
    "StrategyName",
    "Ballot",
    "Decision",
    "Majority",
    "Weighted",
    "BestConfidence",
    "Unanimous",
    "Custom",
    "log_odds_weights",
    # execution
    "Execution",
    "ExecutionName",
    "Parallel",
    "Sequential",
    "Hedged",
    "Cascade",
    # normalization
    "Normalizer",
    "NormalizeName",
    "normalize_choice",
    "normalize_number",
    "normalize_boolean",
    "normalize_label",
    "normalize_text",
    "normalize_code",
    # evaluation
    "evaluate_ensemble",
    "evaluate_ensemble_async",
    "EnsembleEvaluation",
    "ItemOutcome",
    "Scorer",
    "ENSEMBLE",
    # simulation
    "simulation",
    # errors
    "EnsembleError",
    "EnsembleConfigurationError",
    "InsufficientResponsesError",
    "EnsembleTimeoutError",
    # metadata
    "__version__",
)
