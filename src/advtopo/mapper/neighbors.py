"""The eps-neighbour graph that every DBSCAN-like clustering of every cover element needs.

Why: DBSCAN spends nearly all its time finding eps-neighbours. Two points can only be
clustered together if they share a cover element, so after sorting the rows by the first
lens coordinate the candidate pairs of row p are the rows p+1 .. reach[p]-1, where
reach[p] is the end (in sorted order) of the last cover element holding p. We compute
those distances once, in blocks (BLAS on CPU, torch on GPU), keep the pairs within the
largest eps of interest, and every cover element / cover setting / smaller eps only
*restricts* this edge list. Memory: one block of ``block_bytes`` plus the kept edges.

Distances are computed in float32 with one GEMM per block, then every pair whose float32
distance is within a rounding band of the threshold is recomputed exactly in float64, so
the kept pairs are exactly ``dist <= eps`` (sklearn's DBSCAN semantics).
"""
from __future__ import annotations

import os
import time
from dataclasses import dataclass, field

import numpy as np

from advtopo.errors import AdvtopoError, check_choice
from advtopo.mapper._kernels import HAVE_NUMBA, compact_keys, scan_block, scan_groups
from advtopo.utils.metrics import METRICS

_REL_TOL = 3e-5  # relative float32 GEMM error band, generous (sqrt(d) * 2^-23 is ~2e-6 at d=512)

# Pivot pruning of the pair build (``prune="auto"``): used from this many rows on, with this many
# pivots, when the pivots leave at most this fraction of the plain build's GEMM area to compute.
PRUNE_MIN_ROWS = 8192
PRUNE_PIVOTS = 16
PRUNE_MAX_AREA = 0.6
PRUNE_BLOCK_ROWS = 1024


def _as_float_matrix(X: np.ndarray) -> np.ndarray:
    X = np.asarray(X)
    if X.ndim != 2:
        raise AdvtopoError(f"X must be a 2-D array (n_samples, n_features); got shape {X.shape}")
    if X.shape[0] == 0:
        raise AdvtopoError("X has no rows")
    if X.shape[1] == 0:
        raise AdvtopoError("X has no columns (features)")
    if (not np.issubdtype(X.dtype, np.number) and X.dtype != bool) or np.issubdtype(X.dtype, np.complexfloating):
        raise AdvtopoError(f"X must be numeric (real numbers); got dtype {X.dtype}")
    if not np.all(np.isfinite(X)):
        raise AdvtopoError("X has NaN or infinite values")
    return X


def _normalize64(X: np.ndarray) -> np.ndarray:
    """Row-normalise like sklearn's ``normalize`` (zero rows stay zero)."""
    X64 = np.asarray(X, dtype=np.float64)
    norms = np.sqrt(np.einsum("ij,ij->i", X64, X64))
    norms[norms == 0] = 1.0
    return X64 / norms[:, None]


class _Prepared:
    """Augmented float32 matrices so that one GEMM yields the distance score directly.

    euclidean: score = |x - y|^2 via [-2x, |x|^2, 1] . [y, 1, |y|^2] (rows centred first);
    cosine:    score = 1 - <u, v> via [-u, 1] . [v, 1] with u, v the normalised rows.
    """

    def __init__(self, Xs: np.ndarray, metric: str, basis: np.ndarray | None = None) -> None:
        self.metric = metric
        n = len(Xs)
        self.r = np.zeros(n)  # residual norms outside the projection (0 = no projection)
        self.projected = basis is not None
        if metric == "euclidean":
            self.exact = Xs  # exact recomputation converts chunks to float64 on the fly
            mean = Xs.mean(axis=0, dtype=np.float64)
            d = Xs.shape[1] if basis is None else basis.shape[1]
            w = _padded(d + 2)
            self.left = np.zeros((n, w), dtype=np.float32)
            self.right = np.zeros((n, w), dtype=np.float32)
            sq = np.empty(n, dtype=np.float64)
            for s in range(0, n, 16384):
                c = np.subtract(Xs[s:s + 16384], mean, dtype=np.float32)
                full = np.einsum("ij,ij->i", c, c, dtype=np.float64)
                if basis is not None:
                    c = c @ basis
                    psq = np.einsum("ij,ij->i", c, c, dtype=np.float64)
                    # |R(x)|^2 = |x|^2 - |Px|^2, inflated so float rounding can only widen the bounds
                    self.r[s:s + 16384] = np.sqrt(np.maximum(full - psq, 0.0) + 1e-6 * full)
                else:
                    psq = full
                sq[s:s + 16384] = full
                self.right[s:s + 16384, :d] = c
                np.multiply(c, -2, out=self.left[s:s + 16384, :d])
                self.left[s:s + 16384, d] = psq
                self.right[s:s + 16384, d + 1] = psq
            self.sq = sq
            self.left[:, d + 1] = 1.0
            self.right[:, d] = 1.0
        else:
            self.exact = Xs
            n = len(Xs)
            self.norms = np.empty(n, dtype=np.float64)
            d = Xs.shape[1]
            self.left = np.zeros((n, _padded(d + 1)), dtype=np.float32)
            for s in range(0, n, 65536):
                c = np.asarray(Xs[s:s + 65536], dtype=np.float64)
                nr = np.sqrt(np.einsum("ij,ij->i", c, c))
                nr[nr == 0] = 1.0
                self.norms[s:s + 65536] = nr
                self.left[s:s + 65536, :d] = -(c / nr[:, None])
            self.left[:, d] = 1.0
            self.sq = np.ones(n)
            self.right = self.left.copy()
            self.right[:, :d] *= -1

    def tol(self, p: np.ndarray, q: np.ndarray) -> np.ndarray:
        """Per-pair band within which the float32 score may be on the wrong side of a threshold."""
        if self.metric == "euclidean":
            return _REL_TOL * (self.sq[p] + self.sq[q]) + 1e-30
        return np.full(len(p), 4 * _REL_TOL)

    def tol_max(self) -> float:
        """An upper bound of ``tol`` over all pairs."""
        if self.metric == "euclidean":
            return _REL_TOL * 2 * float(np.max(self.sq)) + 1e-30
        return 4 * _REL_TOL

    def upper(self, p: np.ndarray, q: np.ndarray) -> np.ndarray:
        """Added to a (projected) score it bounds the true score from above: (r_p + r_q)^2."""
        return (self.r[p] + self.r[q]) ** 2

    def exact_score(self, p: np.ndarray, q: np.ndarray, chunk: int = 8192) -> np.ndarray:
        """Scores of pairs recomputed from the rows (differences first, so no cancellation);
        float32 differences when the input is float32, then float64 for the rare pairs whose
        value is within 1e-6 (relative) of where a float32 rounding could matter."""
        out = np.empty(len(p), dtype=np.float64)
        X = self.exact
        f32 = X.dtype == np.float32 and self.metric == "euclidean"
        for s in range(0, len(p), chunk):
            pp, qq = p[s:s + chunk], q[s:s + chunk]
            if f32:
                diff = X[pp] - X[qq]
                out[s:s + chunk] = np.einsum("ij,ij->i", diff, diff, dtype=np.float64)
                continue
            a = np.asarray(X[pp], dtype=np.float64)
            b = np.asarray(X[qq], dtype=np.float64)
            if self.metric == "euclidean":
                diff = a - b
                out[s:s + chunk] = np.einsum("ij,ij->i", diff, diff)
            else:
                a /= self.norms[pp][:, None]
                b /= self.norms[qq][:, None]
                out[s:s + chunk] = 1.0 - np.einsum("ij,ij->i", a, b)
        return out

    def decide(self, p: np.ndarray, q: np.ndarray, thr: float, strict: bool) -> np.ndarray:
        """Exactly ``dist <= eps`` (``<`` when strict) for the given pairs, thr = eps_to_threshold(eps)."""
        ex = self.exact_score(p, q)
        if self.exact.dtype == np.float32 and self.metric == "euclidean":
            near = np.flatnonzero(np.abs(ex - thr) <= 1e-6 * max(thr, 1e-300))
            if len(near):  # float32 differences could be on the wrong side: float64 recheck
                a = np.asarray(self.exact[p[near]], dtype=np.float64)
                b = np.asarray(self.exact[q[near]], dtype=np.float64)
                ex[near] = np.einsum("ij,ij->i", a - b, a - b)
        return ex < thr if strict else ex <= thr


def _padded(width: int) -> int:
    return -(-width // 16) * 16


def eps_to_threshold(eps: float, metric: str) -> float:
    """The score threshold for ``dist <= eps``: eps^2 for euclidean, eps for cosine."""
    return float(eps) ** 2 if metric == "euclidean" else float(eps)


@dataclass
class EpsGraph:
    """Candidate pairs (p < q, positions in lens-sorted order) with float32 scores <= max threshold."""

    rows: np.ndarray  # int32 (int64 past 2^31 rows), sorted ascending
    cols: np.ndarray
    score: np.ndarray  # float32 approximate score
    indptr: np.ndarray  # rows[indptr[p]:indptr[p+1]] == p
    n: int
    metric: str
    max_eps: float
    prepared: _Prepared
    # GEMM work: pairs computed, and what the plain build (no pivots) computes
    gemm_pairs: int = 0
    plain_pairs: int = 0
    pruned: bool = False
    build_seconds: dict = field(default_factory=dict)  # the pivot-pruned build's phases (pivots, plan, gemm, scan)

    def build_stats(self) -> dict:
        """How the pairs were found: pruned by pivots or not, GEMM pairs computed vs the plain build's,
        candidate pairs kept, and the pruned build's phase seconds."""
        return {"pruned": self.pruned, "gemm_pairs": self.gemm_pairs, "plain_pairs": self.plain_pairs,
                "candidates": int(len(self.rows)), "seconds": dict(self.build_seconds)}

    def within(self, eps: float, strict: bool = False) -> np.ndarray:
        """Boolean mask over edges: exactly ``dist <= eps`` (or ``< eps`` when strict)."""
        if eps > self.max_eps * (1 + 1e-12):
            raise ValueError(f"eps={eps} is larger than the graph's max_eps={self.max_eps}")
        thr = eps_to_threshold(eps, self.metric)
        mask = np.empty(len(self.rows), dtype=bool)
        chunk = 1 << 22  # bounded temporaries
        pr = self.prepared
        if not pr.projected:
            # float32 scores at or below lo32 are inside for every pair's band, above hi32 outside
            # for every pair's band: only the pairs in between need their own band (gathers)
            tmax = pr.tol_max()
            lo32, hi32 = _f32_below(thr - tmax), _f32_up(thr + tmax)
            for c in range(0, len(self.rows), chunk):
                sc = self.score[c:c + chunk]
                m = mask[c:c + chunk]
                np.less_equal(sc, lo32, out=m)
                mid = np.flatnonzero((sc > lo32) & (sc <= hi32))
                if len(mid):
                    r, q = self.rows[c:c + chunk][mid], self.cols[c:c + chunk][mid]
                    m[mid] = self._band(r, q, sc[mid].astype(np.float64), sc[mid].astype(np.float64), thr, strict)
            return mask
        for c in range(0, len(self.rows), chunk):
            r, q = self.rows[c:c + chunk], self.cols[c:c + chunk]
            sc = self.score[c:c + chunk].astype(np.float64)
            mask[c:c + chunk] = self._band(r, q, sc, sc + pr.upper(r, q), thr, strict)
        return mask

    def _band(self, r, q, sc, hi, thr: float, strict: bool) -> np.ndarray:
        """Per-pair decision: sure from the float32 score when outside the pair's rounding band,
        recomputed exactly (float64 where needed) inside it."""
        tol = self.prepared.tol(r, q)
        m = hi < thr - tol if strict else hi <= thr - tol
        band = np.flatnonzero(~m & (sc <= thr + tol))
        if len(band):
            m[band] = self.prepared.decide(r[band], q[band], thr, strict)
        return m

    def compact(self, eps: float, strict: bool = False, mask: np.ndarray | None = None) -> "EdgeList":
        """The edges with exactly ``dist <= eps`` (``<`` when strict) as a sorted :class:`EdgeList`."""
        if mask is None:
            mask = self.within(eps, strict=strict)
        n = np.int64(self.n)
        key = _empty_small_pages(int(np.count_nonzero(mask)), np.int64)  # written in place, no list of parts
        if HAVE_NUMBA:  # one compiled pass: 4.7M pairs (20k x 512 one graph) 0.028-0.035 s vs 0.042-0.074 s CPU
            if not compact_keys(self.indptr, self.cols, mask, n, key):  # never expected: (row, col) order
                key.sort()
            return EdgeList(key, self.n)
        chunk = 1 << 22
        a = 0
        ordered = True
        for c in range(0, len(self.rows), chunk):
            m = mask[c:c + chunk]
            r = self.rows[c:c + chunk][m]
            e = a + len(r)
            k = key[a:e]
            k[:] = r  # int32 -> int64, then in place
            k *= n
            k += self.cols[c:c + chunk][m]
            if len(k) and ((a and k[0] < key[a - 1]) or np.any(k[1:] < k[:-1])):
                ordered = False
            a = e
        if not ordered:  # never expected: (row, col) order is kept on build
            key.sort()
        return EdgeList(key, self.n)


class EdgeList:
    """Edges p < q (positions in lens-sorted order) as sorted keys ``p * n + q``: 8 bytes per edge.

    Because the keys are sorted, the edges with both ends inside a contiguous range
    [a, b) of rows are, for every row p in [a, b), one contiguous run found by a binary
    search for ``p * n + b``: a cover element's edges cost time proportional to their own
    number, not to the number of edges leaving its rows (a sweep's shared graph reaches as
    far as the widest cover's elements, much further than a fine cover's).
    """

    def __init__(self, key: np.ndarray, n: int) -> None:
        self.key = key
        self.n = int(n)
        self.indptr = np.searchsorted(key, np.arange(self.n + 1, dtype=np.int64) * self.n, side="left")

    def __len__(self) -> int:
        return len(self.key)

    def restrict(self, a: int, b: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """(u, v, counts) of the edges inside rows [a, b), local indices (0..b-a-1), u sorted
        ascending (then v ascending), counts[i] = number of edges with u == i."""
        n = self.n
        lo, hi = int(self.indptr[a]), int(self.indptr[b])
        starts = self.indptr[a:b]
        rows = np.arange(a, b, dtype=np.int64)
        ends = lo + np.searchsorted(self.key[lo:hi], rows * n + b, side="left")
        counts = ends - starts
        total = int(counts.sum())
        if total == 0:
            z = np.zeros(0, dtype=np.int32)
            return z, z, counts
        if total == hi - lo:  # every edge of these rows stays inside (always true for the last element)
            k = self.key[lo:hi]
        else:
            offs = np.cumsum(counts) - counts
            idx = np.repeat(starts - offs, counts)
            idx += np.arange(total, dtype=np.int64)
            k = self.key[idx]
        u = np.repeat(np.arange(b - a, dtype=np.int32), counts)
        v = (k - np.repeat(rows * n + a, counts)).astype(np.int32)
        return u, v, counts


def _torch_device(device: str):
    import torch

    if device in (None, "auto"):
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    dev = torch.device(device)
    if dev.type == "cuda" and not torch.cuda.is_available():
        raise AdvtopoError(f"device={device!r} requested but CUDA is not available; use device='cpu'")
    return dev


def choose_projection(X: np.ndarray, eps: float, max_rows: int = 20000, ratio: float = 0.3,
                      random_state: int = 0) -> np.ndarray | None:
    """An orthonormal PCA basis (d x k) when the rows' residual norms outside it are small.

    Why: |P(x-y)| <= |x-y| <= sqrt(|P(x-y)|^2 + (r_x + r_y)^2), so a k-dim GEMM bounds every
    distance; only pairs whose bounds straddle eps need the exact distance. Chooses the
    smallest k in 32, 64, 128, 256 (k <= d/2) whose 90th-percentile residual is <= ratio * eps;
    None (full dimension) otherwise.
    """
    n, d = X.shape
    ks = [k for k in (32, 64, 128, 256) if k <= d // 2]
    if not ks or n < 2000:
        return None
    rng = np.random.default_rng(random_state)
    idx = np.sort(rng.choice(n, size=min(n, max_rows), replace=False))
    S = np.asarray(X[idx], dtype=np.float32)
    S = S - X.mean(axis=0, dtype=np.float64).astype(np.float32)
    C = (S.T @ S).astype(np.float64)
    w, V = np.linalg.eigh(C)
    V = V[:, ::-1]
    full = np.einsum("ij,ij->i", S, S, dtype=np.float64)
    for k in ks:
        B = V[:, :k]
        P = S @ B.astype(np.float32)
        r = np.sqrt(np.maximum(full - np.einsum("ij,ij->i", P, P, dtype=np.float64), 0.0))
        if np.percentile(r, 90) <= ratio * eps:
            return np.ascontiguousarray(B, dtype=np.float32)
    return None


def build_eps_graph(
    Xs: np.ndarray,
    reach: np.ndarray,
    max_eps: float,
    metric: str = "euclidean",
    backend: str = "numpy",
    device: str = "cpu",
    block_bytes: int = 1 << 26,
    block_rows: int = 512,
    project: bool = False,
    prune: str = "auto",
    prune_block_rows: int | None = None,
    n_pivots: int | None = None,
) -> EpsGraph:
    """All pairs p < q < reach[p] of the (lens-sorted) rows ``Xs`` with dist <= max_eps.

    ``reach`` need not be monotone; row blocks use their max. ``project=True`` computes the
    GEMM in a PCA subspace with exact bounds (see ``choose_projection``): fewer flops, but
    the pairs whose bounds straddle eps must be recomputed from the rows; on a 2-core CPU
    this did not pay off for the synthetic 512-d data (memory-bound recheck), so it is off.

    ``prune`` (numpy backend): ``"pivots"`` skips every GEMM tile that the triangle inequality
    with a few pivots proves to hold no pair within ``max_eps`` (see ``_build_pruned``), ``"none"``
    computes every candidate pair, ``"auto"`` prunes from ``PRUNE_MIN_ROWS`` rows on when the
    pivots leave at most ``PRUNE_MAX_AREA`` of the GEMM (``prune_block_rows`` / ``n_pivots``: its row
    block and pivot count, default the module's ``PRUNE_*``). The pairs within any eps <= max_eps
    are the same either way (tested).
    """
    check_choice("metric", metric, METRICS)
    check_choice("backend", backend, ("numpy", "torch"))
    check_choice("prune", prune, ("auto", "pivots", "none"))
    basis = choose_projection(Xs, max_eps) if (project and metric == "euclidean") else None
    prep = _Prepared(Xs, metric, basis)
    n = len(Xs)
    reach = np.asarray(reach, dtype=np.int64)
    thr = eps_to_threshold(max_eps, metric)
    tol_max = float(prep.tol(np.array([int(np.argmax(prep.sq))]), np.array([int(np.argmax(prep.sq))]))[0])
    thr_hi = thr + tol_max
    rows_out, cols_out, score_out = [], [], []
    idx_t = np.int32 if n < 2**31 - 1 else np.int64  # 12 bytes per kept edge
    block_rows = max(1, int(block_rows))
    col_chunk = max(256, int(block_bytes // (4 * block_rows)))

    if backend == "torch":
        import torch

        dev = _torch_device(device)
        left_t = torch.from_numpy(prep.left).to(dev)
        right_t = torch.from_numpy(prep.right).to(dev)
        old_tf32 = torch.backends.cuda.matmul.allow_tf32
        torch.backends.cuda.matmul.allow_tf32 = False  # TF32 would be far outside the error band
        try:
            for s in range(0, n, block_rows):
                t = min(n, s + block_rows)
                R = int(reach[s:t].max())
                if R <= s + 1:
                    continue
                for c0 in range(s, R, col_chunk):
                    c1 = min(R, c0 + col_chunk)
                    S = left_t[s:t] @ right_t[c0:c1].T
                    idx = torch.nonzero(S <= thr_hi)
                    if idx.shape[0] == 0:
                        continue
                    vals = S[idx[:, 0], idx[:, 1]]
                    rows_out.append((idx[:, 0].to(torch.int32) + s).cpu().numpy().astype(idx_t, copy=False))
                    cols_out.append((idx[:, 1].to(torch.int32) + c0).cpu().numpy().astype(idx_t, copy=False))
                    score_out.append(vals.float().cpu().numpy())
        finally:
            torch.backends.cuda.matmul.allow_tf32 = old_tf32
    else:
        plain = _plain_area(reach, block_rows)
        built = None
        if prune != "none" and basis is None and HAVE_NUMBA and (prune == "pivots" or n >= PRUNE_MIN_ROWS):
            built = _build_pruned(prep, Xs.shape[1], reach, thr_hi, _pivot_threshold(max_eps, metric), idx_t,
                                  max(1, int(prune_block_rows or PRUNE_BLOCK_ROWS)), int(n_pivots or PRUNE_PIVOTS),
                                  max_area=None if prune == "pivots" else PRUNE_MAX_AREA * plain,
                                  block_bytes=block_bytes)
        if built is not None:
            rows, cols, score, counts, gemm, timings = built
        else:
            rows, cols, score, counts = _build_numpy(prep.left, prep.right, reach, thr_hi, block_rows,
                                                     col_chunk, idx_t)
            gemm, timings = plain, {}
        indptr = np.zeros(n + 1, dtype=np.int64)
        np.cumsum(counts, out=indptr[1:])
        return EpsGraph(rows=rows, cols=cols, score=score, indptr=indptr, n=n, metric=metric,
                        max_eps=float(max_eps), prepared=prep, gemm_pairs=int(gemm), plain_pairs=int(plain),
                        pruned=built is not None, build_seconds=timings)

    if rows_out:
        rows = np.concatenate(rows_out)
        cols = np.concatenate(cols_out)
        score = np.concatenate(score_out).astype(np.float32)
    else:
        rows = cols = np.zeros(0, dtype=idx_t)
        score = np.zeros(0, dtype=np.float32)
    keep = (cols > rows) & (cols < reach[rows])
    rows, cols, score = rows[keep], cols[keep], score[keep]
    # exact-ish prefilter with the per-pair band, then order by (row, col)
    keep = score.astype(np.float64) <= thr + prep.tol(rows, cols)
    rows, cols, score = rows[keep], cols[keep], score[keep]
    if len(rows) > 1 and np.any(rows[1:] < rows[:-1]):  # only when a row block was split in column chunks
        order = np.argsort(rows, kind="stable")
        rows, cols, score = rows[order], cols[order], score[order]
    indptr = np.searchsorted(rows, np.arange(n + 1), side="left")
    return EpsGraph(rows=rows, cols=cols, score=score, indptr=indptr, n=n, metric=metric,
                    max_eps=float(max_eps), prepared=prep)


def _f32_up(x: float) -> np.float32:
    """The smallest float32 >= x (so ``s32 <= _f32_up(x)`` keeps every float32 s <= x)."""
    v = np.float32(x)
    return v if float(v) >= x else np.nextafter(v, np.float32(np.inf))


def _f32_below(x: float) -> np.float32:
    """The largest float32 < x (so ``s32 <= _f32_below(x)`` implies s < x)."""
    v = np.float32(x)
    return v if float(v) < x else np.nextafter(v, np.float32(-np.inf))


def _empty_small_pages(size: int, dtype) -> np.ndarray:
    """``np.empty`` without numpy's transparent-hugepage madvise.

    Why: late in a build the memory is fragmented and, with THP defrag=madvise (this machine's
    setting), first touches of a fresh madvised array stall on direct compaction: writing the
    sorted keys (40M pairs at 60k) took ~0.96 s instead of ~0.14 s. Falls back to ``np.empty``.
    """
    try:
        from numpy._core.multiarray import _set_madvise_hugepage
    except ImportError:  # pragma: no cover - other numpy layouts
        return np.empty(size, dtype=dtype)
    old = _set_madvise_hugepage(False)
    try:
        return np.empty(size, dtype=dtype)
    finally:
        _set_madvise_hugepage(old)

class _Grow:
    """Append-only columns (cols, score) in preallocated arrays, grown from a density estimate: no list of parts."""

    def __init__(self, idx_t, cap: int = 0) -> None:
        self.n = 0
        self.cols = np.empty(cap, dtype=idx_t)
        self.score = np.empty(cap, dtype=np.float32)

    def reserve(self, k: int) -> None:
        need = self.n + k
        if need <= len(self.cols):
            return
        cap = max(need, int(len(self.cols) * 1.25))
        for name in ("cols", "score"):
            old = getattr(self, name)
            new = np.empty(cap, dtype=old.dtype)
            new[:self.n] = old[:self.n]
            setattr(self, name, new)

    def arrays(self):
        """Views of the filled part (the untouched tail was never paged in, so it costs no memory)."""
        k = self.n
        return self.cols[:k], self.score[:k]


def _build_numpy(left: np.ndarray, right: np.ndarray, reach: np.ndarray, thr_hi: float, block_rows: int,
                 col_chunk: int, idx_t, compiled: bool = HAVE_NUMBA
                 ) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Candidate pairs p < q < reach[p] with float32 score <= thr_hi, in (p, q) order, and per-row counts.

    Everything after the GEMM happens inside the block: the pairs outside the triangle / reach
    are set to +inf in the block, one comparison into a reused boolean buffer, one flatnonzero;
    only the kept pairs are then turned into columns (per-row repeats, no divmod) written
    straight into preallocated int32 output (sized from the density seen so far). The row of
    each pair is one ``np.repeat`` of the per-row counts at the end. No full-length filter pass.

    ``compiled`` (numba, the default when available): one scan of each block replaces the
    masking, comparison, flatnonzero, take and column arithmetic (100k x 512, one graph:
    the work outside the GEMM fell from ~4.5 s to the figure in docs/benchmarks-mapper.md).
    """
    n = len(left)
    thr32 = _f32_up(thr_hi)
    inf = np.float32(np.inf)
    counts = np.zeros(n, dtype=np.int64)
    cap = block_rows * col_chunk
    sbuf = np.empty(cap, dtype=np.float32)
    mbuf = np.empty(cap, dtype=bool)
    tri = np.tri(block_rows, block_rows, 0, dtype=bool)  # tri[i, j]: j <= i (col not above the diagonal)
    ar = np.arange(block_rows + 1, dtype=np.int64)
    starts = np.arange(0, n, block_rows)
    block_R = np.maximum.reduceat(reach, starts) if n else np.zeros(0, dtype=np.int64)
    area_total = int(np.sum(np.minimum(block_rows, n - starts) * np.maximum(block_R - starts, 0)))
    area_done = 0
    out = _Grow(idx_t)
    for s, R in zip(starts.tolist(), block_R.tolist()):
        t = min(n, s + block_rows)
        b = t - s
        if R <= s + 1:
            continue
        rch = reach[s:t]
        start = out.n
        chunk_cnts = []
        for c0 in range(s, R, col_chunk):
            c1 = min(R, c0 + col_chunk)
            w = c1 - c0
            S = sbuf[:b * w].reshape(b, w)
            np.matmul(left[s:t], right[c0:c1].T, out=S)
            if compiled:
                cnt = np.zeros(b, dtype=np.int64)
                pos = scan_block(S, s, c0, rch, thr32, out.cols, out.score, out.n, cnt)
                if pos < 0:  # output too short: grow to fit (density estimate), scan again
                    kk = -pos - 1
                    done = area_done + b * (R - s)
                    est = int(2.0 * (out.n + kk) * (area_total - done) / max(done, 1))
                    out.reserve(min(kk + est + (1 << 16), area_total - area_done))
                    pos = scan_block(S, s, c0, rch, thr32, out.cols, out.score, out.n, cnt)
                if pos > out.n:
                    counts[s:t] += cnt
                    chunk_cnts.append(cnt)
                    out.n = pos
                continue
            if c0 < t:  # columns at or left of the diagonal: c0 + j <= s + i
                k = min(w, t - c0)
                off = c0 - s
                np.copyto(S[:, :k], inf, where=tri[:b, off:off + k])
            for i in np.flatnonzero(rch < c1).tolist():  # rows whose reach ends inside this chunk
                S[i, max(int(rch[i]) - c0, 0):] = inf
            M = mbuf[:b * w].reshape(b, w)
            np.less_equal(S, thr32, out=M)
            flat = np.flatnonzero(M)
            kk = len(flat)
            if kk == 0:
                continue
            cnt = np.diff(np.searchsorted(flat, ar[:b + 1] * w))  # kept pairs per row (flat is sorted)
            counts[s:t] += cnt
            chunk_cnts.append(cnt)
            if out.n + kk > len(out.cols):  # size the output from the density seen so far
                done = area_done + b * (R - s)
                est = int(2.0 * (out.n + kk) * (area_total - done) / max(done, 1))
                # generous: untouched capacity is virtual memory only (pages are mapped on first write)
                out.reserve(min(kk + est + (1 << 16), area_total - area_done))
            a, e = out.n, out.n + kk
            np.take(S.reshape(-1), flat, out=out.score[a:e])
            # column = flat - i * w + c0, written straight into the int32 column
            np.subtract(flat, np.repeat(ar[:b] * w - c0, cnt), out=out.cols[a:e], casting="unsafe")
            out.n = e
        area_done += b * (R - s)
        if len(chunk_cnts) > 1:  # several column chunks: restore (row, col) order in this block
            sl = slice(start, out.n)
            rloc = np.concatenate([np.repeat(ar[:b], c) for c in chunk_cnts])
            order = np.argsort(rloc, kind="stable")  # chunks are in column order already
            for arr in (out.cols, out.score):
                arr[sl] = arr[sl][order]
    cols, score = out.arrays()
    rows = np.repeat(np.arange(n, dtype=idx_t), counts)  # one pass at the end, (row, col) order
    return rows, cols, score, counts

def _plain_area(reach: np.ndarray, block_rows: int) -> int:
    """Pairs the plain build computes: each row block times its column range (s, max reach)."""
    n = len(reach)
    if n == 0:
        return 0
    starts = np.arange(0, n, block_rows)
    block_R = np.maximum.reduceat(reach, starts)
    return int(np.sum(np.minimum(block_rows, n - starts) * np.maximum(block_R - starts, 0)))


def _pivot_threshold(eps: float, metric: str) -> float:
    """The distance in the pivots' space (the prepared rows) below which a pair may be within eps:
    eps for euclidean; for cosine the rows are unit vectors (or zero) and 1 - <u, v> = |u - v|^2 / 2,
    so sqrt(2 eps) (a zero row is at cosine distance 1 and at |u - v| <= 1 < sqrt(2), still a bound)."""
    return float(eps) if metric == "euclidean" else float(np.sqrt(2.0 * float(eps)))


def _pivot_distances(emb: np.ndarray, n_pivots: int, random_state: int = 0, sample: int = 2048,
                     iters: int = 8) -> tuple[np.ndarray, float]:
    """Distances (float64, n x k) of the rows to k pivots (k-means centres of a seeded row sample),
    and a bound on their rounding error (float32 rows, float64 arithmetic; generous by ~40x)."""
    n = len(emb)
    rng = np.random.default_rng(random_state)
    S = np.asarray(emb[np.sort(rng.choice(n, size=min(n, sample), replace=False))], dtype=np.float64)
    k = max(1, min(int(n_pivots), len(S)))
    C = S[rng.choice(len(S), size=k, replace=False)].copy()
    for _ in range(iters):  # Lloyd's iterations (|s|^2 is the same for every centre: left out)
        near = np.argmin(np.einsum("ij,ij->i", C, C)[None, :] - 2.0 * (S @ C.T), axis=1)
        size = np.bincount(near, minlength=k)
        onehot = np.zeros((k, len(S)))
        onehot[near, np.arange(len(S))] = 1.0
        sums = onehot @ S
        C[size > 0] = sums[size > 0] / size[size > 0, None]
    csq = np.einsum("ij,ij->i", C, C)
    D = np.empty((n, k), dtype=np.float64)
    row_max = 0.0
    for s in range(0, n, 8192):
        E = np.asarray(emb[s:s + 8192], dtype=np.float64)
        esq = np.einsum("ij,ij->i", E, E)
        row_max = max(row_max, float(np.max(esq)))
        D2 = esq[:, None] - 2.0 * (E @ C.T) + csq[None, :]
        np.sqrt(np.maximum(D2, 0.0), out=D[s:s + 8192])
    # worst case |D2 error| <= (d + 2) 2^-53 (|x| + |c|)^2, so |D error| <= sqrt((d + 2) 2^-53) (|x| + |c|)
    # (2.4e-7 (|x| + |c|) at d = 512), twice in a gap; plus the float32 centring / normalisation of the
    # prepared rows (2^-24 relative, for both rows of a pair); then 4x for good measure
    scale = float(np.sqrt(row_max)) + float(np.sqrt(np.max(csq)))
    margin = 4.0 * (2.0 * np.sqrt((emb.shape[1] + 2) * 2.0 ** -53) + 2.0 ** -23) * scale
    return D, float(margin)


def _build_pruned(prep: _Prepared, d: int, reach: np.ndarray, thr_hi: float, dist_thr: float, idx_t,
                  block_rows: int, n_pivots: int, max_area: float | None = None, block_bytes: int = 1 << 26):
    """The candidate pairs of ``_build_numpy`` in the same (row, col) order, computing only the GEMM
    tiles that can hold a pair within the threshold: every pair within max_eps is there with a float32
    score in the same error band (a pair a hair beyond max_eps, inside the rounding band, may be
    missing: the plain build keeps those as candidates, and ``within`` rejects them either way).

    Why: the pair build is GEMM-bound, and most candidate pairs (rows close in lens, so sharing a
    cover element) are far apart in the data: 9% of them were within eps on the synthetic 100k x 512
    cloud. Each row gets the distances to k pivots (k-means centres of a sample) and a group (its
    nearest pivot); the rows are also laid out group by group (lens order inside a group), so the
    columns of one group in a lens range are one contiguous slice. For a block of lens-consecutive
    rows, the rows of group a against the columns of group b are skipped when some pivot c separates
    them: min over one side of d(., c) minus max over the other side > dist_thr (+ rounding margin),
    since |x - y| >= |d(x, c) - d(y, c)|. The kept groups' columns are gathered in lens order into one
    matrix per row group (one GEMM; a GEMM per group's contiguous slice then a scan over their merged
    columns read strided scores: scan 0.075 s vs 0.044 s at 20k), and one compiled scan per block
    (``_kernels.scan_groups``) writes each row's pairs in column order straight into the output
    (a per-group scan into a buffer then a copy in row order cost the same plus 0.5 s of copies at
    60k). Measured, 2-core machine, one thread, CPU seconds of the pair build (synthetic x 512, 20
    intervals, 50%): 20k 1.03-1.13 -> 0.49, 60k -> 4.0-4.6, 100k 21.9 -> 11.0. Returns None when ``max_area`` is given and the kept tiles would exceed it (the
    caller then runs the plain build), else (rows, cols, score, counts, pairs computed).
    """
    t0 = time.perf_counter()
    tm = {"pivots": 0.0, "plan": 0.0, "gemm": 0.0, "scan": 0.0}
    n = len(prep.left)
    D, margin = _pivot_distances(prep.right[:, :d], n_pivots)
    tm["pivots"] = time.perf_counter() - t0
    cut = dist_thr + margin
    group = np.argmin(D, axis=1)
    k = D.shape[1]
    gorder = np.argsort(group, kind="stable")  # group-major, lens order inside a group: for the bounds
    gstart = np.searchsorted(group[gorder], np.arange(k + 1))
    Dg = D[gorder]
    starts = np.arange(0, n, block_rows)
    block_R = np.maximum.reduceat(reach, starts)
    # each block's column slice of every group: lens positions in [s + 1, R)
    lo_b = np.stack([gstart[b] + np.searchsorted(gorder[gstart[b]:gstart[b + 1]], starts + 1) for b in range(k)], 1)
    hi_b = np.stack([gstart[b] + np.searchsorted(gorder[gstart[b]:gstart[b + 1]], block_R) for b in range(k)], 1)
    plan = []
    area = 0
    for bi, (s, R) in enumerate(zip(starts.tolist(), block_R.tolist())):
        t = min(n, s + block_rows)
        if R <= s + 1:
            continue
        g_rows = group[s:t]
        order = np.argsort(g_rows, kind="stable")
        bounds = np.searchsorted(g_rows[order], np.arange(k + 1))
        lo, hi = lo_b[bi], hi_b[bi]
        widths = hi - lo
        col_lo = np.full((k, k), np.inf)
        col_hi = np.full((k, k), -np.inf)
        for b in np.flatnonzero(widths > 0).tolist():
            seg = Dg[lo[b]:hi[b]]
            col_lo[b] = seg.min(axis=0)
            col_hi[b] = seg.max(axis=0)
        tiles = []
        for a in range(k):
            if bounds[a + 1] == bounds[a]:
                continue
            rows_a = s + order[bounds[a]:bounds[a + 1]]
            Da = D[rows_a]
            gap = np.maximum(Da.min(axis=0)[None, :] - col_hi, col_lo - Da.max(axis=0)[None, :]).max(axis=1)
            keep = np.flatnonzero((gap <= cut) & (widths > 0))
            if len(keep):
                tiles.append((rows_a, keep))
                area += len(rows_a) * int(widths[keep].sum())
        plan.append((s, t, tiles))
    tm["plan"] = time.perf_counter() - t0 - tm["pivots"]
    if max_area is not None and area > max_area:
        return None
    del D
    thr32 = _f32_up(thr_hi)
    col_chunk = max(1024, int(block_bytes // (4 * prep.right.shape[1])))
    counts = np.zeros(n, dtype=np.int64)
    # the computed pairs bound the output: reserve them all when that fits in half the free memory
    # (untouched pages are never mapped), so the output never grows by copying (0.5 s of 4.6 s at 60k)
    out = _Grow(idx_t, area if area * 12 <= _free_memory_bytes() // 2 else 0)
    sbuf = np.empty(0, dtype=np.float32)
    done_area = 0
    for s, t, tiles in plan:
        t0 = time.perf_counter()
        R = int(reach[s:t].max())
        col_group = group[s + 1:R]
        grp = np.full(t - s, -1, dtype=np.int64)
        loc = np.zeros(t - s, dtype=np.int64)
        # every kept tile's scores in one buffer, its columns' lens positions in one array
        cols_sel = []
        for a, (rows_a, keep) in enumerate(tiles):
            sel = np.zeros(k, dtype=bool)
            sel[keep] = True
            cols_sel.append(s + 1 + np.flatnonzero(sel[col_group]))
            grp[rows_a - s] = a
            loc[rows_a - s] = np.arange(len(rows_a))
        s_w = np.array([len(c) for c in cols_sel], dtype=np.int64)
        sizes = np.array([len(r) for r, _ in tiles], dtype=np.int64) * s_w
        s_off = np.concatenate([[0], np.cumsum(sizes)[:-1]]).astype(np.int64)
        c_off = np.concatenate([[0], np.cumsum(s_w)[:-1]]).astype(np.int64)
        total = int(sizes.sum())
        if total == 0:
            continue
        if len(sbuf) < total:
            sbuf = np.empty(max(total, int(len(sbuf) * 1.25)), dtype=np.float32)
        for a, (rows_a, _keep) in enumerate(tiles):
            # the kept groups' columns in lens order, gathered into one contiguous matrix: one GEMM
            # per row group, and each row's pairs come out in column order (no merge)
            cpos, w, ra = cols_sel[a], int(s_w[a]), len(rows_a)
            S = sbuf[s_off[a]:s_off[a] + ra * w].reshape(ra, w)
            La = prep.left[rows_a]
            for c0 in range(0, w, col_chunk):  # the gathered columns stay within block_bytes
                np.matmul(La, prep.right[cpos[c0:c0 + col_chunk]].T, out=S[:, c0:c0 + col_chunk])
        t1 = time.perf_counter()
        tm["gemm"] += t1 - t0
        cpos_all = np.concatenate(cols_sel)
        cnt = np.zeros(t - s, dtype=np.int64)
        pos = scan_groups(sbuf, s_off, s_w, cpos_all, c_off, grp, loc, reach, s, thr32, out.cols, out.score,
                          out.n, cnt)
        done_area += total
        if pos < 0:  # output too short: grow from the density so far, scan again
            kk = -pos - 1
            est = int(2.0 * (out.n + kk) * (area - done_area) / max(done_area, 1))
            out.reserve(kk + est + (1 << 16))
            pos = scan_groups(sbuf, s_off, s_w, cpos_all, c_off, grp, loc, reach, s, thr32, out.cols, out.score,
                              out.n, cnt)
        out.n = pos
        counts[s:t] = cnt
        tm["scan"] += time.perf_counter() - t1
    cols, score = out.arrays()
    rows = np.repeat(np.arange(n, dtype=idx_t), counts)
    return rows, cols, score, counts, area, tm


def _free_memory_bytes() -> int:
    """Free physical memory (0 where the system does not say)."""
    try:
        return int(os.sysconf("SC_AVPHYS_PAGES")) * int(os.sysconf("SC_PAGE_SIZE"))
    except (ValueError, OSError, AttributeError):  # pragma: no cover - not on Linux
        return 0


def _blocked_scores(X: np.ndarray, queries: np.ndarray, metric: str, block_bytes: int = 1 << 26):
    """Yield (query slice, exact-enough distances (float64) of those queries to all rows)."""
    prep = _Prepared(X, metric)
    n = len(X)
    qb = max(1, int(block_bytes // (8 * max(n, 1))))
    for s in range(0, len(queries), qb):
        q = queries[s:s + qb]
        S = (prep.left[q] @ prep.right.T).astype(np.float64)
        if metric == "euclidean":
            S = np.sqrt(np.maximum(S, 0.0))
        else:
            S = np.clip(S, 0.0, 2.0)
        S[np.arange(len(q)), q] = 0.0
        yield slice(s, s + len(q)), S


def k_distance(X: np.ndarray, k: int, metric: str = "euclidean", sample: int | None = 2000,
               random_state: int = 0, block_bytes: int = 1 << 26, backend: str = "numpy",
               device: str = "cpu") -> np.ndarray:
    """Distance of each (sampled) row to its k-th nearest row, counting the row itself as the first.

    With k = DBSCAN's ``min_samples``, a row is a core point exactly when this is <= eps.
    Returned sorted ascending: the k-distance curve used to choose eps.
    """
    X = _as_float_matrix(X)
    check_choice("metric", metric, METRICS)
    n = len(X)
    if not (1 <= int(k) <= n):
        raise AdvtopoError(f"k={k} is not valid; allowed: 1..{n} (the number of rows)")
    if sample is not None and sample < n:
        rng = np.random.default_rng(random_state)
        queries = np.sort(rng.choice(n, size=int(sample), replace=False))
    else:
        queries = np.arange(n)
    out = np.empty(len(queries), dtype=np.float64)
    if backend == "torch":
        import torch

        prep = _Prepared(X, metric)
        dev = _torch_device(device)
        R = torch.from_numpy(prep.right).to(dev)
        L = torch.from_numpy(prep.left[queries]).to(dev)
        qb = max(1, int(block_bytes // (4 * n)))
        for s in range(0, len(queries), qb):
            S = L[s:s + qb] @ R.T
            S[torch.arange(S.shape[0], device=dev), torch.from_numpy(queries[s:s + qb]).to(dev)] = 0.0
            kth = torch.kthvalue(S, int(k), dim=1).values.double().cpu().numpy()
            out[s:s + qb] = np.sqrt(np.maximum(kth, 0)) if metric == "euclidean" else np.clip(kth, 0, 2)
        return np.sort(out)
    for sl, D in _blocked_scores(X, queries, metric, block_bytes):
        out[sl] = np.partition(D, int(k) - 1, axis=1)[:, int(k) - 1]
    return np.sort(out)


def knee_eps(curve: np.ndarray) -> float:
    """The knee of a sorted k-distance curve (kneedle: the point farthest below the chord)."""
    y = np.sort(np.asarray(curve, dtype=np.float64))
    if len(y) < 3 or y[-1] == y[0]:
        return float(np.median(y)) if len(y) else 0.0
    x = np.linspace(0.0, 1.0, len(y))
    yn = (y - y[0]) / (y[-1] - y[0])
    i = int(np.argmax(x - yn))
    eps = float(y[i])
    if eps <= 0:
        pos = y[y > 0]
        eps = float(pos[0]) if len(pos) else 1e-12
    return eps


def auto_eps(X: np.ndarray, min_samples: int, metric: str = "euclidean", sample: int | None = 2000,
             random_state: int = 0, backend: str = "numpy", device: str = "cpu") -> float:
    """eps at the knee of the ``min_samples``-distance curve of a row sample (deterministic)."""
    return knee_eps(k_distance(X, min_samples, metric, sample=sample, random_state=random_state,
                               backend=backend, device=device))
