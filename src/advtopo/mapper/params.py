"""``MapperParams``: the Mapper's parameters as one typed value holding the one set of rules.

A study's ``[[mapper]]`` table, the app's rebuild request and ``Mapper(...)`` hold the same
parameters. They travel as a ``MapperParams`` (a frozen dataclass whose fields and defaults
are ``Mapper.__init__``'s), are checked by :meth:`MapperParams.validate` (``Mapper.fit``
calls it too), and are written as JSON by :meth:`MapperParams.to_dict` (the form the study
hashes into its task keys)::

    p = MapperParams.from_dict({"n_intervals": 15, "overlap": 0.5, "metric": "cosine"})
    p.validate(n_samples=len(X))
    graph = Mapper.from_params(p.replace(eps=0.4)).fit(X, metadata)
"""
from __future__ import annotations

import dataclasses
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

import numpy as np

from advtopo.errors import AdvtopoError, check_choice, did_you_mean
from advtopo.mapper._checks import (
    check_eps, check_int_at_least, check_n_intervals, check_n_jobs, check_overlap, is_default, is_int,
    is_number,
)
from advtopo.mapper.clusterers import CLUSTERERS, GraphClusterer, SklearnClusterer
from advtopo.mapper.cover import COVERS, Cover
from advtopo.mapper.lenses import LENSES
from advtopo.utils.metrics import METRICS

BACKENDS = ("numpy", "torch")
DEVICES = ("auto", "cpu", "cuda", "mps")  # optionally with an index, "cuda:1"

# Written by to_dict whatever their value: every study task key has held these since the
# first runs, so cached results keep their keys. Other parameters are written only when
# they differ from the default.
STUDY_KEYS = ("lens", "cover", "n_intervals", "overlap", "clusterer", "eps", "min_samples", "metric")

# lenses whose n_components sets the lens dimension (1 by default)
_EMBEDDING_LENSES = ("pca", "umap", "tsne")


@dataclass(frozen=True)
class MapperParams:
    """Every parameter of :class:`advtopo.mapper.Mapper`, with its default (see docs/mapper.md).

    Construction only stores (like the Mapper); :meth:`validate` checks, :meth:`from_dict`
    builds from JSON / TOML data and checks.
    """

    lens: Any = "l2norm"
    cover: Any = "uniform"
    clusterer: Any = "dbscan"
    metric: str = "euclidean"
    n_intervals: int | tuple[int, ...] = 10
    overlap: float | tuple[float, ...] = 0.3
    eps: float | str = "auto"
    min_samples: int = 5
    backend: str = "numpy"
    device: str | None = "cpu"
    block_bytes: int = 1 << 26
    keep_means: bool = False
    random_state: int | None = 0
    verbose: bool = False
    n_jobs: int = -1

    # -- building -------------------------------------------------------------------------
    @classmethod
    def names(cls) -> tuple[str, ...]:
        """The parameter names, in ``Mapper.__init__``'s order."""
        return tuple(f.name for f in dataclasses.fields(cls))

    @classmethod
    def from_dict(cls, d: Mapping[str, Any], *, where: str = "mapper") -> MapperParams:
        """Parameters from JSON / TOML data, checked. Unknown keys and wrong types are refused
        naming ``where.key``; numbers are accepted where floats are (stored as floats)."""
        if not isinstance(d, Mapping):
            raise AdvtopoError(f"{where or 'the mapper parameters'} must be a table of parameters, got {d!r}")
        names = cls.names()
        kwargs = {}
        for key, value in d.items():
            if key not in names:
                raise AdvtopoError(f"unknown key {_path(where, key)!r}{did_you_mean(key, names)}; "
                                   f"allowed in {where or 'the mapper parameters'}: {', '.join(names)}")
            kwargs[key] = _from_json(key, value, _path(where, key))
        return cls(**kwargs).validate(where=where)

    @classmethod
    def from_graph_params(cls, params: Mapping[str, Any], *, where: str = "params") -> MapperParams:
        """The parameters that rebuild a stored graph, read from its JSON ``"params"``: the
        requested eps (``eps_requested``, ``"auto"`` or the number), not the resolved one; the
        keys that are not Mapper parameters (``eps_requested``, ``rows``) are left out. A
        graph whose lens, cover or clusterer was an object (not a name) cannot be rebuilt.
        ``random_state`` is not stored in a graph: give the one it was built with (the study's
        seed, ``.replace(random_state=seed % 2**31)``) so ``eps="auto"`` finds the same knee."""
        d = {k: v for k, v in params.items() if k in cls.names()}
        if "eps_requested" in params:
            d["eps"] = params["eps_requested"]
        if isinstance(d.get("lens"), str) and "+" in d["lens"]:  # lens_name of a 2-D lens: "pca+std"
            d["lens"] = d["lens"].split("+")
        return cls.from_dict(d, where=where)

    def replace(self, **changes: Any) -> MapperParams:
        """A copy with ``changes`` (not validated: call :meth:`validate`)."""
        names = self.names()
        for key in changes:
            if key not in names:
                raise AdvtopoError(f"unknown Mapper parameter {key!r}{did_you_mean(key, names)}; "
                                   f"allowed: {', '.join(names)}")
        return dataclasses.replace(self, **changes)

    # -- writing --------------------------------------------------------------------------
    def kwargs(self) -> dict[str, Any]:
        """Every parameter as ``Mapper(**kwargs)`` takes it (values as stored, not copied)."""
        return {name: getattr(self, name) for name in self.names()}

    def to_dict(self, include: Iterable[str] = ()) -> dict[str, Any]:
        """JSON data: the :data:`STUDY_KEYS` always, the other parameters when they differ from
        the default or are named in ``include``. Raises for values JSON cannot hold (an array
        lens, a clusterer object)."""
        defaults = MapperParams()
        include = set(include)
        out = {}
        for name in STUDY_KEYS + tuple(n for n in self.names() if n not in STUDY_KEYS):
            value = getattr(self, name)
            if name in STUDY_KEYS or name in include or not is_default(value, getattr(defaults, name)):
                out[name] = _to_json(name, value)
        return out

    # -- the rules ------------------------------------------------------------------------
    def validate(self, n_samples: int | None = None, *, where: str = "") -> MapperParams:
        """Check every parameter; ``n_samples``: the rows the graph will have, when known
        (then n_intervals <= n_samples and an array lens has one value per row). Errors name
        ``where.key``, say what was wrong and what is allowed. Returns self."""
        if n_samples is not None and (not is_int(n_samples) or n_samples < 1):
            raise AdvtopoError(f"cannot build a mapper graph of {n_samples!r} points; it needs at least 1 row")
        dims = _check_lens(self.lens, _path(where, "lens"), n_samples)
        _check_cover(self.cover, _path(where, "cover"))
        _check_clusterer(self.clusterer, _path(where, "clusterer"))
        check_choice(_path(where, "metric"), self.metric, METRICS)
        # a Cover object brings its own resolution (the Mapper's n_intervals/overlap are not used)
        owner, resolution = (_path(where, "cover"), self.cover) if isinstance(self.cover, Cover) else (where, self)
        n_path, ov_path = _path(owner, "n_intervals"), _path(owner, "overlap")
        for n in _per_dimension(resolution.n_intervals, dims, n_path):
            check_n_intervals(n, n_path)
            if n_samples is not None and n > n_samples:
                raise AdvtopoError(f"{n_path}={n} is more than the number of points ({n_samples}); "
                                   f"allowed: 1..{n_samples}")
        for ov in _per_dimension(resolution.overlap, dims, ov_path):
            check_overlap(ov, ov_path)
        check_eps(self.eps, _path(where, "eps"))
        check_int_at_least(self.min_samples, 1, _path(where, "min_samples"))
        check_choice(_path(where, "backend"), self.backend, BACKENDS)
        _check_device(self.device, _path(where, "device"))
        check_int_at_least(self.block_bytes, 1, _path(where, "block_bytes"))
        for name in ("keep_means", "verbose"):
            if not isinstance(getattr(self, name), (bool, np.bool_)):
                raise AdvtopoError(f"{_path(where, name)}={getattr(self, name)!r} is not valid; allowed: true or false")
        if self.random_state is not None and not (is_int(self.random_state) and 0 <= self.random_state < 2 ** 32):
            raise AdvtopoError(f"{_path(where, 'random_state')}={self.random_state!r} is not valid; "
                               "allowed: an integer >= 0 and < 2**32 (or None: not reproducible)")
        check_n_jobs(self.n_jobs, _path(where, "n_jobs"))
        return self


# --- helpers -----------------------------------------------------------------------------

def _path(where: str, key: str) -> str:
    return f"{where}.{key}" if where else key


def _wrong_type(path: str, value: Any, expected: str) -> AdvtopoError:
    return AdvtopoError(f"{path}={value!r} has the wrong type; expected {expected}")


def _from_json(key: str, value: Any, path: str) -> Any:
    """A JSON / TOML value as the parameter stores it (type checks only; values: validate)."""
    if key == "lens":
        if isinstance(value, str):
            return value
        if isinstance(value, list) and value and all(isinstance(v, str) for v in value):
            return list(value)  # a list of 1-D lenses (a tuple would read as (name, params))
        raise _wrong_type(path, value, "string (a lens name) or list of strings (a 2-D lens)")
    if key in ("cover", "clusterer", "metric", "backend", "device"):
        if isinstance(value, str):
            return value
        raise _wrong_type(path, value, "string")
    if key in ("keep_means", "verbose"):
        if isinstance(value, bool):
            return value
        raise _wrong_type(path, value, "true/false")
    if key == "eps":
        if isinstance(value, str):
            return value
        if is_number(value):
            return float(value)
        raise _wrong_type(path, value, "number or 'auto'")
    if key in ("n_intervals", "overlap"):
        scalar = is_int if key == "n_intervals" else is_number
        kind = "integer" if key == "n_intervals" else "number"
        if scalar(value):
            return value if key == "n_intervals" else float(value)
        if isinstance(value, list) and value and all(scalar(v) for v in value):
            return tuple(v if key == "n_intervals" else float(v) for v in value)
        raise _wrong_type(path, value, f"{kind} or list of {kind} (one per lens dimension)")
    if key == "random_state" and value is None:
        return None
    if is_int(value):  # min_samples, block_bytes, random_state, n_jobs
        return value
    raise _wrong_type(path, value, "integer")


def _to_json(key: str, value: Any) -> Any:
    if isinstance(value, (np.generic,)):
        value = value.item()
    if value is None or isinstance(value, (str, bool, int, float)):
        return value
    if isinstance(value, (list, tuple)) and all(isinstance(v, (str, int, float, np.generic)) for v in value) \
            and not (key == "lens" and isinstance(value, tuple)):
        return [v.item() if isinstance(v, np.generic) else v for v in value]
    raise AdvtopoError(f"{key}={value!r} cannot be written as JSON (MapperParams.to_dict holds names, numbers "
                       "and lists of them); build the Mapper with Mapper.from_params(params) instead")


def _per_dimension(value: Any, dims: int | None, path: str) -> list:
    """The values of a per-dimension parameter (one number, or one per lens dimension)."""
    if np.ndim(value) == 0:
        return [value]
    values = list(value)
    if not 1 <= len(values) <= 2 or (dims is not None and len(values) != dims):
        raise AdvtopoError(f"{path}={value!r} has {len(values)} entries but the lens has "
                           f"{dims if dims is not None else '1 or 2'} dimensions; give one number or one per dimension")
    return values


def _unknown_name(path: str, value: Any, kind: str, allowed: list[str], extra: str = "") -> AdvtopoError:
    return AdvtopoError(f"{path}={value!r} is not valid: unknown {kind}{did_you_mean(value, allowed)}; "
                        f"allowed: {', '.join(allowed)}{extra}")


def _check_lens(lens: Any, path: str, n_samples: int | None) -> int | None:
    """Check a lens spec (as ``compute_lens`` reads it); returns its dimension when known."""
    if isinstance(lens, str):
        if lens not in LENSES:
            raise _unknown_name(path, lens, "lens", LENSES.names())
        if lens == "precomputed":
            raise AdvtopoError(f"{path}='precomputed' needs the values: give the array itself as the lens, "
                               "or ('precomputed', {'values': array})")
        return 1
    if isinstance(lens, tuple) and len(lens) == 2 and isinstance(lens[0], str):
        name, kwargs = lens
        if name not in LENSES:
            raise _unknown_name(f"{path}[0]", name, "lens", LENSES.names())
        if not isinstance(kwargs, Mapping):
            raise AdvtopoError(f"{path}={lens!r} is not valid; a (name, params) lens needs a dict of parameters")
        n_components = kwargs.get("n_components", 1) if name in _EMBEDDING_LENSES else 1
        return int(n_components) if is_int(n_components) else None
    if isinstance(lens, list):
        if not 1 <= len(lens) <= 2:
            raise AdvtopoError(f"{path} is a list of {len(lens)} lenses; allowed: one or two (a 2-D cover)")
        dims = [_check_lens(spec, f"{path}[{j}]", n_samples) for j, spec in enumerate(lens)]
        return None if None in dims else sum(dims)
    if isinstance(lens, (np.ndarray, tuple)):
        values = np.asarray(lens)
        if values.ndim not in (1, 2) or (values.ndim == 2 and values.shape[1] not in (1, 2)):
            raise AdvtopoError(f"{path} is an array of shape {values.shape}; allowed: (n,), (n, 1) or (n, 2)")
        if not (np.issubdtype(values.dtype, np.integer) or np.issubdtype(values.dtype, np.floating)):
            raise AdvtopoError(f"{path} must be an array of real numbers; got dtype {values.dtype}")
        if n_samples is not None and len(values) != n_samples:
            raise AdvtopoError(f"{path} has {len(values)} values but X has {n_samples} rows")
        return 1 if values.ndim == 1 else values.shape[1]
    if callable(lens):
        return None
    raise AdvtopoError(f"{path}={lens!r} is not valid; allowed: one of {', '.join(LENSES.names())}, "
                       "(name, params), a list of two lenses, an array or a callable")


def _check_cover(cover: Any, path: str) -> None:
    if isinstance(cover, Cover):
        return
    if not isinstance(cover, str) or cover not in COVERS:
        raise _unknown_name(path, cover, "cover", COVERS.names(), " or a Cover object")


def _check_clusterer(clusterer: Any, path: str) -> None:
    if isinstance(clusterer, str):
        if clusterer not in CLUSTERERS:
            raise _unknown_name(path, clusterer, "clusterer", CLUSTERERS.names(),
                                " or an object with fit_predict (an sklearn clusterer)")
        return
    if isinstance(clusterer, (GraphClusterer, SklearnClusterer)) or hasattr(clusterer, "fit_predict") \
            or hasattr(clusterer, "fit"):
        return
    raise AdvtopoError(f"{path}={clusterer!r} is not valid; allowed: one of {', '.join(CLUSTERERS.names())} "
                       "or an object with fit_predict (an sklearn clusterer)")


def _check_device(device: Any, path: str) -> None:
    if device is None:
        return
    if isinstance(device, str):
        base, _, index = device.partition(":")
        if base in DEVICES and (not index or index.isdigit()):
            return
    raise AdvtopoError(f"{path}={device!r} is not valid{did_you_mean(str(device), DEVICES)}; "
                       f"allowed: {', '.join(DEVICES)} (optionally with an index, 'cuda:1')")
