"""A tiny GPT-2 for `transformers serve`: tokenizer and weights trained here, nothing downloaded.

Run with the transformers venv's Python:
- `python tiny_model.py build OUT_DIR` trains and saves it (scripts/real-servers.sh does);
- `python tiny_model.py generate MODEL_DIR PROMPT MAX_TOKENS` prints, as JSON, what greedy decoding
  gives locally (text, prompt and completion token counts): the oracle the server is checked against.

A byte-level BPE
tokenizer is trained on the question/answer pairs below, a 2-layer GPT-2 is built from a config and
trained on them for a few seconds (seeded), and both are written with `save_pretrained`, so
`transformers serve` loads them offline and greedy decoding answers "paris" to the capital question.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

import torch
from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers
from transformers import GPT2Config, GPT2LMHeadModel, PreTrainedTokenizerFast

CHAT_TEMPLATE = (
    "{% for message in messages %}<|{{ message['role'] }}|>{{ message['content'] }}<|end|>"
    "{% endfor %}{% if add_generation_prompt %}<|assistant|>{% endif %}"
)
SPECIAL = ["<|endoftext|>", "<|end|>", "<|system|>", "<|user|>", "<|assistant|>"]


PAIRS = {
    "what is the capital of france?": "paris",
    "what is two plus two?": "four",
    "what colour is the sky?": "blue",
    "name a prime number.": "seven",
}


def corpus() -> list[str]:
    return [f"{q} {a}" for q, a in PAIRS.items()]


def train(model: GPT2LMHeadModel, tokenizer: PreTrainedTokenizerFast) -> None:
    """Fit the chat-formatted pairs (answer, `<|end|>`, end of text) with AdamW until they are learned."""
    rows = [
        tokenizer.apply_chat_template(
            [{"role": "user", "content": q}, {"role": "assistant", "content": a}],
            tokenize=True,
        )
        for q, a in PAIRS.items()
    ]
    rows = [[*getattr(r, "input_ids", r), tokenizer.eos_token_id] for r in rows]
    width = max(len(r) for r in rows)
    ids = torch.tensor([r + [tokenizer.pad_token_id] * (width - len(r)) for r in rows])
    mask = torch.tensor([[1] * len(r) + [0] * (width - len(r)) for r in rows])
    labels = ids.masked_fill(mask == 0, -100)
    optimiser = torch.optim.AdamW(model.parameters(), lr=3e-3)
    model.train()
    for _ in range(150):
        loss = model(input_ids=ids, attention_mask=mask, labels=labels).loss
        optimiser.zero_grad()
        loss.backward()
        optimiser.step()
    model.eval()


def build(out: Path) -> None:
    torch.manual_seed(0)
    bpe = Tokenizer(models.BPE(unk_token=None))
    bpe.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    bpe.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(
        vocab_size=320,
        special_tokens=SPECIAL,
        initial_alphabet=pre_tokenizers.ByteLevel.alphabet(),
        show_progress=False,
    )
    bpe.train_from_iterator(corpus(), trainer=trainer)
    tokenizer = PreTrainedTokenizerFast(
        tokenizer_object=bpe,
        bos_token="<|endoftext|>",
        eos_token="<|endoftext|>",
        pad_token="<|endoftext|>",
    )
    tokenizer.chat_template = CHAT_TEMPLATE
    config = GPT2Config(
        vocab_size=len(tokenizer),
        n_positions=2048,
        n_embd=64,
        n_layer=2,
        n_head=4,
        bos_token_id=tokenizer.bos_token_id,
        eos_token_id=tokenizer.eos_token_id,
        pad_token_id=tokenizer.pad_token_id,
    )
    model = GPT2LMHeadModel(config)
    train(model, tokenizer)
    out.mkdir(parents=True, exist_ok=True)
    model.save_pretrained(out)
    tokenizer.save_pretrained(out)


def generate(model_dir: Path, prompt: str, max_tokens: int) -> dict[str, object]:
    """Greedy decoding of one user turn, as `transformers serve` does for a chat completion."""
    from transformers import AutoModelForCausalLM, AutoTokenizer

    tokenizer = AutoTokenizer.from_pretrained(model_dir)
    model = AutoModelForCausalLM.from_pretrained(model_dir)
    encoded = tokenizer.apply_chat_template(
        [{"role": "user", "content": prompt}],
        add_generation_prompt=True,
        return_tensors="pt",
    )
    ids = getattr(encoded, "input_ids", encoded)
    with torch.no_grad():
        out = model.generate(
            ids,
            attention_mask=torch.ones_like(ids),
            max_new_tokens=max_tokens,
            do_sample=False,
        )
    new = out[0][ids.shape[1] :]
    return {
        "text": tokenizer.decode(new, skip_special_tokens=True),
        "prompt_tokens": int(ids.shape[1]),
        "completion_tokens": int(new.shape[0]),
    }


if __name__ == "__main__":
    if sys.argv[1] == "build":
        build(Path(sys.argv[2]))
    elif sys.argv[1] == "generate":
        sys.stdout.write(
            json.dumps(generate(Path(sys.argv[2]), sys.argv[3], int(sys.argv[4])))
            + "\n"
        )
    else:
        raise SystemExit(
            f"usage: {sys.argv[0]} build OUT_DIR | generate MODEL_DIR PROMPT MAX_TOKENS"
        )
