"""Simulated members whose errors are correlated through a shared item difficulty.

Independent members are the best case for voting (Condorcet). Real models fail on the same hard
items, which shrinks what voting can gain. The knob lives in crucible-core's simulator:
`SimulatedModel(profile, correlation=rho)` makes a model right exactly when
`sqrt(rho) * D + sqrt(1 - rho) * E < Phi^-1(accuracy)`, with `D` the item's latent difficulty
([`item_difficulty`][crucible_core.models.item_difficulty], shared by every model asked the item)
and `E` the model's own noise. Each member keeps its accuracy; `rho=0` is independent, `rho=1`
"everyone is wrong on the same items". [`correlated`][crucible_ensemble.simulation.correlated]
builds a set of such members at once:

```python
from crucible_ensemble import Ensemble
from crucible_ensemble.simulation import correlated

members = correlated(["gpt-4", "claude-3", "gemini-pro", "llama-3-70b", "mixtral-8x7b"], rho=0.5)
ensemble = Ensemble(members, strategy="majority")
```
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from crucible_core.models import Profile, SimulatedModel, item_difficulty
from crucible_ensemble.exceptions import EnsembleConfigurationError

__all__ = ("correlated", "item_difficulty")


def correlated(
    models: Sequence[SimulatedModel | Profile | str],
    *,
    rho: float,
    seed: int = 0,
    virtual_time: bool = True,
) -> tuple[SimulatedModel, ...]:
    """Simulated members whose errors share a latent per-item difficulty with correlation `rho`.

    Args:
        models: simulated models, profiles or profile names (`"gpt-4"`, `"sim:claude-3"`).
            Profiles and names are built with `virtual_time` and a seed derived from `seed`; a
            `SimulatedModel` keeps its own seed, clock, retry and timeout.
        rho: correlation of the members' latent scores, in [0, 1]: 0 draws members independently,
            larger values make them wrong on the same items.
        seed: seeds the items' shared difficulty (and the members built here).
        virtual_time: for members built here, report latencies without sleeping.

    Returns:
        One `SimulatedModel` per member with `correlation=rho` and `difficulty_seed=seed`, each
        keeping its profile's accuracy.

    Raises:
        ValidationError: if `rho` is outside [0, 1] (a `ValueError`).
        EnsembleConfigurationError: if a member is not simulated.

    Examples:
        >>> members = correlated(["gpt-4", "claude-3", "gemini-pro"], rho=0.5, seed=1)
        >>> [m.id for m in members], members[0].correlation
        (['sim:gpt-4', 'sim:claude-3', 'sim:gemini-pro'], 0.5)
    """
    out = []
    for i, spec in enumerate(models):
        options: dict[str, Any]
        if isinstance(spec, SimulatedModel):
            profile: Profile | str = spec.profile
            options = {"seed": spec.seed, "virtual_time": spec.virtual_time}
            options |= {"retry": spec.retry, "timeout": spec.timeout}
        elif isinstance(spec, Profile | str):
            profile = spec
            options = {"seed": seed * 1000 + i, "virtual_time": virtual_time}
        else:
            raise EnsembleConfigurationError(
                f"correlated members must be simulated: a `SimulatedModel`, a `Profile` or a "
                f"profile name, got {spec!r}",
                member=spec,
            )
        out.append(
            SimulatedModel(profile, correlation=rho, difficulty_seed=seed, **options)
        )
    return tuple(out)
