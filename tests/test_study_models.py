"""Models in a study: checkpoints of every kind, custom architectures, objects from Python."""
from __future__ import annotations

import json

import numpy as np
import pytest
import torch

from advtopo.models import create_model, save_checkpoint
from advtopo.study import StudyConfig, open_run, run_study

pytestmark = [pytest.mark.timeout(300), pytest.mark.usefixtures("one_torch_thread")]


def study(models: list[dict], **over) -> dict:
    d = {"name": "models", "seed": 0, "device": "cpu",
         "dataset": {"name": "digits", "split": "test", "subset": 30},
         "models": models,
         "attacks": [{"name": "pgd", "eps": [0.0, 0.2], "steps": 2}],
         "layers": [{"module": "relu2", "summary": "top_l2"}, {"module": "fc1"}],
         "capture": {"batch_size": 30},
         "mapper": [{"n_intervals": 3, "overlap": 0.3, "min_samples": 2}],
         "persistence": {"enabled": False}, "vulnerability": {"enabled": False},
         "separability": {"enabled": False}, "stability": {"enabled": False}}
    d.update(over)
    return d


def _logits(model: torch.nn.Module, x: torch.Tensor) -> np.ndarray:
    with torch.no_grad():
        return model.eval()(x).numpy()


@pytest.fixture(scope="module")
def lenet_files(tmp_path_factory):
    """One random-weight digits lenet5 saved four ways."""
    from safetensors.torch import save_file

    d = tmp_path_factory.mktemp("ckpt")
    torch.manual_seed(3)
    model = create_model("lenet5", input_size=8).eval()
    sd = model.state_dict()
    save_checkpoint(d / "advtopo.pt", model, {"arch": "lenet5", "input_size": 8})
    torch.save(sd, d / "plain.pt")
    torch.save({"state_dict": {f"module.{k}": v for k, v in sd.items()}, "epoch": 3}, d / "wrapped.pth")
    save_file({k: v.contiguous() for k, v in sd.items()}, str(d / "weights.safetensors"))
    return model, d


def test_checkpoint_models_run_end_to_end(lenet_files, tmp_path):
    """Every kind of checkpoint runs through train (import), attack, capture and mapper."""
    model, d = lenet_files
    files = {"adv": "advtopo.pt", "plain": "plain.pt", "wrapped": "wrapped.pth", "st": "weights.safetensors"}
    cfg = study([{"name": n, "arch": "lenet5", "checkpoint": str(d / f)} for n, f in files.items()])
    root = run_study(StudyConfig.from_dict(cfg), out=tmp_path / "run", verbose=False)
    run = open_run(root)
    idx = json.loads((root / "index.json").read_text())
    assert len(idx["graphs"]) == 4 * 2 * 2
    from advtopo.data import load_dataset

    x = load_dataset("digits", "test", subset=30, seed=0).x
    ref = _logits(model, x).argmax(1)
    df = run.samples
    for name in files:  # the study used exactly the saved weights: same predictions
        pred = df[(df.model == name) & (df.eps == 0)].sort_values("sample_id")["prediction"].to_numpy()
        assert np.array_equal(pred, ref), name


MODEL_FILE = '''
import torch.nn as nn


class Net(nn.Module):
    def __init__(self, width=16, num_classes=10):
        super().__init__()
        self.features = nn.Sequential(nn.Conv2d(1, width, 3, padding=1), nn.ReLU(), nn.MaxPool2d(2))
        self.head = nn.Sequential(nn.Flatten(), nn.Linear(width * 16, 32), nn.ReLU(), nn.Linear(32, num_classes))

    def forward(self, x):
        return self.head(self.features(x))


def make_net(width=16, num_classes=10):
    return Net(width, num_classes)
'''


def _toml(models: str, layers: str = '[[layers]]\nmodule = "head.2"\n') -> str:
    return f'''name = "custom"
device = "cpu"
[dataset]
name = "digits"
split = "test"
subset = 30
train_subset = 120
{models}
[[attacks]]
name = "pgd"
eps = [0.0, 0.2]
steps = 2
{layers}
[[mapper]]
n_intervals = 3
min_samples = 2
[persistence]
enabled = false
[vulnerability]
enabled = false
[separability]
enabled = false
[stability]
enabled = false
'''


@pytest.fixture
def custom_dir(tmp_path):
    """A user's folder: nets/model.py with a factory, a checkpoint of it, a study config beside them."""
    import importlib.util

    (tmp_path / "nets").mkdir()
    (tmp_path / "nets" / "model.py").write_text(MODEL_FILE)
    spec = importlib.util.spec_from_file_location("user_model_ref", tmp_path / "nets" / "model.py")
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    torch.manual_seed(5)
    ref = mod.make_net(width=8).eval()
    torch.save({"model_state_dict": ref.state_dict()}, tmp_path / "nets" / "net8.pt")
    return tmp_path, ref


def test_custom_file_factory_with_kwargs_checkpoint_and_normalisation(custom_dir):
    """arch = "nets/model.py:make_net" and checkpoint relative to the config file's folder, arch_kwargs,
    mean/std applied inside the model; a second model of the same file is trained with a recipe."""
    d, ref = custom_dir
    models = '''
[[models]]
name = "loaded"
arch = "nets/model.py:make_net"
arch_kwargs = { width = 8 }
checkpoint = "nets/net8.pt"
mean = [0.5]
std = [0.25]

[[models]]
name = "trained"
arch = "nets/model.py:make_net"
train = { method = "standard", epochs = 1, batch_size = 32, eval_subset = 10, eval_steps = 1 }
'''
    (d / "study.toml").write_text(_toml(models, '[[layers]]\nmodule = "features.1"\nsummary = "top_l2"\n'
                                                '[[layers]]\nmodule = "head.2"\n'))
    root = run_study(d / "study.toml", out=d / "run", verbose=False)
    run = open_run(root)
    from advtopo.data import load_dataset

    x = load_dataset("digits", "test", subset=30, seed=0).x
    expected = _logits(ref, (x - 0.5) / 0.25).argmax(1)  # normalisation inside the model
    df = run.samples
    pred = df[(df.model == "loaded") & (df.eps == 0)].sort_values("sample_id")["prediction"].to_numpy()
    assert np.array_equal(pred, expected)
    idx = json.loads((root / "index.json").read_text())
    assert {g["model"] for g in idx["graphs"]} == {"loaded", "trained"} and len(idx["graphs"]) == 2 * 2 * 2
    # the activations are the real ones of layer head.2 (ReLU after the first Linear: 32 wide, >= 0)
    acts = run.activations("loaded", "head.2", "pgd", 0.0)
    assert acts.shape == (30, 32) and acts.min() >= 0


def test_editing_the_model_file_or_checkpoint_changes_the_task_key(custom_dir):
    from advtopo.study import StudyConfig, make_plan

    d, ref = custom_dir
    models = ('[[models]]\nname = "m"\narch = "nets/model.py:make_net"\narch_kwargs = { width = 8 }\n'
              'checkpoint = "nets/net8.pt"\n')
    (d / "study.toml").write_text(_toml(models))

    def train_key() -> str:
        return make_plan(StudyConfig.from_toml(d / "study.toml")).models["m"].key

    k0 = train_key()
    assert train_key() == k0  # deterministic
    (d / "nets" / "model.py").write_text(MODEL_FILE + "\n# edited\n")
    k1 = train_key()
    assert k1 != k0
    sd = ref.state_dict()
    sd["head.3.bias"] = sd["head.3.bias"] + 1
    torch.save(sd, d / "nets" / "net8.pt")
    assert train_key() not in (k0, k1)


@pytest.mark.parametrize("models, layers, message", [
    ('arch = "nets/missing.py:make_net"', None, r"models\[0\] \(m\)\.arch: arch file .*missing.py does not exist"),
    ('arch = "nets/model.py:make_nett"', None, r"has no attribute 'make_nett'.*did you mean 'make_net'"),
    ('arch = "nets/model.py:make_net"\ncheckpoint = "nets/nope.pt"', None, r"checkpoint: .*nope.pt does not exist"),
    ('arch = "nets/model.py:make_net"\narch_kwargs = { width = 16 }\ncheckpoint = "nets/net8.pt"', None,
     r"models\[0\] \(m\): checkpoint .*net8.pt does not fit Net by name: .*features.0.weight.*\(8, 1, 3, 3\).*\(16, 1, 3, 3\)"),
    ('arch = "nets/model.py:make_net"\narch_kwargs = { width = 8 }\ncheckpoint = "nets/net8.pt"',
     '[[layers]]\nmodule = "head.9"\n', r"layers: unknown layer 'head.9'.*valid layers: features, features.0"),
])
def test_every_path_is_checked_before_work_starts(custom_dir, models, layers, message):
    from advtopo.errors import AdvtopoError

    d, _ = custom_dir
    (d / "study.toml").write_text(_toml(f'[[models]]\nname = "m"\n{models}\n',
                                        *([layers] if layers else [])))
    with pytest.raises(AdvtopoError, match=message):
        run_study(d / "study.toml", out=d / "run", verbose=False)
    assert not (d / "run").exists()  # nothing was started


def test_models_and_dataset_from_python(custom_dir, tmp_path):
    """run_study(models={name: module}, dataset=...): objects used as is, cached by content."""
    from advtopo.data import load_dataset

    d, ref = custom_dir
    ds = load_dataset("digits", "test")
    cfg = study([{"name": "net", "mean": [0.5], "std": [0.25]}],
                layers=[{"module": "head.2"}], dataset={"name": "digits", "subset": 30})
    before = {k: v.clone() for k, v in ref.state_dict().items()}
    root = run_study(cfg, out=tmp_path / "run", verbose=False, models={"net": ref, "plain": ref}, dataset=ds)
    assert all(torch.equal(before[k], v) for k, v in ref.state_dict().items())  # never mutated
    run = open_run(root)
    idx = json.loads((root / "index.json").read_text())
    assert [m["name"] for m in idx["models"]] == ["net", "plain"]
    assert idx["models"][0]["arch"].endswith(".Net")
    x = ds.subset(30, seed=0).x
    df = run.samples
    for name, xin in (("net", (x - 0.5) / 0.25), ("plain", x)):
        pred = df[(df.model == name) & (df.eps == 0)].sort_values("sample_id")["prediction"].to_numpy()
        assert np.array_equal(pred, _logits(ref, xin).argmax(1)), name
    # same weights (another object): everything cached; changed weights: the model's tasks recompute
    import copy

    twin = copy.deepcopy(ref)
    run_study(cfg, out=tmp_path / "run", verbose=False, models={"net": twin, "plain": ref}, dataset=ds)
    m = json.loads((root / "manifest.json").read_text())
    assert {t["status"] for t in m["tasks"].values()} == {"cached"}
    with torch.no_grad():
        twin.head[3].bias += 1.0
    run_study(cfg, out=tmp_path / "run", verbose=False, models={"net": twin, "plain": ref}, dataset=ds)
    m = json.loads((root / "manifest.json").read_text())
    done = {t["label"] for t in m["tasks"].values() if t["status"] == "done"}
    assert "train net" in done and "train plain" not in done
    assert all("plain" not in label for label in done)


# --- the real-scale example, end to end on generated CIFAR files and a random WRN-28-10 ------------

def _write_cifar10(root, n_train: int, n_test: int) -> None:
    """CIFAR-10 'python version' batches in the exact format of the official archive."""
    import pickle

    rng = np.random.default_rng(0)
    root.mkdir(parents=True)
    names = ["airplane", "automobile", "bird", "cat", "deer", "dog", "frog", "horse", "ship", "truck"]
    batches = [(f"data_batch_{i}", n_train) for i in range(1, 6)] + [("test_batch", n_test)]
    for fname, n in batches:
        d = {b"batch_label": fname.encode(), b"labels": rng.integers(0, 10, n).tolist(),
             b"data": rng.integers(0, 256, (n, 3072), dtype=np.uint8), b"filenames": [b"x.png"] * n}
        with open(root / fname, "wb") as fh:
            pickle.dump(d, fh, protocol=2)
    with open(root / "batches.meta", "wb") as fh:
        pickle.dump({b"label_names": [n.encode() for n in names], b"num_vis": 3072}, fh, protocol=2)


@pytest.mark.slow  # runs in CI (slow = longer end to end, never skipped)
def test_example_cifar10_robust_end_to_end(tmp_path):
    """examples/cifar10_robust.toml with root/checkpoint/subset pointed at generated files: a random
    WRN-28-10 saved the RobustBench way ({"state_dict": ...} with DataParallel's "module." prefix)."""
    import tomllib
    from pathlib import Path

    example = Path(__file__).resolve().parents[1] / "examples" / "cifar10_robust.toml"
    cfg = tomllib.loads(example.read_text())
    _write_cifar10(tmp_path / "cifar-10-batches-py", 2, 12)
    torch.manual_seed(0)
    wrn = create_model("wrn28_10")
    torch.save({"state_dict": {f"module.{k}": v for k, v in wrn.state_dict().items()}, "epoch": 200},
               tmp_path / "wrn.pt")
    # keep the example's model, attack and layer choices; shrink the amounts for a 2-core CPU
    cfg["dataset"].update(root=str(tmp_path / "cifar-10-batches-py"), subset=10)
    cfg["models"][0]["checkpoint"] = str(tmp_path / "wrn.pt")
    cfg["attacks"][0].update(eps=[0.0, cfg["attacks"][0]["eps"][3]], steps=1)
    cfg["layers"] = [cfg["layers"][1], cfg["layers"][3]]
    cfg["mapper"] = [{**cfg["mapper"][0], "n_intervals": 2, "min_samples": 2}]
    for off in ("persistence", "separability", "stability"):  # (their statistics need more than 10 images)
        cfg[off] = {"enabled": False}
    cfg["device"] = "cpu"
    root = run_study(StudyConfig.from_dict(cfg), out=tmp_path / "run", verbose=False)
    idx = json.loads((root / "index.json").read_text())
    assert idx["dataset"]["name"] == "cifar10" and idx["dataset"]["image_shape"] == [3, 32, 32]
    model = idx["models"][0]["name"]
    got = {(g["layer"], g["eps"]) for g in idx["graphs"]}
    assert got == {(la, e) for la in ("block2.layer.3", "relu") for e in (0.0, 8 / 255)}
    for g in idx["graphs"]:
        doc = json.loads((root / g["path"]).read_text())
        assert len(doc["points"]["sample_id"]) == (10 if g["eps"] == 0 else 20) and doc["nodes"]
    acts = open_run(root).activations(model, "block2.layer.3", "pgd", 0.0)
    assert acts.shape == (10, 320)  # top_l2 keeps the channels of the block's output
    adv = np.load(root / idx["images"]["adversarial"][f"{model}/pgd/{8 / 255:g}"]).astype(int)
    clean = np.load(root / "images" / "clean.npy").astype(int)
    assert 0 < np.abs(adv - clean).max() <= 9


def test_zoo_checkpoint_in_a_study(tmp_path):
    """checkpoint = "zoo:NAME" (the built-in, SHA-256-checked zoo) runs in a study; an unknown name is a
    config error listing the available ones."""
    from advtopo.errors import AdvtopoError
    from advtopo.models.pretrained import list_pretrained

    bad = study([{"name": "zoo", "arch": "lenet5", "checkpoint": "zoo:no-such-model"}])
    with pytest.raises(AdvtopoError, match=r"models\[0\] \(zoo\)\.checkpoint: unknown zoo checkpoint "
                                           r"'no-such-model'.*available"):
        StudyConfig.from_dict(bad)
    shipped = [e for e in list_pretrained() if e.dataset == "mnist" and e.arch == "lenet5"]
    if not shipped:  # the zoo's files are built and committed separately (tools/build_zoo.py)
        pytest.skip("this checkout ships no MNIST lenet5 zoo checkpoint")
    cfg = study([{"name": "zoo", "arch": "lenet5", "checkpoint": f"zoo:{shipped[0].name}"}],
                dataset={"name": "mnist", "split": "test", "subset": 20},
                layers=[{"module": "fc1"}])
    root = run_study(StudyConfig.from_dict(cfg), out=tmp_path / "run", verbose=False)
    idx = json.loads((root / "index.json").read_text())
    clean = next(a["accuracy"] for a in idx["accuracy"] if a["eps"] == 0)
    assert clean >= 0.9  # a trained MNIST model, not random weights
