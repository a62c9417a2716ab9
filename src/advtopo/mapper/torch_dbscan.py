"""DBSCAN of each cover element on a torch device, without materialising the eps-graph.

Why: dense activation clouds have hundreds of eps-neighbours per point, so at 1M rows the
shared edge list would hold billions of pairs. On a GPU, recomputing distances is cheaper
than storing them. Two blocked passes over the upper triangle of each element:

1. degrees -> core points (exact ``dist <= eps`` with the float64 band recheck);
2. core-core hits between *different* current components only are sent to the host and
   merged (union of components), plus the few (non-core, core) pairs for border points.

Labels follow sklearn's order exactly (clusters ranked by their smallest row index, border
points join the first such cluster), so the result equals the CPU path's.
"""
from __future__ import annotations

import numpy as np
from scipy.sparse import coo_matrix
from scipy.sparse.csgraph import connected_components

from advtopo.mapper.neighbors import _REL_TOL, _Prepared, eps_to_threshold


class TorchElementDBSCAN:
    """Holds the lens-sorted prepared rows on the device; ``labels(pos, orig)`` clusters one element."""

    def __init__(self, Xs: np.ndarray, metric: str, device, block_rows: int = 4096, block_cols: int = 16384) -> None:
        import torch

        self.torch = torch
        self.metric = metric
        self.device = device
        prep = _Prepared(Xs, metric)
        self.left = torch.from_numpy(prep.left).to(device)
        self.right = torch.from_numpy(prep.right).to(device)
        self.sq = torch.from_numpy(prep.sq).to(device)
        self.exact = torch.from_numpy(np.ascontiguousarray(Xs)).to(device)
        self.norms = torch.from_numpy(prep.norms).to(device) if metric == "cosine" else None
        self.block_rows = block_rows
        self.block_cols = block_cols

    def _exact(self, i, j):
        a = self.exact[i].double()
        b = self.exact[j].double()
        if self.metric == "euclidean":
            return ((a - b) ** 2).sum(1)
        a = a / self.norms[i, None]
        b = b / self.norms[j, None]
        return 1.0 - (a * b).sum(1)

    def _blocks(self, gidx, thr: float, strict: bool):
        """Yield (s, c0, hit) with hit[r, c] == (dist(s+r, c0+c) <= eps) for c0+c > s+r (local indices)."""
        torch = self.torch
        m = len(gidx)
        L = self.left[gidx]
        R = self.right[gidx]
        sq = self.sq[gidx]
        for s in range(0, m, self.block_rows):
            t = min(m, s + self.block_rows)
            for c0 in range(s, m, self.block_cols):
                c1 = min(m, c0 + self.block_cols)
                S = L[s:t] @ R[c0:c1].T
                if self.metric == "euclidean":
                    tol = _REL_TOL * (float(sq[s:t].max()) + float(sq[c0:c1].max())) + 1e-30
                else:
                    tol = 4 * _REL_TOL
                hit = S < thr - tol if strict else S <= thr - tol
                band = torch.nonzero((S - thr).abs_() <= tol)
                del S
                if band.shape[0]:
                    bi, bj = band[:, 0], band[:, 1]
                    ex = self._exact(gidx[bi + s], gidx[bj + c0])
                    ok = ex < thr if strict else ex <= thr
                    hit[bi, bj] = ok
                if c0 < t:  # diagonal block: keep the strict upper triangle only
                    rr = torch.arange(s, t, device=hit.device)[:, None]
                    cc = torch.arange(c0, c1, device=hit.device)[None, :]
                    hit &= cc > rr
                yield s, t, c0, c1, hit

    def labels(self, pos: np.ndarray, orig: np.ndarray, eps: float, min_samples: int, strict: bool = False) -> np.ndarray:
        """sklearn DBSCAN labels of the rows at lens-sorted positions ``pos`` (``orig`` = their row ids)."""
        torch = self.torch
        m = len(pos)
        labels = np.full(m, -1, dtype=np.int64)
        if m == 0:
            return labels
        thr = eps_to_threshold(eps, self.metric)
        gidx = torch.from_numpy(np.asarray(pos, dtype=np.int64)).to(self.device)
        # pass 1: degrees
        deg = torch.zeros(m, dtype=torch.int64, device=self.device)
        for s, t, c0, c1, hit in self._blocks(gidx, thr, strict):
            deg[s:t] += hit.sum(1)
            deg[c0:c1] += hit.sum(0)
        core_t = deg + 1 >= min_samples
        core = core_t.cpu().numpy()
        if not core.any():
            return labels
        # pass 2: merge components of core points; collect (border, core) pairs
        comp = torch.arange(m, device=self.device)
        remap = np.arange(m)
        border_b, border_c = [], []
        for s, t, c0, c1, hit in self._blocks(gidx, thr, strict):
            cr, cc_ = core_t[s:t], core_t[c0:c1]
            hb = hit & (cr[:, None] ^ cc_[None, :])
            if bool(hb.any()):
                bi, bj = torch.nonzero(hb, as_tuple=True)
                gi, gj = bi + s, bj + c0
                is_core_i = core_t[gi]
                border_b.append(torch.where(is_core_i, gj, gi).cpu().numpy())
                border_c.append(torch.where(is_core_i, gi, gj).cpu().numpy())
            core_hit = hit & cr[:, None] & cc_[None, :]
            del hit
            big = m + 1
            while True:
                # hits between different current components; reduce on the device to one
                # pair per row and per column (the smallest other component), merge, repeat
                cch = core_hit & (comp[s:t, None] != comp[None, c0:c1])
                if not bool(cch.any()):
                    break
                comp_r = comp[s:t]
                comp_c = comp[c0:c1]
                col_min = torch.where(cch, comp_r[:, None], big).amin(0)
                row_min = torch.where(cch, comp_c[None, :], big).amin(1)
                del cch
                jc = torch.nonzero(col_min < big, as_tuple=True)[0]
                ir = torch.nonzero(row_min < big, as_tuple=True)[0]
                ru = torch.cat([col_min[jc], comp_r[ir]]).cpu().numpy()
                rv = torch.cat([comp_c[jc], row_min[ir]]).cpu().numpy()
                nodes, inv = np.unique(np.concatenate([ru, rv]), return_inverse=True)
                k = len(nodes)
                g = coo_matrix((np.ones(len(ru), dtype=np.int8), (inv[:len(ru)], inv[len(ru):])), shape=(k, k))
                _, cl = connected_components(g, directed=False)
                newroot = np.full(cl.max() + 1, np.iinfo(np.int64).max)
                np.minimum.at(newroot, cl, nodes)
                remap[:] = np.arange(m)
                remap[nodes] = newroot[cl]
                comp = torch.from_numpy(remap).to(self.device)[comp]
        comp_np = comp.cpu().numpy()
        core_idx = np.flatnonzero(core)
        roots = comp_np[core_idx]
        big = np.iinfo(np.int64).max
        first = np.full(m, big, dtype=np.int64)
        np.minimum.at(first, roots, orig[core_idx])
        used = np.flatnonzero(first < big)
        rank = np.full(m, -1, dtype=np.int64)
        rank[used[np.argsort(first[used], kind="stable")]] = np.arange(len(used))
        labels[core_idx] = rank[roots]
        if border_b:
            b = np.concatenate(border_b)
            c = np.concatenate(border_c)
            best = np.full(m, big, dtype=np.int64)
            np.minimum.at(best, b, labels[c])
            hitb = best < big
            labels[hitb] = best[hitb]
        return labels
