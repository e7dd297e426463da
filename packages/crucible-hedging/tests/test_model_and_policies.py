"""`HedgedModel`, the policies, budget, throttle and the survival estimate; hypothesis invariants."""

from __future__ import annotations

import asyncio
from typing import Any

import attrs
import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from crucible_core import stats
from crucible_core.models import Request, SimulatedModel
from crucible_hedging import (
    Adaptive,
    Empirical,
    Fixed,
    HedgeBudget,
    HedgedModel,
    InvalidHedgingConfigError,
    Outcome,
    Parametric,
    Percentile,
    Throttle,
    WorkloadAware,
    hedged,
    run_virtual,
    simulate,
)
from crucible_hedging._survival import kaplan_meier


def test_hedged_model_cuts_the_tail_of_a_simulated_model_in_virtual_time() -> None:
    # a real-time SimulatedModel sleeps its latencies; on the virtual loop that costs nothing
    inner = SimulatedModel("gpt-4", seed=3, retry=None)
    model = HedgedModel(inner, policy=Fixed(delay=2.0), budget=0.1)
    plain = SimulatedModel("gpt-4", seed=3, retry=None)

    costs: list[tuple[float | None, int]] = []

    async def main() -> tuple[list[float], list[float]]:
        hedged_lat, plain_lat = [], []
        async with model:
            for i in range(1500):
                request = Request(prompt=f"q{i}", reference="4", kind="number")
                try:
                    done = await model.complete(request)
                    hedged_lat.append(done.latency)
                    costs.append((done.cost, done.raw["hedge"]["attempts"]))
                    plain_lat.append((await plain.complete(request)).latency)
                except Exception:  # simulated 500s, 1% of attempts
                    continue
        return hedged_lat, plain_lat

    hedged_lat, plain_lat = run_virtual(main())
    # every attempt sent is billed at the per-query price, backups included
    assert all(cost == pytest.approx(0.005 * attempts) for cost, attempts in costs)
    assert any(attempts == 2 for _, attempts in costs)
    assert model.id == "sim:gpt-4" and model.provider == "sim"
    assert stats.percentile(hedged_lat, 99) < 0.75 * stats.percentile(plain_lat, 99)
    assert stats.percentile(hedged_lat, 50) == pytest.approx(
        stats.percentile(plain_lat, 50), rel=0.02
    )
    report = model.report()
    assert 0.02 < report.hedge_rate <= 0.1


def test_hedged_model_tags_backups_and_routes_keys() -> None:
    seen: list[dict[str, Any]] = []

    class Slow:
        id = "fake:m"
        provider = "fake"

        async def complete(self, request: Request) -> Any:
            seen.append(dict(request.metadata))
            took = 5.0 if not request.metadata.get("hedge") else 0.1
            await asyncio.sleep(took)
            answer = await SimulatedModel("gpt-4", virtual_time=True).complete(request)
            return attrs.evolve(answer, latency=took)  # what it really took

        async def aclose(self) -> None:
            pass

    policy = WorkloadAware(policies={"long": Fixed(delay=0.5)})
    model = HedgedModel(
        Slow(),
        policy=policy,
        key=lambda r: "long" if len(r.prompt or "") > 3 else "short",
    )
    completion = run_virtual(model.complete(Request(prompt="long prompt")))
    assert seen == [{}, {"hedge": 1}]
    assert completion.latency == pytest.approx(0.6)
    with pytest.raises(InvalidHedgingConfigError):
        HedgedModel("gpt-4", policy=Fixed(delay=1.0))  # type: ignore[arg-type]


def test_percentile_matches_r_type_7_over_its_window() -> None:
    policy = Percentile(p=90, window=50, min_samples=10)
    rng = np.random.default_rng(0)
    values = rng.lognormal(size=200)
    for v in values:
        policy.observe(Outcome(primary_latency=float(v)))
    assert policy.samples == 50
    assert policy.delay() == pytest.approx(stats.percentile(values[-50:], 90))


def test_percentile_waits_for_min_samples() -> None:
    policy = Percentile(p=95, min_samples=3, initial_delay=1.5)
    assert policy.delay() == 1.5
    policy.observe(
        Outcome(primary_latency=None)
    )  # a failed first attempt teaches nothing
    assert policy.samples == 0


@pytest.mark.parametrize(
    "build",
    [
        lambda: Fixed(delay=-1),
        lambda: Fixed(delay=float("inf")),
        lambda: Percentile(p=100),
        lambda: Percentile(window=0),
        lambda: Percentile(window=5, min_samples=10),
        lambda: Adaptive(max_rate=0),
        lambda: Adaptive(tolerance=1.5),
        lambda: WorkloadAware(policies={"a": 1.0}),
        lambda: WorkloadAware(policies=[Fixed(delay=1)]),
        lambda: HedgeBudget(ratio=0),
        lambda: HedgeBudget(ratio=0.1, burst=0.5),
        lambda: Throttle(max_tokens=-1),
        lambda: Parametric(distribution="glacial"),
        lambda: Parametric(distribution="fast", correlation=2),
        lambda: Empirical(samples=[]),
        lambda: Empirical(samples=[1.0, float("nan")]),
    ],
)
def test_bad_configurations_are_refused_with_a_value_error(build: Any) -> None:
    with pytest.raises(InvalidHedgingConfigError) as info:
        build()
    assert isinstance(info.value, ValueError)


def test_workload_aware_learns_per_class() -> None:
    short, long = Percentile(p=50, min_samples=1), Percentile(p=50, min_samples=1)
    policy = WorkloadAware(
        policies={"short": short, "long": long}, default=Fixed(delay=9)
    )
    policy.observe(Outcome(key="short", primary_latency=0.1))
    policy.observe(Outcome(key="long", primary_latency=3.0))
    policy.observe(Outcome(key="other", primary_latency=3.0))
    assert (policy.delay("short"), policy.delay("long"), policy.delay("x")) == (
        0.1,
        3.0,
        9,
    )
    assert policy.delay(["unhashable"]) == 9  # type: ignore[arg-type]


def test_kaplan_meier_without_censoring_is_the_empirical_survival() -> None:
    times = [3.0, 1.0, 2.0, 2.0]
    surv = kaplan_meier(times, [False] * 4)
    assert surv is not None
    np.testing.assert_allclose(surv.times, [1.0, 2.0, 3.0])
    np.testing.assert_allclose(surv.surv, [0.75, 0.25, 0.0])
    assert surv.quantile(0.5) == 2.0
    assert kaplan_meier([1.0], [True]) is None


def test_kaplan_meier_recovers_a_censored_tail() -> None:
    rng = np.random.default_rng(1)
    x = rng.exponential(1.0, 20_000)
    cut = rng.exponential(3.0, 20_000)
    surv = kaplan_meier(np.minimum(x, cut), x > cut)
    assert surv is not None
    assert surv.quantile(0.9) == pytest.approx(np.log(10), rel=0.05)


def test_empirical_model_resamples_and_correlates() -> None:
    data = np.arange(1, 1001) / 1000
    rng = np.random.default_rng(0)
    same = Empirical(samples=data, correlation=1.0).sample(rng, 500, 2)
    assert (same[:, 0] == same[:, 1]).all()
    indep = Empirical(samples=data).sample(rng, 500, 2)
    assert set(np.unique(indep)) <= set(data)
    result = simulate(Empirical(samples=data), Fixed(delay=0.9), n=5000, seed=1)
    assert result.report.hedge_rate == pytest.approx(0.1, abs=0.02)


def test_parametric_sampler_is_the_core_distribution() -> None:
    model = Parametric(distribution="slow")
    z = np.linspace(-4, 4, 81)
    from statistics import NormalDist

    expected = [model.distribution.quantile(NormalDist().cdf(float(v))) for v in z]
    np.testing.assert_allclose(model.quantile(z), expected, rtol=1e-9)


def test_throttle_recovers_after_successes() -> None:
    throttle = Throttle(max_tokens=4, token_ratio=0.5)
    for _ in range(3):
        throttle.record(success=False)
    assert not throttle.allows()
    for _ in range(4):
        throttle.record(success=True)
    assert throttle.allows() and throttle.tokens == 3.0


def test_simulation_result_views() -> None:
    result = simulate(Parametric(distribution="fast"), Fixed(delay=0.8), n=500, seed=1)
    assert "P99" in result.render()
    frame = result.to_polars()
    assert frame.height == 500
    assert result.to_dict()["report"]["requests"] == 500
    assert "requests=500" in repr(result.report)


def test_simulate_refuses_bad_options() -> None:
    medium = Parametric(distribution="medium")
    for options in (
        {"n": 0},
        {"arrival_rate": -1.0},
        {"failure_rate": 1.0},
        {"keys": ["a"]},
    ):
        with pytest.raises(InvalidHedgingConfigError):
            simulate(medium, Fixed(delay=1), **options)  # type: ignore[arg-type]
    with pytest.raises(InvalidHedgingConfigError):
        simulate("medium", Fixed(delay=1))  # type: ignore[arg-type]


# --- hypothesis: invariants over arbitrary attempt schedules -----------------------------------

attempt = st.tuples(
    st.integers(min_value=1, max_value=40).map(
        lambda k: k / 8
    ),  # latency on a 1/8 s grid
    st.booleans(),  # fails?
)


@settings(max_examples=60, deadline=None)
@given(
    schedule=st.lists(attempt, min_size=3, max_size=3),
    delay=st.integers(min_value=0, max_value=24).map(lambda k: k / 8 + 1 / 16),
)
def test_winner_is_the_first_success(
    schedule: list[tuple[float, bool]], delay: float
) -> None:
    """Whatever the latencies and failures, the result is the earliest success (or all failed)."""
    specs = [
        (lat, RuntimeError(f"attempt {i}") if fails else i)
        for i, (lat, fails) in enumerate(schedule)
    ]
    calls = 0

    async def fn() -> int:
        nonlocal calls
        lat, outcome = specs[calls]
        calls += 1
        await asyncio.sleep(lat)
        if isinstance(outcome, Exception):
            raise outcome
        return outcome

    # independently compute when each attempt starts and finishes
    starts: list[float] = [0.0]
    finish: dict[int, float] = {}
    t = 0.0
    next_timer = delay
    while len(starts) <= 3:
        running = {
            i: starts[i] + specs[i][0] for i in range(len(starts)) if i not in finish
        }
        first = min(running.values(), default=float("inf"))
        if first <= next_timer or len(starts) == 3:
            if not running:
                break
            i = min(running, key=lambda j: (running[j], j))
            t = finish[i] = running[i]
            if not isinstance(specs[i][1], Exception):
                break
            if len(starts) < 3:
                starts.append(t)
                next_timer = t + delay
        else:
            t = next_timer
            starts.append(t)
            next_timer = t + delay
    successes = [i for i in finish if not isinstance(specs[i][1], Exception)]
    try:
        result = run_virtual(hedged(fn, policy=Fixed(delay=delay), max_hedges=2))
    except ExceptionGroup:
        assert not successes
        return
    assert successes
    won = min(successes, key=lambda i: (finish[i], i))
    assert result.value == won
    assert result.latency_ms == pytest.approx(finish[won] * 1000)


@settings(max_examples=30, deadline=None)
@given(
    ratio=st.sampled_from([0.01, 0.05, 0.2]),
    burst=st.integers(min_value=1, max_value=5),
    p=st.sampled_from([10.0, 50.0, 90.0]),
    failure_rate=st.sampled_from([0.0, 0.1]),
    seed=st.integers(min_value=0, max_value=10_000),
)
def test_budget_bound_holds_for_any_policy(
    ratio: float, burst: int, p: float, failure_rate: float, seed: int
) -> None:
    n = 2000
    result = simulate(
        Parametric(distribution="fast"),
        Percentile(p=p, min_samples=5),
        n=n,
        seed=seed,
        budget=HedgeBudget(ratio=ratio, burst=burst),
        failure_rate=failure_rate,
        max_hedges=3,
    )
    # one request at a time: request i's backups happen before request i + 1 deposits
    spent = np.cumsum(result.hedges)
    for start in range(0, n, 97):
        window = spent[start:] - (spent[start - 1] if start else 0)
        k = np.arange(1, n - start + 1)
        assert (window <= burst + ratio * k + 1e-9).all()


@settings(max_examples=25, deadline=None)
@given(
    jitter=st.lists(st.floats(min_value=0, max_value=1e-4), min_size=40, max_size=40)
)
def test_results_do_not_depend_on_scheduling_noise(jitter: list[float]) -> None:
    """Sub-millisecond noise in when attempts answer changes no winner and no hedge decision."""
    rng = np.random.default_rng(5)
    lat = np.round(Parametric(distribution="fast").sample(rng, 20, 2), 2)  # 10 ms grid

    async def run(noise: list[float]) -> list[tuple[int, int]]:
        from crucible_hedging import Hedger

        hedger = Hedger(policy=Fixed(delay=0.805))
        out = []
        for r in range(20):
            calls = iter(lat[r] + np.array(noise[2 * r : 2 * r + 2]))

            async def fn(calls: Any = calls) -> None:
                await asyncio.sleep(next(calls))

            res = await hedger.request(fn)
            out.append((res.winner_index, res.hedges_fired))
        return out

    assert run_virtual(run(jitter)) == run_virtual(run([0.0] * 40))


def test_a_hedged_model_is_simulated_when_its_model_is() -> None:
    from crucible_core.models import is_simulated
    from crucible_hedging import Fixed, HedgedModel

    assert is_simulated(
        HedgedModel(SimulatedModel("gpt-4", virtual_time=True), policy=Fixed(delay=0.5))
    )


def test_policies_from_text_and_the_default_from_the_settings(
    tmp_path: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    from crucible_hedging import Adaptive, Fixed, HedgedModel, Hedger, parse_policy
    from crucible_hedging.exceptions import InvalidHedgingConfigError

    assert parse_policy("fixed:0.5") == Fixed(delay=0.5)
    assert (
        parse_policy(" Percentile:90 ").p == 90.0
        and parse_policy("percentile").p == 95.0
    )
    assert isinstance(parse_policy("adaptive"), Adaptive)
    for bad in ("fixed", "fixed:soon", "median", "adaptive:3", "percentile:150"):
        with pytest.raises(InvalidHedgingConfigError):
            parse_policy(bad)
    monkeypatch.delenv("CRUCIBLE_HEDGING_POLICY", raising=False)
    monkeypatch.chdir(tmp_path)
    assert Hedger().policy.p == 95.0  # built in: percentile:95
    (tmp_path / "crucible.toml").write_text('[hedging]\npolicy = "fixed:0.25"\n')
    assert Hedger().policy == Fixed(delay=0.25)
    sim = SimulatedModel("gpt-4", virtual_time=True)
    assert HedgedModel(sim).hedger.policy == Fixed(delay=0.25)
    monkeypatch.setenv(
        "CRUCIBLE_HEDGING_POLICY", "adaptive"
    )  # environment over the file
    assert isinstance(Hedger().policy, Adaptive)
    assert Hedger(policy=Fixed(delay=1.0)).policy == Fixed(delay=1.0)  # explicit wins
    first, second = Hedger(), Hedger()
    assert first.policy is not second.policy  # each gets its own learning state
