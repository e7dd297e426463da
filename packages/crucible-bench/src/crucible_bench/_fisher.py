"""Fisher's exact test for r × c tables: a network algorithm, and R's Monte Carlo p-value.

The exact p-value sums the probabilities of all tables with the observed margins whose
probability is at most the observed table's (times 1 + 1e-7, R's relative tolerance).

**Network.** Columns are processed one per stage; a node is the multiset of row totals still
to fill (sorted, since the future does not depend on row order), as in Mehta & Patel (1983,
1986) and R's FEXACT. A table is a path from the root to the last stage, and its probability is
`exp(const + Σ_j m_j)` with `m_j = log(c_j! / Π_i n_ij!)` the edge of column j. For every node
the longest and shortest future (and past) are computed exactly by dynamic programming over the
network, and the total future mass in closed form (`log(N_s! / Π s_i!)`).

**Meet in the middle.** Past path lengths are carried forward from the root, and future path
lengths backward from the last stage, until the two frontiers meet; each side extends the one
that is cheaper to expand. On the way a path is settled as soon as the bounds allow: a past
whose longest completion is already at most the observed probability contributes its whole
future mass at once (a future likewise folds into a per-node mass), and one whose shortest
completion exceeds it is dropped. Equal path lengths (to 1e-9 in log scale) are merged. At the
meeting stage each node joins its pasts and futures by sorting.
"""

from __future__ import annotations

import math
from typing import TypeAlias

import numpy as np
from numpy.typing import NDArray

IntArray: TypeAlias = NDArray[np.int64]
FloatArray: TypeAlias = NDArray[np.float64]

_GRID = 1e-9  # path lengths closer than this (log scale) are merged
_TOLERANCE = 1e-7  # R: tables with P <= P_obs * (1 + 1e-7) count as at least as extreme


def _expand(counts: IntArray) -> tuple[IntArray, IntArray]:
    """For groups of the given sizes: each member's group and its position within the group."""
    group = np.repeat(np.arange(counts.size), counts)
    start = np.cumsum(counts) - counts
    return group, np.arange(int(counts.sum())) - np.repeat(start, counts)


def _fills(caps: IntArray, total: int) -> tuple[IntArray, IntArray]:
    """Every column with sum `total` under each row of capacities `caps`: (source row, fills)."""
    n, r = caps.shape
    rest = np.concatenate(
        [np.cumsum(caps[:, ::-1], axis=1)[:, ::-1], np.zeros((n, 1), np.int64)], axis=1
    )
    src = np.arange(n)
    parts = np.zeros((n, 0), dtype=np.int64)
    used = np.zeros(n, dtype=np.int64)
    for i in range(r - 1):
        lo = np.maximum(0, total - used - rest[src, i + 1])
        hi = np.minimum(caps[src, i], total - used)
        group, offset = _expand(np.maximum(hi - lo + 1, 0))
        value = lo[group] + offset
        parts = np.column_stack([parts[group], value])
        used = used[group] + value
        src = src[group]
    return src, np.column_stack([parts, total - used])


def _starts(group: IntArray, key: IntArray) -> tuple[IntArray, IntArray]:
    """Order sorting by (`group`, `key`), both non-negative, and the start of each distinct pair."""
    span = int(key.max()) + 1 if key.size else 1
    if key.size and (int(group.max()) + 1) * span < 2**62:
        combined = group * span + key  # one integer sort is much faster than a lexsort
        order = np.argsort(combined, kind="stable")
        c = combined[order]
        new = np.r_[True, c[1:] != c[:-1]]
    else:
        order = np.lexsort((key, group))
        g, k = group[order], key[order]
        new = np.r_[True, (g[1:] != g[:-1]) | (k[1:] != k[:-1])]
    return order, np.flatnonzero(new)


def _merge(
    node: IntArray, value: FloatArray, weight: FloatArray
) -> tuple[IntArray, FloatArray, FloatArray]:
    """Merge path lengths that fall on one node within `_GRID`, summing their weights.

    A merged length is the log of the weighted mean of `exp(length)`, so the probability mass
    carried on is exact; only which side of the observed probability it falls on is decided at
    `_GRID` resolution (far finer than R's relative tolerance of 1e-7).
    """
    if not value.size:
        return node, value, weight
    key = np.round(value / _GRID).astype(np.int64)
    order, start = _starts(node, key)
    value, weight = value[order], weight[order]
    lead = np.repeat(value[start], np.diff(np.append(start, order.size)))
    total = np.add.reduceat(weight, start)
    mean = np.add.reduceat(weight * np.exp(value - lead), start) / total
    return node[order][start], value[start] + np.log(mean), total


def _log_sum(log_values: FloatArray) -> float:
    if not log_values.size:
        return -math.inf
    top = float(log_values.max())
    return top + math.log(float(np.exp(log_values - top).sum()))


class _Network:
    """The network of one table: nodes per stage, merged edges, and exact path bounds."""

    def __init__(self, rows: IntArray, cols: IntArray, lf: FloatArray) -> None:
        self.cols = cols
        k_last = cols.size - 1
        r = rows.size
        base = int(rows.sum()) + 1
        self.nodes: list[IntArray] = [rows[None, :]]
        # per stage: (src, dst, edge length, multiplicity), sorted by src
        self.edges: list[tuple[IntArray, IntArray, FloatArray, FloatArray]] = []
        for k in range(k_last):
            caps = self.nodes[k]
            src, fill = _fills(caps, int(cols[k]))
            length = lf[cols[k]] - lf[fill].sum(axis=1)
            child = np.sort(caps[src] - fill, axis=1)
            if r * math.log2(base) < 62:
                code = child @ (base ** np.arange(r, dtype=np.int64))
                _, first, dst = np.unique(code, return_index=True, return_inverse=True)
                self.nodes.append(child[first])
            else:
                unique, dst = np.unique(child, axis=0, return_inverse=True)
                self.nodes.append(unique)
            width = len(self.nodes[k + 1])
            pair, length, mult = _merge(
                src * width + dst.ravel(), length, np.ones(length.size)
            )
            self.edges.append((pair // width, pair % width, length, mult))
        self.total = [lf[s.sum(axis=1)] - lf[s].sum(axis=1) for s in self.nodes]
        self.out_start = [
            np.searchsorted(src, np.arange(len(self.nodes[k]) + 1))
            for k, (src, _, _, _) in enumerate(self.edges)
        ]
        # longest/shortest future from each node (the last column is forced)
        self.max_future: list[FloatArray] = [self.total[k_last]]
        self.min_future: list[FloatArray] = [self.total[k_last]]
        for k in range(k_last - 1, -1, -1):
            src, dst, length, _ = self.edges[k]
            start = self.out_start[k][:-1]
            self.max_future.insert(
                0, np.maximum.reduceat(length + self.max_future[0][dst], start)
            )
            self.min_future.insert(
                0, np.minimum.reduceat(length + self.min_future[0][dst], start)
            )
        # longest/shortest past into each node
        self.max_past: list[FloatArray] = [np.zeros(1)]
        self.min_past: list[FloatArray] = [np.zeros(1)]
        for k in range(k_last):
            src, dst, length, _ = self.edges[k]
            hi = np.full(len(self.nodes[k + 1]), -np.inf)
            lo = np.full(len(self.nodes[k + 1]), np.inf)
            np.maximum.at(hi, dst, self.max_past[k][src] + length)
            np.minimum.at(lo, dst, self.min_past[k][src] + length)
            self.max_past.append(hi)
            self.min_past.append(lo)


def fisher_network_pvalue(table: IntArray) -> float:
    """Exact two-sided p-value of an r × c table (no all-zero rows or columns, r, c ≥ 2)."""
    from scipy.special import gammaln

    t = table if table.shape[0] <= table.shape[1] else table.T  # short node vectors
    rows = np.sort(t.sum(axis=1))
    cols = np.sort(t.sum(axis=0))[::-1]
    n = int(t.sum())
    lf: FloatArray = gammaln(np.arange(n + 1, dtype=np.float64) + 1.0)
    const = float(lf[rows].sum() - lf[n])
    observed = float(lf[cols].sum() - lf[t].sum())
    limit = observed + math.log1p(_TOLERANCE)  # in path length, excluding `const`
    net = _Network(rows, cols, lf)
    k_last = cols.size - 1
    settled: list[float] = []  # log probabilities of settled masses

    def settle_pasts(
        k: int, node: IntArray, value: FloatArray, weight: FloatArray
    ) -> tuple[IntArray, FloatArray, FloatArray]:
        done = value + net.max_future[k][node] <= limit
        if done.any():
            settled.append(
                _log_sum(
                    const
                    + np.log(weight[done])
                    + value[done]
                    + net.total[k][node[done]]
                )
            )
        keep = ~done & (value + net.min_future[k][node] <= limit)
        return node[keep], value[keep], weight[keep]

    p_node, p_val, p_w = settle_pasts(0, np.zeros(1, np.int64), np.zeros(1), np.ones(1))
    kf, kb = 0, k_last
    f_node = np.arange(len(net.nodes[k_last]))
    f_val = net.total[k_last].copy()
    f_w = np.ones(f_node.size)
    folded = np.full(f_node.size, -math.inf)  # log of the settled future mass per node
    while kf < kb and p_node.size:
        starts = net.out_start[kf]
        fan = (starts[1:] - starts[:-1])[p_node]
        src_b, dst_b, len_b, mult_b = net.edges[kb - 1]
        per_node = np.bincount(f_node, minlength=len(net.nodes[kb]))
        if int(fan.sum()) <= int(per_node[dst_b].sum()):
            _, dst, length, mult = net.edges[kf]
            group, offset = _expand(fan)
            e = starts[p_node][group] + offset
            p_node, p_val, p_w = _merge(
                dst[e], p_val[group] + length[e], p_w[group] * mult[e]
            )
            kf += 1
            p_node, p_val, p_w = settle_pasts(kf, p_node, p_val, p_w)
        else:
            k = kb - 1
            new_fold = np.full(len(net.nodes[k]), -math.inf)
            np.logaddexp.at(new_fold, src_b, np.log(mult_b) + len_b + folded[dst_b])
            order = np.argsort(f_node, kind="stable")
            f_node, f_val, f_w = f_node[order], f_val[order], f_w[order]
            first = np.searchsorted(f_node, np.arange(len(net.nodes[kb]) + 1))
            group, offset = _expand((first[1:] - first[:-1])[dst_b])
            j = first[dst_b][group] + offset
            f_node, f_val, f_w = _merge(
                src_b[group], f_val[j] + len_b[group], f_w[j] * mult_b[group]
            )
            done = f_val + net.max_past[k][f_node] <= limit
            np.logaddexp.at(new_fold, f_node[done], np.log(f_w[done]) + f_val[done])
            keep = ~done & (f_val + net.min_past[k][f_node] <= limit)
            f_node, f_val, f_w, folded = f_node[keep], f_val[keep], f_w[keep], new_fold
            kb = k
    if p_node.size:
        _join(p_node, p_val, p_w, f_node, f_val, f_w, folded, const, limit, settled)
    if not settled:
        return 0.0
    return min(1.0, math.exp(_log_sum(np.asarray(settled))))


def _join(
    p_node: IntArray,
    p_val: FloatArray,
    p_w: FloatArray,
    f_node: IntArray,
    f_val: FloatArray,
    f_w: FloatArray,
    folded: FloatArray,
    const: float,
    limit: float,
    settled: list[float],
) -> None:
    """Add Σ over pasts p and futures q meeting at a node with p + q ≤ limit, node by node."""
    order = np.lexsort((p_val, p_node))
    p_node, p_val, p_w = p_node[order], p_val[order], p_w[order]
    order = np.lexsort((f_val, f_node))
    f_node, f_val, f_w = f_node[order], f_val[order], f_w[order]
    p_cut = np.flatnonzero(np.r_[True, p_node[1:] != p_node[:-1], True])
    for a, b in zip(p_cut[:-1].tolist(), p_cut[1:].tolist(), strict=True):
        node = int(p_node[a])
        past = const + np.log(p_w[a:b]) + p_val[a:b]
        if folded[node] > -math.inf:
            settled.append(_log_sum(past) + float(folded[node]))
        lo, hi = np.searchsorted(f_node, [node, node + 1])
        if lo == hi:
            continue
        q = f_val[lo:hi]
        top = float(q[-1])
        prefix = np.concatenate([[0.0], np.cumsum(f_w[lo:hi] * np.exp(q - top))])
        below = prefix[np.searchsorted(q, limit - p_val[a:b], side="right")]
        hit = below > 0
        if hit.any():
            settled.append(_log_sum(past[hit] + np.log(below[hit]) + top))


def fisher_simulated_pvalue(
    table: IntArray,
    n_resamples: int,
    source: np.random.SeedSequence | np.random.Generator,
) -> float:
    """R's `fisher.test(simulate.p.value = TRUE)`: (1 + #{S_sim ≤ S_obs / (1 + 64ε)}) / (B + 1).

    S = −Σ log n_ij! orders tables as their probability does (the margins are fixed); random
    tables with the observed margins come from scipy's `random_table` (Patefield's algorithm, as
    R's `r2dtable`). The 64ε relative slack is R's, so that ties with the observed table count.
    """
    from scipy.special import gammaln
    from scipy.stats import random_table

    rng = (
        source
        if isinstance(source, np.random.Generator)
        else np.random.default_rng(source)
    )
    rows, cols = table.sum(axis=1), table.sum(axis=0)
    lf: FloatArray = gammaln(np.arange(int(table.sum()) + 1, dtype=np.float64) + 1.0)
    observed = -float(lf[table].sum())
    dist = random_table(rows, cols)
    hits = 0
    done = 0
    while done < n_resamples:
        size = min(10_000, n_resamples - done)
        sims = dist.rvs(size=size, method="patefield", random_state=rng)
        stat = -lf[sims].sum(axis=(1, 2))
        hits += int((stat <= observed / (1 + 64 * np.finfo(float).eps)).sum())
        done += size
    return (1 + hits) / (n_resamples + 1)
