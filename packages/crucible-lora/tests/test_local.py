"""LocalAdapter for real: PyTorch + transformers + PEFT on a tiny GPT-2 built here (no download).

Skipped without torch (run `packages/crucible-lora/scripts/test-local.sh`); with
CRUCIBLE_REQUIRE_TORCH=1 a missing torch fails instead.
"""

from __future__ import annotations

from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pytest

import crucible_lora as cl

pytestmark = pytest.mark.usefixtures("require_local")

TOK = cl.ByteTokenizer()
LETTERS = "abcdefg"
PAIRS = [a + b for a in LETTERS for b in LETTERS]


def copy(pairs: list[str]) -> list[cl.Example]:
    return [cl.Example(prompt=p + ">", completion=p, id=p) for p in pairs]


@pytest.fixture(scope="module")
def copy_base(require_local: None, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A tiny GPT-2 fully trained to copy two letters (`ab>` → `ab`), saved like any HF model."""
    return cl.pretrain_tiny_base(
        copy(PAIRS),
        tmp_path_factory.mktemp("copy-base"),
        steps=120,
        batch_size=len(PAIRS),
    )


def swap(pairs: list[str]) -> list[cl.Example]:
    return [cl.Example(prompt=p + ">", completion=p[::-1], id=p) for p in pairs]


def experiment(base: Path, tmp_path: Path, **config: Any) -> cl.LoraExperiment:
    options: dict[str, Any] = {
        "base_model": str(base),
        "backend": "local",
        "lora_rank": 8,
        "learning_rate": 1e-2,
        "seed": 0,
    }
    options.update(config)
    return cl.create_experiment(
        "swap",
        config=options,
        adapter=cl.LocalAdapter(tokenizer=TOK, checkpoint_dir=tmp_path / "ckpt"),
    )


def test_lora_beats_the_base_model_on_held_out_items(
    copy_base: Path, tmp_path: Path
) -> None:
    distinct = [p for p in PAIRS if p[0] != p[1]]  # swapping "aa" is copying it
    train_set = swap([p for i, p in enumerate(distinct) if i % 4])
    held_out = swap([p for i, p in enumerate(distinct) if not i % 4])
    exp = experiment(copy_base, tmp_path)
    sampling = cl.SamplingParams(max_tokens=3)
    # the pretrained base copies, so it gets (almost) none of the swaps right
    assert cl.evaluate(exp, copy(PAIRS[:8]), sampling=sampling).metrics[
        "exact_match"
    ] == pytest.approx(1.0)
    before = cl.evaluate(exp, held_out, sampling=sampling)
    result = cl.train(exp, train_set, epochs=30, batch_size=12, lr_schedule="constant")
    after = cl.evaluate(exp, held_out, sampling=sampling)
    losses = [r.loss for r in result.history]
    assert losses[-1] < 0.2 * losses[0]
    assert before.metrics["exact_match"] <= 0.1
    assert after.metrics["exact_match"] >= 0.9
    wins = sum(
        a > b
        for a, b in zip(
            after.scores("exact_match"), before.scores("exact_match"), strict=True
        )
    )
    assert wins >= len(held_out) // 2
    # only LoRA weights were trained
    adapter = exp.adapter
    assert isinstance(adapter, cl.LocalAdapter)
    trainable = [n for n, p in adapter.model.named_parameters() if p.requires_grad]
    assert trainable and all("lora_" in n for n in trainable)


def test_checkpoints_resume_exactly(copy_base: Path, tmp_path: Path) -> None:
    import torch

    data = swap(PAIRS[:24])
    straight = experiment(copy_base, tmp_path / "a", lora_dropout=0.1)
    full = cl.train(straight, data, epochs=3, batch_size=8, checkpoint_every=4)
    assert [c.step for c in straight.checkpoints] == [4, 8, 9]

    interrupted = experiment(copy_base, tmp_path / "b", lora_dropout=0.1)
    cl.train(interrupted, data, epochs=3, batch_size=8, checkpoint_every=4)
    interrupted.step = 0
    resumed_from = interrupted.checkpoints[0].path
    again = cl.train(
        interrupted,
        data,
        epochs=3,
        batch_size=8,
        checkpoint_every=4,
        resume=resumed_from,
    )
    assert [r.step for r in again.history] == [5, 6, 7, 8, 9]
    assert [r.loss for r in again.history] == [r.loss for r in full.history[4:]]
    a = straight.adapter.model.state_dict()  # type: ignore[union-attr]
    b = interrupted.adapter.model.state_dict()  # type: ignore[union-attr]
    assert all(torch.equal(a[k], b[k]) for k in a if "lora_" in k)


def test_failure_mid_training_leaves_the_last_checkpoint_loadable(
    copy_base: Path, tmp_path: Path
) -> None:
    exp = experiment(copy_base, tmp_path)
    adapter = exp.adapter
    assert isinstance(adapter, cl.LocalAdapter)
    real = adapter.train_step_async
    calls = {"n": 0}

    async def flaky(
        batch: Any, *, learning_rate: float, loss: str = "cross_entropy"
    ) -> Any:
        calls["n"] += 1
        if calls["n"] == 4:
            raise RuntimeError("out of memory")
        return await real(batch, learning_rate=learning_rate, loss=loss)

    adapter.train_step_async = flaky  # type: ignore[method-assign]
    with pytest.raises(cl.AdapterError, match="out of memory") as info:
        cl.train(exp, swap(PAIRS[:16]), epochs=2, batch_size=4, checkpoint_every=2)
    assert info.value.step == 4
    last = info.value.last_checkpoint
    assert last is not None and Path(last).is_file()
    assert not list(
        Path(last).parent.glob(".*.tmp")
    )  # no half-written file left behind
    adapter.train_step_async = real  # type: ignore[method-assign]
    resumed = cl.train(exp, swap(PAIRS[:16]), epochs=2, batch_size=4, resume=True)
    assert resumed.steps == 8


# peft's loader reads transformers' deprecated `is_gradient_checkpointing` (not our code).
@pytest.mark.filterwarnings("ignore:.*is_gradient_checkpointing:FutureWarning")
def test_sampler_weights_load_with_peft(copy_base: Path, tmp_path: Path) -> None:
    import peft
    import transformers

    exp = experiment(copy_base, tmp_path)
    cl.train(exp, swap(PAIRS[:8]), batch_size=8)
    assert exp.adapter is not None
    path = exp.adapter.save_weights_for_sampler("final")
    base = transformers.AutoModelForCausalLM.from_pretrained(copy_base)
    loaded = peft.PeftModel.from_pretrained(base, path)
    assert any("lora_" in n for n, _ in loaded.named_parameters())
    samples = exp.adapter.sample(
        TOK.encode("ab>"),
        n=3,
        params=cl.SamplingParams(max_tokens=2, temperature=1.0, seed=1),
    )
    assert len(samples) == 3 and all(1 <= len(s) <= 2 for s in samples)


def test_bad_local_setups(copy_base: Path, tmp_path: Path) -> None:
    with pytest.raises(cl.LoraConfigError, match="unknown local base model") as info:
        cl.train(experiment(tmp_path / "nowhere", tmp_path), swap(PAIRS[:2]))
    assert info.value.field == "base_model"

    class Big(cl.ByteTokenizer):
        @property
        def vocab_size(self) -> int:
            return 50_000

    exp = cl.create_experiment(
        "x",
        config={"base_model": str(copy_base), "backend": "local"},
        adapter=cl.LocalAdapter(tokenizer=Big()),
    )
    with pytest.raises(cl.TokenizerMismatchError, match="embeds only 259"):
        cl.train(exp, swap(PAIRS[:2]))
    with pytest.raises(cl.LoraConfigError, match="target_modules"):
        cl.train(
            experiment(copy_base, tmp_path, target_modules=["nope"]), swap(PAIRS[:2])
        )
    adapter = cl.LocalAdapter()
    adapter.start(
        cl.ExperimentConfig(base_model=cl.TINY_GPT2, backend="local", lora_rank=2)
    )
    with pytest.raises(cl.CheckpointNotFoundError):
        adapter.load_state(str(tmp_path / "missing.pt"))
    datum = cl.format_example(cl.Example(prompt="a", completion="b"), adapter.tokenizer)
    with pytest.raises(cl.LoraConfigError, match="cross_entropy"):
        adapter.forward_backward([datum], loss="ppo")


def test_readme_example_runs() -> None:
    readme = Path(__file__).parents[1] / "README.md"
    code = readme.read_text().split("```python\n", 1)[1].split("```", 1)[0]
    namespace: dict[str, Any] = {}
    exec(compile(code, str(readme), "exec"), namespace)  # our own README
    assert namespace["result"].steps == 60
    losses = [r.loss for r in namespace["result"].history]
    assert losses[-1] < 0.2 * losses[0]  # it learns
    assert namespace["before"].metrics["exact_match"] <= 0.125  # the base copies
    assert (
        namespace["after"].metrics["exact_match"] >= 0.75
    )  # and now swaps unseen pairs


class Uncached:
    """Wraps a model for one `sample` call: each step re-runs the whole sequence so far.

    The first call gets the prompt and later ones one new token each, whatever cache the
    sampler passes: so this is the sampler as it was before it kept a KV cache.
    """

    def __init__(self, model: Any) -> None:
        self.model = model
        self.ids: Any = None

    def eval(self) -> None:
        self.model.eval()

    def __call__(self, *, input_ids: Any, past_key_values: Any, use_cache: bool) -> Any:
        import torch

        if self.ids is None:
            self.ids = input_ids
        else:
            self.ids = torch.cat([self.ids, input_ids], dim=-1)
        logits = self.model(input_ids=self.ids).logits
        return SimpleNamespace(logits=logits, past_key_values="ignored")


def test_cached_sampling_matches_recomputing_every_token(
    copy_base: Path, tmp_path: Path
) -> None:
    trained = experiment(copy_base, tmp_path)
    cl.train(trained, swap(PAIRS[:24]), epochs=2, batch_size=12)
    random_init = cl.LocalAdapter()  # near-flat logits: it rambles to max_tokens
    random_init.start(
        cl.ExperimentConfig(base_model=cl.TINY_GPT2, backend="local", lora_rank=2)
    )
    settings = [
        (1, cl.SamplingParams(max_tokens=12)),
        (4, cl.SamplingParams(max_tokens=12, temperature=1.0, seed=3)),
        (3, cl.SamplingParams(max_tokens=12, temperature=0.7, top_p=0.9, seed=5)),
    ]
    lengths = []
    for adapter in (trained.adapter, random_init):
        assert isinstance(adapter, cl.LocalAdapter)
        for text in ("ab>", "gfe>", "a claim, much longer than any pair>"):
            prompt = [TOK.bos_token_id, *TOK.encode(text)]
            for n, params in settings:
                cached = adapter.sample(prompt, n=n, params=params)
                model, adapter.model = adapter.model, Uncached(adapter.model)
                try:
                    expected = adapter.sample(prompt, n=n, params=params)
                finally:
                    adapter.model = model
                assert cached == expected
                lengths += [len(s) for s in expected]
    assert max(lengths) == 12  # whole continuations compared, not just a first token
