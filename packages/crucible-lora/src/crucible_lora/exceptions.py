"""Exceptions raised by crucible-lora.

```
CrucibleError
└── LoraError
    ├── LoraConfigError(ValueError)          a bad setting: rank ≤ 0, unknown base model or schedule
    ├── LoraDataError(ValueError)            unusable training data: empty, malformed, too long
    │   └── TokenizerMismatchError           token ids the model cannot embed
    ├── CheckpointNotFoundError(FileNotFoundError)  no checkpoint where one was asked for
    └── AdapterError(RuntimeError)           the training backend failed at run time
```

Usage and configuration mistakes raise eagerly, before anything is trained; `AdapterError` is the
run-time failure and carries the step it happened at and the last checkpoint written before it.
"""

from __future__ import annotations

from crucible_core.exceptions import CrucibleError

__all__ = (
    "AdapterError",
    "CheckpointNotFoundError",
    "LoraConfigError",
    "LoraDataError",
    "LoraError",
    "TokenizerMismatchError",
)


class LoraError(CrucibleError):
    """Base class of every error raised by crucible-lora."""


class LoraConfigError(LoraError, ValueError):
    """A LoRA or experiment setting that cannot be used. Context: `field`, `value`."""


class LoraDataError(LoraError, ValueError):
    """Training or evaluation data that cannot be used. Context: `index` of the bad example, if any."""


class TokenizerMismatchError(LoraDataError):
    """The tokenizer produces ids the model cannot embed. Context: `vocab_size`, `max_token_id`."""


class CheckpointNotFoundError(LoraError, FileNotFoundError):
    """No checkpoint exists at the path or name given. Context: `path`."""


class AdapterError(LoraError, RuntimeError):
    """The training backend failed while running.

    Context: `backend`, `step` (the optimisation step that failed) and `last_checkpoint` (the
    checkpoint written before the failure, or `None`), which stays loadable.
    """
