"""Throughput of crucible-lora: data formatting (no torch), and LocalAdapter training on CPU.

1. Formatting: examples rendered to tokens with loss masks and shifted targets per second
   (`format_examples` with `ByteTokenizer`), and `batches` + `pad_batch` per second.
2. Local adapter (needs torch, transformers, peft; skipped with a note when missing): steps/s and
   trained tokens/s of LoRA (rank 8 on `c_attn`) on the built-in tiny GPT-2, batch 32, after warm-up.
   Threads follow OMP_NUM_THREADS / torch's default.

    UV_PROJECT_ENVIRONMENT=/tmp/venv-lora uv run --package crucible-lora \
        python scripts/bench/bench_lora.py                     # formatting only
    OMP_NUM_THREADS=1 .venvs/lora-torch/bin/python scripts/bench/bench_lora.py   # both
"""

from __future__ import annotations

import importlib.util
import time

import crucible_lora as cl


def formatting() -> None:
    tok = cl.ByteTokenizer()
    examples = [
        cl.Example(
            prompt=f"Claim {i}: the drug lowers blood pressure in trial {i}.\nLabel:",
            completion=" SUPPORT" if i % 2 else " CONTRADICT",
        )
        for i in range(20_000)
    ]
    start = time.perf_counter()
    data = cl.format_examples(examples, tok)
    elapsed = time.perf_counter() - start
    tokens = sum(len(d) for d in data)
    print(
        f"format_examples: {len(data) / elapsed:,.0f} examples/s, "
        f"{tokens / elapsed:,.0f} tokens/s ({len(data)} examples, {elapsed:.2f} s)"
    )
    start = time.perf_counter()
    n = 0
    for epoch in range(3):
        for batch in cl.batches(data, batch_size=32, seed=0, epoch=epoch):
            cl.pad_batch(batch, pad_id=tok.pad_token_id)
            n += len(batch)
    elapsed = time.perf_counter() - start
    print(f"batches + pad_batch: {n / elapsed:,.0f} examples/s (3 epochs, batch 32)")


def local(steps: int = 100) -> None:
    if (
        importlib.util.find_spec("torch") is None
        or importlib.util.find_spec("peft") is None
    ):
        print(
            "local adapter: skipped (torch/peft not installed; see scripts/test-local.sh)"
        )
        return
    import torch

    adapter = cl.LocalAdapter()
    adapter.start(
        cl.ExperimentConfig(base_model=cl.TINY_GPT2, backend="local", lora_rank=8)
    )
    letters = "abcdefgh"
    data = cl.format_examples(
        [
            cl.Example(prompt=f"{a}{b}>", completion=f"{b}{a}")
            for a in letters
            for b in letters
        ][:32],
        adapter.tokenizer,
    )
    for _ in range(5):  # warm-up
        adapter.train_step(data, learning_rate=1e-3)
    start = time.perf_counter()
    trained = 0
    for _ in range(steps):
        trained += adapter.train_step(data, learning_rate=1e-3).n_trained
    elapsed = time.perf_counter() - start
    print(
        f"local adapter (tiny-gpt2, rank 8, batch 32, torch {torch.__version__}, "
        f"{torch.get_num_threads()} thread(s)): {steps / elapsed:,.1f} steps/s, "
        f"{sum(len(d) for d in data) * steps / elapsed:,.0f} tokens/s, "
        f"{trained / elapsed:,.0f} trained tokens/s"
    )
    start = time.perf_counter()
    for d in data[:8]:
        adapter.sample(
            list(d.input_tokens[: d.prompt_length]),
            params=cl.SamplingParams(max_tokens=3),
        )
    print(
        f"local adapter greedy sampling: {8 / (time.perf_counter() - start):,.1f} prompts/s (3 tokens)"
    )


if __name__ == "__main__":
    formatting()
    local()
