"""What the viewer knows about run directories: discovered runs, tailed task records, queries.

A run directory is read the way the runner writes it (`manifest.json`, `tasks.jsonl` appended line
by line, `status.json` at the end of each session, `events.jsonl` when a session ends). The task file
is tailed from the last byte read, so a live run costs only its new lines; a line without its
newline yet is a write in progress and is read on the next poll. Records are kept as columns (one
numpy array or list per field) plus the byte offset of each line, so 100k tasks stay small and a
filter or sort is a few vectorised passes; the full record is re-read from its line on demand.
Records may carry fields this module does not know; they are kept in the full record and ignored
by the columns.
"""

from __future__ import annotations

import math
import os
import re
import time
from collections import OrderedDict
from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import orjson

from crucible_core import stats

__all__ = ("Query", "RunData", "RunsIndex")

MANIFEST, TASKS, STATUS, EVENTS = (
    "manifest.json",
    "tasks.jsonl",
    "status.json",
    "events.jsonl",
)
# A run with no final status whose task file changed this recently is running.
LIVE_WINDOW = 120.0
_MAX_DEPTH = 4
_NUMERIC = ("latency", "cost", "input_tokens", "output_tokens", "attempts", "repeat")
SORTABLE = (
    "index",
    "condition",
    "item",
    "repeat",
    "status",
    "correct",
    "latency",
    "cost",
    "input_tokens",
    "output_tokens",
    "attempts",
    "error_type",
    "prediction",
)


def _float(value: Any) -> float:
    try:
        out = float(value)
    except (TypeError, ValueError):
        return math.nan
    return out


class _Categories:
    """Strings interned as small integers (conditions, items, statuses, error kinds)."""

    def __init__(self) -> None:
        self.names: list[str] = []
        self._index: dict[str, int] = {}

    def code(self, name: str) -> int:
        found = self._index.get(name)
        if found is None:
            found = self._index[name] = len(self.names)
            self.names.append(name)
        return found

    def get(self, name: str) -> int | None:
        return self._index.get(name)


class _Column:
    """A growable numpy column."""

    def __init__(self, dtype: Any, fill: Any = 0) -> None:
        self._data = np.full(1024, fill, dtype=dtype)
        self._fill = fill
        self.size = 0

    def extend(self, values: Sequence[Any]) -> None:
        need = self.size + len(values)
        if need > self._data.size:
            grown = np.full(
                max(need, 2 * self._data.size), self._fill, dtype=self._data.dtype
            )
            grown[: self.size] = self._data[: self.size]
            self._data = grown
        self._data[self.size : need] = values
        self.size = need

    @property
    def values(self) -> np.ndarray[Any, Any]:
        return self._data[: self.size]


class Query:
    """One samples query: filters, a sort and a page. Built from request parameters."""

    def __init__(self, params: Mapping[str, str]) -> None:
        def many(name: str) -> tuple[str, ...]:
            raw = params.get(name, "")
            return tuple(sorted(v for v in raw.split(",") if v))

        self.conditions = many("condition")
        self.outcome = params.get(
            "outcome", ""
        )  # correct | incorrect | error | ungraded
        self.error_types = many("error_type")
        self.search = params.get("q", "").strip().lower()
        self.latency_min = _float(params.get("latency_min", "nan"))
        self.latency_max = _float(params.get("latency_max", "nan"))
        self.item = params.get("item", "")
        sort = params.get("sort", "index")
        self.sort = sort if sort in SORTABLE else "index"
        self.descending = params.get("order", "asc") == "desc"
        self.offset = max(0, int(_float(params.get("offset", "0")) or 0))
        self.limit = min(1000, max(1, int(_float(params.get("limit", "100")) or 100)))

    def key(self) -> tuple[Any, ...]:
        """What the filtered and sorted order depends on (not the page)."""
        return (self.conditions, self.outcome, self.error_types, self.search,
                repr(self.latency_min), repr(self.latency_max), self.item, self.sort,
                self.descending)  # fmt: skip


class RunData:
    """One run directory, read incrementally."""

    def __init__(self, path: Path, run_id: str) -> None:
        self.path = path
        """The run directory."""
        self.id = run_id
        """The viewer's id of the run: its path relative to the runs root."""
        self.manifest: dict[str, Any] = {}
        self.status: dict[str, Any] | None = None
        self.sequential: dict[str, Any] | None = None
        """The stopping summary a sequential run wrote into `status.json` (checked), if any."""
        self.sequential_error: str | None = None
        """Why the summary in `status.json` could not be read, when it could not."""
        self.version = 0
        """Bumped whenever new records arrive (or the file was rewritten)."""
        self.malformed = 0
        """Lines that were not task records (skipped)."""
        self.last_change = 0.0
        self._offset = 0
        self._inode: tuple[int, int] | None = None
        self._status_mtime = -1.0
        self._reset_columns()
        self._orders: OrderedDict[tuple[Any, ...], np.ndarray[Any, Any]] = OrderedDict()
        self._items: dict[str, dict[str, Any]] | None = None
        self._code_items: dict[str, Any] = {}
        self.arrivals: list[tuple[float, int]] = []
        """(monotonic time, records) at each poll that found new records: for throughput."""

    def _reset_columns(self) -> None:
        self.conditions = _Categories()
        self.items = _Categories()
        self.statuses = _Categories()
        self.error_types = _Categories()
        self.error_types.code("")
        self.col_condition = _Column(np.int32)
        self.col_item = _Column(np.int32)
        self.col_status = _Column(np.int16)
        self.col_error = _Column(np.int16)
        self.col_correct = _Column(np.int8, -1)  # -1 ungraded, 0, 1
        self.col_offset = _Column(np.int64)
        self.numeric = {name: _Column(np.float64, np.nan) for name in _NUMERIC}
        self.predictions: list[str] = []
        self.keys: dict[str, int] = {}
        self.hedged: list[int] = []
        """Records whose metadata carries a hedging `timeline` (attempts on the request's clock)."""
        self.traced: list[int] = []
        """Records carrying a crucible-trace chain: `metadata.trace`, or `<event>` tags in the answer."""
        self.n = 0

    # -- reading -------------------------------------------------------------------------------
    def load_manifest(self) -> bool:
        """Read the manifest; False when it is missing or unreadable."""
        try:
            value = orjson.loads((self.path / MANIFEST).read_bytes())
        except (OSError, orjson.JSONDecodeError):
            return False
        if not isinstance(value, dict):
            return False
        self.manifest = value
        for c in self.experiment.get("conditions", []):
            if isinstance(c, dict) and "name" in c:
                self.conditions.code(str(c["name"]))
        return True

    @property
    def experiment(self) -> dict[str, Any]:
        """The experiment as described in the manifest."""
        exp = self.manifest.get("experiment")
        return exp if isinstance(exp, dict) else {}

    @property
    def total(self) -> int:
        """Tasks the run will have when complete."""
        exp = self.experiment
        try:
            return (
                len(exp.get("conditions", []))
                * len(self.manifest.get("items", []))
                * int(exp.get("repeats", 1))
            )
        except (TypeError, ValueError):
            return 0

    def refresh(self) -> int:
        """Read what was appended since the last call; returns the number of new records."""
        tasks = self.path / TASKS
        self._refresh_status()
        try:
            st = tasks.stat()
        except OSError:
            return 0
        inode = (st.st_dev, st.st_ino)
        if (
            self._inode is not None and inode != self._inode
        ) or st.st_size < self._offset:
            # replaced or truncated (a resume repairs a torn line): read again from the start
            self._reset_columns()
            self.load_manifest()
            self._offset = 0
            self._orders.clear()
            self.version += 1
        self._inode = inode
        if st.st_size == self._offset:
            return 0
        with tasks.open("rb") as fh:
            fh.seek(self._offset)
            data = fh.read()
        end = data.rfind(b"\n")
        if end < 0:
            return 0  # a line still being written
        added = self._ingest(data[: end + 1], self._offset)
        self._offset += end + 1
        if added:
            self.version += 1
            self.last_change = time.time()
            self._orders.clear()
            self.arrivals.append((time.monotonic(), self.n))
            del self.arrivals[:-600]
        return added

    def _refresh_status(self) -> None:
        path = self.path / STATUS
        try:
            mtime = path.stat().st_mtime
        except OSError:
            self.status = None
            return
        if mtime == self._status_mtime:
            return
        try:
            value = orjson.loads(path.read_bytes())
        except (OSError, orjson.JSONDecodeError):
            return
        self._status_mtime = mtime
        self.status = value if isinstance(value, dict) else None
        self.sequential, self.sequential_error = _sequential_of(self.status)
        self.version += 1

    def _ingest(self, data: bytes, base: int) -> int:
        cond, item, status, error, correct, offsets = [], [], [], [], [], []
        numeric: dict[str, list[float]] = {name: [] for name in _NUMERIC}
        position = base
        before = self.n
        for line in data.split(b"\n")[:-1]:
            start, position = position, position + len(line) + 1
            if not line.strip():
                continue
            try:
                r = orjson.loads(line)
            except orjson.JSONDecodeError:
                self.malformed += 1
                continue
            if not isinstance(r, dict) or "condition" not in r or "item" not in r:
                self.malformed += 1
                continue
            key = str(
                r.get("key", f"{r['condition']}\x1f{r['item']}\x1f{r.get('repeat', 0)}")
            )
            if key in self.keys:  # recorded twice (should not happen): keep the first
                continue
            self.keys[key] = self.n
            meta = r.get("metadata")
            if isinstance(meta, dict) and isinstance(meta.get("timeline"), list):
                self.hedged.append(self.n)
            prediction = r.get("prediction")
            if (isinstance(meta, dict) and isinstance(meta.get("trace"), dict)) or (
                isinstance(prediction, str) and "<event" in prediction
            ):
                self.traced.append(self.n)
            self.n += 1
            cond.append(self.conditions.code(str(r["condition"])))
            item.append(self.items.code(str(r["item"])))
            status.append(self.statuses.code(str(r.get("status", "ok"))))
            error.append(self.error_types.code(str(r.get("error_type") or "")))
            value = r.get("correct")
            correct.append(-1 if value is None else int(bool(value)))
            offsets.append(start)
            for name in _NUMERIC:
                numeric[name].append(_float(r.get(name)))
            self.predictions.append(
                ""
                if prediction is None
                else prediction
                if isinstance(prediction, str)
                else orjson.dumps(prediction).decode()
            )
        self.col_condition.extend(cond)
        self.col_item.extend(item)
        self.col_status.extend(status)
        self.col_error.extend(error)
        self.col_correct.extend(correct)
        self.col_offset.extend(offsets)
        for name in _NUMERIC:
            self.numeric[name].extend(numeric[name])
        return self.n - before

    def record(self, index: int) -> dict[str, Any]:
        """The full record at `index`, re-read from its line."""
        with (self.path / TASKS).open("rb") as fh:
            fh.seek(int(self.col_offset.values[index]))
            value = orjson.loads(fh.readline())
        return value if isinstance(value, dict) else {}

    def records(self, indices: Iterable[int]) -> list[dict[str, Any]]:
        """Several full records, read in file order through one handle."""
        wanted = sorted({int(i) for i in indices})
        out: dict[int, dict[str, Any]] = {}
        with (self.path / TASKS).open("rb") as fh:
            for i in wanted:
                fh.seek(int(self.col_offset.values[i]))
                value = orjson.loads(fh.readline())
                out[i] = value if isinstance(value, dict) else {}
        return [out[int(i)] for i in indices]

    def analysis_records(self) -> list[dict[str, Any]]:
        """Lightweight records with the fields the harness's `analyse` reads."""
        names = self.conditions.names
        items = self.items.names
        statuses = self.statuses.names
        latency = self.numeric["latency"].values.tolist()
        cost = self.numeric["cost"].values.tolist()
        inp = self.numeric["input_tokens"].values.tolist()
        out = self.numeric["output_tokens"].values.tolist()
        correct = self.col_correct.values.tolist()
        return [
            {
                "condition": names[c], "item": items[i], "status": statuses[s],
                "correct": None if k < 0 else bool(k),
                "latency": None if math.isnan(lat) else lat, "cost": None if math.isnan(co) else co,
                "input_tokens": 0 if math.isnan(a) else a, "output_tokens": 0 if math.isnan(b) else b,
            }
            for c, i, s, k, lat, co, a, b in zip(
                self.col_condition.values.tolist(), self.col_item.values.tolist(),
                self.col_status.values.tolist(), correct, latency, cost, inp, out, strict=True,
            )
        ]  # fmt: skip

    # -- state ---------------------------------------------------------------------------------
    def state(self) -> str:
        """`running` (written to lately, no final status), `stalled`, or the last status written."""
        tasks_mtime = self._mtime(TASKS)
        status_mtime = self._mtime(STATUS)
        if self.status is not None and status_mtime >= tasks_mtime:
            return str(self.status.get("status", "unknown"))
        if time.time() - max(tasks_mtime, self._mtime(MANIFEST)) < LIVE_WINDOW:
            return "running"
        return "stalled" if self.status is None else "interrupted"

    def reason(self) -> str | None:
        """Why the run ended as it did (the reason its last status gave), when that status holds."""
        status = self.status or {}
        reason = status.get("reason")
        if reason is None or self.state() != status.get("status"):
            return None
        return str(reason)

    def _mtime(self, name: str) -> float:
        try:
            return (self.path / name).stat().st_mtime
        except OSError:
            return 0.0

    @property
    def live(self) -> bool:
        """Whether the run is being written now."""
        return self.state() == "running"

    def throughput(self) -> float:
        """Tasks per second over the last 30 s of polls (0 when idle)."""
        now = time.monotonic()
        recent = [(t, n) for t, n in self.arrivals if now - t <= 30.0]
        if len(recent) < 2:
            return 0.0
        (t0, n0), (t1, n1) = recent[0], recent[-1]
        return (n1 - n0) / (t1 - t0) if t1 > t0 else 0.0

    def ok_mask(self) -> np.ndarray[Any, Any]:
        """Records that produced an answer (status `ok`)."""
        code = self.statuses.get("ok")
        mask: np.ndarray[Any, Any] = self.col_status.values == (
            -1 if code is None else code
        )
        return mask

    # -- summaries -----------------------------------------------------------------------------
    def condition_names(self) -> list[str]:
        """Conditions in declaration order, then any others seen in records."""
        return list(self.conditions.names)

    def quick_summary(self) -> list[dict[str, Any]]:
        """Per condition: counts, accuracy with a Wilson interval, latency percentiles, spend.

        Cheap enough to send with every live update; the bootstrap intervals and the paired tests
        come from the full analysis.
        """
        level = float(
            self.experiment.get("analysis", {}).get("confidence_level", 0.95) or 0.95
        )
        cond = self.col_condition.values
        correct = self.col_correct.values
        ok = self.ok_mask()
        latency = self.numeric["latency"].values
        cost = self.numeric["cost"].values
        out = []
        for code, name in enumerate(self.conditions.names):
            mine = cond == code
            n = int(mine.sum())
            graded = mine & (correct >= 0)
            n_graded = int(graded.sum())
            n_correct = int((mine & (correct == 1)).sum())
            lat = latency[mine & ok]
            lat = lat[~np.isnan(lat)]
            # an unknown cost is NaN: left out
            costed = int((mine & ~np.isnan(cost)).sum())
            spent = float(np.nansum(cost[mine]))
            row: dict[str, Any] = {
                "condition": name,
                "tasks": n,
                "errors": int((mine & ~ok).sum()),
                "graded": n_graded,
                "correct": n_correct,
                "accuracy": n_correct / n_graded if n_graded else None,
                "ci": None,
                "spent": spent if costed else None,
                "cost_per_task": spent / costed if costed else None,
                "p50": None,
                "p95": None,
                "p99": None,
                "mean_latency": float(lat.mean()) if lat.size else None,
                "input_tokens": float(np.nanmean(self.numeric["input_tokens"].values[mine & ok])) if (mine & ok).any() else None,
                "output_tokens": float(np.nanmean(self.numeric["output_tokens"].values[mine & ok])) if (mine & ok).any() else None,
            }  # fmt: skip
            if n_graded:
                ci = stats.proportion_ci(n_correct, n_graded, confidence_level=level)
                row["ci"] = [ci.low, ci.high]
            if lat.size:
                row["p50"], row["p95"], row["p99"] = (
                    float(v) for v in stats.percentiles(lat, [50, 95, 99])
                )
            out.append(row)
        return out

    def progress(self) -> dict[str, Any]:
        """Recorded, pending, spend, throughput, state, budget: what a live page shows first."""
        spent = float(np.nansum(self.numeric["cost"].values))
        budget = self.experiment.get("budget") or {}
        limit = budget.get("max_total") if isinstance(budget, dict) else None
        errors = int((~self.ok_mask()).sum())
        return {
            "state": self.state(),
            "reason": self.reason(),
            "sequential": self.sequential,
            "sequential_error": self.sequential_error,
            "recorded": self.n,
            "total": self.total,
            "pending": max(0, self.total - self.n),
            "errors": errors,
            "spent": spent,
            "budget": limit,
            "budget_used": spent / float(limit) if limit else None,
            "throughput": self.throughput(),
            "version": self.version,
            "malformed": self.malformed,
            "updated": self.last_change or self._mtime(TASKS),
        }

    def overview(self) -> dict[str, Any]:
        """Everything the runs list shows of this run."""
        exp = self.experiment
        summary = self.quick_summary()
        dataset = exp.get("dataset")
        source = self.manifest.get("dataset")
        if isinstance(source, dict) and source.get("name") not in (None, "inline"):
            dataset = source.get("name")
        return {
            "id": self.id,
            "run_id": self.manifest.get("run_id"),
            "name": exp.get("name"),
            "description": exp.get("description"),
            "dataset": dataset,
            "conditions": self.condition_names(),
            "repeats": exp.get("repeats"),
            "items": len(self.manifest.get("items", [])),
            "created_at": self.manifest.get("created_at"),
            "finished_at": (self.status or {}).get("updated_at")
            if self.state() != "running"
            else None,
            "accuracy": {r["condition"]: r["accuracy"] for r in summary},
            **self.progress(),
        }

    # -- samples -------------------------------------------------------------------------------
    def order(self, query: Query) -> np.ndarray[Any, Any]:
        """Indices of the records the query selects, in its order (cached per data version)."""
        key = query.key()
        found = self._orders.get(key)
        if found is not None:
            self._orders.move_to_end(key)
            return found
        mask = np.ones(self.n, dtype=bool)
        if query.conditions:
            codes = [self.conditions.get(c) for c in query.conditions]
            mask &= np.isin(
                self.col_condition.values, [c for c in codes if c is not None]
            )
        correct = self.col_correct.values
        if query.outcome == "correct":
            mask &= correct == 1
        elif query.outcome == "incorrect":
            mask &= correct == 0
        elif query.outcome == "error":
            mask &= ~self.ok_mask()
        elif query.outcome == "ungraded":
            mask &= correct < 0
        if query.error_types:
            codes = [self.error_types.get(e) for e in query.error_types]
            mask &= np.isin(self.col_error.values, [c for c in codes if c is not None])
        latency = self.numeric["latency"].values
        if not math.isnan(query.latency_min):
            mask &= latency >= query.latency_min
        if not math.isnan(query.latency_max):
            mask &= latency <= query.latency_max
        if query.item:
            code = self.items.get(query.item)
            mask &= self.col_item.values == (-1 if code is None else code)
        if query.search:
            mask &= self._search(query.search)
        selected = np.flatnonzero(mask)
        ordered = self._sorted(selected, query.sort, descending=query.descending)
        self._orders[key] = ordered
        while len(self._orders) > 16:
            self._orders.popitem(last=False)
        return ordered

    def _search(self, needle: str) -> np.ndarray[Any, Any]:
        """Records whose item id, item text, prediction or error mentions `needle` (case-insensitive)."""
        items = self.item_texts()
        hit_items = np.array(
            [needle in name.lower() or needle in items.get(name, "") for name in self.items.names]
            + [False],
            dtype=bool,
        )  # fmt: skip
        mask = hit_items[self.col_item.values] if self.n else np.zeros(0, dtype=bool)
        pattern = re.compile(re.escape(needle), re.IGNORECASE)
        hits = np.fromiter(
            (pattern.search(p) is not None for p in self.predictions),
            dtype=bool,
            count=self.n,
        )
        found: np.ndarray[Any, Any] = mask | hits
        return found

    def _sorted(
        self, selected: np.ndarray[Any, Any], column: str, *, descending: bool
    ) -> np.ndarray[Any, Any]:
        if column == "index":
            return selected[::-1] if descending else selected
        if column in ("condition", "item", "status", "error_type"):
            cats, codes = {
                "condition": (self.conditions, self.col_condition),
                "item": (self.items, self.col_item),
                "status": (self.statuses, self.col_status),
                "error_type": (self.error_types, self.col_error),
            }[column]
            rank = np.empty(len(cats.names), dtype=np.float64)
            rank[np.argsort(np.array(cats.names, dtype=object), kind="stable")] = (
                np.arange(len(cats.names))
            )
            rank[[i for i, name in enumerate(cats.names) if not name]] = np.nan
            keys = rank[codes.values[selected]] if len(cats.names) else selected
        elif column == "correct":
            keys = self.col_correct.values[selected]
        elif column == "prediction":
            texts = np.array([self.predictions[i] for i in selected], dtype=object)
            keys = np.empty(selected.size, dtype=np.int64)
            keys[np.argsort(texts, kind="stable")] = np.arange(selected.size)
        else:
            keys = self.numeric[column].values[selected]
        keys = keys.astype(np.float64)
        if descending:
            keys = -keys
        keys[np.isnan(keys)] = np.inf  # missing values last in either direction
        return selected[np.argsort(keys, kind="stable")]

    def rows(self, indices: Sequence[int]) -> list[dict[str, Any]]:
        """Table rows (from the columns; no file reads)."""
        names, items = self.conditions.names, self.items.names
        statuses, errors = self.statuses.names, self.error_types.names
        out = []
        for i in indices:
            k = int(self.col_correct.values[i])
            prediction = self.predictions[i]
            out.append(
                {
                    "index": int(i),
                    "condition": names[self.col_condition.values[i]],
                    "item": items[self.col_item.values[i]],
                    "repeat": _int(self.numeric["repeat"].values[i]),
                    "status": statuses[self.col_status.values[i]],
                    "correct": None if k < 0 else bool(k),
                    "error_type": errors[self.col_error.values[i]] or None,
                    "prediction": prediction[:240],
                    "truncated": len(prediction) > 240,
                    **{
                        name: _num(self.numeric[name].values[i])
                        for name in ("latency", "cost", "input_tokens", "output_tokens", "attempts")
                    },
                }
            )  # fmt: skip
        return out

    def facets(self) -> dict[str, Any]:
        """The values the filters offer."""
        latency = self.numeric["latency"].values
        finite = latency[~np.isnan(latency)]
        return {
            "conditions": self.conditions.names,
            "error_types": [e for e in self.error_types.names if e],
            "statuses": self.statuses.names,
            "latency": [float(finite.min()), float(finite.max())]
            if finite.size
            else None,
            "items": len(self.items.names),
        }

    # -- items (text and references) -----------------------------------------------------------
    def item_texts(self) -> dict[str, str]:
        """Lower-cased item text by item id, for search (empty when the items cannot be loaded)."""
        return {k: v["search"] for k, v in self.item_details().items()}

    def item_details(self) -> dict[str, dict[str, Any]]:
        """Input and reference of each item: from the records if they carry them, else the dataset.

        The harness records item ids only; a named dataset is loaded again (from the local cache) to
        show its text. Inline datasets are not stored in the run, so their text is unknown.
        """
        if self._items is not None:
            return self._items
        found: dict[str, dict[str, Any]] = {}
        source = self.manifest.get("dataset")
        name = source.get("name") if isinstance(source, dict) else None
        if isinstance(name, str) and name != "inline":
            try:
                from crucible_harness._datasets import load_items

                wanted = set(self.manifest.get("items", []))
                loaded, _ = load_items(name, split=source.get("split"))  # type: ignore[union-attr]
                self._code_items = {
                    it.id: it
                    for it in loaded
                    if it.id in wanted and "test" in it.metadata
                }
                for it in loaded:
                    if it.id in wanted:
                        found[it.id] = {
                            "input": it.input if isinstance(it.input, str) else orjson.dumps(it.input, default=str).decode(),
                            "expected": None if it.expected is None else str(it.metadata.get("reference", it.expected)),
                        }  # fmt: skip
            except Exception:
                found = {}
        for v in found.values():
            v["search"] = str(v.get("input") or "").lower()
        self._items = found
        return found

    def item_view(self, item: str) -> dict[str, Any] | None:
        """Every task of one item, grouped by condition and repeat, with the item's text."""
        code = self.items.get(item)
        if code is None:
            return None
        indices = np.flatnonzero(self.col_item.values == code).tolist()
        records = [
            {**r, "_index": i}
            for i, r in zip(indices, self.records(indices), strict=True)
        ]
        details = self.item_details().get(item, {})
        by_condition: dict[str, list[dict[str, Any]]] = {
            c: [] for c in self.conditions.names
        }
        for r in sorted(
            records, key=lambda r: (str(r.get("condition")), _int(r.get("repeat")) or 0)
        ):
            by_condition.setdefault(str(r.get("condition")), []).append(r)  # fmt: skip
        reference = details.get("expected")
        record_input = None
        for r in records:
            reference = r.get("expected", r.get("reference", reference))
            record_input = r.get("input", record_input)
        return {
            "item": item,
            "scorer": self.manifest.get("scorer"),
            "code": item in self._code_items,
            "input": record_input if record_input is not None else details.get("input"),
            "reference": None if reference is None else str(reference),
            "conditions": {c: rs for c, rs in by_condition.items() if rs},
        }

    def sandbox(self, index: int, *, timeout: float = 10.0) -> dict[str, Any] | None:
        """Run one code task's program again in crucible-datasets' sandbox, as its scorer did.

        The check is the scorer's: the problem's prompt and the recorded completion, judged by the
        problem's tests in the sandbox's judge process. None when the task is not a code item of a
        named dataset.
        """
        if not 0 <= index < self.n:
            return None
        self.item_details()
        record = self.record(index)
        item = self._code_items.get(str(record.get("item")))
        if item is None:
            return None
        from crucible_datasets import SandboxConfig, execute
        from crucible_harness._code import _check

        check = _check(
            item, record.get("prediction")
        )  # the scorer's own check of this answer
        result = execute(check, config=SandboxConfig(timeout=timeout))
        return {
            "index": index,
            "item": item.id,
            "recorded_verdict": record.get("correct"),
            "passed": result.passed,
            "status": str(result.status),
            "reason": str(result.reason),
            "returncode": result.returncode,
            "stdout": result.stdout,
            "stderr": result.stderr,
            "duration": result.duration,
            "backend": result.backend,
            "error_type": result.error_type,
            "message": result.message,
            "program": check.program(),
        }

    # -- disagreements -------------------------------------------------------------------------
    def per_item_accuracy(self) -> tuple[np.ndarray[Any, Any], np.ndarray[Any, Any]]:
        """(correct counts, graded counts), each items × conditions."""
        n_items, n_cond = len(self.items.names), len(self.conditions.names)
        graded = self.col_correct.values >= 0
        flat = self.col_item.values[graded] * n_cond + self.col_condition.values[graded]
        counts = np.bincount(flat, minlength=n_items * n_cond).reshape(n_items, n_cond)
        right = np.bincount(
            flat, weights=self.col_correct.values[graded], minlength=n_items * n_cond
        ).reshape(n_items, n_cond)
        return right, counts

    def disagreements(
        self, a: str | None, b: str | None, direction: str, offset: int, limit: int
    ) -> dict[str, Any]:
        """Items on which conditions' per-item accuracies differ (with `a` and `b`: only that pair).

        With one repeat these are McNemar's discordant pairs; `direction` picks `a` right and `b`
        wrong (`a`), the reverse (`b`), or both (``).
        """
        right, counts = self.per_item_accuracy()
        names = self.conditions.names
        with np.errstate(invalid="ignore", divide="ignore"):
            acc = np.where(counts > 0, right / np.maximum(counts, 1), np.nan)
        pair = a in names and b in names
        if pair:
            ia, ib = names.index(a), names.index(b)  # type: ignore[arg-type]
            both = (counts[:, ia] > 0) & (counts[:, ib] > 0)
            diff = acc[:, ia] - acc[:, ib]
            if direction == "a":
                mask = both & (diff > 0)
            elif direction == "b":
                mask = both & (diff < 0)
            else:
                mask = both & (diff != 0)
            spread = np.abs(np.nan_to_num(diff))
        else:
            seen = counts > 0
            hi = (
                np.nanmax(np.where(seen, acc, -np.inf), axis=1)
                if names
                else np.zeros(0)
            )
            lo = (
                np.nanmin(np.where(seen, acc, np.inf), axis=1) if names else np.zeros(0)
            )
            mask = (seen.sum(axis=1) >= 2) & (hi > lo)
            spread = np.where(mask, hi - lo, 0.0)
        selected = np.flatnonzero(mask)
        selected = selected[np.argsort(-spread[selected], kind="stable")]
        page = selected[offset : offset + limit]
        counts_table = None
        if pair:
            ra, rb = acc[:, ia], acc[:, ib]
            both_seen = (counts[:, ia] > 0) & (counts[:, ib] > 0)
            counts_table = {
                "a_only": int((both_seen & (ra > rb)).sum()),
                "b_only": int((both_seen & (rb > ra)).sum()),
                "same": int((both_seen & (ra == rb)).sum()),
            }
        return {
            "total": int(selected.size),
            "offset": offset,
            "conditions": names,
            "pair": counts_table,
            "rows": [
                {
                    "item": self.items.names[i],
                    "accuracy": [None if math.isnan(v) else float(v) for v in acc[i]],
                    "correct": [int(v) for v in right[i]],
                    "graded": [int(v) for v in counts[i]],
                    "predictions": self._first_predictions(int(i)),
                }
                for i in page
            ],
        }

    def _first_predictions(self, item_code: int) -> list[str | None]:
        """The first repeat's prediction of each condition on one item (from the columns)."""
        out: list[str | None] = [None] * len(self.conditions.names)
        for i in np.flatnonzero(self.col_item.values == item_code):
            c = int(self.col_condition.values[i])
            if out[c] is None:
                out[c] = self.predictions[int(i)][:160]
        return out

    # -- latency -------------------------------------------------------------------------------
    def latency(self, bins: int = 40, points: int = 400) -> dict[str, Any]:
        """Per condition: a histogram on shared log-spaced bins and an ECDF (at most `points` steps)."""
        latency = self.numeric["latency"].values
        finite = self.ok_mask() & ~np.isnan(latency) & (latency > 0)
        out: dict[str, Any] = {"conditions": [], "edges": []}
        if not finite.any():
            return out
        lo, hi = float(latency[finite].min()), float(latency[finite].max())
        edges = (
            np.geomspace(lo, hi, bins + 1)
            if hi > lo * 1.0001
            else np.linspace(lo * 0.9, hi * 1.1 + 1e-9, bins + 1)
        )
        out["edges"] = edges.tolist()
        for code, name in enumerate(self.conditions.names):
            values = np.sort(latency[finite & (self.col_condition.values == code)])
            if not values.size:
                out["conditions"].append(
                    {"condition": name, "n": 0, "counts": [], "ecdf": []}
                )
                continue
            counts, _ = np.histogram(values, bins=edges)
            probs = np.linspace(0, 1, min(points, values.size) + 1)[1:]
            xs = np.quantile(values, probs, method="inverted_cdf")
            out["conditions"].append(
                {
                    "condition": name,
                    "n": int(values.size),
                    "counts": counts.tolist(),
                    "ecdf": [[float(x), float(p)] for x, p in zip(xs, probs, strict=True)],
                    "p50": float(np.quantile(values, 0.5)),
                    "p95": float(np.quantile(values, 0.95)),
                    "p99": float(np.quantile(values, 0.99)),
                }
            )  # fmt: skip
        return out

    def hedges(self, limit: int = 200) -> list[dict[str, Any]]:
        """Hedged tasks' attempts, from records whose metadata carries a `timeline`."""
        out: list[dict[str, Any]] = []
        for i in self.hedged[:limit]:
            r = self.record(i)
            meta = r.get("metadata")
            timeline = meta.get("timeline") if isinstance(meta, dict) else None
            if not isinstance(timeline, list) or not timeline:
                continue
            out.append(
                {
                    "index": int(i),
                    "condition": r.get("condition"),
                    "item": r.get("item"),
                    "repeat": r.get("repeat"),
                    "attempts": [
                        {
                            "index": a.get("index"),
                            "start_ms": _num(a.get("start_ms")),
                            "end_ms": _num(a.get("end_ms")),
                            "outcome": str(a.get("outcome", "")),
                        }
                        for a in timeline
                        if isinstance(a, dict)
                    ],
                }
            )
        return out

    # -- traces --------------------------------------------------------------------------------
    def traces(self, limit: int = 500) -> list[dict[str, Any]]:
        """Tasks that carry a reasoning trace (the first `limit`), for links to the trace viewer."""
        names, items = self.conditions.names, self.items.names
        cond, item = self.col_condition.values, self.col_item.values
        return [{"index": int(i), "condition": names[int(cond[i])], "item": items[int(item[i])]}
                for i in self.traced[:limit]]  # fmt: skip

    def trace_source(self, index: int) -> tuple[str, Any] | None:
        """`("chain", dict)` from `metadata.trace`, `("text", str)` from the answer, or None."""
        if index not in set(self.traced):
            return None
        r = self.record(index)
        meta = r.get("metadata")
        if isinstance(meta, dict) and isinstance(meta.get("trace"), dict):
            return "chain", meta["trace"]
        prediction = r.get("prediction")
        return ("text", prediction) if isinstance(prediction, str) else None

    # -- events --------------------------------------------------------------------------------
    def events(self, name: str, text: str, offset: int, limit: int) -> dict[str, Any]:
        """Telemetry events of the run (written when each session ends), filtered and paged."""
        path = self.path / EVENTS
        rows: list[dict[str, Any]] = []
        names: dict[str, int] = {}
        total = 0
        needle = text.lower()
        try:
            fh = path.open("rb")
        except OSError:
            return {"total": 0, "offset": offset, "names": {}, "rows": []}
        with fh:
            for line in fh:
                try:
                    e = orjson.loads(line)
                except orjson.JSONDecodeError:
                    continue
                if not isinstance(e, dict):
                    continue
                event_name = str(e.get("name", ""))
                names[event_name] = names.get(event_name, 0) + 1
                if name and not event_name.startswith(name):
                    continue
                if needle and needle not in line.decode("utf-8", "replace").lower():
                    continue
                if offset <= total < offset + limit:
                    rows.append(e)
                total += 1
        return {"total": total, "offset": offset, "names": names, "rows": rows}


def _num(value: Any) -> float | None:
    out = _float(value)
    return None if math.isnan(out) or math.isinf(out) else out


def _int(value: Any) -> int | None:
    out = _float(value)
    return None if math.isnan(out) else int(out)


class RunsIndex:
    """Every run directory under a root (the root itself when it is a run)."""

    def __init__(self, root: Path) -> None:
        self.root = root.resolve()
        """The runs root; nothing outside it is ever read."""
        self.runs: dict[str, RunData] = {}
        self._scanned = 0.0

    def scan(self, *, force: bool = False) -> bool:
        """Find run directories (at most every 2 s unless forced); True when runs came or went."""
        now = time.monotonic()
        if not force and now - self._scanned < 2.0:
            return False
        self._scanned = now
        before = set(self.runs)
        found: dict[str, Path] = {}
        if (self.root / MANIFEST).is_file():
            found[self.root.name or "run"] = self.root
        else:
            self._walk(self.root, 0, found)
        for run_id, path in found.items():
            if run_id not in self.runs:
                data = RunData(path, run_id)
                if data.load_manifest():
                    data.refresh()
                    self.runs[run_id] = data
        for gone in set(self.runs) - set(found):
            del self.runs[gone]
        return set(self.runs) != before

    def _walk(self, directory: Path, depth: int, found: dict[str, Path]) -> None:
        if depth > _MAX_DEPTH:
            return
        try:
            entries = sorted(os.scandir(directory), key=lambda e: e.name)
        except OSError:
            return
        for entry in entries:
            if entry.name.startswith(".") or not entry.is_dir(follow_symlinks=False):
                continue
            path = Path(entry.path)
            if (path / MANIFEST).is_file():
                found[path.relative_to(self.root).as_posix()] = path
            else:
                self._walk(path, depth + 1, found)

    def get(self, run_id: str) -> RunData | None:
        """The run with this id (a key of the index: never a path resolved from the request)."""
        found = self.runs.get(run_id)
        if found is None:
            self.scan(force=True)
            found = self.runs.get(run_id)
        return found

    def refresh(self) -> list[RunData] | None:
        """Poll every run; returns those that changed (None: none did, and no run came or went)."""
        listing = self.scan()
        changed = []
        for data in self.runs.values():
            before = data.version
            data.refresh()
            if data.version != before:
                changed.append(data)
        return changed if changed or listing else None


def _sequential_of(
    status: dict[str, Any] | None,
) -> tuple[dict[str, Any] | None, str | None]:
    """A sequential run's stopping summary from its status, checked as `load_run` checks it."""
    written = (status or {}).get("sequential")
    if written is None:
        return None, None
    import attrs

    from crucible_core.exceptions import SerializationError
    from crucible_harness._sequential import SequentialStop

    try:
        summary = SequentialStop.from_dict(written)
    except SerializationError as err:
        return None, f"status.json holds a damaged sequential summary: {err.message}"
    return {
        **summary.to_dict(), "reason": summary.reason,
        "comparisons": [
            {**attrs.asdict(c), "confidence_interval": [_finite(v) for v in c.confidence_interval],
             "difference": _finite(c.difference), "pvalue": _finite(c.pvalue)}
            for c in summary.comparisons
        ],
    }, None  # fmt: skip


def _finite(value: float) -> float | None:
    return value if math.isfinite(value) else None
