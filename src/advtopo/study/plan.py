"""The plan: a StudyConfig turned into cached tasks, stage by stage (:data:`STAGES`).

Each ``plan_<stage>(plan)`` adds its stage's tasks; a task names its runner
(``advtopo.study.stages:run_<stage>``, or the measures' runners) by string, so it pickles for
Dask. New stages are added to :data:`STAGES` with their plan function.
"""
from __future__ import annotations

import hashlib
import json
from collections.abc import Callable
from dataclasses import asdict
from pathlib import Path
from typing import Any

import numpy as np

from advtopo.errors import AdvtopoError
from advtopo.rundir.layout import eps_key, graph_id
from advtopo.study.config import StudyConfig
from advtopo.study.actgraph import plan_activation_graph
from advtopo.study.measures import plan_separability, plan_stability
from advtopo.study.recovery import plan_recovery
from advtopo.study.tasks import Task

HERE = "advtopo.study.stages"  # the runners' module

# --- plan ----------------------------------------------------------------------------------

class Plan:
    """All tasks of a study, with lookups by meaning (model, attack, eps, ...)."""

    def __init__(self, cfg: StudyConfig, model_objects: dict[str, Any] | None = None,
                 dataset: Any = None, train_dataset: Any = None) -> None:
        self.cfg = cfg
        self.model_objects = dict(model_objects or {})  # name -> nn.Module given to run_study
        self.dataset = dataset  # ImageDataset objects given to run_study (hashed by content)
        self.train_dataset = train_dataset
        self.memo: dict[str, Any] = {}
        self.tasks: list[Task] = []
        self.data: Task | None = None
        self.models: dict[str, Task] = {}
        self.attacks: dict[tuple[str, str, float], Task] = {}
        self.captures: dict[tuple[str, str, float], Task] = {}  # (model, attack or 'clean', eps)
        self.graphs: dict[str, tuple[Task, dict[str, Any]]] = {}
        self.persistence: Task | None = None
        self.vulnerability: Task | None = None
        self.datapaths: Task | None = None

    def add(self, task: Task) -> Task:
        self.tasks.append(task)
        return task

    def capture_for(self, model: str, attack: str, eps: float) -> Task:
        return self.captures[(model, "clean", 0.0)] if eps == 0 else self.captures[(model, attack, float(eps))]


def _dataset_slice(cfg: StudyConfig, plan: Plan | None = None) -> dict[str, Any]:
    d = {k: v for k, v in asdict(cfg.dataset).items() if v is not None}
    if plan is not None and plan.dataset is not None:
        if "_dataset_slice" in plan.memo:  # hash the (possibly large) objects once per plan
            return dict(plan.memo["_dataset_slice"])
        # objects given to run_study: named by their content, not by the config's dataset name
        d = {k: d[k] for k in ("subset", "train_subset", "seed") if k in d}
        d.update(object_name=plan.dataset.name, object_sha256=dataset_sha256(plan.dataset))
        if plan.train_dataset is not None:
            d["train_object_sha256"] = dataset_sha256(plan.train_dataset)
        plan.memo["_dataset_slice"] = dict(d)
    return d


def dataset_sha256(ds: Any) -> str:
    """An ImageDataset's identity for the cache: sha256 of its pixels, labels and class names."""
    h = hashlib.sha256()
    h.update(json.dumps([list(ds.class_names), list(ds.x.shape)]).encode())
    h.update(ds.x.detach().cpu().contiguous().numpy().tobytes())
    h.update(ds.y.detach().cpu().numpy().astype(np.int64).tobytes())
    return h.hexdigest()


def _file_digest(path: str, length: int = 16) -> str:
    p = Path(path)
    if not p.is_file():
        raise AdvtopoError(f"file {path} does not exist")
    h = hashlib.sha256()
    with open(p, "rb") as fh:
        for chunk in iter(lambda: fh.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()[:length]


def plan_data(plan: Plan) -> None:
    cfg = plan.cfg
    plan.data = plan.add(Task("data", f"data {cfg.dataset.name} {cfg.dataset.split}", f"{HERE}:run_data",
                              {"dataset": _dataset_slice(cfg, plan)}))


def state_dict_sha256(model: Any) -> str:
    """A model object's identity for the cache: the sha256 of its state_dict (names, dtypes,
    shapes, bytes), so the same weights hit the cache and changed weights recompute."""
    import torch

    h = hashlib.sha256()
    for k, v in sorted(model.state_dict().items()):
        t = v.detach().cpu().contiguous()
        h.update(f"{k}|{t.dtype}|{tuple(t.shape)}|".encode())
        if t.numel():
            h.update(t.reshape(-1).view(torch.uint8).numpy().tobytes())
    return h.hexdigest()


def _arch_source(arch: str, base_dir: str | None) -> tuple[str, str | None]:
    """(arch with an absolute file path, sha256 of the file defining the factory or None for
    the registry): editing the user's model file changes the task key, so results recompute."""
    import inspect

    from advtopo.models import arch_file, resolve_arch

    if ":" not in arch:
        return arch, None
    path = arch_file(arch, base_dir)
    if path is not None:
        return f"{path}:{arch.rpartition(':')[2]}", _file_digest(str(path), 64)
    try:
        src = inspect.getsourcefile(resolve_arch(arch, base_dir))
    except TypeError:
        src = None
    return arch, (_file_digest(src, 64) if src else None)


def plan_train(plan: Plan) -> None:
    from advtopo.study.config import resolve_checkpoint

    cfg = plan.cfg
    objects = plan.model_objects
    for i, m in enumerate(cfg.models):
        name = cfg.model_name(i)
        norm = {k: [float(v) for v in getattr(m, k)] for k in ("mean", "std") if getattr(m, k) is not None}
        if name in objects:
            obj = objects[name]
            params: dict[str, Any] = {"object": name, "class": f"{type(obj).__module__}.{type(obj).__qualname__}",
                                      "state_sha256": state_dict_sha256(obj), "mean": m.mean, "std": m.std}
        elif m.checkpoint:
            arch, arch_sha = _arch_source(m.arch, cfg.base_dir)
            path = resolve_checkpoint(m.checkpoint, cfg.base_dir)
            params = {"arch": arch, "arch_kwargs": dict(m.arch_kwargs), **norm, "checkpoint": str(path),
                      "sha256": _file_digest(str(path), 64)}
            if arch_sha:
                params["arch_sha256"] = arch_sha
        else:
            params = {"arch": m.arch, "seed": cfg.seed, "dataset": _dataset_slice(cfg, plan), "_resumable": True,
                      "recipe": dict(m.train)}
            if m.arch_kwargs or norm or ":" in m.arch:  # (plain registry models keep their old task keys)
                arch, arch_sha = _arch_source(m.arch, cfg.base_dir)
                params.update(arch=arch, arch_kwargs=dict(m.arch_kwargs), **norm)
                if arch_sha:
                    params["arch_sha256"] = arch_sha
        plan.models[name] = plan.add(Task("train", f"train {name}", f"{HERE}:run_train", params,
                                          {"data": plan.data}))


def plan_attack(plan: Plan) -> None:
    cfg = plan.cfg
    for name, mt in plan.models.items():
        for a in cfg.attacks:
            for eps in a.eps:
                if eps == 0:
                    continue
                params = {"attack": a.name, "eps": float(eps), "kwargs": a.kwargs(), "seed": cfg.seed,
                          "batch_size": cfg.capture.batch_size}
                plan.attacks[(name, a.name, float(eps))] = plan.add(
                    Task("attack", f"attack {name} {a.name} eps={eps_key(eps)}", f"{HERE}:run_attack", params,
                         {"data": plan.data, "model": mt}))


def plan_capture(plan: Plan) -> None:
    cfg = plan.cfg
    layers = [{"module": la.module, "summary": la.summary, **({"name": la.name} if la.name else {})}
              for la in cfg.layers]
    params = {"layers": layers, "batch_size": cfg.capture.batch_size, "seed": cfg.capture.seed}
    for name, mt in plan.models.items():
        plan.captures[(name, "clean", 0.0)] = plan.add(
            Task("capture", f"capture {name} clean", f"{HERE}:run_capture", params,
                 {"data": plan.data, "model": mt}))
        for (m, attack, eps), at in plan.attacks.items():
            if m == name:
                plan.captures[(name, attack, eps)] = plan.add(
                    Task("capture", f"capture {name} {attack} eps={eps_key(eps)}", f"{HERE}:run_capture", params,
                         {"data": plan.data, "model": mt, "adv": at}))


def plan_mapper(plan: Plan) -> None:
    cfg = plan.cfg
    for name in plan.models:
        for layer in cfg.layers:
            for a in cfg.attacks:
                for eps in a.eps:
                    for ms in cfg.mapper:
                        deps = {"data": plan.data, "clean": plan.captures[(name, "clean", 0.0)]}
                        params = {"layer": layer.key, "mapper": ms.params(), "seed": cfg.seed}
                        if eps > 0:
                            if ms.rows != "clean":
                                deps["adv"] = plan.captures[(name, a.name, float(eps))]
                            if ms.rows != "both":  # "both" adds no key: default task keys and graphs unchanged
                                params["rows"] = ms.rows
                        gid = graph_id(name, layer.key, a.name, eps, ms.name if len(cfg.mapper) > 1 else None)
                        t = plan.add(Task("mapper", f"mapper {gid}", f"{HERE}:run_mapper", params, deps))
                        plan.graphs[gid] = (t, {"id": gid, "model": name, "layer": layer.key, "attack": a.name,
                                                "eps": float(eps), "mapper_set": ms.name, "rows": ms.rows})


def plan_persistence(plan: Plan) -> None:
    cfg = plan.cfg
    if not cfg.persistence.enabled:
        return
    deps: dict[str, Task] = {"data": plan.data}
    entries = []
    for name in plan.models:
        for a in cfg.attacks:
            for eps in a.eps:
                t = plan.capture_for(name, a.name, eps)
                role = f"c_{t.key}"
                deps[role] = t
                for layer in cfg.layers:
                    entries.append({"model": name, "layer": layer.key, "attack": a.name, "eps": float(eps), "role": role})
    plan.persistence = plan.add(Task("persistence", "persistence", f"{HERE}:run_persistence",
                                     {"entries": entries, "settings": cfg.persistence.settings}, deps))


def plan_vulnerability(plan: Plan) -> None:
    cfg = plan.cfg
    v = cfg.vulnerability
    if not v.enabled:
        return
    model = v.model or cfg.model_names[0]
    layer = v.layer or cfg.layers[-1].key
    attack = next(a for a in cfg.attacks if a.name == (v.attack or cfg.attacks[0].name))
    eps0 = min(attack.eps)
    gid = graph_id(model, layer, attack.name, eps0, cfg.mapper[0].name if len(cfg.mapper) > 1 else None)
    deps: dict[str, Task] = {"data": plan.data, "graph": plan.graphs[gid][0],
                             "clean": plan.captures[(model, "clean", 0.0)]}
    eps_roles = []
    for eps in attack.eps:
        if eps > 0:
            t = plan.capture_for(model, attack.name, eps)
            deps[f"c_{t.key}"] = t
            eps_roles.append({"eps": float(eps), "role": f"c_{t.key}"})
    plan.vulnerability = plan.add(Task(
        "vulnerability", f"vulnerability {model} {layer}", "advtopo.study.vulnerability:run_vulnerability",
        {"model": model, "layer": layer, "attack": attack.name, "graph_id": gid, "eps_roles": eps_roles,
         "seed": cfg.seed, "n_boot": 1000}, deps))


def plan_datapaths(plan: Plan) -> None:
    cfg = plan.cfg
    d = cfg.datapaths
    if not d.enabled:
        return
    import inspect

    from advtopo.datapaths import DatapathExtractor

    model = d.model or cfg.model_names[0]
    attack = next(a for a in cfg.attacks if a.name == (d.attack or cfg.attacks[0].name))
    eps_list = [float(e) for e in (d.eps if d.eps is not None else attack.eps) if e > 0]
    defaults = inspect.signature(DatapathExtractor).parameters
    extractor = {k: (getattr(d, k) if getattr(d, k) is not None else defaults[k].default)
                 for k in ("lam", "steps", "lr")}
    extractor.update(threshold=d.threshold, seed=cfg.seed, batch_size=256)
    deps: dict[str, Task] = {"data": plan.data, "model": plan.models[model]}
    eps_roles = []
    for eps in eps_list:
        t = plan.attacks[(model, attack.name, eps)]
        deps[f"a_{t.key}"] = t
        eps_roles.append({"eps": eps, "role": f"a_{t.key}"})
    plan.datapaths = plan.add(Task(
        "datapaths", f"datapaths {model} {attack.name}", f"{HERE}:run_datapaths",
        {"model": model, "attack": attack.name, "layers": cfg.datapath_layers(), "eps_roles": eps_roles,
         "n_samples": d.n_samples, "extractor": extractor, "top_k": d.top_k, "n_detail": d.n_detail}, deps))


# The stage list: (name, plan function). Extend with STAGES.append(...) or insert.
STAGES: list[tuple[str, Callable[[Plan], None]]] = [
    ("data", plan_data),
    ("train", plan_train),
    ("attack", plan_attack),
    ("capture", plan_capture),
    ("mapper", plan_mapper),
    ("persistence", plan_persistence),
    ("vulnerability", plan_vulnerability),
    ("datapaths", plan_datapaths),
    ("separability", plan_separability),
    ("stability", plan_stability),
    ("activation_graph", plan_activation_graph),
    ("recovery", plan_recovery),
]


def make_plan(cfg: StudyConfig, stages: list[str] | None = None, model_objects: dict[str, Any] | None = None,
              dataset: Any = None, train_dataset: Any = None) -> Plan:
    plan = Plan(cfg, model_objects, dataset, train_dataset)
    for name, fn in STAGES:
        if stages is None or name in stages:
            fn(plan)
    return plan
