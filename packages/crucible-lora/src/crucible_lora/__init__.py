"""Adapter-agnostic LoRA fine-tuning and evaluation, on Tinker or a local PyTorch adapter.

Create an experiment, train it with checkpoints, evaluations and quality targets, evaluate it, and
sweep configurations; the backend is an adapter (`TinkerAdapter` on the Tinker API, `LocalAdapter`
on PyTorch + PEFT). Importing this package loads neither torch nor the tinker SDK.
"""

from __future__ import annotations

from crucible_core._lazy import lazy_getattr as _lazy_getattr
from crucible_lora._adapter import BaseAdapter, LoraAdapter, SamplingParams, StepResult
from crucible_lora._batching import PaddedBatch, batches, pad_batch, steps_per_epoch
from crucible_lora._config import Backend, ExperimentConfig, to_config
from crucible_lora._data import (
    CHAT_TEMPLATE,
    Datum,
    Example,
    format_example,
    format_examples,
    to_examples,
)
from crucible_lora._experiment import (
    LoraExperiment,
    Metric,
    SweepRun,
    create_experiment,
    evaluate,
    evaluate_async,
    sweep,
    train,
    train_async,
)
from crucible_lora._local import (
    LOCAL_INSTALL,
    TINY_GPT2,
    LocalAdapter,
    pretrain_tiny_base,
)
from crucible_lora._model import AdapterModel
from crucible_lora._quality import (
    QualityReport,
    QualityTargets,
    QualityValidator,
    parse_structured,
)
from crucible_lora._results import (
    AdapterEvaluation,
    Checkpoint,
    ItemPrediction,
    StepRecord,
    TrainingResult,
    save_history,
)
from crucible_lora._schedule import Schedule, learning_rate_at
from crucible_lora._tinker import TinkerAdapter
from crucible_lora._tokenizer import ByteTokenizer, Tokenizer, as_tokenizer
from crucible_lora._version import __version__
from crucible_lora.exceptions import (
    AdapterError,
    CheckpointNotFoundError,
    LoraConfigError,
    LoraDataError,
    LoraError,
    TokenizerMismatchError,
)

__getattr__ = _lazy_getattr(
    __name__,
    renamed={
        "EvaluationResult": (
            "AdapterEvaluation",
            "one public class name per concept across the workspace (crucible_datasets.EvaluationResult is a different class)",
        ),
        "Experiment": (
            "LoraExperiment",
            "one public class name per concept across the workspace (crucible_harness.Experiment declares an experiment)",
        ),
    },
)

__all__ = (
    # workflow
    "LoraExperiment",
    "create_experiment",
    "train",
    "train_async",
    "evaluate",
    "evaluate_async",
    "sweep",
    "SweepRun",
    "Metric",
    # configuration
    "ExperimentConfig",
    "Backend",
    "to_config",
    "Schedule",
    "learning_rate_at",
    # data
    "Example",
    "Datum",
    "CHAT_TEMPLATE",
    "to_examples",
    "format_example",
    "format_examples",
    "batches",
    "steps_per_epoch",
    "pad_batch",
    "PaddedBatch",
    # tokenizers
    "Tokenizer",
    "ByteTokenizer",
    "as_tokenizer",
    # adapters
    "LoraAdapter",
    "BaseAdapter",
    "StepResult",
    "SamplingParams",
    "TinkerAdapter",
    "LocalAdapter",
    "AdapterModel",
    "LOCAL_INSTALL",
    "TINY_GPT2",
    "pretrain_tiny_base",
    # quality
    "QualityValidator",
    "QualityTargets",
    "QualityReport",
    "parse_structured",
    # results
    "TrainingResult",
    "AdapterEvaluation",
    "StepRecord",
    "ItemPrediction",
    "Checkpoint",
    "save_history",
    # errors
    "LoraError",
    "LoraConfigError",
    "LoraDataError",
    "TokenizerMismatchError",
    "CheckpointNotFoundError",
    "AdapterError",
    # metadata
    "__version__",
)
