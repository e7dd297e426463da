"""Batching: per-epoch seeded shuffles that never drop data unless asked, and padding."""

from __future__ import annotations

from collections.abc import Sequence
from typing import TypeVar

import numpy as np
import numpy.typing as npt

from crucible_lora._data import Datum
from crucible_lora.exceptions import LoraConfigError, LoraDataError

__all__ = ("PaddedBatch", "batches", "pad_batch", "steps_per_epoch")

T = TypeVar("T")


def steps_per_epoch(n: int, *, batch_size: int, drop_last: bool = False) -> int:
    """How many batches one epoch over `n` examples makes."""
    return n // batch_size if drop_last else -(-n // batch_size)


def batches(
    data: Sequence[T],
    *,
    batch_size: int,
    seed: int,
    epoch: int,
    shuffle: bool = True,
    drop_last: bool = False,
) -> list[list[T]]:
    """Split `data` into batches, reshuffled for each epoch from `(seed, epoch)`.

    The same `seed` and `epoch` always give the same batches, and every example appears exactly
    once per epoch; the last batch is smaller when `batch_size` does not divide `len(data)`,
    unless `drop_last=True` drops it.

    Raises:
        LoraConfigError: when `batch_size < 1`.
        LoraDataError: when `data` is empty, or `drop_last` would leave no batch.
    """
    if batch_size < 1:
        raise LoraConfigError(
            f"batch_size must be at least 1, got {batch_size!r}",
            field="batch_size",
            value=batch_size,
        )
    if not data:
        raise LoraDataError(
            "the dataset is empty: give at least one example to train on", index=None
        )
    order = np.arange(len(data))
    if shuffle:
        rng = np.random.default_rng([seed, epoch])
        order = rng.permutation(len(data))
    n = steps_per_epoch(len(data), batch_size=batch_size, drop_last=drop_last)
    if n == 0:
        raise LoraDataError(
            f"drop_last=True with batch_size={batch_size} and {len(data)} examples leaves "
            "no batch: lower `batch_size` or keep the last partial batch",
            index=None,
        )
    return [
        [data[int(i)] for i in order[k * batch_size : (k + 1) * batch_size]]
        for k in range(n)
    ]


class PaddedBatch:
    """A batch of [`Datum`][crucible_lora.Datum]s as rectangular arrays, right-padded.

    Padding positions have weight 0 and attention mask 0, so they carry no loss.
    """

    def __init__(
        self,
        input_ids: npt.NDArray[np.int64],
        target_ids: npt.NDArray[np.int64],
        weights: npt.NDArray[np.float32],
        attention_mask: npt.NDArray[np.int64],
    ) -> None:
        self.input_ids = input_ids
        """`(batch, length)` input token ids."""
        self.target_ids = target_ids
        """`(batch, length)` next-token ids (padding: `pad_id`)."""
        self.weights = weights
        """`(batch, length)` loss mask."""
        self.attention_mask = attention_mask
        """`(batch, length)` 1 for real tokens, 0 for padding."""

    @property
    def n_tokens(self) -> int:
        """Real (unpadded) input tokens in the batch."""
        return int(self.attention_mask.sum())

    @property
    def n_trained(self) -> int:
        """Target tokens that carry loss."""
        return int(self.weights.sum())


def pad_batch(batch: Sequence[Datum], *, pad_id: int) -> PaddedBatch:
    """Stack `batch` into a [`PaddedBatch`][crucible_lora.PaddedBatch], right-padding with `pad_id`.

    Raises:
        LoraDataError: when the batch is empty.
    """
    if not batch:
        raise LoraDataError("cannot pad an empty batch", index=None)
    width = max(len(d) for d in batch)
    shape = (len(batch), width)
    inputs = np.full(shape, pad_id, dtype=np.int64)
    targets = np.full(shape, pad_id, dtype=np.int64)
    weights = np.zeros(shape, dtype=np.float32)
    mask = np.zeros(shape, dtype=np.int64)
    for row, d in enumerate(batch):
        n = len(d)
        inputs[row, :n] = d.input_tokens
        targets[row, :n] = d.target_tokens
        weights[row, :n] = d.weights
        mask[row, :n] = 1
    return PaddedBatch(inputs, targets, weights, mask)
