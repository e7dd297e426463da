"""TinkerAdapter against the real Tinker service; these run only when TINKER_API_KEY is set.

They open a session on a small base model (`TINKER_LIVE_BASE_MODEL`, else the first of
`SMALL_MODELS` the server offers), take a forward-backward and an optimiser step, save and
reload state, save sampler weights and sample, then run the workflow for a few steps with
checkpoints and a resume. They use a little Tinker time; `TINKER_BASE_URL` picks the server.
Without a key (as in CI, which has no network) they skip.
"""

from __future__ import annotations

import math
import os
from pathlib import Path
from typing import Any

import pytest

import crucible_lora as cl

pytestmark = [
    pytest.mark.network,
    pytest.mark.timeout(900),
    pytest.mark.skipif(
        not os.environ.get("TINKER_API_KEY"),
        reason="TINKER_API_KEY is not set: the live Tinker tests train on the real service",
    ),
]

SMALL_MODELS = (
    "meta-llama/Llama-3.2-1B",
    "Qwen/Qwen3-4B-Instruct-2507",
    "Qwen/Qwen3-8B",
)

EXAMPLES = [
    cl.Example(prompt=f"{a} + {b} =", completion=f" {a + b}", id=f"{a}+{b}")
    for a, b in ((1, 2), (3, 4), (5, 6), (7, 8), (2, 9), (6, 3), (4, 4), (8, 1))
]


@pytest.fixture(scope="module")
def base_model() -> str:
    """A small base model the server offers."""
    tinker: Any = pytest.importorskip(
        "tinker", reason="the `tinker` extra is not installed"
    )
    capabilities = tinker.RestClient().get_server_capabilities().result(timeout=120)
    offered = [m.model_name for m in capabilities.supported_models if m.model_name]
    wanted = os.environ.get("TINKER_LIVE_BASE_MODEL")
    for name in (wanted,) if wanted else SMALL_MODELS:
        if name in offered:
            return name
    pytest.fail(
        f"the server offers none of {wanted or SMALL_MODELS}; set TINKER_LIVE_BASE_MODEL to "
        f"one of: {', '.join(sorted(offered))}"
    )


def test_a_session_steps_saves_reloads_and_samples(base_model: str) -> None:
    adapter = cl.TinkerAdapter()
    adapter.start(
        cl.ExperimentConfig(base_model=base_model, lora_rank=8, learning_rate=1e-4)
    )
    try:
        data = cl.format_examples(EXAMPLES, adapter.tokenizer)
        first = adapter.forward_backward(data)
        assert math.isfinite(first.loss) and first.loss > 0
        assert first.n_trained == int(sum(sum(d.weights) for d in data))
        adapter.optim_step(learning_rate=1e-4)

        state = adapter.save_state("crucible-live-step-1")
        assert state.startswith("tinker://")
        stepped = adapter.forward_backward(data)  # the stepped weights' loss
        adapter.load_state(
            state
        )  # a new training client from the weights and optimiser
        reloaded = adapter.forward_backward(data)
        assert reloaded.loss == pytest.approx(stepped.loss, rel=0.02)

        sampler = adapter.save_weights_for_sampler("crucible-live-sampler")
        assert sampler.startswith("tinker://")
        tokenizer = adapter.tokenizer
        bos = getattr(tokenizer, "bos_token_id", None)
        prompt = ([] if bos is None else [bos]) + tokenizer.encode("2 + 2 =")
        params = cl.SamplingParams(max_tokens=8, temperature=0.7, seed=0)
        samples = adapter.sample(prompt, n=2, params=params)
        assert len(samples) == 2
        assert all(1 <= len(s) <= 8 for s in samples)
        assert all(0 <= t < tokenizer.vocab_size for s in samples for t in s)
        assert isinstance(tokenizer.decode(samples[0]), str)
    finally:
        adapter.close()


def test_the_workflow_trains_checkpoints_and_resumes(
    base_model: str, tmp_path: Path
) -> None:
    exp = cl.create_experiment(
        "crucible-live",
        config={
            "base_model": base_model,
            "lora_rank": 8,
            "learning_rate": 5e-4,
            "seed": 0,
        },
    )
    options: dict[str, Any] = {
        "epochs": 4,
        "batch_size": len(EXAMPLES),
        "lr_schedule": "constant",
    }
    try:
        result = cl.train(exp, EXAMPLES, checkpoint_every=2, **options)
        losses = [r.loss for r in result.history]
        assert len(losses) == 4 and losses[-1] < losses[0]
        assert [c.step for c in exp.checkpoints] == [2, 4]
        assert all(c.path.startswith("tinker://") for c in exp.checkpoints)

        evaluation = cl.evaluate(
            exp, EXAMPLES[:2], sampling=cl.SamplingParams(max_tokens=6)
        )
        assert [p.id for p in evaluation.predictions] == ["1+2", "3+4"]

        resumed = cl.train(exp, EXAMPLES, resume=exp.checkpoints[0].path, **options)
        assert [r.step for r in resumed.history] == [3, 4]
        assert [r.loss for r in resumed.history] == pytest.approx(losses[2:], rel=0.05)
        path = cl.save_history([result, resumed], tmp_path / "live.csv")
        assert path.is_file()
    finally:
        if exp.adapter is not None:
            exp.adapter.close()
