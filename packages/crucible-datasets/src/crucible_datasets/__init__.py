"""The real benchmarks (GSM8K, MMLU, HumanEval, SciFact, FEVER) cached and versioned, with honest scorers and samplers.

```python
import crucible_datasets as cd

ds = cd.load("gsm8k", split="test", sample_size=200, seed=0)
result = cd.evaluate({item.id: my_model(item.input["question"]) for item in ds}, dataset=ds)
print(result)
```
"""

from __future__ import annotations

from crucible_core._lazy import lazy_getattr as _lazy_getattr
from crucible_datasets._cache import (
    CachedFile,
    CacheEntry,
    CacheListing,
    clear_cache,
    invalidate_cache,
    list_cached,
)
from crucible_datasets._evaluate import (
    BatchEvaluationResult,
    EvaluationResult,
    ItemResult,
    Prediction,
    evaluate,
    evaluate_batch,
)
from crucible_datasets._load import load, load_async
from crucible_datasets._metrics import (
    Label,
    Normalize,
    bleu,
    chrf,
    corpus_bleu,
    corpus_chrf,
    exact_match,
    extract_choice,
    extract_number,
    normalize_answer,
    normalize_label,
    pass_at_k,
    rouge_l,
    token_f1,
)
from crucible_datasets._registry import MMLU_GROUPS, MMLU_SUBJECTS
from crucible_datasets._sampling import (
    Fold,
    k_fold,
    random_sample,
    stratified_sample,
    train_test_split,
)
from crucible_datasets._sandbox import (
    BubblewrapSandbox,
    CodeCheck,
    DockerSandbox,
    ExecutionResult,
    ProcessSandbox,
    Sandbox,
    SandboxConfig,
    UnshareSandbox,
    available_sandboxes,
    execute,
    execute_many,
    get_sandbox,
)
from crucible_datasets._types import Dataset, DatasetMetadata, DatasetVersion, Item
from crucible_datasets._version import __version__
from crucible_datasets.exceptions import (
    ChecksumError,
    DatasetError,
    DatasetNotFoundError,
    DownloadError,
    MalformedDataError,
    OfflineError,
    PredictionError,
    SandboxUnavailableError,
)

__getattr__ = _lazy_getattr(__name__)

__all__ = (
    # loading
    "load",
    "load_async",
    "Dataset",
    "DatasetMetadata",
    "DatasetVersion",
    "Item",
    "MMLU_SUBJECTS",
    "MMLU_GROUPS",
    # cache
    "list_cached",
    "clear_cache",
    "invalidate_cache",
    "CacheListing",
    "CacheEntry",
    "CachedFile",
    # evaluation
    "evaluate",
    "evaluate_batch",
    "Prediction",
    "ItemResult",
    "EvaluationResult",
    "BatchEvaluationResult",
    # metrics
    "exact_match",
    "token_f1",
    "bleu",
    "chrf",
    "corpus_bleu",
    "corpus_chrf",
    "rouge_l",
    "normalize_answer",
    "extract_choice",
    "extract_number",
    "normalize_label",
    "Label",
    "Normalize",
    "pass_at_k",
    # code execution
    "execute",
    "execute_many",
    "ExecutionResult",
    "SandboxConfig",
    "CodeCheck",
    "Sandbox",
    "BubblewrapSandbox",
    "UnshareSandbox",
    "DockerSandbox",
    "ProcessSandbox",
    "available_sandboxes",
    "get_sandbox",
    # sampling
    "random_sample",
    "stratified_sample",
    "train_test_split",
    "k_fold",
    "Fold",
    # errors
    "DatasetError",
    "DatasetNotFoundError",
    "MalformedDataError",
    "ChecksumError",
    "OfflineError",
    "DownloadError",
    "PredictionError",
    "SandboxUnavailableError",
    # metadata
    "__version__",
)
