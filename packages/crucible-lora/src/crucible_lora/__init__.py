"""Adapter-agnostic LoRA fine-tuning and evaluation, on Tinker or a local PyTorch adapter."""

from __future__ import annotations

from importlib.metadata import version as _version

from crucible_lora.exceptions import LoraError

__version__: str = _version("crucible-lora")

__all__ = (
    # errors
    "LoraError",
    # metadata
    "__version__",
)
