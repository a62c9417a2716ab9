"""Where everything lies in a run directory: the one module that names its files and keys.

Every path is relative to the run directory, with ``/`` separators (as index.json stores
them). The study writes through :mod:`advtopo.rundir.writer`, everyone else reads through
:class:`advtopo.rundir.Run`; neither spells a file name of its own.
"""
from __future__ import annotations

import math
from typing import Any

from advtopo.errors import AdvtopoError, check_choice

FORMAT_VERSION = 1  # index.json["format_version"]; a run written before the key existed is version 1

INDEX = "index.json"
MANIFEST = "manifest.json"
CONFIG = "config.toml"
SAMPLES = "samples.parquet"
# the columns of samples.parquet that readers use (all columns: docs/architecture.md)
SAMPLES_READ_COLUMNS = ("sample_id", "model", "attack", "eps", "is_adversarial", "label", "prediction")
VULNERABILITY = "vulnerability.json"
DATAPATHS = "datapaths.json"
SEPARABILITY = "separability.json"
STABILITY = "stability.json"
ACTIVATION_GRAPH = "activation_graph.json"  # index key "activation_graph" (advtopo.study.actgraph)
RECOVERY = "recovery.json"  # index key "recovery" (advtopo.study.recovery)
RUN_LOCK = "run.lock"  # held by the process writing the run (`advtopo run`; advtopo.rundir.lock)
MAPPER_DIR = "mapper"
PERSISTENCE_DIR = "persistence"
REPORT_DIR = "report"  # ``advtopo report``'s default output folder
TASKS_DIR = "tasks"  # the study's cached task outputs (private to advtopo.study)
APP_CACHE_DIR = "app-cache"
APP_CACHES = ("recompute", "featurevis", "embedding")  # what the web app caches in the run


def eps_key(eps: float | str) -> str:
    """The text of an attack strength in ids, keys and file names: ``0.1``, ``0``, ``0.0313725``."""
    return f"{float(eps):g}"


def eps_equal(a: Any, b: Any) -> bool:
    """Whether two attack strengths (numbers or their text: ``0.1``, ``0.10``, ``1e-1``; 8/255 and
    its key ``0.0313725``) are the same."""
    try:
        return eps_key(a) == eps_key(b) or math.isclose(float(a), float(b), rel_tol=1e-9, abs_tol=1e-12)
    except (TypeError, ValueError):
        return False


def graph_id(model: str, layer: str, attack: str, eps: float, param_set: str | None = None) -> str:
    """``model__layer__attack__eps``, plus ``__param_set`` when a study has several mapper sets."""
    gid = f"{model}__{layer}__{attack}__{eps_key(eps)}"
    return f"{gid}__{param_set}" if param_set else gid


def clean_images_path() -> str:
    return "images/clean.npy"


def adversarial_images_key(model: str, attack: str, eps: float) -> str:
    """The key of an adversarial image set in index.json["images"]["adversarial"]."""
    return f"{model}/{attack}/{eps_key(eps)}"


def split_adversarial_images_key(key: str) -> tuple[str, str, str] | None:
    """``(model, attack, eps text)`` of an adversarial image key, or None for a malformed one."""
    parts = str(key).split("/")
    return (parts[0], parts[1], parts[2]) if len(parts) == 3 else None


def adversarial_images_path(model: str, attack: str, eps: float) -> str:
    return f"images/{model}/{attack}_{eps_key(eps)}.npy"


def mapper_graph_path(graph_id: str) -> str:
    return f"{MAPPER_DIR}/{_file_name(graph_id, 'graph id')}.json"


def task_dir(stage: str, key: str) -> str:
    """The folder of one cached study task (its outputs; ``DONE.json`` marks it finished)."""
    return f"{TASKS_DIR}/{_file_name(stage, 'stage')}/{_file_name(key, 'task key')}"


def task_file(stage: str, key: str, name: str) -> str:
    """A file a task wrote that index.json names (a model's checkpoint.pt, a capture's activations.zarr)."""
    return f"{task_dir(stage, key)}/{_file_name(name, 'task output')}"


def app_cache_path(kind: str, name: str) -> str:
    """A file the web app caches in the run: ``app-cache/<kind>/<name>``."""
    check_choice("app cache", kind, APP_CACHES)
    return f"{APP_CACHE_DIR}/{kind}/{_file_name(name, 'cache file name')}"


def recompute_index_path() -> str:
    """The list of graphs the app recomputed (entries like index.json["graphs"])."""
    return app_cache_path("recompute", "index.json")


def recompute_graph_path(graph_id: str) -> str:
    return app_cache_path("recompute", f"{graph_id}.json")


def app_session_path() -> str:
    """Where ``advtopo serve`` leaves its URL and API token for scripts (owner-only, removed on exit)."""
    return f"{APP_CACHE_DIR}/session.json"


def _file_name(name: str, what: str) -> str:
    """``name`` when it is one plain path part (no separator, not hidden, not ``..``)."""
    if not isinstance(name, str) or not name or name.startswith(".") or any(c in name for c in "/\\\x00"):
        raise AdvtopoError(f"{what} {name!r} cannot name a file: it must be non-empty, not start with '.', "
                           "and hold no '/', '\\' or NUL")
    return name
