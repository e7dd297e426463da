"""SciFact claims → LoRA fine-tune → evaluate → paired comparison with the base model.

Runs on a CPU in well under a minute with nothing downloaded: the base model is a tiny GPT-2
over bytes, pretrained here for a few seconds to copy short strings (so it can write, but has
never seen a claim), and LoRA teaches it to answer `true` / `false` / `nei` for a claim.

    OMP_NUM_THREADS=1 python packages/crucible-lora/examples/scifact_lora.py <scifact directory>

The directory holds SciFact's `claims_dev.jsonl` (the 300 labelled validation claims). Needs
crucible-lora, crucible-datasets, crucible-bench and the local stack (torch, transformers, peft).
"""

# ruff: noqa: T201 (a script that prints its results)

from __future__ import annotations

import argparse
import string
import tempfile
import time
from collections import Counter
from dataclasses import dataclass
from pathlib import Path

import crucible_bench as cb
import crucible_datasets as cd
import crucible_lora as cl

# Words that crucible-datasets' `normalize_label` reads as each SciFact label.
ANSWERS = {"SUPPORTS": "true", "REFUTES": "false", "NOT ENOUGH INFO": "nei"}


def prompt(item: cd.Item) -> str:
    """What the model reads: the claim, then `label:`."""
    return f"{item.input['claim']}\nlabel:"


def completion(item: cd.Item) -> str:
    """What it learns to answer: ` true`, ` false` or ` nei`."""
    return " " + ANSWERS[item.expected]


def label_accuracy(prediction: str, example: cl.Example) -> float:
    """1 when the answer names the claim's label, as crucible-datasets scores SciFact."""
    return float(cd.normalize_label(prediction) == example.expected)


def copying_base(directory: Path, *, seed: int) -> Path:
    """A tiny GPT-2 trained to copy two lowercase characters (`ab>` → `ab`)."""
    alphabet = string.ascii_lowercase + " "
    pairs = [a + b for a in alphabet for b in alphabet]
    copies = [cl.Example(prompt=p + ">", completion=p) for p in pairs]
    return cl.pretrain_tiny_base(copies, directory, steps=150, seed=seed)


@dataclass(frozen=True)
class ScifactRun:
    """What `run` measured."""

    base: cl.AdapterEvaluation  # the base model on the held-out claims
    tuned: cl.AdapterEvaluation  # the LoRA-tuned model on the same claims
    training: cl.TrainingResult
    versus_base: cb.AccuracyComparisonResult  # paired: tuned − base, per claim
    versus_majority: cb.AccuracyComparisonResult  # tuned − always the commonest label
    seconds: float


def run(
    source: str | Path,
    *,
    seed: int = 0,
    test_size: float = 0.25,
    epochs: int = 4,
    workdir: str | Path | None = None,
) -> ScifactRun:
    """Split the claims, fine-tune on one part, and compare with the base model on the other."""
    started = time.perf_counter()
    claims = cd.load("scifact", split="validation", source=source)
    train_claims, test_claims = cd.train_test_split(
        claims, test_size=test_size, seed=seed, stratify="expected"
    )
    train_set = cl.to_examples(train_claims, prompt=prompt, completion=completion)
    test_set = cl.to_examples(test_claims, prompt=prompt, completion=completion)

    workdir = Path(workdir or tempfile.mkdtemp(prefix="scifact-lora-"))
    experiment = cl.create_experiment(
        "scifact-lora",
        config={
            "base_model": str(copying_base(workdir / "base", seed=seed)),
            "backend": "local",
            "lora_rank": 8,
            "learning_rate": 1e-2,
            "seed": seed,
        },
        adapter=cl.LocalAdapter(
            tokenizer=cl.ByteTokenizer(), checkpoint_dir=workdir / "checkpoints"
        ),
    )
    sampling = cl.SamplingParams(max_tokens=8, stop=("\n",))
    metrics = (label_accuracy,)
    base = cl.evaluate(experiment, test_set, metrics=metrics, sampling=sampling)
    training = cl.train(
        experiment, train_set, epochs=epochs, batch_size=8, lr_schedule="cosine"
    )
    tuned = cl.evaluate(experiment, test_set, metrics=metrics, sampling=sampling)

    after = tuned.scores("label_accuracy")
    before = base.scores("label_accuracy")
    versus_base = cb.compare_accuracy(after, before, labels=("tuned", "base"))
    commonest, _ = Counter(i.expected for i in train_claims.items).most_common(1)[0]
    always = [float(i.expected == commonest) for i in test_claims.items]
    versus_majority = cb.compare_accuracy(
        after, always, labels=("tuned", f"always {commonest}")
    )
    return ScifactRun(
        base=base,
        tuned=tuned,
        training=training,
        versus_base=versus_base,
        versus_majority=versus_majority,
        seconds=time.perf_counter() - started,
    )


def main() -> None:
    """Run with the command line's options and print the comparisons."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("source", help="directory holding SciFact's claims_dev.jsonl")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--epochs", type=int, default=4)
    args = parser.parse_args()
    result = run(args.source, seed=args.seed, epochs=args.epochs)
    history = result.training.history
    print(
        f"{len(result.base.predictions)} held-out claims, {result.training.steps} steps"
    )
    print(f"loss {history[0].loss:.2f} -> {history[-1].loss:.2f}")
    print("answers:", dict(Counter(p.prediction for p in result.tuned.predictions)))
    print(result.versus_base.interpretation)
    print(result.versus_majority.interpretation)
    print(f"finished in {result.seconds:.1f} s")


if __name__ == "__main__":
    main()
