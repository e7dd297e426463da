"""`Ensemble`: several models answering as one, and the `predict` / `predict_async` shortcuts."""

from __future__ import annotations

import asyncio
import math
import sys
import time
import types
from collections import deque
from collections.abc import (
    Awaitable,
    Callable,
    Coroutine,
    Generator,
    Mapping,
    Sequence,
)
from collections.abc import Set as AbstractSet
from operator import attrgetter, itemgetter, methodcaller
from types import CoroutineType, TracebackType
from typing import Any, Self, TypeVar

from crucible_core import events
from crucible_core._async import run_sync
from crucible_core.models import (
    Completion,
    Model,
    Price,
    Request,
    Usage,
    build_model,
    is_simulated,
    price_for,
)
from crucible_ensemble._checks import is_count, is_real
from crucible_ensemble._execution import (
    Cascade,
    Execution,
    ExecutionName,
    Hedged,
    Parallel,
    Sequential,
    resolve_execution,
)
from crucible_ensemble._fast import builder
from crucible_ensemble._normalize import (
    MEMO_TEXT,
    NormalizeName,
    Normalizer,
    Reading,
    check_normalize,
    remember,
    resolve_normalizer,
    resolve_reading,
)
from crucible_ensemble._results import EnsembleResult, MemberResponse, MemberStatus
from crucible_ensemble._voting import (
    Ballot,
    Majority,
    StrategyName,
    VotingStrategy,
    resolve_strategy,
)
from crucible_ensemble.exceptions import (
    EnsembleConfigurationError,
    EnsembleTimeoutError,
    InsufficientResponsesError,
)
from crucible_hedging import (
    AllAttemptsFailedError,
    HedgeAttempt,
    HedgedResult,
    Hedger,
    HedgingTimeoutError,
)

__all__ = ("Ensemble", "ModelSpec", "predict", "predict_async")

ModelSpec = Model | str
"""A member: a [`Model`][crucible_core.models.Model] or a model string such as `"sim:gpt-4"`."""

_INF = math.inf
_TYPICAL_USAGE = Usage(input_tokens=500, output_tokens=200)
_POSITION = attrgetter("position")
_COUNT = itemgetter(1)
_RESULT = methodcaller("result")
_T = TypeVar("_T")

# One branch runs, by the Python version (3.12 added eager tasks); hence no coverage on either.
if sys.version_info >= (3, 12):  # pragma: no cover
    _EAGER = True

    def _start(
        loop: asyncio.AbstractEventLoop, coro: Coroutine[Any, Any, _T], name: str
    ) -> asyncio.Task[_T]:
        """Start a member call in its own task, running its first step now (an eager task).

        A call that needs no I/O (a simulated member in virtual time, a cache hit) is finished
        when this returns and is never scheduled on the loop.
        """
        return asyncio.Task(coro, loop=loop, name=name, eager_start=True)

else:  # pragma: no cover
    _EAGER = False

    def _start(
        loop: asyncio.AbstractEventLoop, coro: Coroutine[Any, Any, _T], name: str
    ) -> asyncio.Task[_T]:
        """Start a member call in its own task; its first step runs at the next loop iteration.

        The first step cannot run here: a member's first step may capture the current task (an
        `asyncio.timeout`, aiohttp's timer), which must be its own task, not the caller's.
        """
        if loop.get_task_factory() is None:  # what `create_task` does, minus its frame
            return asyncio.Task(coro, loop=loop, name=name)
        return loop.create_task(coro, name=name)


@types.coroutine
def _step() -> Generator[None, None, None]:
    """`asyncio.sleep(0)` without its frames: let the loop run once (the tasks started so far)."""
    yield


async def _raising(err: Exception) -> Completion:
    raise err


async def _awaiting(awaitable: Awaitable[Completion]) -> Completion:
    return await awaitable


def _start_all(
    loop: asyncio.AbstractEventLoop,
    models: Sequence[Model],
    request: Request,
    names: Sequence[str],
) -> list[asyncio.Task[Completion]]:
    """Each model's `complete(request)` started as a task named `names[k]`, in order.

    A `complete` that raises before returning an awaitable is a failed call like any other, and
    one that returns another awaitable than a coroutine is awaited in one. If a task cannot be
    started, the ones already started are cancelled and the error raised. (A task given its name
    is also quicker to make than one numbered "Task-<n>" by asyncio.)
    """
    tasks: list[asyncio.Task[Completion]] = []
    # `_start`, written out for the hot path: the task itself when no task factory is set.
    plain = not _EAGER and loop.get_task_factory() is None
    task = asyncio.Task
    call: Any = None
    try:
        for model, name in zip(models, names, strict=True):
            try:
                call = model.complete(request)
            except Exception as err:  # a member failure, recorded like any other
                call = _raising(err)
            if type(call) is not CoroutineType:
                call = _awaiting(call)
            tasks.append(
                task(call, loop=loop, name=name) if plain else _start(loop, call, name)
            )
            call = None
    except BaseException:
        if call is not None:
            call.close()  # made but never started: no "never awaited" warning
        for started in tasks:
            started.cancel()
        raise
    return tasks


class _Call:
    """One member call in flight or done (mutable bookkeeping, private)."""

    __slots__ = (
        "answer",
        "completion",
        "confidence",
        "error",
        "finish",
        "launch",
        "position",
        "status",
    )

    def __init__(self, position: int, launch: float) -> None:
        self.position = position
        self.launch = launch
        self.finish = _INF
        self.completion: Completion | None = None
        self.error: BaseException | None = None
        self.status: MemberStatus = "cancelled"
        self.answer: str | None = None
        self.confidence: float | None = None


async def _timed(
    model: Model, request: Request, clock: Callable[[], float]
) -> tuple[Completion | None, BaseException | None, float]:
    started = clock()
    try:
        completion = await model.complete(request)
    except Exception as err:  # any member failure is recorded, never raised here
        return None, err, clock() - started
    return completion, None, clock() - started


def _member_confidence(completion: Completion) -> float | None:
    """A confidence the model reported.

    `Completion.confidence`, else `raw["confidence"]`, else the mean token probability of
    OpenAI-shaped raw logprobs.
    """
    own = getattr(completion, "confidence", None)
    if isinstance(own, float) and 0.0 <= own <= 1.0:
        return own
    raw = completion.raw
    value = raw.get("confidence")
    if isinstance(value, int | float) and not isinstance(value, bool):
        return float(value) if 0.0 <= value <= 1.0 else None
    choices = raw.get("choices")
    if not choices:
        return None
    try:
        tokens = choices[0]["logprobs"]["content"]
        logprobs = [float(t["logprob"]) for t in tokens]
    except (KeyError, IndexError, TypeError, ValueError):
        return None
    if not logprobs:
        return None
    return math.exp(sum(logprobs) / len(logprobs))


def _confidence(completion: Completion) -> float | None:
    """`_member_confidence`, skipped at once for the usual completion that reports none."""
    raw = completion.raw
    if completion.confidence is not None or "confidence" in raw or "choices" in raw:
        return _member_confidence(completion)
    return None


def _price(model: Model) -> float:
    """An estimate of one call's USD cost (unknown: infinity).

    For ordering a cascade and billing a call cancelled before it answered: a simulated
    profile's price per query, else the model's own `price` or the pricing table's for its id,
    applied to a typical call (500 prompt and 200 completion tokens).
    """
    profile = getattr(model, "profile", None)
    per_query = getattr(profile, "price_per_query", None)
    if isinstance(per_query, int | float):
        return float(per_query)
    own = getattr(model, "price", None)
    if isinstance(own, Price):
        return own.cost(_TYPICAL_USAGE)
    try:
        return price_for(model.id).cost(_TYPICAL_USAGE)
    except Exception:  # not in the pricing table: last
        return _INF


def _names(models: Sequence[Model]) -> tuple[str, ...]:
    seen: dict[str, int] = {}
    out = []
    for model in models:
        base = model.id
        seen[base] = seen.get(base, 0) + 1
        out.append(base if seen[base] == 1 else f"{base}#{seen[base]}")
    return tuple(out)


def _error_text(err: BaseException) -> str:
    return f"{type(err).__name__}: {err}"


def _timeout_error(timeout: float | None) -> TimeoutError:
    return TimeoutError(f"no answer within the ensemble's {timeout} s timeout")


_FINISHED = frozenset({"answered", "unparsed"})


def _measured(result: EnsembleResult | None) -> dict[str, float]:
    """A prediction's cost, members called and latency, for its stop or exception event."""
    if result is None:
        return {}
    return {
        "cost": result.cost or 0.0,
        "models_called": result.members_called,
        "latency": result.latency,
    }


class _Unreadable(Exception):
    """A member answered, but no answer could be read from its text (a hedged attempt failed).

    Its `latency` is the completion's, so the next member is called when the answer came.
    """

    def __init__(self, latency: float) -> None:
        super().__init__("no answer could be read from the member's text")
        self.latency = latency


def _never_fatal(error: BaseException) -> bool:
    """Hedged execution tries the next member whatever a member's error."""
    return False


def _reported(call: _Call) -> float | None:
    """The latency a hedged call's completion reports."""
    return None if call.completion is None else call.completion.latency


_ballot = builder(Ballot)
_response = builder(MemberResponse)
_response_in_order = builder(MemberResponse, positional=True)
_result_in_order = builder(EnsembleResult, positional=True)
_NO_TASKS: frozenset[asyncio.Task[Any]] = frozenset()


class Ensemble:
    """Several models voting as one model.

    An `Ensemble` implements the [`Model`][crucible_core.models.Model] protocol, so it can stand
    anywhere a model can (a harness condition, another ensemble). `predict_async` returns the
    full [`EnsembleResult`][crucible_ensemble.EnsembleResult]; `complete` returns it as a
    `Completion` (the winning member's text, summed usage and cost, the result in `raw`).

    A member that fails or times out is recorded and left out of the vote; the prediction fails
    only when fewer than `min_responses` members answered.

    Args:
        models: the members: [`Model`][crucible_core.models.Model]s or model strings
            (`"sim:gpt-4"`, `"openai:gpt-4o-mini"`). Order matters: ties go to the member listed
            first, and sequential and hedged execution call members in this order.
        strategy: `"majority"`, `"weighted"`, `"best_confidence"`, `"unanimous"`, a
            [`VotingStrategy`][crucible_ensemble.VotingStrategy], or a function
            `ballots -> answer | None`.
        execution: `"parallel"`, `"sequential"`, `"hedged"`, `"cascade"`, or an object such as
            [`Hedged(delay=0.5)`][crucible_ensemble.Hedged].
        weights: member weights for `"weighted"`: a sequence in member order or a mapping by
            member name (missing names weigh 1). See
            [`log_odds_weights`][crucible_ensemble.log_odds_weights].
        normalize: how raw texts become comparable answers: `"auto"` (from the request's
            `kind` and `choices`), `"choice"`, `"number"`, `"boolean"`, `"text"`, `"code"`,
            `"exact"`, or a function `text -> str | None`.
        timeout: seconds a prediction may take; members still running are cancelled and
            recorded as timed out (`None`: no limit). Simulated models in virtual time are timed
            by the latency they report.
        min_responses: the fewest answering members to vote over.
        min_consensus: abstain when the winning answer's vote share is below this.
        model_options: keyword options for [`build_model`][crucible_core.models.build_model]
            when members are given as strings (e.g. `{"seed": 1, "virtual_time": True}`).

    Raises:
        EnsembleConfigurationError: for an unknown strategy or execution, bad weights, or
            `min_responses` larger than the ensemble.

    Examples:
        >>> from crucible_core.models import Request, SimulatedModel
        >>> members = [SimulatedModel(p, seed=1, virtual_time=True)
        ...            for p in ("gpt-4", "claude-3", "gemini-pro")]
        >>> ensemble = Ensemble(members, strategy="majority")
        >>> result = ensemble.predict(Request(prompt="2 + 2 = ?", reference="4", kind="number"))
        >>> result.answer
        '4'
    """

    __slots__ = (
        "_built",
        "_execution",
        "_execution_name",
        "_hedger",
        "_id",
        "_majority",
        "_meta",
        "_normalize",
        "_order",
        "_prices",
        "_reading",
        "_strategy",
        "_task_names",
        "_weight_list",
        "min_consensus",
        "min_responses",
        "models",
        "names",
        "timeout",
    )

    def __init__(
        self,
        models: Sequence[ModelSpec],
        *,
        strategy: StrategyName
        | VotingStrategy
        | Callable[[Sequence[Ballot]], Any] = "majority",
        execution: ExecutionName | Execution = "parallel",
        weights: Sequence[float] | Mapping[str, float] | None = None,
        normalize: NormalizeName | Normalizer = "auto",
        timeout: float | None = None,
        min_responses: int = 1,
        min_consensus: float | None = None,
        model_options: Mapping[str, Any] | None = None,
    ) -> None:
        if isinstance(models, str) or not isinstance(models, Sequence):
            raise EnsembleConfigurationError(
                "`models` must be a list of models or model strings, e.g. "
                "`['sim:gpt-4', 'sim:claude-3', 'sim:gemini-pro']`",
                models=models,
            )
        if not models:
            raise EnsembleConfigurationError(
                "an ensemble needs at least one model in `models=`", models=models
            )
        built: list[Model] = []
        members: list[Model] = []
        for spec in models:
            if isinstance(spec, str):
                model = build_model(spec, **dict(model_options or {}))
                built.append(model)
                members.append(model)
            elif isinstance(spec, Model):
                members.append(spec)
            else:
                raise EnsembleConfigurationError(
                    f"member {spec!r} is neither a `Model` nor a model string like 'sim:gpt-4'",
                    member=spec,
                )
        self.models: tuple[Model, ...] = tuple(members)
        """The members, in order."""
        self.names: tuple[str, ...] = _names(self.models)
        """Each member's name: its model id, suffixed `#2`, `#3` when an id repeats."""
        self._task_names = tuple(f"ensemble member {n}" for n in self.names)
        self._built = tuple(built)
        self._strategy = resolve_strategy(strategy)
        self._execution = resolve_execution(execution)
        check_normalize(normalize)
        self._normalize = normalize
        self._weight_list = self._check_weights(weights)
        if timeout is not None and (not is_real(timeout) or not timeout > 0):
            raise EnsembleConfigurationError(
                f"`timeout` must be a positive number of seconds or None, got {timeout!r}",
                timeout=timeout,
            )
        self.timeout: float | None = timeout
        """Seconds a prediction may take (`None`: no limit)."""
        n = len(self.models)
        if not is_count(min_responses, minimum=1) or min_responses > n:
            raise EnsembleConfigurationError(
                f"`min_responses` must be an integer from 1 to the number of members ({n}), "
                f"got {min_responses!r}",
                min_responses=min_responses,
            )
        self.min_responses: int = min_responses
        """The fewest answering members to vote over."""
        if min_consensus is not None and (
            not is_real(min_consensus) or not 0.0 < min_consensus <= 1.0
        ):
            raise EnsembleConfigurationError(
                f"`min_consensus` must be in (0, 1] or None, got {min_consensus!r}",
                min_consensus=min_consensus,
            )
        self.min_consensus: float | None = min_consensus
        """Abstain below this vote share (`None`: never for lack of consensus)."""
        order = list(range(n))
        if isinstance(self._execution, Cascade) and self._execution.order == "cost":
            prices = [_price(m) for m in self.models]
            order.sort(key=lambda i: prices[i])
        self._order = tuple(order)
        self._prices: tuple[float | None, ...] = tuple(
            None if math.isinf(p) else p for p in map(_price, self.models)
        )
        self._majority = type(self._strategy) is Majority
        self._execution_name = self._execution.name  # (a built-in execution's is fixed)
        # The last request's normalizer and memo, by its `kind` and `choices`.
        blank = Request(prompt="")
        self._reading: tuple[str, tuple[str, ...], Reading] = (
            blank.kind,
            blank.choices,
            resolve_reading(normalize, blank),
        )
        self._id = (
            f"ensemble:{self._strategy.name}/{self._execution.name}("
            + ",".join(self.names)
            + ")"
        )
        self._meta: dict[str, Any] = {
            "ensemble": self._id,
            "strategy": self._strategy.name,
            "execution": self._execution.name,
            "models": self.names,
        }
        ex = self._execution
        self._hedger = (
            Hedger(
                policy=ex.hedge_policy(),
                max_hedges=n - 1 if ex.max_hedges is None else ex.max_hedges,
                budget=ex.budget,
                throttle=ex.throttle,
                timeout=timeout,
                fatal=_never_fatal,
            )
            if isinstance(ex, Hedged)
            else None
        )

    def _check_weights(
        self, weights: Sequence[float] | Mapping[str, float] | None
    ) -> tuple[float, ...]:
        n = len(self.models)
        if weights is None:
            return (1.0,) * n
        if isinstance(weights, Mapping):
            unknown = sorted(set(weights) - set(self.names))
            if unknown:
                raise EnsembleConfigurationError(
                    f"`weights` names {unknown}, which are not members; members are "
                    f"{list(self.names)}",
                    weights=dict(weights),
                )
            values = [weights.get(name, 1.0) for name in self.names]
        elif isinstance(weights, Sequence):
            if len(weights) != n:
                raise EnsembleConfigurationError(
                    f"`weights` has {len(weights)} values for {n} members; give one per member "
                    "or a mapping by member name",
                    weights=list(weights),
                )
            values = list(weights)
        else:
            raise EnsembleConfigurationError(
                f"`weights` must be a sequence or a mapping of numbers, got {weights!r}",
                weights=weights,
            )
        for value in values:
            if not is_real(value) or value < 0:
                raise EnsembleConfigurationError(
                    f"weights must be finite numbers >= 0, got {value!r}",
                    weights=values,
                )
        return tuple(float(v) for v in values)

    # --- the Model protocol ----------------------------------------------------------------------

    @property
    def id(self) -> str:
        """`"ensemble:<strategy>/<execution>(<member>,...)"`."""
        return self._id

    @property
    def provider(self) -> str:
        """Always `"ensemble"`."""
        return "ensemble"

    @property
    def simulated(self) -> bool:
        """Whether any member is simulated (then so are the ensemble's numbers)."""
        return any(is_simulated(m) for m in self.models)

    @property
    def strategy(self) -> VotingStrategy:
        """The voting strategy."""
        return self._strategy

    @property
    def execution(self) -> Execution:
        """The execution strategy."""
        return self._execution

    @property
    def hedger(self) -> Hedger | None:
        """The crucible-hedging `Hedger` behind `execution="hedged"` (else `None`).

        It holds the policy's learning and the budget across predictions; its `report()` gives
        the hedge and win rates and the latency percentiles with and without hedging.
        """
        return self._hedger

    @property
    def weights(self) -> dict[str, float]:
        """Each member's weight, by name."""
        return dict(zip(self.names, self._weight_list, strict=True))

    def __repr__(self) -> str:
        return (
            f"Ensemble({list(self.names)!r}, strategy={self._strategy.name!r}, "
            f"execution={self._execution.name!r})"
        )

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
        """Close the members this ensemble built from model strings (not the ones passed in)."""
        for model in self._built:
            await model.aclose()

    async def complete(self, request: Request) -> Completion:
        """Answer `request` as one model: the prediction as a `Completion`.

        The text is the winning member's raw text (empty, with `finish_reason="other"`, when the
        ensemble abstained); usage and cost are summed over members; `raw["ensemble"]` holds the
        full result as a dict.

        Raises:
            InsufficientResponsesError: when fewer than `min_responses` members answered.
        """
        result = await self.predict_async(request)
        return Completion(
            text="" if result.abstained else (result.text or ""),
            usage=Usage(
                input_tokens=result.input_tokens, output_tokens=result.output_tokens
            ),
            latency=result.latency,
            cost=result.cost,
            model=self.id,
            provider="ensemble",
            finish_reason="other" if result.abstained else "stop",
            raw={"ensemble": result.to_dict()},
            attempts=1,
        )

    # --- predicting ------------------------------------------------------------------------------

    def predict(self, prompt: str | Request) -> EnsembleResult:
        """Ask every member (as the execution says) and vote; the sync twin of `predict_async`."""
        return run_sync(self.predict_async(prompt))

    async def predict_async(self, prompt: str | Request) -> EnsembleResult:
        """Ask the members (as the execution strategy says) and vote over their answers.

        Args:
            prompt: a prompt string, or a [`Request`][crucible_core.models.Request] (which can
                carry `kind`, `choices` and, for simulated members, the `reference`).

        Returns:
            The answer, the vote and every member's response.

        Raises:
            InsufficientResponsesError: when fewer than `min_responses` members answered; its
                `errors` holds each failed member's exception.
            EnsembleTimeoutError: the same, because the timeout ran out.
        """
        request = prompt if isinstance(prompt, Request) else Request(prompt=prompt)
        # The span of `events.span`, written out: this is the hot path of every prediction, and
        # the events' dicts are built only for someone listening.
        began = time.perf_counter()
        if events.listening(events.ENSEMBLE_PREDICT_START):
            events.emit(
                events.ENSEMBLE_PREDICT_START,
                {"monotonic_time": began, "system_time": time.time()},
                dict(self._meta),
            )
        result: EnsembleResult | None = None
        try:
            if isinstance(self._execution, Parallel):
                result, errors, timed_out = await self._predict_parallel(request)
            else:
                if self._hedger is not None:
                    calls, ballots, latency, timed_out = await self._gather_hedged(
                        request, self._hedger
                    )
                else:
                    calls, ballots, latency, timed_out = await self._gather(request)
                result = self._tally(calls, ballots, latency)
                errors = {
                    self.names[c.position]: c.error
                    for c in calls
                    if c.error is not None
                }
            if (
                result.responders < self.min_responses
                if self.min_responses > 1
                else not result.votes  # (nobody voted: `responders`, without the sum)
            ):
                raise self._shortfall(errors, result, timed_out=timed_out)
            if events.listening(events.ENSEMBLE_VOTE_STOP):
                events.emit(
                    events.ENSEMBLE_VOTE_STOP,
                    {"consensus": result.consensus, "votes": result.responders},
                    {
                        "ensemble": self._id,
                        "answer": result.answer,
                        "method": self._strategy.name,
                        "abstained": result.abstained,
                    },
                )
        except BaseException as err:
            events.emit(
                events.ENSEMBLE_PREDICT_EXCEPTION,
                {"duration": time.perf_counter() - began, **_measured(result)},
                {**self._meta, "error_type": type(err).__name__, "error": str(err)},
            )
            raise
        if events.listening(events.ENSEMBLE_PREDICT_STOP):
            events.emit(
                events.ENSEMBLE_PREDICT_STOP,
                {"duration": time.perf_counter() - began, **_measured(result)},
                dict(self._meta),
            )
        return result

    def _shortfall(
        self,
        errors: dict[str, BaseException],
        result: EnsembleResult,
        *,
        timed_out: bool,
    ) -> InsufficientResponsesError:
        cls = EnsembleTimeoutError if timed_out else InsufficientResponsesError
        return cls(
            f"only {result.responders} of {len(self.models)} members answered, fewer "
            f"than min_responses={self.min_responses}; errors: "
            + (
                "; ".join(f"{k}: {_error_text(v)}" for k, v in errors.items())
                or "none (answers could not be read: check `normalize=`)"
            )
            + (
                f". The {self.timeout} s timeout ran out: raise `timeout=`"
                if timed_out
                else ". Lower `min_responses=`, add members, or fix the failing ones"
            ),
            errors=errors,
            responses=result.responders,
            min_responses=self.min_responses,
            result=result,
            **({"timeout": self.timeout} if timed_out else {}),
        )

    # --- internals -------------------------------------------------------------------------------

    def _want(self, ballots: list[Ballot], pending: list[float]) -> int:
        """How many answers to have outstanding now."""
        ex = self._execution
        floor = self.min_responses - len(ballots)
        if isinstance(ex, Sequential):
            needed = getattr(self._strategy, "needed", None)
            want = needed(ballots, pending) if needed is not None else len(pending)
            want += ex.spare
        else:
            # parallel and hedged execution run elsewhere
            assert isinstance(ex, Cascade)
            lead = 0
            if ballots:
                counts: dict[str, int] = {}
                for b in ballots:
                    counts[b.answer] = counts.get(b.answer, 0) + 1
                lead = max(counts.values())
            want = max(1, ex.min_agreeing - lead)
        return max(want, floor, 1)

    def _finished(self, ballots: list[Ballot], pending: list[float]) -> bool:
        if not pending:
            return True
        if len(ballots) < self.min_responses:
            return False
        ex = self._execution
        if isinstance(ex, Sequential):
            settled = getattr(self._strategy, "settled", None)
            return bool(settled(ballots, pending)) if settled is not None else False
        assert isinstance(ex, Cascade)  # parallel and hedged execution run elsewhere
        if ex.confidence is not None and any(
            b.confidence is not None and b.confidence >= ex.confidence for b in ballots
        ):
            return True
        decision = self._strategy.decide(ballots)
        if decision.answer is None:
            return False
        agreeing = sum(1 for b in ballots if b.answer == decision.answer)
        return agreeing >= ex.min_agreeing and (
            decision.confidence is None or decision.confidence >= ex.threshold
        )

    async def _gather(
        self, request: Request
    ) -> tuple[list[_Call], list[Ballot], float, bool]:
        """Run the member calls on the execution's schedule (sequential, cascade).

        Time is tracked on a model clock: a call launched at model time `t` finishes at `t` plus
        the latency its completion reports (or the wall time it took, if larger). Simulated
        members in virtual time return at once but are processed in model-time order, so
        sequential stopping and timeouts behave as they would in real time.
        """
        loop = asyncio.get_running_loop()
        wall0 = loop.time()
        weights = self._weight_list
        timeout = self.timeout
        normalizer = resolve_normalizer(self._normalize, request)
        queue = deque(self._order)
        calls: list[_Call] = []
        in_flight: dict[asyncio.Task[Any], _Call] = {}
        ready: list[_Call] = []
        ballots: list[Ballot] = []
        clock = 0.0
        timed_out = False
        fresh = False  # tasks launched since the loop last ran (Python 3.11 only)

        def pending() -> list[float]:
            outstanding = sorted([*in_flight.values(), *ready], key=lambda c: c.launch)
            return [weights[c.position] for c in outstanding] + [
                weights[p] for p in queue
            ]

        def launch(at: float) -> None:
            nonlocal fresh
            position = queue.popleft()
            call = _Call(position, at)
            task = _start(
                loop,
                _timed(self.models[position], request, loop.time),
                self._task_names[position],
            )
            in_flight[task] = call
            calls.append(call)
            fresh = not _EAGER

        def collect(done: Sequence[asyncio.Task[Any]]) -> None:
            for task in done:
                call = in_flight.pop(task)
                completion, error, wall = task.result()
                call.completion, call.error = completion, error
                took = wall if completion is None else max(completion.latency, wall)
                call.finish = call.launch + took
                ready.append(call)

        try:
            while True:
                rest = pending()
                if self._finished(ballots, rest):
                    break
                outstanding = len(in_flight) + len(ready)
                for _ in range(
                    min(self._want(ballots, rest) - outstanding, len(queue))
                ):
                    launch(clock)
                if not in_flight and not ready:
                    break
                if in_flight and fresh:
                    await asyncio.sleep(0)  # let new calls take their first step
                    fresh = False
                collect([t for t in in_flight if t.done()])
                if not ready:
                    # Nothing to decide on: block until a call finishes or the timeout runs out.
                    left = None if timeout is None else timeout - (loop.time() - wall0)
                    done, _ = await asyncio.wait(
                        in_flight,
                        timeout=None if left is None else max(left, 0.0),
                        return_when=asyncio.FIRST_COMPLETED,
                    )
                    collect(list(done))
                    if not ready:  # the timeout ran out
                        clock = max(clock, timeout or 0.0)
                        timed_out = True
                        break
                ready.sort(key=lambda c: c.finish)
                first = ready.pop(0)
                if timeout is not None and first.finish > timeout:
                    first.status = "timed_out"
                    first.error = _timeout_error(timeout)
                    clock = max(clock, timeout)
                    timed_out = True
                    continue
                clock = max(clock, first.finish)
                self._record(first, normalizer, ballots)
        finally:
            # Cancel what is still running (also when the prediction itself is cancelled); a
            # finished-but-unneeded call is dropped the same way.
            for task, call in in_flight.items():
                task.cancel()
                call.status = "timed_out" if timed_out else "cancelled"
                if timed_out:
                    call.error = _timeout_error(timeout)
            if in_flight:
                await asyncio.gather(*in_flight, return_exceptions=True)
        return calls, ballots, clock, timed_out

    async def _predict_parallel(
        self, request: Request
    ) -> tuple[EnsembleResult, dict[str, BaseException], bool]:
        """Everyone at once: the result, each failed member's error, and whether time ran out.

        The same schedule as `_gather`, without its bookkeeping: this is the hot path of every
        prediction. The member calls are the tasks themselves (no timing wrapper); a call's wall
        time is read when the ensemble sees it done (at once for a call that finished in its
        first step, else when `asyncio.wait` reports it), and each member's response and ballot
        are made in one pass, in member order.

        When every member answered in its first step and in time (simulated members in virtual
        time, cached answers), `_tally_answered` makes the result in one pass, without the
        bookkeeping for failures and timeouts; anything else goes through `_tally_parallel`.
        """
        loop = asyncio.get_running_loop()
        clock = loop.time
        began = clock()
        tasks = _start_all(loop, self.models, request, self._task_names)
        late: AbstractSet[asyncio.Task[Any]] = _NO_TASKS
        # Whether every call finished or timed out (else the ones still running are cancelled).
        settled = False
        try:
            if not _EAGER:  # (eager tasks have taken their first step already)
                await _step()  # the calls take their first step; most finish
            now = clock() - began
            answered = self._tally_answered(tasks, now, request)
            if answered is not None:  # all answered in their first step: the usual case
                settled = True
                return answered, {}, False
            running = [t for t in tasks if not t.done()]
            # All finished in their first step, some failed or ran past the timeout:
            if not running:
                settled = True
                return self._tally_parallel(tasks, [now] * len(tasks), late, request)
            slot = {t: k for k, t in enumerate(tasks)}
            walls = [now if t.done() else 0.0 for t in tasks]
            timeout = self.timeout
            while running:
                left = None
                if timeout is not None:
                    left = max(timeout - (clock() - began), 0.0)
                done, pending = await asyncio.wait(
                    running, timeout=left, return_when=asyncio.FIRST_COMPLETED
                )
                if not done:  # the timeout ran out
                    late = pending
                    break
                now = clock() - began
                for task in done:
                    walls[slot[task]] = now
                running = list(pending)
            settled = True
        finally:
            if not settled or late:
                unfinished = [t for t in tasks if not t.done()]
                for task in unfinished:
                    task.cancel()
                if unfinished:
                    await asyncio.gather(*unfinished, return_exceptions=True)
        return self._tally_parallel(tasks, walls, late, request)

    def _tally_answered(
        self, tasks: list[asyncio.Task[Completion]], wall: float, request: Request
    ) -> EnsembleResult | None:
        """The result when every call returned a completion in time, all at `wall` seconds.

        `None` when one failed, was cancelled or ran past the timeout: `_tally_parallel` records
        those. Otherwise exactly what `_tally_parallel` makes, in one pass: each text is read
        through the normalizer's memo, and the responses are built directly.
        """
        try:
            completions = list(map(_RESULT, tasks))
        except BaseException:  # running, failed, cancelled, interrupted: not for here
            return None
        timeout = self.timeout
        if timeout is not None:
            for completion in completions:
                if max(completion.latency, wall) > timeout:
                    return None
        kind, choices, reading = self._reading
        if kind != request.kind or choices != request.choices:
            reading = resolve_reading(self._normalize, request)
            self._reading = (request.kind, request.choices, reading)
        read, memo = reading.read, reading.memo
        names, weights = self.names, self._weight_list
        counts: dict[str, int] = {}  # votes per answer
        n = 0
        ballots: list[Ballot] | None = None if self._majority else []
        responses: list[MemberResponse] = []
        latency = 0.0
        cost: float | None = 0.0
        for position, completion in enumerate(completions):
            finish = completion.latency  # max(completion.latency, wall), written out
            if wall > finish:
                finish = wall
            if finish > latency:
                latency = finish
            text = completion.text
            answer: str | None
            if memo is not None and type(text) is str:
                try:
                    answer = memo[text]
                except KeyError:  # (a text too long to remember is never found)
                    answer = read(text)
                    if len(text) <= MEMO_TEXT:
                        remember(memo, text, answer)
            else:
                answer = read(text)
            # `_confidence`, written out: none to read from an empty `raw` and no `confidence`
            confidence = (
                _member_confidence(completion)
                if completion.raw or completion.confidence is not None
                else None
            )
            if answer is not None:
                counts[answer] = counts.get(answer, 0) + 1
                n += 1
                if ballots is not None:  # for the strategy (the majority needs none)
                    ballots.append(
                        _ballot(
                            member=names[position],
                            position=position,
                            answer=answer,
                            weight=weights[position],
                            confidence=confidence,
                        )
                    )
            billed = completion.cost
            if cost is not None:
                cost = None if billed is None else cost + billed
            usage = completion.usage
            responses.append(
                _response_in_order(
                    names[position],
                    "unparsed" if answer is None else "answered",
                    answer,
                    text,
                    confidence,
                    completion.latency,
                    usage.input_tokens,
                    usage.output_tokens,
                    billed,
                    None,
                )
            )
        return self._result(counts, n, ballots, responses, cost, latency)

    def _tally_parallel(
        self,
        tasks: list[asyncio.Task[Completion]],
        walls: list[float],
        late: AbstractSet[asyncio.Task[Any]],
        request: Request,
    ) -> tuple[EnsembleResult, dict[str, BaseException], bool]:
        """The result of parallel calls, each seen done at `walls[k]`, those in `late` cut off."""
        timeout = self.timeout
        normalizer = resolve_normalizer(self._normalize, request)
        names, weights = self.names, self._weight_list
        counts: dict[str, int] = {}  # votes per answer
        n = 0
        ballots: list[Ballot] | None = None if self._majority else []
        responses: list[MemberResponse] = []
        errors: dict[str, BaseException] = {}
        timed_out = bool(late)
        latency = 0.0
        cost: float | None = 0.0
        for position, task in enumerate(tasks):
            name, wall = names[position], walls[position]
            error: BaseException | None = None
            if task in late:
                error = _timeout_error(timeout)
            else:
                error = (
                    task.exception()
                )  # a cancelled member raises CancelledError here
                if error is not None and not isinstance(error, Exception):
                    raise error  # not a member failure (KeyboardInterrupt, ...)
            if error is not None:
                errors[name] = error
                failed = task not in late
                billed = None
                if failed:
                    latency = max(latency, wall)
                else:  # cut off by the timeout: sent, so billed
                    billed = self._billed(position, None)
                    if cost is not None:
                        cost = None if billed is None else cost + billed
                responses.append(
                    _response(
                        member=name,
                        status="failed" if failed else "timed_out",
                        answer=None,
                        text=None,
                        confidence=None,
                        latency=wall if failed else None,
                        input_tokens=0,
                        output_tokens=0,
                        cost=billed,
                        error=_error_text(error),
                    )
                )
                continue
            completion: Completion = task.result()
            finish = max(completion.latency, wall)
            if timeout is not None and finish > timeout:
                errors[name] = error = _timeout_error(timeout)
                timed_out = True
                if (
                    cost is not None
                ):  # sent, so billed (it would be cancelled at the timeout)
                    cost = None if completion.cost is None else cost + completion.cost
                responses.append(
                    _response(
                        member=name,
                        status="timed_out",
                        answer=None,
                        text=None,
                        confidence=None,
                        latency=None,
                        input_tokens=completion.usage.input_tokens,
                        output_tokens=completion.usage.output_tokens,
                        cost=completion.cost,
                        error=_error_text(error),
                    )
                )
                continue
            if finish > latency:
                latency = finish
            answer = normalizer(completion.text)
            confidence = _confidence(completion)
            if answer is not None:
                counts[answer] = counts.get(answer, 0) + 1
                n += 1
                if ballots is not None:  # for the strategy (the majority needs none)
                    ballots.append(
                        _ballot(
                            member=name,
                            position=position,
                            answer=answer,
                            weight=weights[position],
                            confidence=confidence,
                        )
                    )
            if cost is not None:
                cost = None if completion.cost is None else cost + completion.cost
            usage = completion.usage
            responses.append(
                _response(
                    member=name,
                    status="unparsed" if answer is None else "answered",
                    answer=answer,
                    text=completion.text,
                    confidence=confidence,
                    latency=completion.latency,
                    input_tokens=usage.input_tokens,
                    output_tokens=usage.output_tokens,
                    cost=completion.cost,
                    error=None,
                )
            )
        if timed_out and timeout is not None:
            latency = timeout
        result = self._result(counts, n, ballots, responses, cost, latency)
        return result, errors, timed_out

    async def _gather_hedged(
        self, request: Request, hedger: Hedger
    ) -> tuple[list[_Call], list[Ballot], float, bool]:
        """Hedged requests through crucible-hedging, one per answer wanted (`min_responses`).

        Request `j` calls member `j` and takes backups from members `j + k`, `j + 2k`, ... A
        call's value is the call itself, timed by the latency its completion reports; a failed
        or unreadable call fails the attempt, so the next member is called at once. Each
        attempt's fate comes from the hedger's timeline, on the request's clock: a call that
        returned (in virtual time) after the winner's reported finish was still running there,
        so it is cancelled like a real loser.
        """
        normalizer = resolve_normalizer(self._normalize, request)
        k = self.min_responses
        ex = self._execution
        limit = ex.max_hedges if isinstance(ex, Hedged) else None
        slots = [self._order[j::k] for j in range(k)]
        tried: list[list[_Call]] = [[] for _ in slots]

        def attempts(slot: Sequence[int], calls: list[_Call]) -> Callable[[], Any]:
            members = iter(slot)

            async def attempt() -> _Call:
                position = next(members)
                call = _Call(position, 0.0)
                calls.append(call)
                try:
                    call.completion = await self.models[position].complete(request)
                except Exception as err:
                    call.error = err
                    raise
                answer = normalizer(call.completion.text)
                if answer is None:
                    raise _Unreadable(call.completion.latency)
                call.answer = answer
                return call

            return attempt

        outcomes = await asyncio.gather(
            *(
                hedger.request(
                    attempts(slot, calls),
                    latency=_reported,
                    max_hedges=len(slot) - 1
                    if limit is None
                    else min(limit, len(slot) - 1),
                )
                for slot, calls in zip(slots, tried, strict=True)
            ),
            return_exceptions=True,
        )
        ballots: list[Ballot] = []
        latency = 0.0
        timed_out = False
        for calls, outcome in zip(tried, outcomes, strict=True):
            if isinstance(outcome, HedgedResult):
                timeline: tuple[HedgeAttempt, ...] = outcome.timeline
            elif isinstance(outcome, HedgingTimeoutError | AllAttemptsFailedError):
                timeline = outcome.timeline
                timed_out = timed_out or isinstance(outcome, HedgingTimeoutError)
            else:
                raise outcome  # cancelled, or a bug: not a member's failure
            for attempt, call in zip(timeline, calls, strict=True):
                call.launch = attempt.start_ms / 1000.0
                call.finish = (attempt.end_ms or attempt.start_ms) / 1000.0
                latency = max(latency, call.finish)
                finished = attempt.outcome in ("won", "failed")
                if finished and call.completion is not None:
                    call.confidence = _confidence(call.completion)
                if attempt.outcome == "won" and call.answer is not None:
                    self._vote(call, call.answer, ballots)
                elif attempt.outcome == "failed":
                    call.status = "failed" if call.completion is None else "unparsed"
                elif isinstance(outcome, HedgingTimeoutError):
                    call.status = "timed_out"
                    call.error = _timeout_error(self.timeout)
                # else: "cancelled", the default
        return [c for calls in tried for c in calls], ballots, latency, timed_out

    def _record(
        self, call: _Call, normalizer: Normalizer, ballots: list[Ballot]
    ) -> None:
        completion = call.completion
        if completion is None:
            call.status = "failed"
            return
        answer = normalizer(completion.text)
        call.confidence = _confidence(completion)
        if answer is None:
            call.status = "unparsed"
            return
        self._vote(call, answer, ballots)

    def _vote(self, call: _Call, answer: str, ballots: list[Ballot]) -> None:
        """Record `call`'s readable `answer` and its ballot."""
        call.status = "answered"
        call.answer = answer
        position = call.position
        ballots.append(
            _ballot(
                member=self.names[position],
                position=position,
                answer=answer,
                weight=self._weight_list[position],
                confidence=call.confidence,
            )
        )

    def _billed(self, position: int, completion: Completion | None) -> float | None:
        """What a call that was sent but cancelled (or timed out) is billed.

        Providers bill a request once it is sent, cancelled or not: its completion's cost when
        it returned (in virtual time, or after the cancel), else the price of a typical call to
        the member (`None` when unknown). An upper bound for a call cut short, so a hedge or an
        early stop never looks cheaper than it is.
        """
        if completion is not None:
            return completion.cost
        return self._prices[position]

    def _tally(
        self, calls: list[_Call], ballots: list[Ballot], latency: float
    ) -> EnsembleResult:
        """The result of the calls made by sequential, cascade or hedged execution."""
        calls.sort(key=_POSITION)
        ballots.sort(key=_POSITION)
        responses = []
        cost: float | None = 0.0
        names = self.names
        for c in calls:
            completion = c.completion if c.status in _FINISHED else None
            if completion is None:
                billed = usage = None
                if c.status != "failed":  # cancelled or timed out: sent, so billed
                    billed = self._billed(c.position, c.completion)
                    usage = None if c.completion is None else c.completion.usage
                    if cost is not None:
                        cost = None if billed is None else cost + billed
                responses.append(
                    _response(
                        member=names[c.position],
                        status=c.status,
                        answer=None,
                        text=None,
                        confidence=c.confidence,
                        latency=c.finish - c.launch if c.status == "failed" else None,
                        input_tokens=0 if usage is None else usage.input_tokens,
                        output_tokens=0 if usage is None else usage.output_tokens,
                        cost=billed,
                        error=_error_text(c.error) if c.error is not None else None,
                    )
                )
                continue
            if cost is not None:
                cost = None if completion.cost is None else cost + completion.cost
            answered = c.status == "answered"
            usage = completion.usage
            responses.append(
                _response(
                    member=names[c.position],
                    status=c.status,
                    answer=c.answer if answered else None,
                    text=completion.text,
                    confidence=c.confidence,
                    latency=completion.latency,
                    input_tokens=usage.input_tokens,
                    output_tokens=usage.output_tokens,
                    cost=completion.cost,
                    error=_error_text(c.error) if c.error is not None else None,
                )
            )
        counts: dict[str, int] = {}
        for b in ballots:
            counts[b.answer] = counts.get(b.answer, 0) + 1
        return self._result(counts, len(ballots), ballots, responses, cost, latency)

    def _result(
        self,
        counts: dict[str, int],
        n: int,
        ballots: list[Ballot] | None,
        responses: list[MemberResponse],
        cost: float | None,
        latency: float,
    ) -> EnsembleResult:
        """The vote and the result holding `responses`.

        `counts` holds the votes per answer, in the order first voted for (member order), `n`
        of them. `ballots` (the same votes, for the strategy) may be `None` for the built-in
        majority, which decides from the counts alone.
        """
        answer: str | None = None
        confidence: float | None = None
        consensus = 0.0
        abstained = True
        votes = counts
        if n:
            if len(counts) > 1:  # most votes first (ties in the order first voted for)
                votes = dict(sorted(counts.items(), key=_COUNT, reverse=True))
            if self._majority:  # `Majority.decide` from the counts already made
                answer = next(iter(votes))  # ties: the first voter's
                confidence = counts[answer] / n
            else:
                assert ballots is not None
                decision = self._strategy.decide(ballots)
                answer, confidence = decision.answer, decision.confidence
            if answer is None:
                consensus = max(counts.values()) / n
            else:
                consensus = counts.get(answer, 0) / n
                abstained = (
                    self.min_consensus is not None and consensus < self.min_consensus
                )
            if abstained:
                answer, confidence = None, None
        text = None
        if answer is not None:
            for r in responses:  # the first voter for the answer, in member order
                if r.answer == answer:
                    text = r.text
                    break
        return _result_in_order(
            answer,
            text,
            consensus,
            confidence,
            votes,
            abstained,
            tuple(responses),
            cost,
            latency,
            len(responses),
            "majority" if self._majority else self._strategy.name,
            self._execution_name,
        )


async def predict_async(
    prompt: str | Request,
    *,
    models: Sequence[ModelSpec],
    strategy: StrategyName
    | VotingStrategy
    | Callable[[Sequence[Ballot]], Any] = "majority",
    execution: ExecutionName | Execution = "parallel",
    weights: Sequence[float] | Mapping[str, float] | None = None,
    normalize: NormalizeName | Normalizer = "auto",
    timeout: float | None = None,  # noqa: ASYNC109 - the ensemble timeout is an option, not a wait
    min_responses: int = 1,
    min_consensus: float | None = None,
    model_options: Mapping[str, Any] | None = None,
) -> EnsembleResult:
    """Ask several models and vote: a one-off [`Ensemble`][crucible_ensemble.Ensemble].

    Members given as strings are built for this call and closed afterwards. The options are those
    of [`Ensemble`][crucible_ensemble.Ensemble].

    Raises:
        InsufficientResponsesError: when fewer than `min_responses` members answered.
        EnsembleConfigurationError: for invalid options.
    """
    async with Ensemble(
        models,
        strategy=strategy,
        execution=execution,
        weights=weights,
        normalize=normalize,
        timeout=timeout,
        min_responses=min_responses,
        min_consensus=min_consensus,
        model_options=model_options,
    ) as ensemble:
        return await ensemble.predict_async(prompt)


def predict(
    prompt: str | Request,
    *,
    models: Sequence[ModelSpec],
    strategy: StrategyName
    | VotingStrategy
    | Callable[[Sequence[Ballot]], Any] = "majority",
    execution: ExecutionName | Execution = "parallel",
    weights: Sequence[float] | Mapping[str, float] | None = None,
    normalize: NormalizeName | Normalizer = "auto",
    timeout: float | None = None,
    min_responses: int = 1,
    min_consensus: float | None = None,
    model_options: Mapping[str, Any] | None = None,
) -> EnsembleResult:
    """Ask several models and vote; the sync twin of [`predict_async`][crucible_ensemble.predict_async].

    Examples:
        >>> from crucible_core.models import Request
        >>> result = predict(
        ...     Request(prompt="Capital of France?", reference="B", kind="choice",
        ...             choices=("A", "B", "C", "D")),
        ...     models=["sim:gpt-4", "sim:claude-3", "sim:gemini-pro"],
        ...     model_options={"virtual_time": True},
        ... )
        >>> result.answer, result.members_called
        ('B', 3)
    """
    return run_sync(
        predict_async(
            prompt,
            models=models,
            strategy=strategy,
            execution=execution,
            weights=weights,
            normalize=normalize,
            timeout=timeout,
            min_responses=min_responses,
            min_consensus=min_consensus,
            model_options=model_options,
        )
    )
