"""Ensemble behaviour with scripted members: execution, failures, timeouts, results, events."""

from __future__ import annotations

import asyncio
import pickle

import pytest

from crucible_core.models import Completion, Model, Request, SimulatedModel
from crucible_core.serde import from_json, to_json
from crucible_ensemble import (
    Cascade,
    Custom,
    Ensemble,
    EnsembleConfigurationError,
    EnsembleResult,
    EnsembleTimeoutError,
    Hedged,
    InsufficientResponsesError,
    Sequential,
    predict,
    predict_async,
)

CHOICE = Request(prompt="Pick one", kind="choice", choices=("A", "B", "C", "D"))


async def test_parallel_majority_counts_every_member(scripted) -> None:
    members = [scripted("a", "A"), scripted("b", "(B)"), scripted("c", "Answer: A")]
    result = await Ensemble(members).predict_async(CHOICE)
    assert result.answer == "A"
    assert result.votes == {"A": 2, "B": 1}
    assert result.consensus == pytest.approx(2 / 3)
    assert result.members_called == 3
    assert result.text == "A"
    assert result.cost == pytest.approx(0.003)
    assert result.input_tokens == 30
    assert [r.status for r in result.responses] == ["answered"] * 3
    assert not result.abstained


async def test_tie_goes_to_the_member_listed_first(scripted) -> None:
    first = await Ensemble([scripted("a", "B"), scripted("b", "A")]).predict_async(
        CHOICE
    )
    second = await Ensemble([scripted("b", "A"), scripted("a", "B")]).predict_async(
        CHOICE
    )
    assert (first.answer, second.answer) == ("B", "A")


async def test_failing_member_is_recorded_and_left_out(scripted, failing_model) -> None:
    members = [scripted("a", "C"), failing_model("bad"), scripted("c", "C")]
    result = await Ensemble(members).predict_async(CHOICE)
    assert result.answer == "C"
    assert result.votes == {"C": 2}
    bad = result.responses[1]
    assert bad.status == "failed"
    assert bad.error is not None and bad.error.startswith("ResponseError")
    assert result.errors == {"fake:bad": bad.error}


async def test_too_few_responses_raise_with_every_error(
    scripted, failing_model
) -> None:
    ensemble = Ensemble(
        [failing_model("x"), failing_model("y"), scripted("z", "A")], min_responses=2
    )
    with pytest.raises(InsufficientResponsesError) as info:
        await ensemble.predict_async(CHOICE)
    err = info.value
    assert isinstance(err, RuntimeError)
    assert set(err.errors) == {"fake:x", "fake:y"}
    assert err.responses == 1 and err.min_responses == 2
    assert "min_responses=2" in str(err)
    again = pickle.loads(pickle.dumps(err))
    assert again.responses == 1 and type(again) is InsufficientResponsesError


async def test_unreadable_answers_do_not_vote(scripted) -> None:
    members = [scripted("a", "I cannot say"), scripted("b", "7")]
    result = await Ensemble(members, normalize="number").predict_async("how many?")
    assert result.answer == "7"
    assert result.responses[0].status == "unparsed"
    assert result.responders == 1


async def test_sequential_stops_once_three_of_five_agree(scripted) -> None:
    members = [scripted(n, "B") for n in "abc"] + [scripted(n, "A") for n in "de"]
    result = await Ensemble(members, execution="sequential").predict_async(CHOICE)
    assert result.answer == "B"
    assert result.members_called == 3
    assert [m.calls for m in members] == [1, 1, 1, 0, 0]


async def test_sequential_calls_more_while_the_vote_can_turn(scripted) -> None:
    texts = ["A", "B", "A", "B", "A"]
    members = [scripted(str(i), t) for i, t in enumerate(texts)]
    result = await Ensemble(members, execution="sequential").predict_async(CHOICE)
    assert result.answer == "A"
    assert result.members_called == 5


async def test_sequential_cancels_calls_in_flight_when_settled(scripted) -> None:
    fast = [scripted(n, "C", sleep=0.001, latency=0.001) for n in "abcd"]
    slow = scripted("slow", "D", sleep=30)
    members = [fast[0], slow, fast[1], fast[2], fast[3]]
    # one spare call: the first wave is 4 of 5, and 3 fast agreeing answers settle it
    ensemble = Ensemble(members, execution=Sequential(spare=1))
    result = await ensemble.predict_async(CHOICE)
    assert result.answer == "C"
    assert slow.calls == 1 and slow.cancelled == 1
    assert fast[3].calls == 0
    assert result.responses[1].status == "cancelled"
    assert result.responses[1].cost is None


async def test_unanimous_abstains_when_members_disagree(scripted) -> None:
    members = [scripted("a", "A"), scripted("b", "A"), scripted("c", "B")]
    result = await Ensemble(members, strategy="unanimous").predict_async(CHOICE)
    assert result.abstained and result.answer is None and result.text is None
    assert result.consensus == pytest.approx(2 / 3)
    agreed = await Ensemble(members[:2], strategy="unanimous").predict_async(CHOICE)
    assert agreed.answer == "A" and agreed.confidence == 1.0


async def test_min_consensus_abstains_below_the_share(scripted) -> None:
    members = [scripted("a", "A"), scripted("b", "A"), scripted("c", "B")]
    result = await Ensemble(members, min_consensus=0.7).predict_async(CHOICE)
    assert result.abstained and result.answer is None
    assert (
        await Ensemble(members, min_consensus=0.6).predict_async(CHOICE)
    ).answer == "A"


async def test_weighted_vote_follows_the_weights(scripted) -> None:
    members = [scripted("a", "A"), scripted("b", "A"), scripted("c", "B")]
    heavy_c = Ensemble(members, strategy="weighted", weights=[1, 1, 3])
    result = await heavy_c.predict_async(CHOICE)
    assert result.answer == "B"
    assert result.confidence == pytest.approx(3 / 5)
    by_name = Ensemble(members, strategy="weighted", weights={"fake:c": 1.5})
    assert (await by_name.predict_async(CHOICE)).answer == "A"


async def test_best_confidence_reads_reported_confidence(scripted) -> None:
    members = [
        scripted("a", "A", raw={"confidence": 0.6}),
        scripted("b", "A", raw={"confidence": 0.5}),
        scripted(
            "c",
            "B",
            raw={"choices": [{"logprobs": {"content": [{"logprob": -0.01}]}}]},
        ),
    ]
    result = await Ensemble(members, strategy="best_confidence").predict_async(CHOICE)
    assert result.answer == "B"
    assert result.confidence == pytest.approx(0.99, abs=0.001)


async def test_custom_strategy_function(scripted) -> None:
    def last_listed(ballots):
        return max(ballots, key=lambda b: b.position).answer

    members = [scripted("a", "A"), scripted("b", "A"), scripted("c", "D")]
    result = await Ensemble(members, strategy=last_listed).predict_async(CHOICE)
    assert result.answer == "D" and result.strategy == "last_listed"
    bad = Ensemble(members, strategy=Custom(lambda b: 42, label="broken"))  # type: ignore[arg-type,return-value]
    with pytest.raises(EnsembleConfigurationError, match="broken"):
        await bad.predict_async(CHOICE)


async def test_hedged_fires_a_backup_when_the_primary_is_slow(scripted) -> None:
    primary = scripted("primary", "A", latency=5.0)
    backup = scripted("backup", "B", latency=0.5)
    third = scripted("third", "C", latency=0.1)
    ensemble = Ensemble(
        [primary, backup, third], execution=Hedged(delay=1.0, max_hedges=1)
    )
    result = await ensemble.predict_async(CHOICE)
    # the backup started at 1.0 s and answered at 1.5 s, before the primary's 5 s
    assert result.answer == "B"
    assert result.latency == pytest.approx(1.5)
    assert third.calls == 0
    assert [r.status for r in result.responses] == ["cancelled", "answered"]


async def test_hedged_primary_in_time_needs_no_backup(scripted) -> None:
    primary = scripted("primary", "A", latency=0.3)
    backup = scripted("backup", "B")
    result = await Ensemble(
        [primary, backup], execution=Hedged(delay=1.0)
    ).predict_async(CHOICE)
    assert result.answer == "A" and result.members_called == 1 and backup.calls == 0


async def test_hedged_failure_moves_on_at_once(scripted, failing_model) -> None:
    backup = scripted("backup", "B", latency=0.2)
    result = await Ensemble(
        [failing_model("p"), backup], execution=Hedged(delay=10.0)
    ).predict_async(CHOICE)
    assert result.answer == "B"
    assert result.latency == pytest.approx(0.2, abs=0.05)
    assert [r.status for r in result.responses] == ["failed", "answered"]
    # max_hedges counts every backup, as in crucible-hedging: none, so nothing after a failure
    alone = Ensemble(
        [failing_model("p"), scripted("b", "B")], execution=Hedged(max_hedges=0)
    )
    with pytest.raises(InsufficientResponsesError):
        await alone.predict_async(CHOICE)


async def test_hedged_in_real_time_cancels_the_slow_primary(scripted) -> None:
    primary = scripted("primary", "A", sleep=30)
    backup = scripted("backup", "B", sleep=0.001, latency=0.001)
    result = await Ensemble(
        [primary, backup], execution=Hedged(delay=0.02)
    ).predict_async(CHOICE)
    assert result.answer == "B"
    assert primary.cancelled == 1


async def test_cascade_goes_cheapest_first_and_stops_on_agreement(scripted) -> None:
    pricey = scripted("pricey", "A")
    cheap = [scripted("c1", "A"), scripted("c2", "A")]
    for model, price in zip([pricey, *cheap], [3.0, 0.1, 0.2], strict=True):
        model.profile = type("P", (), {"price_per_query": price})()  # type: ignore[attr-defined]
    result = await Ensemble([pricey, *cheap], execution="cascade").predict_async(CHOICE)
    assert result.answer == "A"
    assert pricey.calls == 0 and result.members_called == 2
    assert [r.member for r in result.responses] == ["fake:c1", "fake:c2"]


async def test_cascade_escalates_on_disagreement(scripted) -> None:
    members = [
        scripted("a", "A"),
        scripted("b", "B"),
        scripted("c", "B"),
        scripted("d", "A"),
    ]
    result = await Ensemble(
        members, execution=Cascade(order="given", threshold=0.6)
    ).predict_async(CHOICE)
    assert result.answer == "B" and result.members_called == 3
    confident = Cascade(order="given", confidence=0.9, min_agreeing=3)
    sure = [scripted("a", "A", raw={"confidence": 0.95}), scripted("b", "B")]
    out = await Ensemble(sure, execution=confident).predict_async(CHOICE)
    assert out.members_called <= 2 and out.responses[0].confidence == 0.95


class _Unusual:
    """A member whose `complete` is not a coroutine function: it raises or returns as told."""

    def __init__(self, name: str, behaviour: str) -> None:
        self.name, self.behaviour = name, behaviour

    @property
    def id(self) -> str:
        return f"odd:{self.name}"

    @property
    def provider(self) -> str:
        return "odd"

    def complete(self, request: Request) -> object:
        if self.behaviour == "raise":
            raise ValueError("refused before any await")
        if self.behaviour == "interrupt":
            raise KeyboardInterrupt
        done = Completion(text="A", latency=0.2, cost=0.001)
        if self.behaviour == "future":
            future = asyncio.get_running_loop().create_future()
            future.set_result(done)
            return future
        return done  # "plain": not awaitable at all

    async def aclose(self) -> None:
        """Nothing to close: it holds no connection."""


async def test_members_whose_complete_is_not_a_coroutine(scripted) -> None:
    members = [
        _Unusual("raise", "raise"),
        _Unusual("future", "future"),
        _Unusual("plain", "plain"),
        scripted("a", "A"),
    ]
    result = await Ensemble(members).predict_async(CHOICE)
    statuses = {r.member: r.status for r in result.responses}
    assert statuses == {
        "odd:raise": "failed",
        "odd:future": "answered",
        "odd:plain": "failed",
        "fake:a": "answered",
    }
    assert result.errors["odd:raise"] == "ValueError: refused before any await"
    assert result.errors["odd:plain"].startswith("TypeError")
    assert result.answer == "A" and result.votes == {"A": 2}


async def test_an_interrupt_in_a_member_is_not_taken_for_a_failure(scripted) -> None:
    members = [scripted("a", "A"), _Unusual("stop", "interrupt")]
    with pytest.raises(KeyboardInterrupt):
        await Ensemble(members).predict_async(CHOICE)


async def test_parallel_times_each_member_when_it_finishes(scripted) -> None:
    """A member reporting no latency is timed by the wall clock, each at its own finish."""
    members = [
        scripted("quick", "A", latency=0.0),
        scripted("slow", "A", latency=0.0, sleep=0.5),
        scripted("bad", "A", sleep=0.1, error=RuntimeError("late failure")),
    ]
    result = await Ensemble(members).predict_async(CHOICE)
    quick, slow, bad = result.responses
    assert quick.latency == 0.0  # the completion's own report wins when it is larger
    assert bad.status == "failed" and bad.latency is not None
    assert 0.09 <= bad.latency < 0.45
    assert result.latency >= 0.49  # the slow member's wall time
    assert slow.status == "answered"


async def test_timeout_marks_slow_members_in_virtual_time(scripted) -> None:
    members = [scripted("a", "A", latency=0.5), scripted("b", "B", latency=9.0)]
    result = await Ensemble(members, timeout=2.0).predict_async(CHOICE)
    assert result.answer == "A"
    assert result.responses[1].status == "timed_out"
    assert result.latency == pytest.approx(2.0)


async def test_timeout_in_real_time_cancels_and_can_fail(scripted) -> None:
    slow = scripted("slow", "A", sleep=30)
    with pytest.raises(EnsembleTimeoutError) as info:
        await Ensemble([slow], timeout=0.02).predict_async(CHOICE)
    assert isinstance(info.value, TimeoutError) and info.value.timeout == 0.02
    assert slow.cancelled == 1


async def test_ensemble_is_a_model(scripted) -> None:
    ensemble = Ensemble([scripted("a", "A"), scripted("b", "A"), scripted("c", "C")])
    assert isinstance(ensemble, Model)
    assert ensemble.provider == "ensemble"
    assert ensemble.id == "ensemble:majority/parallel(fake:a,fake:b,fake:c)"
    completion = await ensemble.complete(CHOICE)
    assert isinstance(completion, Completion)
    assert completion.text == "A" and completion.finish_reason == "stop"
    assert completion.cost == pytest.approx(0.003)
    assert completion.raw["ensemble"]["votes"] == {"A": 2, "C": 1}
    nested = Ensemble([ensemble, scripted("d", "A")])
    assert (await nested.predict_async(CHOICE)).answer == "A"
    unanimous = Ensemble(ensemble.models, strategy="unanimous")
    abstained = await unanimous.complete(CHOICE)
    assert abstained.text == "" and abstained.finish_reason == "other"


async def test_duplicate_members_get_distinct_names(scripted) -> None:
    model = scripted("a", "A")
    ensemble = Ensemble([model, model])
    assert ensemble.names == ("fake:a", "fake:a#2")
    assert ensemble.weights == {"fake:a": 1.0, "fake:a#2": 1.0}


def test_sync_predict_and_string_members() -> None:
    request = Request(prompt="2+2?", reference="4", kind="number")
    result = predict(
        request,
        models=["sim:gpt-4", "sim:claude-3", "sim:gemini-pro"],
        model_options={"virtual_time": True, "seed": 3},
    )
    assert result.answer == "4"
    members = [SimulatedModel("gpt-4", virtual_time=True)]
    assert Ensemble(members).predict(request).members_called == 1


async def test_predict_async_closes_the_members_it_built() -> None:
    result = await predict_async(
        "hello", models=["sim:gpt-4"], model_options={"virtual_time": True}
    )
    assert result.responders == 1


async def test_aclose_closes_only_built_members(scripted) -> None:
    given = scripted("a")
    async with Ensemble([given, "sim:gpt-4"], model_options={"virtual_time": True}):
        pass
    assert not given.closed


@pytest.mark.parametrize(
    ("options", "match"),
    [
        ({"strategy": "plurality"}, "unknown voting strategy"),
        ({"strategy": 3}, "must be a name"),
        ({"execution": "serial"}, "unknown execution"),
        ({"weights": [1.0]}, "1 values for 2 members"),
        ({"weights": {"nobody": 1.0}}, "not members"),
        ({"weights": [1.0, -1.0]}, ">= 0"),
        ({"weights": 3}, "sequence or a mapping"),
        ({"normalize": "fuzzy"}, "unknown `normalize"),
        ({"timeout": 0}, "positive number"),
        ({"min_responses": 3}, "from 1 to the number of members"),
        ({"min_consensus": 1.5}, r"\(0, 1\]"),
    ],
)
def test_bad_options_fail_at_construction(scripted, options, match) -> None:
    with pytest.raises(EnsembleConfigurationError, match=match) as info:
        Ensemble([scripted("a"), scripted("b")], **options)
    assert isinstance(info.value, ValueError)


@pytest.mark.parametrize(
    ("models", "match"),
    [("sim:gpt-4", "list of models"), ([], "at least one"), ([3], "neither")],
)
def test_bad_members(models, match) -> None:
    with pytest.raises(EnsembleConfigurationError, match=match):
        Ensemble(models)


@pytest.mark.parametrize(
    ("execution", "match"),
    [
        (lambda: Hedged(delay=0), "positive number of seconds"),
        (lambda: Hedged(max_hedges=-1), "non-negative integer"),
        (lambda: Cascade(min_agreeing=0), "positive integer"),
        (lambda: Cascade(threshold=2), r"\[0, 1\]"),
    ],
)
def test_bad_execution_options(execution, match) -> None:
    with pytest.raises(EnsembleConfigurationError, match=match):
        execution()


async def test_events_carry_consensus_and_cost(scripted, ensemble_events) -> None:
    members = [scripted("a", "A"), scripted("b", "A"), scripted("c", "B")]
    await Ensemble(members).predict_async(CHOICE)
    (start_meta,) = [
        md
        for _, md in ensemble_events.named("crucible", "ensemble", "predict", "start")
    ]
    assert start_meta["strategy"] == "majority" and len(start_meta["models"]) == 3
    ((stop, _),) = ensemble_events.named("crucible", "ensemble", "predict", "stop")
    assert stop["cost"] == pytest.approx(0.003) and stop["models_called"] == 3
    ((vote, vote_meta),) = ensemble_events.named("crucible", "ensemble", "vote", "stop")
    assert vote["consensus"] == pytest.approx(2 / 3) and vote["votes"] == 3
    assert vote_meta["answer"] == "A" and vote_meta["method"] == "majority"


async def test_failed_prediction_emits_an_exception_event(
    failing_model, ensemble_events
) -> None:
    with pytest.raises(InsufficientResponsesError):
        await Ensemble([failing_model("x")]).predict_async(CHOICE)
    ((_, meta),) = ensemble_events.named("crucible", "ensemble", "predict", "exception")
    assert meta["error_type"] == "InsufficientResponsesError"


async def test_result_views_and_round_trip(scripted) -> None:
    members = [scripted("a", "<b>A</b>", cost=None), scripted("b", "B")]
    result = await Ensemble(members, normalize="exact").predict_async(CHOICE)
    text = result.render()
    assert "Ensemble prediction" in text and "fake:a" in text
    html = result._repr_html_()
    assert "<b>A</b>" not in html and "&lt;b&gt;A&lt;/b&gt;" in html
    assert result.cost is None  # one member has no known price
    assert repr(result).startswith("EnsembleResult(answer='<b>A</b>'")
    data = result.to_dict()
    assert data["votes"] == {"<b>A</b>": 1, "B": 1}
    assert from_json(to_json(result), EnsembleResult) == result


async def test_concurrent_predictions_do_not_interfere(scripted) -> None:
    ensemble = Ensemble([scripted("a", "A", sleep=0.001), scripted("b", "A")])
    results = await asyncio.gather(*(ensemble.predict_async(CHOICE) for _ in range(20)))
    assert all(r.answer == "A" and r.responders == 2 for r in results)


@pytest.mark.parametrize("execution", ["parallel", "sequential", "cascade"])
async def test_cancelling_a_prediction_cancels_its_members(scripted, execution) -> None:
    members = [scripted(n, "A", sleep=30) for n in "abc"]
    task = asyncio.create_task(
        Ensemble(members, execution=execution).predict_async(CHOICE)
    )
    for _ in range(3):  # a few loop turns: the calls start
        await asyncio.sleep(0)
    assert any(m.calls for m in members)
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    called = [m for m in members if m.calls]
    assert called and all(m.cancelled == 1 for m in called)


async def test_members_that_need_no_io_finish_without_waiting(scripted) -> None:
    """Instant members (simulated, virtual time) and real-time ones mix in one vote."""
    members = [scripted("a", "B"), scripted("b", "B", sleep=0.01), scripted("c", "C")]
    result = await Ensemble(members).predict_async(CHOICE)
    assert result.votes == {"B": 2, "C": 1}
    assert [r.status for r in result.responses] == ["answered"] * 3


async def test_sequential_times_out_on_the_model_clock(scripted) -> None:
    members = [
        scripted("a", "A", latency=0.5),
        scripted("b", "A", latency=9.0),
        scripted("c", "B", latency=0.2),
    ]
    result = await Ensemble(members, execution="sequential", timeout=2.0).predict_async(
        CHOICE
    )
    assert result.responses[1].status == "timed_out"
    assert result.latency == pytest.approx(2.0)
    assert (
        result.answer == "A"
    )  # a's vote; c's (called once b timed out) ties and is later


async def test_sequential_times_out_in_real_time(scripted) -> None:
    slow = scripted("slow", "A", sleep=30)
    members = [slow, scripted("b", "A", sleep=30)]
    ensemble = Ensemble(members, execution="sequential", timeout=0.02)
    with pytest.raises(EnsembleTimeoutError):
        await ensemble.predict_async(CHOICE)
    assert slow.cancelled == 1


async def test_cascade_cancels_calls_in_flight_once_confident(scripted) -> None:
    sure = scripted("sure", "A", raw={"confidence": 0.97})
    slow = scripted("slow", "B", sleep=30)
    rest = scripted("rest", "B")
    cascade = Cascade(order="given", confidence=0.9, min_agreeing=2)
    result = await Ensemble([sure, slow, rest], execution=cascade).predict_async(CHOICE)
    assert result.answer == "A" and result.members_called == 2
    assert slow.calls == 1 and slow.cancelled == 1 and rest.calls == 0
    assert [r.status for r in result.responses] == ["answered", "cancelled"]


def test_an_ensemble_is_simulated_when_any_member_is() -> None:
    from crucible_core.models import is_simulated

    sim = SimulatedModel("gpt-4", virtual_time=True)
    real = "openai-compatible:http://127.0.0.1:9/v1#tiny"  # built, never called
    assert is_simulated(Ensemble([sim, SimulatedModel("claude-3", virtual_time=True)]))
    assert is_simulated(Ensemble([real, sim]))
    assert not is_simulated(Ensemble([real, real]))
