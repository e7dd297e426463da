"""Simulated members whose errors are correlated through a shared per-item difficulty.

`SimulatedModel` draws each model independently, which is the best case for voting (Condorcet).
Real models fail on the same hard items. Here each item gets a latent difficulty `Z` shared by all
members, each member its own noise `E_i`, and member `i` is right exactly when

    sqrt(rho) * Z + sqrt(1 - rho) * E_i  <  Phi^-1(accuracy_i)

with `Z`, `E_i` independent standard normals (a Gaussian copula). Each member keeps its accuracy
exactly; `rho` is the correlation of the members' latent scores: 0 is independent, 1 is "everyone
is wrong on the same items". A wrong member gives the same plausible wrong answer the simulator
gives ([`wrong_answer`][crucible_core.models.wrong_answer]), with the simulator's latency, failures,
cost and events.
"""

from __future__ import annotations

import hashlib
import math
from collections.abc import Sequence
from statistics import NormalDist
from types import TracebackType
from typing import Self

import attrs

from crucible_core.models import (
    Completion,
    Profile,
    Request,
    SimulatedModel,
    Usage,
    estimate_tokens,
    wrong_answer,
)
from crucible_ensemble._checks import is_real
from crucible_ensemble.exceptions import EnsembleConfigurationError

__all__ = ("CorrelatedModel", "correlated")

_NORMAL = NormalDist()
_INF_POS = math.inf
_INF_NEG = -math.inf


def _normal(*parts: object) -> float:
    data = "\x1f".join(str(p) for p in parts).encode()
    u = (
        int.from_bytes(hashlib.blake2b(data, digest_size=8).digest(), "big") >> 11
    ) * 2.0**-53
    return _NORMAL.inv_cdf(min(max(u, 1e-300), 1 - 2.0**-53))


class CorrelatedModel:
    """A simulated member whose correctness follows the shared latent difficulty of each item.

    Build a set of them with [`correlated`][crucible_ensemble.simulation.correlated]; members of
    one set share the latent draw only if they share `rho` and `seed`.

    Args:
        model: the simulated model to wrap (its profile, seed, virtual time, retry, timeout).
        rho: the correlation of the members' latent scores, in [0, 1].
        seed: seeds the shared difficulty of each item.
    """

    __slots__ = ("_inner", "_threshold", "model", "rho", "seed")

    def __init__(self, model: SimulatedModel, *, rho: float, seed: int = 0) -> None:
        self.model: SimulatedModel = model
        """The wrapped simulated model."""
        self.rho: float = rho
        """Correlation of the latent scores."""
        self.seed: int = seed
        """Seed of the shared difficulty."""
        accuracy = model.profile.accuracy
        self._threshold = (
            _INF_NEG
            if accuracy <= 0
            else _INF_POS
            if accuracy >= 1
            else _NORMAL.inv_cdf(accuracy)
        )
        self._inner = SimulatedModel(
            attrs.evolve(model.profile, accuracy=1.0),
            seed=model.seed,
            virtual_time=model.virtual_time,
            retry=model.retry,
            timeout=model.timeout,
        )

    @property
    def id(self) -> str:
        """The wrapped model's id (`"sim:<profile>"`)."""
        return self.model.id

    @property
    def provider(self) -> str:
        """Always `"sim"`."""
        return "sim"

    @property
    def profile(self) -> Profile:
        """The wrapped model's profile (its `accuracy` is the marginal accuracy kept here)."""
        return self.model.profile

    def __repr__(self) -> str:
        return f"CorrelatedModel({self.model!r}, rho={self.rho}, seed={self.seed})"

    async def __aenter__(self) -> Self:
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.aclose()

    async def aclose(self) -> None:
        """Nothing to release."""

    def correct(self, request: Request) -> bool | None:
        """Whether this member answers `request` correctly (`None` when it has no reference)."""
        if request.reference is None:
            return None
        fingerprint = request.fingerprint()
        shared = _normal(self.seed, "latent", fingerprint)
        own = _normal(self.model.seed, self.model.profile.name, "noise", fingerprint)
        score = math.sqrt(self.rho) * shared + math.sqrt(1.0 - self.rho) * own
        return score < self._threshold

    async def complete(self, request: Request) -> Completion:
        """Answer like the wrapped model, right or wrong as the latent difficulty says.

        Raises:
            ProviderError: the simulated failures of the wrapped model.
        """
        completion = await self._inner.complete(request)
        if self.correct(request) is False:
            text = wrong_answer(
                request, seed=self.model.seed, salt=self.model.profile.name
            )
            completion = attrs.evolve(
                completion,
                text=text,
                usage=Usage(
                    input_tokens=completion.usage.input_tokens,
                    output_tokens=estimate_tokens(text),
                ),
            )
        return completion


def correlated(
    models: Sequence[SimulatedModel | Profile | str],
    *,
    rho: float,
    seed: int = 0,
    virtual_time: bool = True,
) -> tuple[CorrelatedModel, ...]:
    """Simulated members whose errors share a latent per-item difficulty with correlation `rho`.

    Args:
        models: simulated models, profiles or profile names (`"gpt-4"`, `"sim:claude-3"`).
            Profiles and names are built with `virtual_time` and a seed derived from `seed`.
        rho: correlation of the members' latent scores, in [0, 1]: 0 draws members independently
            (as `SimulatedModel` does), larger values make them wrong on the same items.
        seed: seeds the shared difficulty (and the members built here).
        virtual_time: for members built here, report latencies without sleeping.

    Returns:
        One [`CorrelatedModel`][crucible_ensemble.simulation.CorrelatedModel] per member, each
        keeping its profile's accuracy.

    Raises:
        EnsembleConfigurationError: if `rho` is outside [0, 1] or a member is not simulated.

    Examples:
        >>> members = correlated(["gpt-4", "claude-3", "gemini-pro"], rho=0.5, seed=1)
        >>> [m.id for m in members]
        ['sim:gpt-4', 'sim:claude-3', 'sim:gemini-pro']
    """
    if not is_real(rho) or not 0.0 <= rho <= 1.0:
        raise EnsembleConfigurationError(
            f"`rho` must be a correlation in [0, 1], got {rho!r}", rho=rho
        )
    out = []
    for i, spec in enumerate(models):
        if isinstance(spec, SimulatedModel):
            model = spec
        elif isinstance(spec, Profile | str):
            model = SimulatedModel(
                spec, seed=seed * 1000 + i, virtual_time=virtual_time
            )
        else:
            raise EnsembleConfigurationError(
                f"correlated members must be simulated: a `SimulatedModel`, a `Profile` or a "
                f"profile name, got {spec!r}",
                member=spec,
            )
        out.append(CorrelatedModel(model, rho=float(rho), seed=seed))
    return tuple(out)
