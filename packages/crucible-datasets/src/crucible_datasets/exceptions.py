"""Exceptions raised by crucible-datasets.

```
CrucibleError
└── DatasetError
    ├── DatasetNotFoundError(KeyError)      unknown dataset, split, subset or repository file
    ├── MalformedDataError(ValueError)      a file that cannot be parsed; names file, line, field
    ├── ChecksumError(ValueError)           downloaded or cached bytes differ from their SHA-256
    ├── OfflineError(FileNotFoundError)     offline, and the data is not in the cache
    ├── DownloadError(ConnectionError)      the hub failed or refused the download
    ├── PredictionError(ValueError)         predictions that do not fit the dataset (unknown ids)
    └── SandboxUnavailableError(RuntimeError)  no sandbox backend that isolates can run here
```

Every error carries its context as attributes (named in each class) and pickles with them.
"""

from __future__ import annotations

from crucible_core.exceptions import CrucibleError

__all__ = (
    "ChecksumError",
    "DatasetError",
    "DatasetNotFoundError",
    "DownloadError",
    "MalformedDataError",
    "OfflineError",
    "PredictionError",
    "SandboxUnavailableError",
)


class DatasetError(CrucibleError):
    """Base class of every error raised by crucible-datasets."""


class DatasetNotFoundError(DatasetError, KeyError):
    """An unknown dataset, split or subset, or a file the hub does not have.

    Context: `dataset`, and where relevant `split`, `subset`, `available` (what exists).
    """


class MalformedDataError(DatasetError, ValueError):
    """A data file that cannot be parsed. Context: `path`, `line` (1-based, or `None`), `field`."""


class ChecksumError(DatasetError, ValueError):
    """Bytes whose SHA-256 differs from the recorded one. Context: `path`, `expected`, `actual`."""


class OfflineError(DatasetError, FileNotFoundError):
    """Offline mode is on and the data is not in the cache. Context: `dataset`, `cache_dir`."""


class DownloadError(DatasetError, ConnectionError):
    """The hub failed, refused, or broke off a download. Context: `url`, `status` (or `None`)."""


class PredictionError(DatasetError, ValueError):
    """Predictions that do not fit the dataset. Context: `dataset`, `unknown_ids`, `duplicate_ids`."""


class SandboxUnavailableError(DatasetError, RuntimeError):
    """The sandbox backend asked for (or, for `"auto"`, every isolating one) cannot run here.

    Context: `backend`, `reasons` (backend name -> why it cannot run). The message says how to
    install one, or how to opt in to the non-isolating `process` backend.
    """
