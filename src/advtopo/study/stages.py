"""The stage functions: pure tasks (advtopo.study.plan turns a StudyConfig into them).

Each ``run_<stage>(params, inputs, out_dir, runtime)`` reads only ``params`` and the
folders in ``inputs`` and writes only into ``out_dir``. ``runtime`` carries what does not
change results (device, verbosity).
"""
from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np

from advtopo.errors import AdvtopoError
from advtopo.utils.io import to_jsonable

HERE = "advtopo.study.stages"


def _device(runtime: dict[str, Any]):
    from advtopo.utils import resolve_device

    return resolve_device(runtime.get("device", "auto"))


def _save_npy(path: Path, arr: np.ndarray) -> None:
    with open(path, "wb") as fh:
        np.save(fh, arr, allow_pickle=False)


def load_npy(path: Path, mmap: bool = False) -> np.ndarray:
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
    x = torch.from_numpy(load_npy(inputs["data"] / "x.npy"))
    y = torch.from_numpy(load_npy(inputs["data"] / "y.npy"))
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
    x = torch.from_numpy(load_npy(src, mmap=True).copy())
    y = torch.from_numpy(load_npy(inputs["data"] / "y.npy"))
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

    y = load_npy(inputs["data"] / "y.npy")
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
    n = len(load_npy(inputs["data"] / "y.npy"))
    result = persistence_stage(acts, np.arange(n), out_dir / "persistence", params["settings"])
    return {"index": to_jsonable(result)}


# --- datapaths -----------------------------------------------------------------------------

def run_datapaths(params, inputs, out_dir: Path, runtime) -> dict:
    """Critical datapaths of the first n samples, clean and at each eps, compared layer by layer."""
    import torch

    from advtopo.datapaths import DatapathExtractor, datapath_report

    device = _device(runtime)
    model = _load_model(inputs["model"], device, runtime)
    y = load_npy(inputs["data"] / "y.npy")
    n = min(int(params["n_samples"]), len(y))
    x = torch.from_numpy(load_npy(inputs["data"] / "x.npy", mmap=True)[:n].copy())
    x_adv = {float(r["eps"]): torch.from_numpy(load_npy(inputs[r["role"]] / "x_adv.npy", mmap=True)[:n].copy())
             for r in params["eps_roles"]}
    ext = DatapathExtractor(params["layers"], device=str(device), **params["extractor"])
    doc = datapath_report(model, x, y[:n], x_adv, ext, top_k=params["top_k"], n_detail=params["n_detail"],
                          sample_ids=np.arange(n))
    doc = {"model": params["model"], "attack": params["attack"], **doc}
    _json(out_dir / "datapaths.json", doc)
    return {"n_samples": n, "retained_accuracy": doc["clean"]["retained_accuracy"],
            "kept_fraction_total": doc["clean"]["kept_fraction_total"]}
