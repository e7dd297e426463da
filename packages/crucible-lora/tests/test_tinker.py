"""TinkerAdapter and the workflow, against a stand-in speaking the tinker SDK's interface and types."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import pytest

import crucible_lora as cl
from crucible_core.export import load_records


def test_training_sends_aligned_masked_data_and_loss_falls(
    service: Any, new_experiment: Any, examples: list[cl.Example]
) -> None:
    exp = new_experiment()
    result = cl.train(exp, examples, epochs=6, batch_size=4, lr_schedule="constant")
    assert result.steps == 12 and len(result.history) == 12
    losses = [r.loss for r in result.history]
    assert losses[0] == pytest.approx(np.log(259), rel=1e-6)  # a zero bigram is uniform
    assert losses[-1] < 0.2 * losses[0]
    inputs, targets, weights = service.data[0]
    assert list(inputs[1:]) == list(targets[:-1])  # shifted by one
    assert list(weights) == [0.0, 1.0, 1.0]  # the prompt letter carries no loss
    assert targets[-1] == cl.ByteTokenizer().eos_token_id
    # forward_backward and optim_step are submitted back to back every step
    assert service.calls[:4] == ["forward_backward", "optim_step"] * 2
    assert result.history[0].n_trained == 4 * 2 and result.history[0].n_tokens == 4 * 3


def test_evaluate_before_and_after_gives_paired_scores(
    new_experiment: Any, examples: list[cl.Example]
) -> None:
    exp = new_experiment()
    before = cl.evaluate(exp, examples, sampling=cl.SamplingParams(max_tokens=4))
    cl.train(exp, examples, epochs=6, batch_size=4)
    after = cl.evaluate(exp, examples, sampling=cl.SamplingParams(max_tokens=4))
    assert before.step == 0 and after.step == 12
    assert before.metrics["exact_match"] == 0.0
    assert after.metrics["exact_match"] == 1.0
    assert after.scores("exact_match") == [1.0] * 8
    assert [p.prediction for p in after.predictions[:2]] == ["a", "b"]
    assert after.to_records()[0]["id"] == "L0"
    assert "exact_match" in after.render()


def test_schedule_reaches_the_backend(
    service: Any, new_experiment: Any, examples: Any
) -> None:
    cl.train(new_experiment(), examples, epochs=2, batch_size=4, lr_schedule="linear")
    assert service.learning_rates == pytest.approx([0.5, 0.375, 0.25, 0.125])


def test_checkpoint_resume_is_exact(
    service: Any, new_experiment: Any, examples: Any
) -> None:
    straight = new_experiment(name="straight")
    cl.train(straight, examples, epochs=4, batch_size=4, checkpoint_every=3)
    full_w = np.copy(service.training.model.w)
    assert [c.step for c in straight.checkpoints] == [3, 6, 8]

    service.fail_at = service.fwd_bwd + 5  # the 5th step of the next run fails
    broken = new_experiment(name="broken")
    with pytest.raises(cl.AdapterError, match="failed at step 5") as info:
        cl.train(broken, examples, epochs=4, batch_size=4, checkpoint_every=3)
    err = info.value
    assert isinstance(err, RuntimeError) and err.step == 5 and err.backend == "tinker"
    assert err.last_checkpoint == "tinker://run-1/weights/broken-step-000003"
    assert "resume=True" in str(err)

    service.fail_at = None
    resumed = cl.train(
        broken, examples, epochs=4, batch_size=4, checkpoint_every=3, resume=True
    )
    assert [r.step for r in resumed.history] == [4, 5, 6, 7, 8]
    assert resumed.steps == 8
    np.testing.assert_array_equal(service.training.model.w, full_w)


def test_resume_errors(new_experiment: Any, examples: Any) -> None:
    exp = new_experiment()
    with pytest.raises(cl.CheckpointNotFoundError, match="no checkpoint"):
        cl.train(exp, examples, resume=True)
    with pytest.raises(cl.CheckpointNotFoundError, match="step-<n>"):
        cl.train(exp, examples, resume="tinker://elsewhere/weights/final")
    with pytest.raises(cl.AdapterError, match="TinkerError"):
        cl.train(exp, examples, resume="tinker://run-1/weights/x-step-000002")


def test_quality_targets_stop_training_early(new_experiment: Any) -> None:
    data = [
        cl.Example(prompt=chr(65 + i), completion="{", id=f"q{i}") for i in range(4)
    ]
    validator = cl.QualityValidator(corpus_ids={"d1"}, required_keys=())
    result = cl.train(
        new_experiment(),
        data,
        epochs=20,
        batch_size=4,
        eval_every=1,
        eval_dataset=data,
        validator=validator,
        quality_targets={"schema_compliance": 0.0},
        sampling=cl.SamplingParams(max_tokens=2),
    )
    assert result.stop_reason == "quality targets met at step 1"
    assert result.steps == 1 and len(result.evaluations) == 1
    assert result.evaluations[0].quality is not None


def test_quality_targets_that_are_never_met_train_to_the_end(
    new_experiment: Any, examples: Any
) -> None:
    validator = cl.QualityValidator(corpus_ids={"d1"})
    result = cl.train(
        new_experiment(),
        examples,
        epochs=2,
        batch_size=4,
        eval_every=2,
        eval_dataset=examples[:2],
        validator=validator,
        quality_targets=cl.QualityTargets(),
        sampling=cl.SamplingParams(max_tokens=2),
    )
    assert result.stop_reason == "completed" and result.steps == 4
    assert [e.step for e in result.evaluations] == [2, 4]
    assert result.evaluations[-1].quality is not None
    assert (
        result.evaluations[-1].quality.schema_compliance == 0.0
    )  # letters are not JSON


def test_events(captured: Any, new_experiment: Any, examples: Any) -> None:
    exp = new_experiment()
    cl.train(exp, examples, epochs=1, batch_size=4, checkpoint_every=2)
    cl.evaluate(exp, examples[:2], sampling=cl.SamplingParams(max_tokens=2))
    names = [n[2:] for n, _, _ in captured]
    assert names == [
        ("train", "start"),
        ("step", "stop"),
        ("step", "stop"),
        ("train", "stop"),
        ("eval", "stop"),
    ]
    step = captured[2]
    assert step[1]["step"] == 2 and step[1]["loss"] > 0 and step[1]["learning_rate"] > 0
    assert step[2]["checkpoint"].endswith("step-000002")
    assert captured[3][1]["steps"] == 2 and captured[3][2]["backend"] == "tinker"
    assert "exact_match" in captured[4][1]


def test_failure_emits_the_train_exception_event(
    captured: Any, service: Any, new_experiment: Any, examples: Any
) -> None:
    service.fail_at = 1
    with pytest.raises(cl.AdapterError):
        cl.train(new_experiment(), examples, batch_size=4)
    assert captured[-1][0][2:] == ("train", "exception")
    assert captured[-1][2]["error_type"] == "AdapterError"


def test_history_export_and_sweep_bookkeeping(
    tmp_path: Path, service: Any, examples: Any
) -> None:
    runs = cl.sweep(
        {"base_model": "Qwen/Qwen3-8B", "learning_rate": 0.5},
        {"lora_rank": [4, 8]},
        replications=2,
    )
    results = []
    for run in runs:
        exp = cl.create_experiment(
            run.name,
            config=run.config,
            adapter=service.adapter(),
        )
        results.append(cl.train(exp, examples, batch_size=4, params=run.params))
    path = cl.save_history(results, tmp_path / "history.jsonl")
    rows = load_records(path)
    assert len(rows) == 4 * 2
    assert {(r["lora_rank"], r["replication"]) for r in rows} == {
        (4, 0),
        (4, 1),
        (8, 0),
        (8, 1),
    }
    assert set(rows[0]) >= {
        "experiment",
        "step",
        "loss",
        "learning_rate",
        "n_tokens",
        "epoch",
    }
    csv_rows = load_records(cl.save_history(results[0], tmp_path / "one.csv"))
    assert [r["step"] for r in csv_rows] == ["1", "2"]
    text = results[0].render()
    assert "LoRA training" in text and "final loss" in text
    assert repr(results[0]).startswith("TrainingResult(")


def test_eval_metrics_land_in_the_step_records(
    new_experiment: Any, examples: Any
) -> None:
    result = cl.train(
        new_experiment(),
        examples,
        epochs=2,
        batch_size=4,
        eval_every=2,
        eval_dataset=examples[:2],
        sampling=cl.SamplingParams(max_tokens=2),
    )
    rows = result.to_records()
    assert (
        rows[0]["eval_exact_match"] is None and rows[1]["eval_exact_match"] is not None
    )


def test_unknown_base_model_and_missing_key(
    service: Any, examples: Any, monkeypatch: Any
) -> None:
    exp = cl.create_experiment(
        "x",
        config={"base_model": "gpt-17"},
        adapter=service.adapter(),
    )
    with pytest.raises(
        cl.LoraConfigError, match="does not offer base model 'gpt-17'"
    ) as info:
        cl.train(exp, examples)
    assert info.value.field == "base_model" and "Qwen/Qwen3-8B" in str(info.value)
    monkeypatch.delenv("TINKER_API_KEY", raising=False)
    with pytest.raises(cl.LoraConfigError, match="TINKER_API_KEY"):
        cl.train(cl.create_experiment("y", config={"base_model": "m"}), examples)


def test_bad_train_options(new_experiment: Any, examples: Any) -> None:
    exp = new_experiment()
    with pytest.raises(cl.LoraConfigError, match="epochs"):
        cl.train(exp, examples, epochs=0)
    with pytest.raises(cl.LoraConfigError, match="checkpoint_every"):
        cl.train(exp, examples, checkpoint_every=0)
    with pytest.raises(cl.LoraConfigError, match="eval_dataset"):
        cl.train(exp, examples, eval_every=2)
    with pytest.raises(cl.LoraConfigError, match="validator"):
        cl.train(exp, examples, quality_targets={"schema_compliance": 0.9})
    with pytest.raises(cl.LoraConfigError, match="unknown lr_schedule"):
        cl.train(exp, examples, lr_schedule="step")  # type: ignore[arg-type]
    with pytest.raises(cl.LoraConfigError, match="unknown metric"):
        cl.evaluate(exp, examples, metrics=("bleu",))
    with pytest.raises(cl.LoraDataError, match="empty"):
        cl.train(exp, [])
    assert exp.step == 0


def test_adapter_use_before_start_and_unknown_loss(service: Any) -> None:
    adapter = service.adapter()
    with pytest.raises(cl.LoraConfigError, match="not started"):
        _ = adapter.tokenizer
    with pytest.raises(cl.LoraConfigError, match="not started"):
        adapter.save_state("x")
    adapter.start(cl.ExperimentConfig(base_model="Qwen/Qwen3-8B"))
    datum = cl.format_example(cl.Example(prompt="A", completion="a"), adapter.tokenizer)
    with pytest.raises(cl.LoraConfigError, match="unknown loss"):
        adapter.forward_backward([datum], loss="mse")
    step = adapter.forward_backward([datum])
    assert step.metrics["loss:sum"] == pytest.approx(step.loss * 2)
    adapter.optim_step(learning_rate=0.1)
    path = adapter.save_weights_for_sampler("s")
    assert path.startswith("tinker://") and path in service.sampler_weights
    assert len(adapter.sample([65], n=2, params=cl.SamplingParams(max_tokens=3))) == 2
    adapter.close()
    assert service.closed is None  # a service client passed in is the caller's to close


def test_user_metrics_are_functions(new_experiment: Any, examples: Any) -> None:
    def length(prediction: str, example: cl.Example) -> float:
        return float(len(prediction))

    result = cl.evaluate(
        new_experiment(),
        examples[:2],
        metrics=(length,),
        sampling=cl.SamplingParams(max_tokens=3),
    )
    assert result.metrics == {"length": 3.0}  # the untrained bigram never reaches EOS


def test_the_adapter_calls_the_installed_sdk_as_it_is_today(tinker: Any) -> None:
    """Every SDK call TinkerAdapter makes exists, takes its arguments and is not deprecated.

    The stand-in can only echo the interface it was written against; this reads the real one,
    so an SDK release that renames or deprecates a method fails here, offline.
    """
    import inspect

    from tinker import types as tt

    calls: list[tuple[Any, tuple[Any, ...], dict[str, Any]]] = [
        (tinker.ServiceClient, (), {"api_key": "k", "base_url": None}),
        (tinker.RestClient, (), {"api_key": "k", "base_url": None}),
        (tinker.RestClient.get_server_capabilities, (None,), {}),
        (
            tinker.ServiceClient.create_lora_training_client,
            (None, "Qwen/Qwen3-8B"),
            {"rank": 8, "seed": 0},
        ),
        (
            tinker.ServiceClient.create_training_client_from_state_with_optimizer,
            (None, "tinker://run/weights/x"),
            {},
        ),
        (tinker.ServiceClient.close, (None, "success"), {}),
        (tinker.TrainingClient.get_tokenizer, (None,), {}),
        (tinker.TrainingClient.forward_backward, (None, [], "cross_entropy"), {}),
        (tinker.TrainingClient.optim_step, (None, None), {}),
        (tinker.TrainingClient.save_state, (None, "name"), {}),
        (tinker.TrainingClient.save_weights_for_sampler, (None, "name"), {}),
        (tinker.TrainingClient.create_sampling_client, (None, "tinker://p"), {}),
        (
            tinker.SamplingClient.sample,
            (None,),
            {"prompt": None, "num_samples": 2, "sampling_params": None},
        ),
    ]
    for function, args, kwargs in calls:
        name = getattr(function, "__qualname__", repr(function))
        assert not getattr(function, "__deprecated__", None), f"{name} is deprecated"
        target = function.__init__ if inspect.isclass(function) else function
        inspect.signature(target).bind(*(args or (None,)), **kwargs)
    params = tt.SamplingParams(
        max_tokens=4, temperature=0.0, top_p=1.0, seed=1, stop=None
    )
    assert params.max_tokens == 4
    adam = tinker.AdamParams(
        learning_rate=1e-4,
        beta1=0.9,
        beta2=0.999,
        eps=1e-8,
        weight_decay=0.0,
        grad_clip_norm=0.0,
    )
    assert adam.learning_rate == 1e-4
    assert tt.ModelInput.from_ints([1, 2]).to_ints() == [1, 2]
