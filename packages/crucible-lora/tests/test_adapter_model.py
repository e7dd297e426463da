"""AdapterModel: a LoRA adapter as a crucible-core Model (and so as an ensemble member)."""

from __future__ import annotations

import asyncio
import importlib.util
from typing import Any

import pytest

import crucible_lora as cl
from crucible_core.models import Message, Model, Request


def test_answers_like_evaluate_with_the_current_weights(
    new_experiment: Any, examples: list[cl.Example]
) -> None:
    exp = new_experiment()
    sampling = cl.SamplingParams(max_tokens=4)
    cl.train(exp, examples, epochs=6, batch_size=4)
    evaluation = cl.evaluate(exp, examples, sampling=sampling)
    model = cl.AdapterModel(exp, sampling=sampling)
    assert isinstance(model, Model)
    assert model.id == "lora:letters" and model.provider == "lora"

    async def ask_all() -> list[Any]:
        return await asyncio.gather(
            *(model.complete(Request(prompt=ex.prompt)) for ex in examples)
        )

    completions = asyncio.run(ask_all())
    assert [c.text for c in completions] == [
        p.prediction for p in evaluation.predictions
    ]
    first = completions[0]
    assert first.usage.input_tokens == 2  # BOS + one letter, by the adapter's tokenizer
    assert first.usage.output_tokens >= 1
    assert first.cost is None  # a local/fine-tuned model has no price unless given one
    assert first.raw == {"backend": "tinker", "step": exp.step}
    assert first.latency >= 0


def test_request_options_override_sampling_and_price_is_per_token(
    new_experiment: Any, examples: list[cl.Example]
) -> None:
    exp = new_experiment()
    cl.train(exp, examples, epochs=6, batch_size=4)
    model = cl.AdapterModel(exp, name="letters-v2", price_per_token=0.5)
    one = asyncio.run(model.complete(Request(prompt="A", max_tokens=1)))
    assert one.usage.output_tokens == 1 and one.finish_reason == "length"
    assert one.cost == pytest.approx(0.5 * (one.usage.input_tokens + 1))
    assert model.id == "lora:letters-v2"
    chat = Request(messages=[Message(role="user", content="A")], max_tokens=4)
    assert (
        asyncio.run(model.complete(chat)).text
        == asyncio.run(model.complete(Request(prompt="A", max_tokens=4))).text
    )


def test_bad_sources_and_prices_are_clear_errors(new_experiment: Any) -> None:
    with pytest.raises(
        cl.LoraConfigError, match="needs a LoraAdapter or a LoraExperiment"
    ):
        cl.AdapterModel("lora:nothing")  # type: ignore[arg-type]
    with pytest.raises(cl.LoraConfigError, match="price_per_token must be"):
        cl.AdapterModel(new_experiment(), price_per_token=-1.0)


@pytest.mark.usefixtures("require_local")
def test_local_adapters_vote_in_a_weighted_ensemble(
    tmp_path_factory: pytest.TempPathFactory,
) -> None:
    """Two LoRA adapters tuned to swap letters outvote the base model that copies them."""
    if importlib.util.find_spec("crucible_ensemble") is None:
        pytest.skip(
            "crucible-ensemble is not installed here (test-local.sh installs it)"
        )
    from crucible_ensemble import Ensemble

    tok = cl.ByteTokenizer()
    letters = "abcdef"
    pairs = [a + b for a in letters for b in letters if a != b]
    copy = [cl.Example(prompt=p + ">", completion=p, id=p) for p in pairs]
    swap = [cl.Example(prompt=p + ">", completion=p[::-1], id=p) for p in pairs]
    base = cl.pretrain_tiny_base(
        copy, tmp_path_factory.mktemp("base"), steps=120, batch_size=len(pairs)
    )

    def tuned(seed: int) -> cl.LoraExperiment:
        exp = cl.create_experiment(
            f"swap-{seed}",
            config={"base_model": str(base), "backend": "local", "lora_rank": 8,
                    "learning_rate": 1e-2, "seed": seed},
            adapter=cl.LocalAdapter(tokenizer=tok, checkpoint_dir=tmp_path_factory.mktemp("ck")),
        )  # fmt: skip
        cl.train(exp, swap, epochs=30, batch_size=10, lr_schedule="constant")
        return exp

    untuned = cl.create_experiment(
        "base",
        config={"base_model": str(base), "backend": "local", "lora_rank": 8, "seed": 0},
        adapter=cl.LocalAdapter(
            tokenizer=tok, checkpoint_dir=tmp_path_factory.mktemp("ck")
        ),
    )
    sampling = cl.SamplingParams(max_tokens=3)
    members = [
        cl.AdapterModel(e, sampling=sampling) for e in (tuned(0), tuned(1), untuned)
    ]
    ensemble = Ensemble(members, strategy="weighted", weights=[1.0, 1.0, 1.5])
    right = 0
    for example in swap[:10]:
        result = ensemble.predict(Request(prompt=example.prompt))
        right += result.answer == example.completion
        assert len(result.responses) == 3
    assert right >= 8, right
