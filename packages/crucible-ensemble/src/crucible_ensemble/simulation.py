"""Simulation helpers: members whose errors are correlated through a shared item difficulty.

`crucible_core.models.SimulatedModel` draws every model independently. Real models tend to fail on
the same hard items, which shrinks what voting can gain. [`correlated`][crucible_ensemble.simulation.correlated]
wraps simulated members so that each item has a latent difficulty shared by all of them:

```python
from crucible_ensemble import Ensemble
from crucible_ensemble.simulation import correlated

members = correlated(["gpt-4", "claude-3", "gemini-pro", "llama-3-70b", "mixtral-8x7b"], rho=0.5)
ensemble = Ensemble(members, strategy="majority")
```
"""

from __future__ import annotations

from crucible_ensemble._correlated import CorrelatedModel, correlated

__all__ = ("CorrelatedModel", "correlated")
