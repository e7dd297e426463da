"""Hedged requests that really cut tail latency, with delay policies, budgets and a simulator.

Send a backup request when the first is slow, take whichever answers first and cancel the other
("The Tail at Scale", Dean & Barroso 2013):

```python
from crucible_hedging import HedgeBudget, Hedger, Percentile

hedger = Hedger(policy=Percentile(p=95), budget=HedgeBudget(ratio=0.05))
result = await hedger.request(lambda: client.get(url))
print(result.value, result.latency_ms, result.winner_index)
print(hedger.report())
```

- [`hedged`][crucible_hedging.hedged] for one request, [`Hedger`][crucible_hedging.Hedger] for a
  stream (it keeps statistics), [`HedgedModel`][crucible_hedging.HedgedModel] for any
  crucible-core `Model`.
- Policies: [`Fixed`][crucible_hedging.Fixed], [`Percentile`][crucible_hedging.Percentile],
  [`Adaptive`][crucible_hedging.Adaptive], [`WorkloadAware`][crucible_hedging.WorkloadAware].
- Load limits: [`HedgeBudget`][crucible_hedging.HedgeBudget] (a share of requests) and
  [`Throttle`][crucible_hedging.Throttle] (stop while failures mount).
- [`simulate`][crucible_hedging.simulate] runs the same decision code in simulated time over a
  latency model; [`VirtualTimeLoop`][crucible_hedging.VirtualTimeLoop] runs real async code in
  virtual time; `latency=` of [`Hedger.request`][crucible_hedging.Hedger.request] hedges attempts
  on the latencies they report (simulated models in virtual time, on any loop).
"""

from __future__ import annotations

from crucible_core._lazy import lazy_getattr as _lazy_getattr
from crucible_hedging._budget import HedgeBudget, Throttle
from crucible_hedging._hedge import (
    AttemptOutcome,
    FatalPredicate,
    HedgeAttempt,
    HedgedResult,
    Hedger,
    default_fatal,
    hedged,
)
from crucible_hedging._model import HedgedModel
from crucible_hedging._policy import (
    Adaptive,
    Fixed,
    Outcome,
    Percentile,
    Policy,
    WorkloadAware,
    default_policy,
    parse_policy,
)
from crucible_hedging._report import LEVELS, HedgingReport
from crucible_hedging._simulate import (
    Empirical,
    LatencyModel,
    Parametric,
    SimulationResult,
    simulate,
)
from crucible_hedging._version import __version__
from crucible_hedging._virtual import VirtualTimeLoop, run_virtual
from crucible_hedging.exceptions import (
    AllAttemptsFailedError,
    HedgingError,
    HedgingTimeoutError,
    InvalidHedgingConfigError,
)

__getattr__ = _lazy_getattr(
    __name__,
    renamed={
        "Budget": (
            "HedgeBudget",
            "one public class name per concept across the workspace (crucible_harness.Budget is a run's spending limit)",
        ),
        "Attempt": (
            "HedgeAttempt",
            "one public class name per concept across the workspace (crucible_core.retry.Attempt is a retry attempt)",
        ),
    },
)

__all__ = (
    # hedged requests
    "hedged",
    "Hedger",
    "HedgedResult",
    "HedgeAttempt",
    "AttemptOutcome",
    "default_fatal",
    "FatalPredicate",
    "HedgedModel",
    # policies
    "Policy",
    "Outcome",
    "Fixed",
    "Percentile",
    "Adaptive",
    "WorkloadAware",
    "default_policy",
    "parse_policy",
    # load limits
    "HedgeBudget",
    "Throttle",
    # statistics
    "HedgingReport",
    "LEVELS",
    # simulation
    "simulate",
    "SimulationResult",
    "LatencyModel",
    "Parametric",
    "Empirical",
    # virtual time
    "VirtualTimeLoop",
    "run_virtual",
    # errors
    "HedgingError",
    "InvalidHedgingConfigError",
    "HedgingTimeoutError",
    "AllAttemptsFailedError",
    # metadata
    "__version__",
)
