"""Project settings with explicit precedence: code > environment > project file > built-in.

A project keeps its defaults in `[tool.crucible]` of its `pyproject.toml`, or in a `crucible.toml`
(which wins in the same directory), found from the working directory upwards:

```toml
[tool.crucible]
cache_dir = "~/.cache/crucible/datasets"
results_dir = "runs"

[tool.crucible.telemetry]
store = "postgresql://crucible@localhost/crucible"

[tool.crucible.hedging]
policy = "percentile:95"

[tool.crucible.providers]
timeout = 30
max_tokens = 512
max_retries = 4
```

Each setting also has an environment variable (`CRUCIBLE_CACHE_DIR`, …), and code can pass a value
explicitly. `crucible config` prints every effective value and where it came from.
"""

from __future__ import annotations

from crucible_core._settings import (
    SETTINGS,
    Setting,
    Settings,
    SettingValue,
    find_project_file,
    load_settings,
)

__all__ = (
    "SETTINGS",
    "Setting",
    "SettingValue",
    "Settings",
    "find_project_file",
    "load_settings",
)
