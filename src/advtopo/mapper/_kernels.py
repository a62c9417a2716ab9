"""Compiled (numba) DBSCAN of one cover element straight from the sorted edge keys.

Why: with numpy, clustering one element of a sweep meant materialising the element's edge
list (``EdgeList.restrict``: index arrays, repeats, int64 -> int32 copies), a CSR
transpose and scipy's component search: about 8 array passes over every edge. Here three
passes read the sorted keys in place (degrees, union-find of core-core edges, border
points) with O(m) scratch, no copies of the edges. Measured on the 2-core machine, 100k x
512 sweep of 15 settings: the clustering part fell from 62 s (restrict 34 s + labels 29 s)
to the figure in docs/benchmarks-mapper.md. Same labels as ``clusterers.dbscan_labels``
(tested), which stays as the fallback when numba cannot be imported.

Labels follow sklearn's DBSCAN exactly: core points have >= min_samples - 1 neighbours
(the point itself counts in sklearn); clusters are the components of core points ranked by
their smallest ``orig`` index (the order sklearn's scan discovers them); a border point
joins the lowest-ranked cluster among its core neighbours.
"""
from __future__ import annotations

import numpy as np

try:  # numba is a dependency; the import is guarded so a broken llvmlite degrades to numpy
    import numba as _numba

    HAVE_NUMBA = True
except Exception:  # pragma: no cover - exercised only where numba is missing
    _numba = None
    HAVE_NUMBA = False


def _element_dbscan_py(key, indptr, n, a, b, orig, min_samples, labels):
    """Labels of the rows a..b-1 (local 0..m-1) from edge keys ``p * n + q`` (p < q, sorted)."""
    m = b - a
    deg = np.zeros(m, np.int32)
    ends = np.empty(m, np.int64)
    for i in range(m):  # pass 1: degrees; row p's edges inside [a, b) are a prefix of its run
        p = a + i
        base = p * n
        lim = base + b
        j = indptr[p]
        e = indptr[p + 1]
        off = base + a
        while j < e and key[j] < lim:
            deg[key[j] - off] += 1
            j += 1
        deg[i] += j - indptr[p]
        ends[i] = j
    need = min_samples - 1
    parent = np.empty(m, np.int64)
    any_core = False
    for i in range(m):
        parent[i] = i
        if deg[i] >= need:
            any_core = True
    for i in range(m):
        labels[i] = -1
    if not any_core:
        return
    any_border = False
    border_row = np.zeros(m, np.bool_)  # core rows with a non-core neighbour after them
    for i in range(m):  # pass 2: union-find over core-core edges (path halving)
        if deg[i] < need:
            continue
        base = (a + i) * n + a
        # i's root, found once per row and kept current: x stays a root (finds only re-point non-roots)
        x = i
        while parent[x] != x:
            parent[x] = parent[parent[x]]
            x = parent[x]
        for j in range(indptr[a + i], ends[i]):
            q = key[j] - base
            if deg[q] < need:
                any_border = True
                border_row[i] = True
                continue
            y = q
            while parent[y] != y:
                parent[y] = parent[parent[y]]
                y = parent[y]
            if x != y:
                if x < y:
                    parent[y] = x
                else:
                    parent[x] = y
                    x = y
    # clusters ranked by the smallest orig index among their core points
    big = np.iinfo(np.int64).max
    first = np.full(m, big, np.int64)
    for i in range(m):
        if deg[i] >= need:
            x = i
            while parent[x] != x:
                x = parent[x]
            parent[i] = x
            if orig[i] < first[x]:
                first[x] = orig[i]
    roots = np.flatnonzero(first < big)
    order = np.argsort(first[roots], kind="mergesort")
    rank = np.full(m, -1, np.int64)
    for r in range(len(order)):
        rank[roots[order[r]]] = r
    for i in range(m):
        if deg[i] >= need:
            labels[i] = rank[parent[i]]
    if not any_border:
        # a non-core row can still be a border point through an edge (q core, i non-core)
        for i in range(m):
            if deg[i] < need and deg[i] > 0:
                any_border = True
                break
    if not any_border:
        return
    for i in range(m):  # pass 3: border rows take the lowest rank among core neighbours
        ci = deg[i] >= need
        if ci and not border_row[i]:  # every neighbour after this core row is core: nothing to give
            continue
        base = (a + i) * n + a
        for j in range(indptr[a + i], ends[i]):
            q = key[j] - base
            cq = deg[q] >= need
            if ci and not cq:
                if labels[q] < 0 or labels[i] < labels[q]:
                    labels[q] = labels[i]
            elif cq and not ci:
                if labels[i] < 0 or labels[q] < labels[i]:
                    labels[i] = labels[q]


if HAVE_NUMBA:
    _element_dbscan = _numba.njit(cache=True, nogil=True)(_element_dbscan_py)
else:  # pragma: no cover
    _element_dbscan = None


def element_dbscan(key: np.ndarray, indptr: np.ndarray, n: int, a: int, b: int, orig: np.ndarray,
                   min_samples: int) -> np.ndarray:
    """sklearn DBSCAN labels of the lens-sorted rows a..b-1 given the sorted edge keys (numba)."""
    labels = np.empty(b - a, dtype=np.int64)
    _element_dbscan(key, indptr, np.int64(n), np.int64(a), np.int64(b), np.ascontiguousarray(orig, dtype=np.int64),
                    np.int64(min_samples), labels)
    return labels


def _scan_block_py(S, s, c0, rch, thr, cols_out, score_out, pos, cnt):
    """Append the pairs (s+i, c0+j) with s+i < c0+j < rch[i] and S[i, j] <= thr; cnt[i] = kept in row i.

    Returns the new write position. When ``cols_out`` is too short it only counts and returns
    ``-(kept) - 1``; the caller grows the output to fit and scans the block again.
    """
    b, w = S.shape
    cap = len(cols_out)
    start = pos
    over = False
    for i in range(b):
        lo = s + i + 1 - c0
        if lo < 0:
            lo = 0
        hi = rch[i] - c0
        if hi > w:
            hi = w
        k = 0
        for j in range(lo, hi):
            v = S[i, j]
            if v <= thr:  # a branch: ~5% hits, and a branchless always-write scan measured 20% slower
                if pos < cap:
                    cols_out[pos] = c0 + j
                    score_out[pos] = v
                else:
                    over = True
                pos += 1
                k += 1
        cnt[i] = k
    if over:
        return -(pos - start) - 1
    return pos


if HAVE_NUMBA:
    scan_block = _numba.njit(cache=True, nogil=True)(_scan_block_py)
else:  # pragma: no cover
    scan_block = None


def _scan_groups_py(S, s_off, s_w, cpos, c_off, grp, loc, reach, s, thr, cols_out, score_out, pos, cnt):
    """The pivot-pruned build's scan of one row block (lens positions s, s+1, ...), rows in lens order,
    pairs written straight into the output in (row, col) order.

    Row s+i belongs to row group grp[i] (-1: every tile of its group was pruned) as its loc[i]-th row;
    group a's scores are the matrix S[s_off[a]:] of s_w[a] columns, whose lens positions are
    cpos[c_off[a]:c_off[a] + s_w[a]] (ascending). Appends (s+i, col) with s+i < col < reach[s+i] and
    score <= thr; cnt[i] = pairs of row s+i. Returns the new write position, or ``-(kept) - 1`` when
    the output is too short (the caller grows it and scans again).
    """
    cap = len(cols_out)
    start = pos
    over = False
    for i in range(len(grp)):
        a = grp[i]
        if a < 0:
            cnt[i] = 0
            continue
        p = s + i
        w = s_w[a]
        c0 = c_off[a]
        cp = cpos[c0:c0 + w]
        lo = np.searchsorted(cp, p, side="right")
        hi = np.searchsorted(cp, reach[p], side="left")
        base = s_off[a] + loc[i] * w
        k = 0
        for j in range(lo, hi):
            v = S[base + j]
            if v <= thr:
                if pos < cap:
                    cols_out[pos] = cp[j]
                    score_out[pos] = v
                else:
                    over = True
                pos += 1
                k += 1
        cnt[i] = k
    if over:
        return -(pos - start) - 1
    return pos


def _compact_keys_py(indptr, cols, mask, n, key):
    """key[...] = p * n + cols[j] for the pairs j of row p (indptr) with mask[j], in order, one pass;
    returns whether the keys came out strictly ascending (always, for a build's (row, col) order)."""
    pos = 0
    ordered = True
    last = -1
    for p in range(len(indptr) - 1):
        base = p * n
        for j in range(indptr[p], indptr[p + 1]):
            if mask[j]:
                k = base + cols[j]
                if k <= last:
                    ordered = False
                key[pos] = k
                last = k
                pos += 1
    return ordered


if HAVE_NUMBA:
    scan_groups = _numba.njit(cache=True, nogil=True)(_scan_groups_py)
    compact_keys = _numba.njit(cache=True, nogil=True)(_compact_keys_py)
else:  # pragma: no cover
    scan_groups = compact_keys = None
