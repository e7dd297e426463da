"""`LocalAdapter`: real LoRA training on this machine with PyTorch, transformers and PEFT (CPU)."""

from __future__ import annotations

import importlib
import tempfile
import warnings
from collections.abc import Iterable, Sequence
from pathlib import Path
from types import ModuleType
from typing import Any

from crucible_core.exceptions import MissingDependencyError
from crucible_core.export import atomic_write
from crucible_lora._adapter import BaseAdapter, SamplingParams, StepResult
from crucible_lora._batching import PaddedBatch, batches, pad_batch
from crucible_lora._config import ExperimentConfig
from crucible_lora._data import Datum, format_examples, to_examples
from crucible_lora._experiment import _is_count
from crucible_lora._tokenizer import ByteTokenizer, Tokenizer, as_tokenizer
from crucible_lora.exceptions import (
    CheckpointNotFoundError,
    LoraConfigError,
    TokenizerMismatchError,
)

__all__ = ("LOCAL_INSTALL", "LocalAdapter", "TINY_GPT2", "pretrain_tiny_base")

LOCAL_INSTALL = (
    "pip install torch --index-url https://download.pytorch.org/whl/cpu && "
    "pip install transformers peft"
)
"""The install line for the local adapter's stack (CPU build of torch)."""

TINY_GPT2 = "tiny-gpt2"
"""A built-in base model: a randomly initialised 2-layer, 64-wide GPT-2 over `ByteTokenizer` ids.

For tests, benchmarks and examples; it needs no download. LoRA alone teaches a random model
little: pretrain one with [`pretrain_tiny_base`][crucible_lora.pretrain_tiny_base] first.
"""

# The attention projections adapted by default, per `transformers` model type.
_DEFAULT_TARGETS: dict[str, tuple[str, ...]] = {
    "gpt2": ("c_attn",),
    "gpt_neox": ("query_key_value",),
    "llama": ("q_proj", "v_proj"),
    "mistral": ("q_proj", "v_proj"),
    "qwen2": ("q_proj", "v_proj"),
    "qwen3": ("q_proj", "v_proj"),
    "gemma": ("q_proj", "v_proj"),
    "phi3": ("qkv_proj",),
}


def _require(module: str) -> ModuleType:
    try:
        return importlib.import_module(module)
    except ImportError as err:
        raise MissingDependencyError(
            f"the local LoRA adapter needs {module.split('.')[0]!r}, which is not installed: "
            f"`{LOCAL_INSTALL}` (torch from PyPI is the large CUDA build; the index above is "
            "the CPU one)",
            module=module,
            extra="local",
            distribution="crucible-lora",
        ) from err


def _tiny_gpt2(seed: int) -> Any:
    """A fresh `TINY_GPT2`: random weights drawn from `seed`."""
    torch = _require("torch")
    transformers = _require("transformers")
    tokenizer = ByteTokenizer()
    torch.manual_seed(seed)
    config = transformers.GPT2Config(
        vocab_size=tokenizer.vocab_size,
        n_positions=512,
        n_embd=64,
        n_layer=2,
        n_head=4,
        bos_token_id=tokenizer.bos_token_id,
        eos_token_id=tokenizer.eos_token_id,
    )
    return transformers.GPT2LMHeadModel(config)


def _masked_loss(
    torch: Any, model: Any, batch: Sequence[Datum], pad_id: int
) -> tuple[Any, PaddedBatch]:
    """The mean cross-entropy over the batch's weighted (completion) tokens, and the padded batch."""
    padded = pad_batch(batch, pad_id=pad_id)
    inputs, targets, weights, mask = (
        torch.from_numpy(a)
        for a in (
            padded.input_ids,
            padded.target_ids,
            padded.weights,
            padded.attention_mask,
        )
    )
    logits = model(input_ids=inputs, attention_mask=mask).logits.float()
    logp = torch.log_softmax(logits, dim=-1)
    token_logp = logp.gather(-1, targets.unsqueeze(-1)).squeeze(-1)
    return -(token_logp * weights).sum() / max(float(weights.sum()), 1.0), padded


def pretrain_tiny_base(
    dataset: Iterable[Any],
    directory: str | Path,
    *,
    steps: int = 150,
    batch_size: int = 64,
    learning_rate: float = 3e-3,
    seed: int = 0,
) -> Path:
    """Train every weight of a fresh [`TINY_GPT2`][crucible_lora.TINY_GPT2] and save it as a base model.

    Through rank-8 LoRA updates alone, a randomly initialised model learns little: its output
    embeddings (tied to the input ones, and frozen under LoRA) never become distinct enough to
    name one byte over another. A few seconds of full training on a simple task (for instance
    copying short strings) gives tests, benchmarks and examples a small base that LoRA can
    adapt, on a CPU and with nothing downloaded. Use the returned directory as `base_model`
    with `LocalAdapter(tokenizer=ByteTokenizer())`.

    The loss is `train`'s: the mean cross-entropy over completion tokens, with AdamW on batches
    reshuffled each epoch from `(seed, epoch)`.

    Args:
        dataset: examples or items (see [`to_examples`][crucible_lora.to_examples]).
        directory: where the model is saved (`save_pretrained`; created if missing).
        steps: optimisation steps (epochs repeat until they are done).
        batch_size: examples per step.
        learning_rate: AdamW's learning rate.
        seed: seeds the initial weights, dropout and the batch order.

    Returns:
        `directory`, holding the saved model.

    Raises:
        LoraConfigError: when `steps` or `batch_size` is below 1.
        LoraDataError: on an empty or malformed dataset.
        MissingDependencyError: when torch or transformers is missing.
    """
    for name, value in (("steps", steps), ("batch_size", batch_size)):
        if not _is_count(value):
            raise LoraConfigError(
                f"`{name}` must be a positive integer, got {value!r}",
                field=name,
                value=value,
            )
    tokenizer = ByteTokenizer()
    data = format_examples(to_examples(dataset), tokenizer)
    torch = _require("torch")
    model = _tiny_gpt2(seed)
    model.train()
    optimizer = torch.optim.AdamW(model.parameters(), lr=learning_rate)
    done = 0
    epoch = 0
    while done < steps:
        for batch in batches(data, batch_size=batch_size, seed=seed, epoch=epoch):
            loss, _ = _masked_loss(torch, model, batch, tokenizer.pad_token_id)
            loss.backward()
            optimizer.step()
            optimizer.zero_grad(set_to_none=True)
            done += 1
            if done == steps:
                break
        epoch += 1
    target = Path(directory)
    model.save_pretrained(str(target))
    return target


class LocalAdapter(BaseAdapter):
    """Trains real LoRA weights on a causal LM on this machine (CPU is enough for small models).

    Needs torch, transformers and peft, which are not an extra of crucible-lora (torch from
    PyPI is a multi-GB CUDA build): install them with
    [`LOCAL_INSTALL`][crucible_lora.LOCAL_INSTALL].

    The base model is `config.base_model`: [`TINY_GPT2`][crucible_lora.TINY_GPT2], or a directory
    holding a saved `transformers` model (nothing is downloaded). Or pass `model` and `tokenizer`
    objects directly. Checkpoints hold the LoRA weights, the optimiser state and the RNG state,
    so training resumed from one continues exactly as if never interrupted; each is written
    atomically, so a failure never leaves a half-written checkpoint.

    Args:
        model: a `transformers` causal LM to adapt instead of loading `config.base_model`.
        tokenizer: its tokenizer (a `transformers` tokenizer or a
            [`Tokenizer`][crucible_lora.Tokenizer]); default: loaded beside the model, or
            `ByteTokenizer` for `tiny-gpt2`.
        checkpoint_dir: where checkpoints and sampler weights go (default: a temporary directory).
    """

    def __init__(
        self,
        *,
        model: Any = None,
        tokenizer: Any = None,
        checkpoint_dir: str | Path | None = None,
    ) -> None:
        self._model_arg = model
        self._tokenizer_arg = tokenizer
        self._tokenizer: Tokenizer | None = None
        self.checkpoint_dir = Path(
            checkpoint_dir
            if checkpoint_dir is not None
            else tempfile.mkdtemp(prefix="crucible-lora-")
        )
        """Where checkpoints and sampler weights are written."""
        self.model: Any = None
        """The PEFT-wrapped model (after `start`)."""
        self._optimizer: Any = None
        self._config: ExperimentConfig | None = None
        self._torch: Any = None

    @property
    def backend(self) -> str:
        """`"local"`."""
        return "local"

    @property
    def tokenizer(self) -> Tokenizer:
        """The model's tokenizer.

        Raises:
            LoraConfigError: before `start`.
        """
        if self._tokenizer is None:
            raise LoraConfigError(
                "the local session has not started: call `start(config)` (or `train`) first",
                field="tokenizer",
                value=None,
            )
        return self._tokenizer

    def _load_base(self, config: ExperimentConfig) -> tuple[Any, Any]:
        transformers = _require("transformers")
        name = config.base_model
        if self._model_arg is not None:
            return self._model_arg, self._tokenizer_arg
        if name == TINY_GPT2:
            return _tiny_gpt2(config.seed), self._tokenizer_arg or ByteTokenizer()
        path = Path(name)
        if not (path.is_dir() and (path / "config.json").is_file()):
            raise LoraConfigError(
                f"unknown local base model {name!r}: use {TINY_GPT2!r}, a directory holding a "
                "saved `transformers` model (`save_pretrained`), or pass `model=` and "
                "`tokenizer=` to LocalAdapter (nothing is downloaded)",
                field="base_model",
                value=name,
            )
        model = transformers.AutoModelForCausalLM.from_pretrained(
            path, local_files_only=True
        )
        tokenizer = self._tokenizer_arg
        if tokenizer is None:
            try:
                tokenizer = transformers.AutoTokenizer.from_pretrained(
                    path, local_files_only=True
                )
            except (OSError, ValueError) as err:
                raise LoraConfigError(
                    f"no tokenizer is saved in {name!r}: pass `LocalAdapter(tokenizer=...)`",
                    field="tokenizer",
                    value=None,
                ) from err
        return model, tokenizer

    async def start_async(self, config: ExperimentConfig) -> None:
        """Load the base model, wrap it with a PEFT LoRA and build the AdamW optimiser.

        Raises:
            LoraConfigError: on an unknown base model or one whose attention modules are not
                known (pass `target_modules`).
            TokenizerMismatchError: when the tokenizer has more ids than the model embeds.
            MissingDependencyError: when torch, transformers or peft is missing.
        """
        self._torch = torch = _require("torch")
        peft = _require("peft")
        base, tokenizer = self._load_base(config)
        if tokenizer is None:
            raise LoraConfigError(
                "pass the model's tokenizer: `LocalAdapter(model=..., tokenizer=...)`",
                field="tokenizer",
                value=None,
            )
        tok = as_tokenizer(tokenizer)
        embedded = int(base.get_input_embeddings().num_embeddings)
        if tok.vocab_size > embedded:
            raise TokenizerMismatchError(
                f"the tokenizer has {tok.vocab_size} ids but the model embeds only {embedded}: "
                "use the tokenizer saved with the model",
                vocab_size=embedded,
                max_token_id=tok.vocab_size - 1,
            )
        model_type = str(getattr(base.config, "model_type", ""))
        targets = config.target_modules or _DEFAULT_TARGETS.get(model_type)
        if targets is None:
            raise LoraConfigError(
                f"no default LoRA target modules for model type {model_type!r}: set "
                "`target_modules` in the config (e.g. ['q_proj', 'v_proj'])",
                field="target_modules",
                value=None,
            )
        torch.manual_seed(config.seed)
        lora = peft.LoraConfig(
            r=config.lora_rank,
            lora_alpha=config.lora_alpha,
            lora_dropout=config.lora_dropout,
            target_modules=list(targets),
            fan_in_fan_out=model_type == "gpt2",
            bias="none",
            task_type="CAUSAL_LM",
        )
        try:
            with warnings.catch_warnings():
                # peft reads transformers' deprecated `is_gradient_checkpointing`; the warning is
                # about peft's code, not the caller's, and nothing here can act on it.
                warnings.filterwarnings(
                    "ignore",
                    message=".*is_gradient_checkpointing",
                    category=FutureWarning,
                )
                self.model = peft.get_peft_model(base, lora)
        except ValueError as err:
            raise LoraConfigError(
                f"cannot apply LoRA to {targets!r}: {err}; check `target_modules`",
                field="target_modules",
                value=targets,
            ) from err
        trainable = [p for p in self.model.parameters() if p.requires_grad]
        self._optimizer = torch.optim.AdamW(
            trainable,
            lr=config.learning_rate,
            betas=(config.beta1, config.beta2),
            eps=config.eps,
            weight_decay=config.weight_decay,
        )
        self._config = config
        self._tokenizer = tok

    def _ready(self) -> Any:
        if self.model is None:
            raise LoraConfigError(
                "the local session has not started: call `start(config)` (or `train`) first",
                field="session",
                value=None,
            )
        return self.model

    async def forward_backward_async(
        self, batch: Sequence[Datum], *, loss: str = "cross_entropy"
    ) -> StepResult:
        """Accumulate the gradient of the mean masked cross-entropy on `batch`."""
        if loss != "cross_entropy":
            raise LoraConfigError(
                f"the local adapter supports loss 'cross_entropy', not {loss!r}",
                field="loss",
                value=loss,
            )
        model = self._ready()
        model.train()
        value, padded = _masked_loss(self._torch, model, batch, pad_id=0)
        value.backward()
        return StepResult(
            loss=float(value.detach()),
            n_tokens=padded.n_tokens,
            n_trained=int(padded.weights.sum()),
        )

    async def optim_step_async(self, *, learning_rate: float) -> None:
        """One AdamW step at `learning_rate` (with gradient clipping if configured)."""
        self._ready()
        config = self._config
        assert config is not None
        for group in self._optimizer.param_groups:
            group["lr"] = learning_rate
        if config.grad_clip_norm > 0:
            params = [p for g in self._optimizer.param_groups for p in g["params"]]
            self._torch.nn.utils.clip_grad_norm_(params, config.grad_clip_norm)
        self._optimizer.step()
        self._optimizer.zero_grad(set_to_none=True)

    async def save_state_async(self, name: str) -> str:
        """Write LoRA weights, optimiser and RNG state atomically to `<checkpoint_dir>/<name>.pt`."""
        self._ready()
        peft = _require("peft")
        state = {
            "lora": peft.get_peft_model_state_dict(self.model),
            "optimizer": self._optimizer.state_dict(),
            "rng": self._torch.get_rng_state(),
        }
        path = self.checkpoint_dir / f"{name}.pt"
        with atomic_write(path, binary=True) as fh:
            self._torch.save(state, fh)
        return str(path)

    async def load_state_async(self, path: str) -> None:
        """Restore LoRA weights, optimiser and RNG state from a checkpoint file.

        Raises:
            CheckpointNotFoundError: when `path` does not exist.
        """
        self._ready()
        if not Path(path).is_file():  # noqa: ASYNC240 - one stat; the load below blocks anyway
            raise CheckpointNotFoundError(
                f"no checkpoint at {path!r}: pass a path from `experiment.checkpoints` "
                "or `save_state`",
                path=path,
            )
        peft = _require("peft")
        state = self._torch.load(path, weights_only=True)
        peft.set_peft_model_state_dict(self.model, state["lora"])
        self._optimizer.load_state_dict(state["optimizer"])
        self._torch.set_rng_state(state["rng"])

    async def save_weights_for_sampler_async(self, name: str) -> str:
        """Save the LoRA weights in PEFT's format (`PeftModel.from_pretrained` loads them)."""
        model = self._ready()
        target = self.checkpoint_dir / name
        model.save_pretrained(str(target))
        return str(target)

    async def sample_async(
        self, prompt: Sequence[int], *, n: int = 1, params: SamplingParams
    ) -> list[list[int]]:
        """Generate `n` continuations of `prompt` (greedy at temperature 0), stopping at EOS."""
        model = self._ready()
        torch = self._torch
        eos = self.tokenizer.eos_token_id
        generator = torch.Generator()
        generator.manual_seed(0 if params.seed is None else params.seed)
        model.eval()
        ids = torch.tensor([list(prompt)] * n, dtype=torch.long)
        done = torch.zeros(n, dtype=torch.bool)
        out: list[list[int]] = [[] for _ in range(n)]
        past = None
        with torch.no_grad():
            for _ in range(params.max_tokens):
                # The prompt once, then one token per step on the cached keys and values.
                output = model(input_ids=ids, past_key_values=past, use_cache=True)
                past = output.past_key_values
                logits = output.logits[:, -1, :].float()
                if params.temperature == 0:
                    nxt = logits.argmax(dim=-1)
                else:
                    probs = torch.softmax(logits / params.temperature, dim=-1)
                    if params.top_p < 1.0:
                        sorted_p, order = probs.sort(dim=-1, descending=True)
                        keep = sorted_p.cumsum(dim=-1) - sorted_p < params.top_p
                        sorted_p = sorted_p * keep
                        probs = torch.zeros_like(probs).scatter(-1, order, sorted_p)
                    nxt = torch.multinomial(probs, 1, generator=generator).squeeze(-1)
                for row in range(n):
                    if not done[row]:
                        out[row].append(int(nxt[row]))
                        if eos is not None and int(nxt[row]) == eos:
                            done[row] = True
                if bool(done.all()):
                    break
                ids = nxt.unsqueeze(-1)
        return out

    async def close_async(self) -> None:
        """Release the model and optimiser."""
        self.model = None
        self._optimizer = None
