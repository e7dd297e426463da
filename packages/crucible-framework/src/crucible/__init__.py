"""crucible: reproducible, statistically rigorous experiments on LLM reliability, latency and cost.

The facade over the ten crucible distributions. Each member is an attribute, imported on first use so
that `import crucible` stays fast and loads neither scipy, pingouin nor pyarrow:

>>> import crucible
>>> crucible.core.__name__
'crucible_core'

`crucible.show_versions()` prints what a bug report needs.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

from crucible import _versions
from crucible._version import __version__
from crucible._versions import show_versions

if TYPE_CHECKING:
    import crucible_bench as bench
    import crucible_core as core
    import crucible_datasets as datasets
    import crucible_ensemble as ensemble
    import crucible_harness as harness
    import crucible_hedging as hedging
    import crucible_lora as lora
    import crucible_telemetry as telemetry
    import crucible_trace as trace

# every member's `_version.py` is read (not imported): the guard costs no import of a member
_versions.check_member_versions(__version__)

_dynamic_imports: dict[str, str] = {
    short: module for short, (_, module) in _versions.MEMBERS.items()
}

__all__ = (
    # member packages
    "bench",
    "core",
    "datasets",
    "ensemble",
    "harness",
    "hedging",
    "lora",
    "telemetry",
    "trace",
    # helpers
    "show_versions",
    # metadata
    "__version__",
)


def __getattr__(name: str) -> Any:
    module = _dynamic_imports.get(name)
    if module is None:
        raise AttributeError(f"module 'crucible' has no attribute {name!r}")
    value = importlib.import_module(module)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(__all__))
