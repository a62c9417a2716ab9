"""``run_study``: plan, execute (cached, resumable), then publish the run directory.

Publishing gathers the finished task outputs and writes them through advtopo.rundir.writer
(images/*.npy, samples.parquet, mapper/<id>.json, ..., index.json last, each atomically);
manifest.json records the config, versions, seeds and per-task timings and status.
"""
from __future__ import annotations

import datetime as _dt
import json
import os
import platform
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import numpy as np

from advtopo import __version__
from advtopo.study.config import ConfigCheck, StudyConfig, parse_config
from advtopo.rundir import layout, writer
from advtopo.rundir.records import (AccuracyEntry, ActivationEntry, AttackEntry, DatasetEntry, GraphEntry, ModelEntry,
                                    RunIndex)
from advtopo.study.plan import Plan, make_plan
from advtopo.study.stages import load_stats
from advtopo.study.executors import executor_from_config
from advtopo.rundir.lock import lock_run
from advtopo.study.tasks import Task, clean_leftovers, is_done, log, read_done
from advtopo.utils import atomic_write_json, atomic_write_text


def _versions() -> dict[str, str]:
    out = {"python": platform.python_version(), "advtopo": __version__}
    for mod in ("torch", "numpy", "zarr", "pandas", "pyarrow", "sklearn", "scipy"):
        m = sys.modules.get(mod)
        if m is None:
            try:
                m = __import__(mod)
            except ImportError:
                continue
        out[mod] = getattr(m, "__version__", "?")
    return out


def _git_commit() -> str | None:
    try:
        r = subprocess.run(["git", "rev-parse", "HEAD"], cwd=Path(__file__).parent, capture_output=True,
                           text=True, timeout=5)
        return r.stdout.strip() or None if r.returncode == 0 else None
    except (OSError, subprocess.SubprocessError):
        return None


class Manifest:
    """manifest.json, rewritten atomically as tasks finish (so `advtopo runs` sees progress)."""

    def __init__(self, root: Path, cfg: StudyConfig, plan: Plan, runtime: dict[str, Any], executor: str) -> None:
        self.root = root
        self.path = root / layout.MANIFEST
        self.t0 = time.perf_counter()
        self.doc: dict[str, Any] = {
            "name": cfg.name, "status": "running",
            "started": _dt.datetime.now(_dt.timezone.utc).isoformat(timespec="seconds"),
            "finished": None, "config": cfg.to_dict(), "versions": _versions(), "git_commit": _git_commit(),
            "seeds": {"study": cfg.seed, "dataset": cfg.dataset.seed, "capture": cfg.capture.seed},
            "device": str(runtime.get("device")), "executor": executor, "host": platform.node(),
            "stages": {},
            "tasks": {t.key: {"stage": t.stage, "label": t.label,
                              "status": "done" if is_done(root, t.stage, t.key) else "pending"}
                      for t in plan.tasks},
        }
        self.write()

    def task(self, t: Task, info: dict[str, Any]) -> None:
        status = info.get("status")
        entry = self.doc["tasks"].setdefault(t.key, {"stage": t.stage, "label": t.label})
        if status == "start":
            entry["status"] = "running"
        else:
            entry["status"] = "cached" if info.get("cached") else "done"
            entry["seconds"] = info.get("seconds")
            if info.get("worker"):  # a Dask worker's address: which machine ran it
                entry["worker"] = info["worker"]
        self.write()

    def finish(self, status: str, stage_seconds: dict[str, float], error: str | None = None) -> None:
        counts: dict[str, dict[str, int]] = {}
        for e in self.doc["tasks"].values():
            c = counts.setdefault(e["stage"], {})
            c[e.get("status", "pending")] = c.get(e.get("status", "pending"), 0) + 1
        self.doc["stages"] = {s: {"tasks": counts.get(s, {}), "seconds": round(stage_seconds.get(s, 0.0), 2)}
                              for s in dict.fromkeys([*counts, *stage_seconds])}
        self.doc["status"] = status
        self.doc["error"] = error
        self.doc["finished"] = _dt.datetime.now(_dt.timezone.utc).isoformat(timespec="seconds")
        self.doc["seconds"] = round(time.perf_counter() - self.t0, 2)
        self.write()

    def write(self) -> None:
        atomic_write_json(self.path, self.doc)


def run_study(config: str | os.PathLike[str] | dict | StudyConfig, out: str | os.PathLike[str] | None = None,
              executor: Any = None, device: str | None = None, verbose: bool = True,
              stages: list[str] | None = None, *, models: dict[str, Any] | None = None,
              dataset: Any = None, train_dataset: Any = None, wait: bool = False,
              full_verify: bool = False) -> Path:
    """Run (or resume) a study and publish its run directory; returns the directory.

    From Python, ready objects can stand in for parts of the config:

    - ``models={"name": nn.Module}``: each module is used as is (not trained; a copy is put in
      eval mode on the study's device, the object itself is never changed). A [[models]] entry
      of that name may give ``mean``/``std`` and must leave out arch, arch_kwargs, checkpoint and
      train; a name without an entry is added. Its cache key is the sha256 of its state_dict
      (and its class name): the same weights reuse cached results, changed weights recompute.
    - ``dataset=``: the studied samples, an ``ImageDataset`` or any map-style torch ``Dataset``
      (read with ``advtopo.data.from_torch_dataset``); ``[dataset].subset``/``seed`` still apply,
      its name and split are ignored. Its cache key is the sha256 of its pixels and labels.
      Models with a ``train`` recipe then also need ``train_dataset=``.

    One process writes a run directory at a time (advtopo.rundir.lock): another one running
    there is an error naming it, or with ``wait=True`` waited for. A cached task is used only
    if its files verify (sizes; ``full_verify=True``: SHA-256 too), else recomputed with a warning.
    """
    objects = dict(models or {})
    check = ConfigCheck()  # every problem of the config and what it names, reported at once before any work
    cfg, dataset, train_dataset = _config_and_objects(config, objects, dataset, train_dataset, check)
    cfg.check_resources(check, objects, dataset, out=out, device=device)
    check.raise_if_any()
    root = cfg.output_dir(out)
    root.mkdir(parents=True, exist_ok=True)
    from advtopo.utils import resolve_device

    runtime = {"device": str(resolve_device(device or cfg.device)), "verbose": verbose, "full_verify": full_verify}
    if objects:
        runtime["model_objects"] = objects
    if dataset is not None:
        runtime["dataset"] = dataset
    if train_dataset is not None:
        runtime["train_dataset"] = train_dataset
    plan = make_plan(cfg, stages, model_objects=objects, dataset=dataset, train_dataset=train_dataset)
    executor = executor or executor_from_config(cfg.executor)
    run_lock = lock_run(root, wait=wait, log=log)
    try:
        clean_leftovers(root, [t.key for t in plan.tasks])
        atomic_write_text(root / layout.CONFIG, cfg.source_text if cfg.source_text is not None else cfg.to_toml())
        manifest = Manifest(root, cfg, plan, runtime, getattr(executor, "name", type(executor).__name__))
    except BaseException:
        run_lock.release()
        raise
    n_cached = sum(is_done(root, t.stage, t.key) for t in plan.tasks)
    if verbose:
        log(f"study {cfg.name!r}: {len(plan.tasks)} tasks ({n_cached} cached) -> {root}  [device {runtime['device']}]")
    progress = _Progress(manifest, verbose)
    stage_seconds = progress.stage_seconds
    try:
        executor.run(plan.tasks, root, runtime, progress)
        t0 = time.perf_counter()
        publish(root, cfg, plan)
        stage_seconds["summary"] = time.perf_counter() - t0
    except BaseException as exc:
        manifest.finish("interrupted" if isinstance(exc, KeyboardInterrupt) else "failed", stage_seconds,
                        f"{type(exc).__name__}: {exc}")
        raise
    else:
        manifest.finish("complete", stage_seconds)
    finally:
        run_lock.release()
    if verbose:
        log(f"done in {time.perf_counter() - manifest.t0:.1f}s: {root}")
    return root


def _config_and_objects(config: Any, objects: dict[str, Any], dataset: Any, train_dataset: Any,
                        check: ConfigCheck):
    """The config with a [[models]] entry per model object, and the datasets given as objects
    read as ImageDatasets (the config's subset and seed applied); problems go to ``check``."""
    from advtopo.errors import AdvtopoError

    for name, obj in objects.items():
        import torch.nn as nn

        if not isinstance(obj, nn.Module):
            raise AdvtopoError(f"run_study(models=...): {name!r} is a {type(obj).__name__}, not a torch.nn.Module")
    cfg = parse_config(config, check, list(objects))
    d = cfg.dataset
    given_dataset = dataset is not None
    if given_dataset:
        dataset = check.run("dataset.object", _as_image_dataset, dataset, d.subset, d.seed, d.split, "dataset",
                            needs=("dataset.subset", "dataset.seed"))
        if dataset is None:
            check.fail("dataset.object")  # reported (or skipped); the checks that read the data are skipped
    if train_dataset is not None:
        if not given_dataset:
            check.add("train_dataset", "run_study(train_dataset=...) needs dataset= too (the studied samples)")
        train_dataset = check.run("train_dataset", _as_image_dataset, train_dataset, d.train_subset, d.seed,
                                  "train", "train_dataset", needs=("dataset.train_subset", "dataset.seed"))
    if given_dataset and train_dataset is None:
        trained = [cfg.model_names[i] for i, m in enumerate(cfg.models)
                   if not m.checkpoint and cfg.model_names[i] not in objects]
        if trained:
            check.add("train_dataset", f"models {trained} are trained with a recipe, but run_study got dataset= "
                                       "without train_dataset=; pass the training data too (or load those models "
                                       "by checkpoint)")
    return cfg, dataset, train_dataset


class _Progress:
    """The executors' progress callback: the manifest follows every task, the log the finished ones."""

    def __init__(self, manifest: Manifest, verbose: bool) -> None:
        self.manifest, self.verbose = manifest, verbose
        self.stage_seconds: dict[str, float] = {}
        self.t0 = time.perf_counter()

    def __call__(self, i: int, n: int, t: Task, info: dict[str, Any]) -> None:
        self.manifest.task(t, info)
        if info.get("status") == "start":
            if self.verbose and t.stage == "train":
                log(f"[{i + 1:3d}/{n}] {t.label} ...")
            return
        seconds = 0.0 if info.get("cached") else info["seconds"]
        self.stage_seconds[t.stage] = self.stage_seconds.get(t.stage, 0.0) + seconds
        if self.verbose and not info.get("cached"):
            log(f"[{i:3d}/{n}] {t.label}: {info['seconds']:.1f}s (total {time.perf_counter() - self.t0:.0f}s)")


def _as_image_dataset(ds: Any, subset: int | None, seed: int, split: str, role: str) -> Any:
    from advtopo.data import ImageDataset, from_torch_dataset
    from advtopo.errors import AdvtopoError

    if isinstance(ds, ImageDataset):
        return ds
    if hasattr(ds, "__getitem__") and hasattr(ds, "__len__"):
        return from_torch_dataset(ds, subset=subset, seed=seed, split=split)
    raise AdvtopoError(f"run_study({role}=...) needs an advtopo ImageDataset or a map-style torch Dataset, "
                       f"got {type(ds).__name__}")


# --- publishing the run directory ------------------------------------------------------------

def publish(root: Path, cfg: StudyConfig, plan: Plan) -> dict[str, Any]:
    """Write the run directory from finished task outputs (advtopo.rundir.writer, index.json last);
    returns index.json's content."""
    root = Path(root)
    data_dir = plan.data.out_dir(root)
    meta, labels = _read(data_dir / "meta.json"), np.load(data_dir / "y.npy")
    models, accuracy, samples, adversarial = _gather_models(root, cfg, plan, data_dir, meta, labels)
    writer.write_samples(root, samples)
    graphs = _gather_graphs(root, plan)
    writer.place_graphs(root, graphs)
    index = RunIndex(
        name=cfg.name, created=_dt.datetime.now(_dt.timezone.utc).isoformat(timespec="seconds"),
        dataset=DatasetEntry(name=meta["name"], split=meta["split"], class_names=meta["class_names"],
                             image_shape=meta["image_shape"], n_samples=len(labels)),
        models=models,
        attacks=[AttackEntry(name=a.name, eps=[float(e) for e in a.eps], steps=_attack_steps(a)) for a in cfg.attacks],
        layers=[la.key for la in cfg.layers],
        layer_summaries={la.key: la.summary for la in cfg.layers},
        layer_modules={la.key: la.module for la in cfg.layers},
        accuracy=accuracy,
        images=writer.place_images(root, data_dir / "images.npy", adversarial),
        graphs=[entry for entry, _ in graphs],
        activations=[ActivationEntry(model=name, layer=la.key, attack=attack, eps=eps, is_adversarial=attack != "clean",
                                     summary=la.summary, path=layout.task_file(t.stage, t.key, "activations.zarr"),
                                     array=la.key)
                     for (name, attack, eps), t in plan.captures.items() for la in cfg.layers])
    _publish_optional_stages(root, plan, index)
    return writer.write_index(root, index)


def _gather_models(root: Path, cfg: StudyConfig, plan: Plan, data_dir: Path, meta: dict[str, Any],
                   y: np.ndarray) -> tuple[list[ModelEntry], list[AccuracyEntry], Any, dict[tuple, Path]]:
    """Per model: its index entry, its accuracy per (attack, eps), its rows of the sample table and
    its adversarial image files (by (model, attack, eps))."""
    import pandas as pd

    from advtopo.activations import sample_table

    indices = np.load(data_dir / "indices.npy")
    models, accuracy, frames, adversarial = [], [], [], {}
    for mcfg, name in zip(cfg.models, cfg.model_names):
        trained = plan.models[name]
        clean = load_stats(plan.captures[(name, "clean", 0.0)].out_dir(root))
        models.append(ModelEntry(name=name, arch=mcfg.arch or trained.params.get("class"), train_eps=mcfg.train_eps,
                                 train=dict(mcfg.train) if not mcfg.checkpoint else None,
                                 checkpoint=layout.task_file(trained.stage, trained.key, "checkpoint.pt"),
                                 clean_accuracy=float(np.mean(clean["correct"]))))
        for a in cfg.attacks:
            for eps in a.eps:
                key = (name, a.name, float(eps))
                st = clean if eps == 0 else load_stats(plan.captures[key].out_dir(root))
                accuracy.append(AccuracyEntry(model=name, attack=a.name, eps=float(eps),
                                              accuracy=float(np.mean(st["correct"]))))
                frames.append(sample_table(np.arange(len(y)), indices, meta["split"], y, name, a.name, eps, eps > 0,
                                           st["prediction"], st["confidence"], st["margin"], st["loss"]))
                if eps > 0:
                    adversarial[key] = plan.attacks[key].out_dir(root) / "images.npy"
    return models, accuracy, pd.concat(frames, ignore_index=True), adversarial


def _gather_graphs(root: Path, plan: Plan) -> list[tuple[GraphEntry, Path]]:
    """Each planned graph's index entry and the graph.json its mapper task wrote."""
    graphs = []
    for gid, (t, info) in plan.graphs.items():
        done = read_done(t.out_dir(root))["result"]
        entry = GraphEntry(id=info["id"], model=info["model"], layer=info["layer"], attack=info["attack"],
                           eps=info["eps"], path=layout.mapper_graph_path(gid), mapper_set=info["mapper_set"],
                           rows=info.get("rows", "both"), params=done.get("params"), stats=done.get("stats"),
                           build={"mapper": t.params["mapper"], "seed": t.params["seed"]})
        graphs.append((entry, t.out_dir(root) / "graph.json"))
    return graphs


def _publish_optional_stages(root: Path, plan: Plan, index: RunIndex) -> None:
    """persistence/, vulnerability.json, datapaths.json and the measures' files, when planned."""
    from advtopo.study.actgraph import publish_activation_graph
    from advtopo.study.measures import publish_measures
    from advtopo.study.recovery import publish_recovery

    if plan.persistence is not None:
        task_dir = plan.persistence.out_dir(root)
        index.persistence = read_done(task_dir)["result"].get("index") or {}
        writer.place_tree(root, task_dir / "persistence", layout.PERSISTENCE_DIR)
    if plan.vulnerability is not None:
        index.vulnerability = writer.place_file(root, plan.vulnerability.out_dir(root) / "vulnerability.json",
                                                layout.VULNERABILITY)
    if getattr(plan, "datapaths", None) is not None:
        index.datapaths = writer.place_file(root, plan.datapaths.out_dir(root) / "datapaths.json", layout.DATAPATHS)
    documents = publish_measures(root, plan)  # separability.json, stability.json
    index.separability, index.stability = documents.get("separability"), documents.get("stability")
    index.activation_graph = publish_activation_graph(root, plan)
    index.recovery = publish_recovery(root, plan)


def _attack_steps(a) -> int | None:
    """The steps the attack ran: the user's value, else its constructor default (None: no steps)."""
    from advtopo.adversarial.attacks import attack_params

    if a.steps is not None:
        return a.steps
    p = attack_params(a.name).get("steps")
    return p.default if p is not None and isinstance(p.default, int) else None


def _read(path: Path) -> Any:
    return json.loads(Path(path).read_text())
