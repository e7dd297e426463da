from __future__ import annotations

import asyncio
import itertools
import math
import pickle
import random
import re
import statistics

import attrs
import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from crucible_core.exceptions import (
    ConfigurationError,
    ProviderTimeoutError,
    RateLimitError,
    ResponseError,
    ValidationError,
)
from crucible_core.models import (
    LATENCY_CLASSES,
    PROFILES,
    Completion,
    LatencyDistribution,
    Profile,
    Request,
    SimulatedModel,
    item_difficulty,
    wrong_answer,
)
from crucible_core.retry import retry
from crucible_core.serde import from_json, to_json

RELIABLE = {"error_rate": 0.0, "rate_limit_rate": 0.0}


def _items(n: int, kind: str = "choice") -> list[Request]:
    refs = {
        "choice": lambda i: "ABCD"[i % 4],
        "number": str,
        "text": lambda i: f"answer {i}",
    }
    return [
        Request(prompt=f"question {i}", reference=refs[kind](i), kind=kind)  # type: ignore[arg-type]
        for i in range(n)
    ]


# --- determinism ---------------------------------------------------------------------------------


async def test_same_seed_same_answers_regardless_of_order_and_concurrency() -> None:
    items = _items(300)
    sequential = [
        await SimulatedModel("gpt-4", seed=5, virtual_time=True).complete(r)
        for r in items
    ]
    shuffled = list(range(len(items)))
    random.Random(1).shuffle(shuffled)
    model = SimulatedModel("gpt-4", seed=5, virtual_time=True)
    concurrent = await asyncio.gather(*(model.complete(items[i]) for i in shuffled))
    by_index = dict(zip(shuffled, concurrent, strict=True))
    for i, completion in enumerate(sequential):
        assert by_index[i] == completion


async def test_different_seeds_and_models_draw_differently() -> None:
    items = _items(200)
    a = [
        (await SimulatedModel("gpt-4", seed=1, virtual_time=True).complete(r)).latency
        for r in items
    ]
    b = [
        (await SimulatedModel("gpt-4", seed=2, virtual_time=True).complete(r)).latency
        for r in items
    ]
    c = [
        (
            await SimulatedModel("gemini-pro", seed=1, virtual_time=True).complete(r)
        ).latency
        for r in items
    ]
    assert a != b
    assert a != c


async def test_metadata_separates_repeats_of_one_item() -> None:
    model = SimulatedModel("llama-3-70b", seed=0, virtual_time=True)
    runs = [
        await model.complete(
            Request(prompt="q", reference="A", kind="choice", metadata={"repeat": r})
        )
        for r in range(200)
    ]
    assert len({c.latency for c in runs}) > 150
    assert {c.text for c in runs} - {"A"}  # some repeats are wrong, independently


# --- accuracy ------------------------------------------------------------------------------------


@pytest.mark.parametrize("name", sorted(PROFILES))
async def test_accuracy_within_binomial_bounds(name: str) -> None:
    n = 4000
    model = SimulatedModel(name, seed=11, virtual_time=True)
    correct = 0
    for r in _items(n):
        correct += (await model.complete(r)).text == r.reference
    p = PROFILES[name].accuracy
    bound = 4 * math.sqrt(p * (1 - p) / n)
    assert abs(correct / n - p) < bound


def test_answer_reports_correctness_and_matches_complete() -> None:
    model = SimulatedModel("mixtral-8x7b", seed=3, virtual_time=True)
    for r in _items(100, "number"):
        text, correct = model.answer(r)
        assert correct == (text == r.reference)
        assert asyncio.run(model.complete(r)).text == text
    assert model.answer(Request(prompt="free question"))[1] is None


def test_perfect_and_hopeless_profiles() -> None:
    perfect = SimulatedModel(
        Profile(name="oracle", accuracy=1.0, latency="fast"), virtual_time=True
    )
    hopeless = SimulatedModel(
        Profile(name="dud", accuracy=0.0, latency="fast"), virtual_time=True
    )
    for r in _items(50, "text"):
        assert perfect.answer(r) == (r.reference, True)
        text, correct = hopeless.answer(r)
        assert correct is False
        assert text != r.reference


# --- correlated errors: a latent difficulty shared by every model asked an item --------------------


def _two_way(n: int, *, offset: int = 0) -> list[Request]:
    return [
        Request(prompt=f"item {i}", reference="A", kind="choice", choices=("A", "B"))
        for i in range(offset, offset + n)
    ]


def _reliable(name: str, accuracy: float) -> Profile:
    return Profile(name=name, accuracy=accuracy, latency="fast", **RELIABLE)


def test_correlation_keeps_accuracy_and_makes_models_wrong_together() -> None:
    n = 6000
    items = _two_way(n)
    accuracies = (0.80, 0.90)

    def wrong(rho: float) -> list[list[bool]]:
        models = [
            SimulatedModel(_reliable(f"m{i}", p), seed=i, correlation=rho)
            for i, p in enumerate(accuracies)
        ]
        return [[m.answer(r)[1] is False for r in items] for m in models]

    independent = (1 - accuracies[0]) * (1 - accuracies[1])
    se = math.sqrt(independent * (1 - independent) / n)
    for rho in (0.0, 0.6):
        a, b = wrong(rho)
        for flags, p in zip((a, b), accuracies, strict=True):
            assert abs(sum(flags) / n - (1 - p)) < 4 * math.sqrt(p * (1 - p) / n)
        both = sum(x and y for x, y in zip(a, b, strict=True)) / n
        if rho == 0.0:
            assert abs(both - independent) < 4 * se
        else:  # the hard items are hard for both: far more joint errors than by chance
            assert both > independent + 10 * se


def test_full_correlation_is_wrong_exactly_on_the_hardest_items() -> None:
    items = _two_way(2000, offset=10_000)
    a = SimulatedModel(_reliable("a", 0.9), seed=1, correlation=1.0)
    b = SimulatedModel(_reliable("b", 0.9), seed=2, correlation=1.0)
    cut = statistics.NormalDist().inv_cdf(0.9)
    for r in items:
        right = item_difficulty(r) < cut
        assert a.answer(r)[1] is right and b.answer(r)[1] is right


def test_zero_correlation_draws_exactly_as_before() -> None:
    items = _items(300)
    plain = SimulatedModel("gemini-pro", seed=4)
    zero = SimulatedModel("gemini-pro", seed=4, correlation=0.0, difficulty_seed=9)
    assert [plain.answer(r) for r in items] == [zero.answer(r) for r in items]
    # a correlated model still gives the simulator's wrong answers
    hard = SimulatedModel("gemini-pro", seed=4, correlation=0.8)
    for r in items:
        text, right = hard.answer(r)
        if not right:
            assert text == wrong_answer(r, seed=4, salt="gemini-pro")


def test_item_difficulty_belongs_to_the_item() -> None:
    base = Request(prompt="q1", reference="A", kind="choice", metadata={"repeat": 0})
    repeat = attrs.evolve(base, metadata={"repeat": 1}, temperature=0.7)
    other = attrs.evolve(base, prompt="q2")
    assert item_difficulty(base) == item_difficulty(repeat)
    assert item_difficulty(base) != item_difficulty(other)
    assert item_difficulty(base) != item_difficulty(base, seed=1)
    scores = [item_difficulty(r) for r in _two_way(4000)]
    assert (
        abs(statistics.fmean(scores)) < 0.1 and abs(statistics.stdev(scores) - 1) < 0.1
    )


def test_difficulty_seed_decides_which_models_share_hard_items() -> None:
    items = _two_way(3000, offset=20_000)
    first = SimulatedModel(_reliable("x", 0.85), correlation=1.0)
    same = SimulatedModel(_reliable("y", 0.85), seed=5, correlation=1.0)
    apart = SimulatedModel(_reliable("y", 0.85), correlation=1.0, difficulty_seed=1)
    right = [first.answer(r)[1] for r in items]
    assert [same.answer(r)[1] for r in items] == right
    agree = sum(apart.answer(r)[1] == x for r, x in zip(items, right, strict=True))
    assert agree < 0.9 * len(items)


@pytest.mark.parametrize("bad", [-0.1, 1.5, True, "0.5", math.nan])
def test_correlation_must_be_in_the_unit_interval(bad: object) -> None:
    with pytest.raises(ValidationError, match="correlation"):
        SimulatedModel("gpt-4", correlation=bad)  # type: ignore[arg-type]


def test_correlated_model_options_show_and_build_from_strings() -> None:
    from crucible_core.models import build_model

    model = build_model("sim:gpt-4", correlation=0.5, difficulty_seed=3)
    assert isinstance(model, SimulatedModel)
    assert model.correlation == 0.5 and model.difficulty_seed == 3
    assert repr(model) == "SimulatedModel('gpt-4', correlation=0.5, difficulty_seed=3)"
    with pytest.raises(ValidationError, match="difficulty_seed"):
        SimulatedModel("gpt-4", difficulty_seed=0.5)  # type: ignore[arg-type]


# --- wrong answers of the right kind -------------------------------------------------------------


@given(ref=st.sampled_from("ABCD"), seed=st.integers(0, 10_000))
def test_wrong_choice_is_another_letter(ref: str, seed: int) -> None:
    wrong = wrong_answer(Request(prompt="q", reference=ref, kind="choice"), seed=seed)
    assert wrong in set("ABCD") - {ref}


@given(seed=st.integers(0, 10_000))
def test_wrong_choice_among_choice_texts(seed: int) -> None:
    choices = ("red", "green", "blue")
    wrong = wrong_answer(
        Request(prompt="q", reference="green", kind="choice", choices=choices),
        seed=seed,
    )
    assert wrong in {"red", "blue"}


def test_wrong_choice_letter_range_follows_choices() -> None:
    seen = {
        wrong_answer(
            Request(
                prompt="q",
                reference="B",
                kind="choice",
                choices=("x", "y", "z", "w", "v"),
            ),
            seed=s,
        )
        for s in range(200)
    }
    assert seen == {"A", "C", "D", "E"}


@given(value=st.integers(-(10**9), 10**9), seed=st.integers(0, 1000))
def test_wrong_integer_is_a_different_integer(value: int, seed: int) -> None:
    wrong = wrong_answer(
        Request(prompt="q", reference=str(value), kind="number"), seed=seed
    )
    assert re.fullmatch(r"-?\d+", wrong), wrong
    assert int(wrong) != value


@given(
    value=st.decimals(
        min_value=-1000, max_value=1000, places=2, allow_nan=False, allow_infinity=False
    ),
    seed=st.integers(0, 1000),
)
def test_wrong_decimal_keeps_its_places(value: object, seed: int) -> None:
    ref = f"{value:.2f}"
    wrong = wrong_answer(Request(prompt="q", reference=ref, kind="number"), seed=seed)
    assert re.fullmatch(r"-?\d+\.\d\d", wrong), wrong
    assert float(wrong) != float(ref)


def test_wrong_number_keeps_currency_and_thousands() -> None:
    wrongs = {
        wrong_answer(Request(prompt="q", reference="$1,200", kind="number"), seed=s)
        for s in range(50)
    }
    assert "$1,200" not in wrongs
    assert all(re.fullmatch(r"-?\$\d{1,3}(,\d{3})*", w) for w in wrongs), wrongs


def _passes(code: str, check: str) -> bool:
    namespace: dict[str, object] = {}
    try:
        exec(compile(code, "<answer>", "exec"), namespace)
        exec(check, namespace)
    except Exception:
        return False
    return True


ADD = "def add(a, b):\n    total = a + b\n    return total\n"
HUMANEVAL_PROMPT = 'def unique(l: list):\n    """Return sorted unique elements."""\n'
HUMANEVAL_BODY = "    return sorted(list(set(l)))\n"


def test_reference_code_passes_its_check() -> None:  # the check below is able to pass
    assert _passes(ADD, "assert add(2, 3) == 5")
    assert _passes(
        HUMANEVAL_PROMPT + HUMANEVAL_BODY, "assert unique([3, 1, 3]) == [1, 3]"
    )


@pytest.mark.parametrize("seed", range(40))
def test_wrong_code_fails_its_tests(seed: int) -> None:
    wrong = wrong_answer(
        Request(prompt="write add", reference=ADD, kind="code"), seed=seed
    )
    assert wrong != ADD
    assert not _passes(wrong, "assert add(2, 3) == 5")
    body = wrong_answer(
        Request(prompt=HUMANEVAL_PROMPT, reference=HUMANEVAL_BODY, kind="code"),
        seed=seed,
    )
    assert not _passes(HUMANEVAL_PROMPT + body, "assert unique([3, 1, 3]) == [1, 3]")


def test_wrong_code_uses_several_plausible_mutations() -> None:
    wrongs = [
        wrong_answer(Request(prompt="p", reference=ADD, kind="code"), seed=s)
        for s in range(60)
    ]
    assert any("NotImplementedError" in w for w in wrongs)
    assert any("return None" in w for w in wrongs)
    assert any(len(w) < len(ADD) for w in wrongs)  # cut off


@given(
    seed=st.integers(0, 10_000),
    ref=st.sampled_from(["Paris", "the mitochondria", "Marie Curie won twice"]),
)
def test_wrong_text_differs(seed: int, ref: str) -> None:
    wrong = wrong_answer(Request(prompt="q", reference=ref), seed=seed)
    assert wrong.strip()
    assert wrong.lower() != ref.lower()


def test_wrong_answer_needs_a_reference() -> None:
    with pytest.raises(ValidationError, match="reference"):
        wrong_answer(Request(prompt="q"))


def test_answers_without_reference_are_well_formed() -> None:
    model = SimulatedModel("gpt-4", virtual_time=True)
    assert model.answer(Request(prompt="q", kind="choice"))[0] in set("ABCD")
    assert model.answer(Request(prompt="q", kind="number"))[0].isdigit()
    assert model.answer(Request(prompt="q"))[0]


# --- latency -------------------------------------------------------------------------------------


@settings(max_examples=200)
@given(
    p50=st.floats(0.001, 10),
    r95=st.floats(1.01, 20),
    r99=st.floats(1.01, 20),
    qs=st.lists(st.floats(0.0, 1.0), min_size=2, max_size=10),
)
def test_quantile_function_hits_anchors_and_increases(
    p50: float, r95: float, r99: float, qs: list[float]
) -> None:
    d = LatencyDistribution(p50=p50, p95=p50 * r95, p99=p50 * r95 * r99)
    assert d.quantile(0.5) == pytest.approx(d.p50, rel=1e-9)
    assert d.quantile(0.95) == pytest.approx(d.p95, rel=1e-9)
    assert d.quantile(0.99) == pytest.approx(d.p99, rel=1e-9)
    values = [d.quantile(q) for q in sorted(qs)]
    assert all(a <= b for a, b in itertools.pairwise(values))
    assert all(v > 0 and math.isfinite(v) for v in values)


def test_latency_distribution_validates() -> None:
    with pytest.raises(ValidationError, match="increase"):
        LatencyDistribution(p50=1.0, p95=0.5, p99=2.0)
    with pytest.raises(ValidationError, match="positive"):
        LatencyDistribution(p50=-1.0, p95=0.5, p99=2.0)
    with pytest.raises(ValidationError, match="latency class"):
        Profile(name="x", accuracy=0.5, latency="glacial")


@pytest.mark.parametrize("latency_class", ["fast", "medium", "slow"])
async def test_empirical_latency_quantiles(latency_class: str) -> None:
    profile = Profile(
        name=f"q-{latency_class}", accuracy=0.9, latency=latency_class, **RELIABLE
    )
    model = SimulatedModel(profile, seed=2, virtual_time=True)
    latencies = np.array(
        [(await model.complete(Request(prompt=f"q{i}"))).latency for i in range(20_000)]
    )
    expected = LATENCY_CLASSES[latency_class]  # type: ignore[index]
    p50, p95, p99 = np.percentile(latencies, [50, 95, 99])
    assert p50 == pytest.approx(expected.p50, rel=0.05)
    assert p95 == pytest.approx(expected.p95, rel=0.08)
    assert p99 == pytest.approx(expected.p99, rel=0.15)
    assert latencies.max() > expected.p99  # a tail beyond the 99th percentile


def test_profiles_are_the_documented_five() -> None:
    table = {
        n: (p.accuracy, p.price_per_query, p.latency, p.error_rate)
        for n, p in PROFILES.items()
    }
    fast, medium = LATENCY_CLASSES["fast"], LATENCY_CLASSES["medium"]
    assert table == {
        "gpt-4": (0.94, 0.005, medium, 0.01),
        "claude-3": (0.93, 0.003, fast, 0.01),
        "gemini-pro": (0.90, 0.001, medium, 0.01),
        "llama-3-70b": (0.87, 0.0002, fast, 0.01),
        "mixtral-8x7b": (0.89, 0.0008, medium, 0.01),
    }
    assert (fast.p50, fast.p95, fast.p99) == (0.2, 0.8, 2.0)
    assert (medium.p50, medium.p95, medium.p99) == (0.5, 2.0, 5.0)
    slow = LATENCY_CLASSES["slow"]
    assert (slow.p50, slow.p95, slow.p99) == (1.0, 4.0, 8.0)


# --- virtual and real time -----------------------------------------------------------------------

GLACIAL = Profile(
    name="glacial",
    accuracy=1.0,
    latency=LatencyDistribution(p50=500, p95=600, p99=700),
    **RELIABLE,
)


async def test_virtual_time_reports_latency_without_sleeping() -> None:
    model = SimulatedModel(GLACIAL, virtual_time=True)
    completion = await asyncio.wait_for(model.complete(Request(prompt="q")), timeout=30)
    assert completion.latency > 100


async def test_real_time_sleeps_the_latency() -> None:
    model = SimulatedModel(GLACIAL)
    task = asyncio.create_task(model.complete(Request(prompt="q")))
    done, _ = await asyncio.wait({task}, timeout=0.05)
    assert not done  # still sleeping its ~500 s
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task


async def test_real_time_completes_for_short_latencies() -> None:
    tiny = Profile(
        name="tiny",
        accuracy=1.0,
        latency=LatencyDistribution(p50=0.001, p95=0.002, p99=0.003),
        **RELIABLE,
    )
    completion = await SimulatedModel(tiny).complete(Request(prompt="q", reference="x"))
    assert completion.text == "x"
    assert 0 < completion.latency < 0.1


async def test_timeout_fails_slow_attempts() -> None:
    model = SimulatedModel(GLACIAL, virtual_time=True, timeout=10.0, retry=None)
    with pytest.raises(ProviderTimeoutError) as info:
        await model.complete(Request(prompt="q"))
    assert info.value.timeout == 10.0
    assert info.value.attempt == 1


# --- failures, retries, events -------------------------------------------------------------------


async def test_error_and_rate_limit_rates_without_retry() -> None:
    profile = Profile(
        name="flaky",
        accuracy=0.9,
        latency="fast",
        error_rate=0.2,
        rate_limit_rate=0.1,
        retry_after=3.0,
    )
    model = SimulatedModel(profile, seed=4, virtual_time=True, retry=None)
    n = 4000
    failures: list[Exception] = []
    for i in range(n):
        try:
            await model.complete(Request(prompt=f"q{i}"))
        except (RateLimitError, ResponseError) as err:
            failures.append(err)
    limits = [e for e in failures if isinstance(e, RateLimitError)]
    errors = len(failures) - len(limits)
    limited = len(limits)
    assert {(e.retry_after, e.status, e.provider) for e in limits} == {
        (3.0, 429, "sim")
    }  # type: ignore[attr-defined]
    assert {e.status for e in failures if not isinstance(e, RateLimitError)} == {500}  # type: ignore[attr-defined]
    for count, p in ((errors, 0.2), (limited, 0.1)):
        assert abs(count / n - p) < 4 * math.sqrt(p * (1 - p) / n)


async def test_default_profiles_fail_about_one_percent_of_attempts() -> None:
    model = SimulatedModel("claude-3", seed=9, virtual_time=True, retry=None)
    n, failed = 5000, 0
    for i in range(n):
        try:
            await model.complete(Request(prompt=f"q{i}"))
        except ResponseError:
            failed += 1
    assert abs(failed / n - 0.01) < 4 * math.sqrt(0.01 * 0.99 / n)


async def test_retries_recover_and_are_reported(llm_events: object) -> None:
    profile = Profile(
        name="flaky",
        accuracy=1.0,
        latency="fast",
        error_rate=0.3,
        rate_limit_rate=0.2,
        retry_after=2.5,
    )
    policy = retry(
        on=(RateLimitError, ResponseError),
        attempts=20,
        timeout=None,
        wait_initial=0.1,
        wait_jitter=0.0,
    )
    model = SimulatedModel(profile, seed=1, virtual_time=True, retry=policy)
    completions = [
        await model.complete(Request(prompt=f"q{i}", reference="x")) for i in range(200)
    ]
    assert all(c.text == "x" for c in completions)
    retried = [c for c in completions if c.attempts > 1]
    assert retried
    kinds = llm_events.kinds  # type: ignore[attr-defined]
    assert kinds.count("start") == kinds.count("stop") == 200
    assert kinds.count("retry") == sum(c.attempts - 1 for c in completions)
    waits = [
        m["wait"]
        for m, md in llm_events.named("retry")
        if md["error_type"] == "RateLimitError"
    ]  # type: ignore[attr-defined]
    assert waits and all(
        w >= 2.5 for w in waits
    )  # Retry-After honoured as the minimum wait


async def test_retry_gives_up_after_attempts(llm_events: object) -> None:
    always = Profile(name="down", accuracy=1.0, latency="fast", error_rate=1.0)
    model = SimulatedModel(
        always,
        virtual_time=True,
        retry=retry(on=ResponseError, attempts=3, timeout=None),
    )
    with pytest.raises(ResponseError) as info:
        await model.complete(Request(prompt="q"))
    assert info.value.attempt == 3
    assert llm_events.kinds == ["start", "retry", "retry", "exception"]  # type: ignore[attr-defined]
    _, metadata = llm_events.named("exception")[0]  # type: ignore[attr-defined]
    assert metadata["attempt"] == 3
    assert metadata["error_type"] == "ResponseError"


async def test_stop_event_carries_measurements(llm_events: object) -> None:
    model = SimulatedModel("gpt-4", seed=2, virtual_time=True, retry=None)
    request = Request(prompt="What is the capital of France?", reference="Paris")
    completion = await model.complete(request)
    ((_start_m, start_md),) = llm_events.named("start")  # type: ignore[attr-defined]
    ((stop_m, stop_md),) = llm_events.named("stop")  # type: ignore[attr-defined]
    assert start_md == {
        "model": "sim:gpt-4",
        "provider": "sim",
        "request_id": completion.request_id,
        "attempt": 1,
    }
    assert stop_m == {
        "duration": completion.latency,
        "input_tokens": completion.usage.input_tokens,
        "output_tokens": completion.usage.output_tokens,
        "cost": 0.005,
    }
    assert stop_md["request_id"] == start_md["request_id"]
    assert completion.usage.input_tokens > 0
    assert completion.cost == 0.005


async def test_max_tokens_truncates() -> None:
    model = SimulatedModel(
        Profile(name="o", accuracy=1.0, latency="fast", **RELIABLE), virtual_time=True
    )
    completion = await model.complete(
        Request(prompt="q", reference="word " * 100, max_tokens=5)
    )
    assert completion.finish_reason == "length"
    assert completion.usage.output_tokens == 5


# --- construction, values ------------------------------------------------------------------------


def test_construction_errors() -> None:
    with pytest.raises(ConfigurationError, match="gpt-4"):
        SimulatedModel("gpt-5")
    with pytest.raises(ValidationError):
        SimulatedModel("gpt-4", seed=1.5)  # type: ignore[arg-type]
    with pytest.raises(ValidationError):
        SimulatedModel("gpt-4", timeout=0)
    with pytest.raises(ValidationError, match="accuracy"):
        Profile(name="x", accuracy=1.5, latency="fast")


async def test_complete_rejects_non_requests() -> None:
    with pytest.raises(ValidationError, match="Request"):
        await SimulatedModel("gpt-4").complete("hello")  # type: ignore[arg-type]


async def test_model_protocol_and_context_manager() -> None:
    from crucible_core.models import Model

    async with SimulatedModel("sim:claude-3", seed=3) as model:
        assert isinstance(model, Model)
        assert model.id == "sim:claude-3"
        assert model.provider == "sim"
        assert repr(model) == "SimulatedModel('claude-3', seed=3)"


async def test_completion_round_trips_through_json_and_pickle() -> None:
    completion = await SimulatedModel("gpt-4", virtual_time=True).complete(
        Request(prompt="q", reference="B", kind="choice")
    )
    assert from_json(to_json(completion), Completion) == completion
    assert pickle.loads(pickle.dumps(completion)) == completion


def test_profile_evolves() -> None:
    flaky = attrs.evolve(PROFILES["gpt-4"], name="gpt-4-flaky", rate_limit_rate=0.2)
    assert flaky.rate_limit_rate == 0.2
    assert repr(flaky).startswith("Profile(name='gpt-4-flaky', accuracy=0.94")


async def test_retry_timeout_stops_simulated_retries() -> None:
    from crucible_core.retry import set_testing

    down = Profile(name="down", accuracy=1.0, latency="fast", error_rate=1.0)
    policy = retry(
        on=ResponseError, attempts=10, timeout=0.5, wait_initial=1.0, wait_jitter=0
    )
    with set_testing(False), pytest.raises(ResponseError) as info:
        await SimulatedModel(down, virtual_time=True, retry=policy).complete(
            Request(prompt="q")
        )
    assert info.value.attempt == 1


async def test_real_time_retry_waits_are_slept() -> None:
    from crucible_core.retry import set_testing

    tiny = LatencyDistribution(p50=0.0001, p95=0.0002, p99=0.0003)
    flaky = Profile(name="flaky-tiny", accuracy=1.0, latency=tiny, error_rate=0.5)
    policy = retry(
        on=ResponseError,
        attempts=30,
        timeout=None,
        wait_initial=0.001,
        wait_max=0.001,
        wait_jitter=0,
    )
    with set_testing(False):
        model = SimulatedModel(flaky, seed=1, retry=policy)
        done = [
            await model.complete(Request(prompt=f"q{i}", reference="x"))
            for i in range(10)
        ]
    retried = [c for c in done if c.attempts > 1]
    assert retried
    assert all(c.latency >= 0.001 * (c.attempts - 1) for c in retried)


def test_choice_wrong_answers_without_letters() -> None:
    texts = Request(
        prompt="q", reference="Paris", kind="choice", choices=("Paris", "Rome")
    )
    assert wrong_answer(texts) == "Rome"
    outside = Request(
        prompt="q", reference="Lyon", kind="choice", choices=("Paris", "Rome")
    )
    assert wrong_answer(outside) in {"Paris", "Rome"}
    free_text = Request(
        prompt="q", reference="the sea", kind="choice"
    )  # no choices, not a letter
    assert wrong_answer(free_text) != "the sea"
    text_with_choices = Request(prompt="q", reference="yes", choices=("yes", "no"))
    assert wrong_answer(text_with_choices) == "no"
    unparsable = Request(prompt="q", reference="about a dozen", kind="number")
    assert wrong_answer(unparsable) != "about a dozen"
    assert wrong_answer(Request(prompt="q", reference="+5", kind="number")).startswith(
        ("+", "-")
    )
    assert (
        wrong_answer(Request(prompt="q", reference="# nothing", kind="code"))
        != "# nothing"
    )
    assert (
        SimulatedModel("gpt-4")
        .answer(Request(prompt="q", kind="code"))[0]
        .startswith("def ")
    )


def test_model_construction_validates_retry_and_profile() -> None:
    with pytest.raises(ValidationError, match="RetryPolicy"):
        SimulatedModel("gpt-4", retry=3)  # type: ignore[arg-type]
    with pytest.raises(ValidationError, match="Profile"):
        SimulatedModel(3)  # type: ignore[arg-type]


# -- confidence (#18): simulated models report a seeded, calibrated one ------------------------------
def test_simulated_confidence_is_seeded_and_calibrated() -> None:

    model = SimulatedModel("llama-3-70b", seed=4, virtual_time=True)
    letters = ("A", "B", "C", "D")
    requests = [
        Request(
            prompt=f"q{i}", reference=letters[i % 4], kind="choice", choices=letters
        )
        for i in range(6000)
    ]
    answers = [asyncio.run(model.complete(r)) for r in requests[:3]]
    again = [asyncio.run(model.complete(r)) for r in requests[:3]]
    assert [a.confidence for a in answers] == [b.confidence for b in again]  # seeded
    conf, right = [], []
    for r in requests:
        _, correct = model.answer(r)
        conf.append(model.confidence(r, correct=correct))
        right.append(correct)
    c, y = np.array(conf), np.array(right, dtype=float)
    assert ((c > 0) & (c < 1)).all()
    assert abs(c.mean() - model.profile.accuracy) < 0.02  # mean confidence = accuracy
    edges = np.quantile(c, [0.0, 0.2, 0.4, 0.6, 0.8, 1.0])
    for lo, hi in itertools.pairwise(
        edges
    ):  # calibrated: among answers near c, a share c right
        in_bin = (c >= lo) & (c <= hi)
        assert abs(y[in_bin].mean() - c[in_bin].mean()) < 0.05, (lo, hi)
    assert c[y == 1].mean() > c[y == 0].mean() + 0.05  # right answers are surer
