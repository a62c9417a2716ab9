"""The stage functions (pure tasks) and the plan that turns a StudyConfig into tasks.

Each ``run_<stage>(params, inputs, out_dir, runtime)`` reads only ``params`` and the
folders in ``inputs`` and writes only into ``out_dir``. ``runtime`` carries what does not
change results (device, verbosity). New stages are added to :data:`STAGES` with a
``plan`` function that returns their tasks.
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
from advtopo.study.tasks import Task
from advtopo.utils.io import to_jsonable

HERE = "advtopo.study.stages"


def _device(runtime: dict[str, Any]):
    from advtopo.utils import resolve_device

    return resolve_device(runtime.get("device", "auto"))


def _save_npy(path: Path, arr: np.ndarray) -> None:
    with open(path, "wb") as fh:
        np.save(fh, arr, allow_pickle=False)


def _load_npy(path: Path, mmap: bool = False) -> np.ndarray:
    return np.load(path, allow_pickle=False, mmap_mode="r" if mmap else None)


def _json(path: Path, obj: Any) -> None:
    from advtopo.utils import atomic_write_json

    atomic_write_json(path, obj)


def _read_json(path: Path) -> Any:
    return json.loads(Path(path).read_text())


def _load_ds(d: dict[str, Any], split: str, subset: int | None):
    from advtopo.data import load_dataset

    return load_dataset(d["name"], split, root=d.get("root"), subset=subset, seed=d.get("seed", 0),
                        **d.get("options", {}))


# --- data ----------------------------------------------------------------------------------

def _object_dataset(runtime: dict[str, Any], role: str):
    ds = (runtime or {}).get(role)
    if ds is None:
        raise AdvtopoError(f"this study's data was passed to run_study({role}=...) as an object; run it again "
                           "with that dataset (cached results are reused when its content is unchanged)")
    return ds


def run_data(params, inputs, out_dir: Path, runtime) -> dict:
    """The studied samples: x (float32), y, dataset indices, uint8 images."""
    from advtopo.activations import images_uint8

    d = params["dataset"]
    if "object_sha256" in d:  # an ImageDataset given to run_study(dataset=...)
        ds = _object_dataset(runtime, "dataset")
        if d.get("subset") is not None and d["subset"] < len(ds):
            ds = ds.subset(d["subset"], seed=d.get("seed", 0))
    else:
        ds = _load_ds(d, d["split"], d.get("subset"))
    _save_npy(out_dir / "x.npy", ds.x.numpy())
    _save_npy(out_dir / "y.npy", ds.y.numpy().astype(np.int64))
    _save_npy(out_dir / "indices.npy", np.asarray(ds.indices, dtype=np.int64))
    _save_npy(out_dir / "images.npy", images_uint8(ds.x))
    meta = {"name": d["object_name"] if "object_name" in d else d["name"], "split": ds.split,
            "class_names": list(ds.class_names),
            "image_shape": list(ds.image_shape), "n_samples": len(ds)}
    _json(out_dir / "meta.json", meta)
    return meta


# --- train ---------------------------------------------------------------------------------

def dataset_dims(ds: Any) -> dict[str, Any]:
    """What sizes a model for a dataset: classes and image shape (registry factories take them)."""
    shape = list(ds.image_shape)
    return {"num_classes": len(ds.class_names), "in_channels": shape[0], "input_size": shape[-1],
            "image_shape": shape}


def build_config_model(m: Any, base_dir: str | None, dims: dict[str, Any], checkpoint: bool = True):
    """Build a [[models]] entry (ModelConfig) as the study does: arch + arch_kwargs, its checkpoint
    (unless ``checkpoint=False``), mean/std; ``dims`` from :func:`dataset_dims`. -> (model, info)."""
    from advtopo.models import build_model

    dims = {k: dims[k] for k in ("num_classes", "in_channels", "input_size")}
    return build_model(m.arch, m.arch_kwargs, checkpoint=m.checkpoint if checkpoint else None,
                       mean=m.mean, std=m.std, base_dir=base_dir, **dims)


def _object_model(runtime: dict[str, Any], name: str):
    objects = runtime.get("model_objects") or {}
    if name not in objects:
        raise AdvtopoError(f"model {name!r} was passed to run_study(models=...) as an object; run the study "
                           f"again with that model (its cached results are reused when its weights are unchanged)")
    return objects[name]


def run_train(params, inputs, out_dir: Path, runtime) -> dict:
    """Train a model with its recipe (resumes from out_dir), import a checkpoint, or store the
    weights of a model object passed to run_study; writes checkpoint.pt and model.json."""
    import torch

    from advtopo.adversarial import TrainConfig, train_model
    from advtopo.models import build_model, create_model, load_checkpoint, save_checkpoint

    meta = _read_json(inputs["data"] / "meta.json")
    shape = meta["image_shape"]
    kw = {"num_classes": len(meta["class_names"]), "in_channels": shape[0], "input_size": shape[1]}
    device = _device(runtime)
    spec = "arch_kwargs" in params  # models given by spec (any arch, arch_kwargs, mean/std)
    norm = {"mean": params.get("mean"), "std": params.get("std")}
    if params.get("object"):
        model = _object_model(runtime, params["object"])
        save_checkpoint(out_dir / "checkpoint.pt", model, {"arch": f"object:{params['class']}"})
        _json(out_dir / "model.json", {"object": params["object"], "class": params["class"], **norm})
        return {"metrics": {"object": params["class"]}}
    if params.get("checkpoint"):
        if spec:
            model, info = build_model(params["arch"], params["arch_kwargs"], checkpoint=params["checkpoint"],
                                      **norm, **kw)
            # normalisation found in the checkpoint (RobustBench's mu/sigma) is kept with the model
            norm = {"mean": info["mean"], "std": info["std"]}
        else:
            model, _ = load_checkpoint(params["checkpoint"], arch=params["arch"], **kw)
        # the spec travels with the weights, so a reader of the run can rebuild the model
        spec_doc = {"arch_kwargs": params["arch_kwargs"], **norm} if spec else {}
        save_checkpoint(out_dir / "checkpoint.pt", model,
                        {"arch": params["arch"], **kw, **spec_doc, "source": params["checkpoint"]})
        metrics: dict[str, Any] = {"loaded_from": params["checkpoint"]}
    else:
        d = params["dataset"]  # only trained models need the training data (and carry it in their params)
        torch.manual_seed(params["seed"])
        if spec:
            model, _ = build_model(params["arch"], params["arch_kwargs"], **norm, **kw)
        else:
            model = create_model(params["arch"], **kw)
        if "object_sha256" in d:  # datasets given to run_study(dataset=..., train_dataset=...)
            train_ds = _object_dataset(runtime, "train_dataset")
            if d.get("train_subset") is not None and d["train_subset"] < len(train_ds):
                train_ds = train_ds.subset(d["train_subset"], seed=d.get("seed", 0))
            test_ds = _object_dataset(runtime, "dataset")
            if d.get("subset") is not None and d["subset"] < len(test_ds):
                test_ds = test_ds.subset(d["subset"], seed=d.get("seed", 0))
        else:
            train_ds = _load_ds(d, d["train_split"], d.get("train_subset"))
            test_ds = _load_ds(d, d["split"], d.get("subset"))
        # the device is a run-time choice, not part of the recipe (nor of the task key)
        recipe = TrainConfig.from_dict({"seed": params["seed"], **params["recipe"], "device": str(device)})
        metrics = train_model(model, train_ds, test_ds, recipe, out_dir, quiet=not runtime.get("verbose", True),
                              arch=params["arch"])
        if not (out_dir / "checkpoint.pt").exists():
            raise RuntimeError(f"training {params['arch']} wrote no checkpoint.pt into {out_dir}")
    info_doc: dict[str, Any] = {"arch": params["arch"], "model_kwargs": kw}
    if spec:
        info_doc.update(arch_kwargs=params["arch_kwargs"], **norm)
    _json(out_dir / "model.json", info_doc)
    return {"metrics": to_jsonable(metrics)}


def _load_model(model_dir: Path, device, runtime: dict[str, Any] | None = None):
    """The model a train task left in ``model_dir`` (checkpoint.pt + model.json), in eval mode."""
    from advtopo.models import build_model, load_checkpoint

    info = _read_json(model_dir / "model.json")
    ckpt = model_dir / "checkpoint.pt"
    if "object" in info:  # a copy of the user's object, so the study never moves or mutates it
        import copy

        from advtopo.models import add_input_normalization, load_weights, read_state_dict

        model = copy.deepcopy(_object_model(runtime or {}, info["object"]))
        load_weights(model, read_state_dict(ckpt))
        if info.get("mean") is not None:
            add_input_normalization(model, info["mean"], info["std"])
    elif "arch_kwargs" in info:
        model, _ = build_model(info["arch"], info["arch_kwargs"], checkpoint=ckpt, mean=info.get("mean"),
                               std=info.get("std"), **info["model_kwargs"])
    else:
        model, _ = load_checkpoint(ckpt, arch=info["arch"], **info["model_kwargs"])
    return model.to(device).eval()


# --- attack --------------------------------------------------------------------------------

def run_attack(params, inputs, out_dir: Path, runtime) -> dict:
    """Adversarial versions of the studied samples for one (model, attack, eps)."""
    import torch

    from advtopo.activations import images_uint8
    from advtopo.adversarial import create_attack

    device = _device(runtime)
    model = _load_model(inputs["model"], device, runtime)
    x = torch.from_numpy(_load_npy(inputs["data"] / "x.npy"))
    y = torch.from_numpy(_load_npy(inputs["data"] / "y.npy"))
    from advtopo.adversarial.attacks import supported_kwargs

    # only what the user set (validated against the attack's signature) plus eps
    kw = {"eps": params["eps"], **params.get("kwargs", {})}
    bs = params["batch_size"]
    out = np.empty(tuple(x.shape), dtype=np.float32)
    for b, start in enumerate(range(0, len(x), bs)):
        # a per-batch seed for attacks that take one (cw has none); a user-set seed wins
        seed = supported_kwargs(params["attack"], {"seed": params["seed"] + b})
        attack = create_attack(params["attack"], model, **{**seed, **kw})
        xb = x[start:start + bs].to(device)
        out[start:start + len(xb)] = attack(xb, y[start:start + bs].to(device)).detach().cpu().numpy()
    _save_npy(out_dir / "x_adv.npy", out)
    _save_npy(out_dir / "images.npy", images_uint8(out))
    linf = float(np.abs(out - x.numpy()).max()) if len(out) else 0.0
    return {"linf": linf}


# --- capture -------------------------------------------------------------------------------

def run_capture(params, inputs, out_dir: Path, runtime) -> dict:
    """Activations of the chosen layers + prediction stats, one forward pass, streamed to zarr."""
    import torch

    from advtopo.activations import LayerSpec, capture

    device = _device(runtime)
    model = _load_model(inputs["model"], device, runtime)
    src = inputs["adv"] / "x_adv.npy" if "adv" in inputs else inputs["data"] / "x.npy"
    x = torch.from_numpy(_load_npy(src, mmap=True).copy())
    y = torch.from_numpy(_load_npy(inputs["data"] / "y.npy"))
    specs = [LayerSpec(layer["module"], layer["summary"], layer.get("name")) for layer in params["layers"]]
    res = capture(model, x, specs, y, batch_size=params["batch_size"], device=device,
                  sample_ids=np.arange(len(x)), seed=params["seed"], store=out_dir / "activations.zarr")
    np.savez(out_dir / "stats.npz", **res["stats"])
    acc = float(np.mean(res["stats"]["correct"])) if len(x) else float("nan")
    return {"accuracy": acc, "layers": [s.key for s in specs]}


def load_stats(capture_dir: Path) -> dict[str, np.ndarray]:
    with np.load(Path(capture_dir) / "stats.npz", allow_pickle=False) as f:
        return {k: f[k] for k in f.files}


# --- mapper --------------------------------------------------------------------------------

def capture_blocks(inputs: dict[str, Path], layer: str, rows: str = "both") -> list:
    """A graph's row blocks from its capture tasks: the clean rows, then (rows="both") the
    adversarial ones, or (rows="adversarial") the adversarial rows only. Without an "adv"
    input (eps 0): the clean rows."""
    from advtopo.activations import read_activations
    from advtopo.study.graphs import RowBlock

    y = _load_npy(inputs["data"] / "y.npy")
    roles = [r for r, use in (("clean", "adv" not in inputs or rows != "adversarial"),
                              ("adv", "adv" in inputs and rows != "clean")) if use]
    return [RowBlock(read_activations(inputs[r] / "activations.zarr", layer), y, load_stats(inputs[r])["prediction"],
                     np.arange(len(y)), r == "adv") for r in roles]


def mapper_rows(inputs: dict[str, Path], layer: str, rows: str = "both") -> tuple[np.ndarray, dict[str, np.ndarray]]:
    """(X, metadata) of a graph's rows (``capture_blocks`` one after another)."""
    from advtopo.study.graphs import point_cloud

    return point_cloud(capture_blocks(inputs, layer, rows))


def run_mapper(params, inputs, out_dir: Path, runtime) -> dict:
    """One mapper graph, built by the one graph builder (advtopo.study.graphs.build_graph)."""
    from advtopo.study.graphs import build_graph

    blocks = capture_blocks(inputs, params["layer"], params.get("rows", "both"))
    doc, stats = build_graph(blocks, params["mapper"], seed=params["seed"], rows=params.get("rows"))
    _json(out_dir / "graph.json", doc)
    return {"stats": stats, "params": doc["params"]}


# --- persistence ---------------------------------------------------------------------------

def run_persistence(params, inputs, out_dir: Path, runtime) -> dict:
    """Persistence summaries of all captured point clouds (advtopo.persistence decides what)."""
    from advtopo.activations import read_activations
    from advtopo.persistence import persistence_stage

    acts = {}
    for entry in params["entries"]:
        acts[(entry["model"], entry["layer"], entry["attack"], entry["eps"])] = \
            read_activations(inputs[entry["role"]] / "activations.zarr", entry["layer"])
    n = len(_load_npy(inputs["data"] / "y.npy"))
    result = persistence_stage(acts, np.arange(n), out_dir / "persistence", params["settings"])
    return {"index": to_jsonable(result)}


# --- vulnerability -------------------------------------------------------------------------

def run_vulnerability(params, inputs, out_dir: Path, runtime) -> dict:
    """Per sample: the mapper engine's vulnerability score and the smallest eps that fools it."""
    from advtopo.mapper import MapperGraph, roc_auc, vulnerability_scores

    g = MapperGraph.from_dict(_read_json(inputs["graph"] / "graph.json"))
    scores = vulnerability_scores(g)
    is_adv = np.asarray(g.metadata.get("is_adversarial", np.zeros(g.n_points, bool)), bool)
    sid = np.asarray(g.metadata["sample_id"])[~is_adv]
    clean_scores = np.asarray(scores)[~is_adv]
    n = len(_load_npy(inputs["data"] / "y.npy"))
    score_by_id = np.full(n, np.nan)
    score_by_id[sid] = clean_scores
    fooled_at = np.full(n, np.nan)
    for eps, role in sorted(((e["eps"], e["role"]) for e in params["eps_roles"]), reverse=True):
        wrong = ~load_stats(inputs[role])["correct"].astype(bool)
        fooled_at[wrong] = eps
    fooled = ~np.isnan(fooled_at)
    # "fooled at some eps" is near-certain for an undefended model at large eps, so the AUC
    # is also given per eps; the headline AUC is at the eps where about half are fooled.
    auc_by_eps, frac_by_eps = {}, {}
    for e in sorted({float(r["eps"]) for r in params["eps_roles"]}):
        pos = fooled & (fooled_at <= e + 1e-12)
        frac_by_eps[f"{e:g}"] = float(pos.mean())
        auc_by_eps[f"{e:g}"] = float(roc_auc(score_by_id, pos)) if pos.any() and (~pos).any() else None
    scored = [(abs(frac_by_eps[k] - 0.5), k) for k, v in auc_by_eps.items() if v is not None]
    auc_eps = min(scored)[1] if scored else None
    auc = auc_by_eps[auc_eps] if auc_eps is not None else None
    samples = [{"sample_id": int(i), "score": None if np.isnan(score_by_id[i]) else float(score_by_id[i]),
                "fooled_at": None if np.isnan(fooled_at[i]) else float(fooled_at[i])} for i in range(n)]
    samples.sort(key=lambda s: (-(s["score"] if s["score"] is not None else -1.0), s["sample_id"]))
    doc = {"model": params["model"], "layer": params["layer"], "attack": params["attack"],
           "graph": params["graph_id"], "auc": auc, "auc_eps": None if auc_eps is None else float(auc_eps),
           "auc_by_eps": auc_by_eps, "fooled_fraction_by_eps": frac_by_eps,
           "n_fooled": int(fooled.sum()), "samples": samples}
    _json(out_dir / "vulnerability.json", doc)
    return {"auc": auc, "auc_eps": auc_eps, "n_fooled": int(fooled.sum())}


# --- datapaths -----------------------------------------------------------------------------

def run_datapaths(params, inputs, out_dir: Path, runtime) -> dict:
    """Critical datapaths of the first n samples, clean and at each eps, compared layer by layer."""
    import torch

    from advtopo.datapaths import DatapathExtractor, datapath_report

    device = _device(runtime)
    model = _load_model(inputs["model"], device, runtime)
    y = _load_npy(inputs["data"] / "y.npy")
    n = min(int(params["n_samples"]), len(y))
    x = torch.from_numpy(_load_npy(inputs["data"] / "x.npy", mmap=True)[:n].copy())
    x_adv = {float(r["eps"]): torch.from_numpy(_load_npy(inputs[r["role"]] / "x_adv.npy", mmap=True)[:n].copy())
             for r in params["eps_roles"]}
    ext = DatapathExtractor(params["layers"], device=str(device), **params["extractor"])
    doc = datapath_report(model, x, y[:n], x_adv, ext, top_k=params["top_k"], n_detail=params["n_detail"],
                          sample_ids=np.arange(n))
    doc = {"model": params["model"], "attack": params["attack"], **doc}
    _json(out_dir / "datapaths.json", doc)
    return {"n_samples": n, "retained_accuracy": doc["clean"]["retained_accuracy"],
            "kept_fraction_total": doc["clean"]["kept_fraction_total"]}


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
    deps: dict[str, Task] = {"data": plan.data, "graph": plan.graphs[gid][0]}
    eps_roles = []
    for eps in attack.eps:
        t = plan.capture_for(model, attack.name, eps)
        deps[f"c_{t.key}"] = t
        eps_roles.append({"eps": float(eps), "role": f"c_{t.key}"})
    plan.vulnerability = plan.add(Task(
        "vulnerability", f"vulnerability {model} {layer}", f"{HERE}:run_vulnerability",
        {"model": model, "layer": layer, "attack": attack.name, "graph_id": gid, "eps_roles": eps_roles}, deps))


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


def _measures():
    """advtopo.study.measures (separability and stability stages), imported when planned."""
    from advtopo.study import measures

    return measures


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
    ("separability", lambda plan: _measures().plan_separability(plan)),
    ("stability", lambda plan: _measures().plan_stability(plan)),
]


def make_plan(cfg: StudyConfig, stages: list[str] | None = None, model_objects: dict[str, Any] | None = None,
              dataset: Any = None, train_dataset: Any = None) -> Plan:
    plan = Plan(cfg, model_objects, dataset, train_dataset)
    for name, fn in STAGES:
        if stages is None or name in stages:
            fn(plan)
    return plan
