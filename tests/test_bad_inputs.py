"""Bad input is refused up front: every problem at once, one line each, exit code 2, no traceback.

A corpus of bad study configs (one per kind of mistake) goes through ``run_study``: each must be
refused before any task runs (the executor is never called, no run directory is made) with a
message naming the offending key. A sample goes through ``python -m advtopo run`` too. Then the
same for CLI arguments and the Python API's entry points. Validation only: no training, the
models are the zoo's lenet5 or untrained architectures, the data the synthetic set.
"""
from __future__ import annotations

import codecs
import copy
import os
import re
import subprocess
import sys
from pathlib import Path
from typing import Any, Callable

import numpy as np
import pytest

from advtopo.cli import main
from advtopo.errors import AdvtopoError, ConfigErrors
from advtopo.study import check_config, run_study
from advtopo.study.config import dumps_toml

pytestmark = pytest.mark.usefixtures("one_torch_thread")

BASE: dict[str, Any] = {
    "name": "bad",
    "output": "runs/{name}",  # relative to the test's folder (run_study is given --out where it matters)
    "dataset": {"name": "synthetic", "subset": 40, "options": {"n": 60}},
    "models": [{"name": "std", "arch": "lenet5", "checkpoint": "zoo:mnist-lenet5-std"}],
    "attacks": [{"name": "pgd", "eps": [0.0, 0.1], "steps": 2}],
    "layers": [{"module": "relu3"}],
    "mapper": [{"name": "default", "n_intervals": 5}],
}


class NeverRun:
    """An executor that fails the test if the study hands it any task."""

    name = "never"

    def run(self, tasks, root, runtime, progress):  # pragma: no cover - reaching it is the failure
        raise AssertionError(f"{len(tasks)} tasks reached the executor; the config should have been refused")


def _set(path: str, value: Any) -> Callable[[dict, Path], None]:
    """A mutation: set the dotted ``path`` (``attacks.0.alpha``) to ``value``."""
    def mutate(d: dict, tmp: Path) -> None:
        *parents, last = path.split(".")
        node = d
        for key in parents:
            node = node[int(key)] if key.isdigit() else node.setdefault(key, {})
        if value is _DELETE:
            del node[int(last) if last.isdigit() else last]
        else:
            node[int(last) if last.isdigit() else last] = value(tmp) if callable(value) else value
    return mutate


_DELETE = object()


def _file(name: str, content: bytes) -> Callable[[Path], str]:
    def make(tmp: Path) -> str:
        (tmp / name).write_bytes(content)
        return name
    return make


def _zoo_bytes() -> bytes:
    from advtopo.models.pretrained import resolve_pretrained

    return Path(resolve_pretrained("mnist-lenet5-std")).read_bytes()


def _truncated_checkpoint(tmp: Path) -> str:
    data = _zoo_bytes()
    (tmp / "half.safetensors").write_bytes(data[: len(data) // 2])
    return "half.safetensors"


def _a_file_named(name: str) -> Callable[[Path], str]:
    def make(tmp: Path) -> str:
        (tmp / name).write_text("in the way")
        return str(tmp / name)
    return make


def _file_as_parent(tmp: Path) -> str:
    (tmp / "afile").write_text("in the way")
    return str(tmp / "afile" / "run")


def _unwritable_parent(tmp: Path) -> str:
    (tmp / "locked").mkdir()
    (tmp / "locked").chmod(0o500)
    return str(tmp / "locked" / "run")


TRAIN = {"method": "standard", "eps": 0.0, "epochs": 1}

# (id, mutation of BASE, a pattern the message must match: it names the offending key)
CORPUS: list[tuple[str, Callable[[dict, Path], None], str]] = [
    ("unknown top-level key", _set("atacks", [{"name": "pgd"}]), r"unknown key 'atacks'.*did you mean 'attacks'"),
    ("unknown section key", _set("dataset.subest", 3), r"unknown key 'dataset.subest'"),
    ("wrong type", _set("attacks.0.steps", "ten"), r"attacks\[0\].steps='ten' has the wrong type"),
    ("bool as int", _set("capture", {"batch_size": True}), r"capture.batch_size=True has the wrong type"),
    ("nan in a typed number", _set("attacks.0.alpha", float("nan")), r"attacks\[0\].alpha=nan must be a finite number"),
    ("inf in a typed number", _set("attacks.0.alpha", float("inf")), r"attacks\[0\].alpha=inf must be a finite number"),
    ("negative number", _set("attacks.0.alpha", -0.1), r"attacks\[0\].alpha=-0.1 must be > 0"),
    ("zero steps", _set("attacks.0.steps", 0), r"attacks\[0\].steps=0 must be >= 1"),
    ("unknown attack option", _set("attacks.0.options", {"bogus": 1}),
     r"attacks\[0\]: attack 'pgd' has no option 'bogus'"),
    ("attack option value", _set("attacks.0.options", {"restarts": 0}), r"attacks\[0\] \(pgd\): restarts=0"),
    ("attack norm typo", _set("attacks.0", {"name": "deepfool", "eps": [0.0], "options": {"norm": "L3"}}),
     r"attacks\[0\] \(deepfool\): .*norm"),
    ("eps out of range", _set("attacks.0.eps", [0.0, 2.0]), r"attacks\[0\].eps\[1\]=2.0 is out of range"),
    ("eps empty", _set("attacks.0.eps", []), r"attacks\[0\].eps is empty"),
    ("unknown attack", _set("attacks.0.name", "pgdd"), r"unknown attack 'pgdd'"),
    ("attack sets eps in options", _set("attacks.0.options", {"eps": 0.1}),
     r"attacks\[0\].options.eps: set by the study"),
    ("empty mapper list", _set("mapper", []), r"mapper is empty"),
    ("n_intervals above the subset", _set("mapper.0.n_intervals", 100), r"mapper\[0\].n_intervals=100 is more than"),
    ("n_intervals above the split", lambda d, t: (d["dataset"].pop("subset"), d["mapper"][0].update(n_intervals=61)),
     r"mapper\[0\].n_intervals=61 is more than .*the 60 samples of synthetic/test"),
    ("unknown mapper key", _set("mapper.0.bogus", 1), r"unknown key 'mapper\[0\].bogus'"),
    ("mapper overlap nan", _set("mapper.0.overlap", float("nan")), r"mapper\[0\].overlap=nan"),
    ("mapper rows typo", _set("mapper.0.rows", "adv"), r"mapper\[0\].rows='adv' is not valid"),
    ("unknown dataset", _set("dataset.name", "mnsit"), r"unknown dataset 'mnsit'.*did you mean 'mnist'"),
    ("unknown dataset option", _set("dataset.options.bogus", 1), r"dataset 'synthetic' has no option 'bogus'"),
    ("dataset option value", _set("dataset.options.noise", -1.0), r"synthetic option noise=-1 is out of range"),
    ("dataset option type", _set("dataset.options.shape", "big"),
     r"dataset 'synthetic' option shape='big' has the wrong type; expected a list of integers"),
    ("subset zero", _set("dataset.subset", 0), r"dataset.subset=0 must be >= 1"),
    ("split typo", _set("dataset.split", "val"), r"dataset.split='val' is not valid"),
    ("huge dataset seed", _set("dataset.seed", 2 ** 40), r"dataset.seed=1099511627776 is not a valid seed"),
    ("negative seed", _set("seed", -1), r"^seed=-1 is not a valid seed"),
    ("huge seed", _set("seed", 2 ** 40), r"^seed=1099511627776 is not a valid seed"),
    ("huge capture seed", _set("capture", {"seed": 2 ** 33}), r"capture.seed=8589934592 is not a valid seed"),
    ("huge train seed", _set("models.0", {"name": "t", "arch": "lenet5", "train": {**TRAIN, "seed": 2 ** 40}}),
     r"models\[0\].train.seed=1099511627776 is not a valid seed"),
    ("huge attack seed", _set("attacks.0.options", {"seed": 2 ** 40}), r"attacks\[0\].options.seed=1099511627776"),
    ("output template typo", _set("output", "runs/{nmae}"),
     r"output='runs/\{nmae\}' uses \{nmae\}.*did you mean 'name'"),
    ("output template index", _set("output", "runs/{0}"), r"output='runs/\{0\}' uses \{0\}"),
    ("output template brace", _set("output", "runs/{name"), r"output='runs/\{name' is not a valid template"),
    ("output is a file", _set("output", _a_file_named("taken")), r"output: .*taken is a file, not a folder"),
    ("output under a file", _set("output", _file_as_parent),
     r"output: .*afile/run cannot be created: .*afile is a file"),
    ("output empty", _set("output", ""), r"output='' is empty"),
    ("name not file-safe", _set("name", "my/run"), r"name='my/run' must be a non-empty file-name-safe name"),
    ("name too long", _set("models.0.name", "m" * 80), r"models\[0\].name='m{20}'... has 80 characters; at most 64"),
    ("graph file name too long", lambda d, t: (d["models"][0].update(name="m" * 64),
                                               d["layers"][0].update(name="l" * 64),
                                               d.update(mapper=[{"name": "s" * 64}, {"name": "t" * 64}])),
     r"graph file name m{40}....json would have 2\d\d characters; at most 200"),
    ("output folder name too long", _set("output", "runs/" + "r" * 300), r"output: r{30}... has 300 bytes"),
    ("device typo", _set("device", "gpu"), r"device='gpu' is not valid.*allowed: auto, cpu, cuda, mps"),
    ("device index", _set("device", "cuda:x"), r"device='cuda:x' is not valid"),
    ("unknown arch", _set("models.0.arch", "lenet"), r"models\[0\] \(std\).arch: unknown model 'lenet'"),
    ("unknown arch argument", _set("models.0.arch_kwargs", {"bogus": 1}),
     r"models\[0\] \(std\): arch 'lenet5' does not accept 'bogus'"),
    ("arch argument against the data", _set("models.0.arch_kwargs", {"num_classes": 3}),
     r"models\[0\] \(std\): arch_kwargs sets num_classes=3 but the data needs num_classes=10"),
    ("nan in arch_kwargs", _set("models.0.arch_kwargs", {"dropout": float("nan")}),
     r"models\[0\].arch_kwargs.dropout=nan"),
    ("checkpoint missing", _set("models.0.checkpoint", "nope.pt"),
     r"models\[0\] \(std\).checkpoint: .*nope.pt does not exist"),
    ("checkpoint empty", _set("models.0.checkpoint", _file("empty.pt", b"")),
     r"models\[0\] \(std\).checkpoint: .*empty.pt is empty"),
    ("checkpoint garbage", _set("models.0.checkpoint", _file("junk.pt", b"not a checkpoint" * 10)),
     r"models\[0\] \(std\): checkpoint .*junk.pt cannot be loaded safely"),
    ("checkpoint truncated", _set("models.0.checkpoint", _truncated_checkpoint),
     r"models\[0\] \(std\): checkpoint .*half.safetensors is not a valid safetensors file"),
    ("checkpoint of another arch", _set("models.0.arch", "smallcnn"),
     r"models\[0\] \(std\): checkpoint .* does not fit SmallCNN"),
    ("checkpoint is a folder", _set("models.0.checkpoint", lambda t: str(t)),
     r"models\[0\] \(std\).checkpoint: .* is a folder"),
    ("zoo name typo", _set("models.0.checkpoint", "zoo:mnist-lenet5-st"),
     r"models\[0\] \(std\).checkpoint: unknown zoo checkpoint"),
    ("checkpoint and train", _set("models.0.train", TRAIN), r"models\[0\] has both 'checkpoint' and 'train'"),
    ("train recipe key", _set("models.0", {"name": "t", "arch": "lenet5", "train": {**TRAIN, "epocs": 1}}),
     r"models\[0\].train: unknown training option 'epocs'"),
    ("train recipe nan", _set("models.0", {"name": "t", "arch": "lenet5", "train": {**TRAIN, "lr": float("nan")}}),
     r"models\[0\].train.lr=nan must be a number"),
    ("mean without std", _set("models.0.mean", [0.5]), r"models\[0\] \(std\): give both mean and std"),
    ("std zero", lambda d, t: d["models"][0].update(mean=[0.5], std=[0.0]), r"models\[0\] \(std\): .*std > 0"),
    ("mean inf", lambda d, t: d["models"][0].update(mean=[float("inf")], std=[1.0]),
     r"models\[0\].mean\[0\]=inf must be a finite"),
    ("duplicate model names", lambda d, t: d["models"].append(dict(d["models"][0])), r"model names must be unique"),
    ("no models", _set("models", []), r"at least one \[\[models\]\]"),
    ("models not an array", _set("models", {"arch": "lenet5"}), r"models must be an array of tables"),
    ("unknown layer", _set("layers.0.module", "fc9"), r"layers: unknown layer 'fc9'.*valid layers"),
    ("summary typo", _set("layers.0.summary", "toplz"), r"layers\[0\].summary='toplz'.*did you mean 'top_l2'"),
    ("duplicate layers", lambda d, t: d["layers"].append(dict(d["layers"][0])), r"layer names must be unique"),
    ("no layers", _set("layers", []), r"at least one \[\[layers\]\]"),
    ("layer without module", _set("layers.0", {"summary": "flatten"}),
     r"layers\[0\] is missing required key\(s\): module"),
    ("persistence setting", _set("persistence", {"settings": {"max_pionts": 5}}),
     r"persistence.settings: unknown persistence setting"),
    ("vulnerability layer", _set("vulnerability", {"layer": "relu9"}), r"vulnerability.layer='relu9' is not valid"),
    ("datapaths eps", _set("datapaths", {"enabled": True, "eps": [0.2]}),
     r"datapaths.eps\[0\]=0.2 is not an eps of attack 'pgd'"),
    ("separability k above the folds", _set("separability", {"k": 50}),
     r"separability.k=50 neighbours but a training fold"),
    ("separability cv", _set("separability", {"cv": 1}), r"separability.cv=1 must be >= 2"),
    ("stability grid above the subset", _set("stability", {"n_intervals": [10, 41]}),
     r"stability.n_intervals\[1\]=41 is more than"),
    ("stability overlap", _set("stability", {"overlap": [1.0]}), r"stability.overlap\[0\]=1.0 must be in \[0, 1\)"),
    ("executor workers", _set("executor", {"workers": 0}), r"executor.workers=0 must be >= 1"),
]

# Files that cannot be read as a config at all: (id, file content, pattern)
UNREADABLE: list[tuple[str, bytes, str]] = [
    ("utf-16 with a byte-order mark", codecs.BOM_UTF16_LE + 'name = "x"\n'.encode("utf-16-le"), r"is UTF-16 encoded"),
    ("utf-16 without a byte-order mark", 'name = "x"\n'.encode("utf-16-le"), r"holds NUL bytes"),
    ("utf-32", codecs.BOM_UTF32_LE + 'name = "x"\n'.encode("utf-32-le"), r"is UTF-32 encoded"),
    ("latin-1", 'name = "caf\u00e9"\n'.encode("latin-1"), r"is not UTF-8 text \(byte 0xe9 on line 1\)"),
    ("not TOML", b"name = \n[[models]\n", r"is not valid TOML"),
    ("deeply nested", b"a = " + b"[" * 5000 + b"]" * 5000, r"nests arrays or tables too deeply|is not valid TOML"),
]


def _write(tmp: Path, d: dict) -> Path:
    path = tmp / "study.toml"
    path.write_text(dumps_toml(d))
    return path


def _bad_config(tmp: Path, mutate: Callable[[dict, Path], None]) -> Path:
    d = copy.deepcopy(BASE)
    mutate(d, tmp)
    return _write(tmp, d)


def _assert_refused_before_any_task(path: Path, tmp: Path, pattern: str) -> ConfigErrors:
    with pytest.raises(AdvtopoError) as info:
        run_study(path, executor=NeverRun(), verbose=False)
    exc = info.value
    assert isinstance(exc, ConfigErrors), f"not collected: {exc!r}"
    assert any(re.search(pattern, p) for p in exc.problems), (pattern, exc.problems)
    assert all("\n" not in p for p in exc.problems)
    assert not list(tmp.rglob("tasks")) and not (tmp / "runs").exists(), "a run directory was made"
    return exc


def test_the_base_config_is_valid(tmp_path):
    cfg = check_config(_write(tmp_path, BASE))
    assert cfg.model_names == ["std"] and not (tmp_path / "runs").exists()


def test_corpus_has_one_case_per_kind_and_40_or_more():
    ids = [c[0] for c in CORPUS] + [c[0] for c in UNREADABLE]
    assert len(ids) == len(set(ids)) and len(ids) >= 40


@pytest.mark.parametrize("mutate, pattern", [c[1:] for c in CORPUS], ids=[c[0] for c in CORPUS])
def test_bad_config_is_refused_before_any_task(tmp_path, monkeypatch, mutate, pattern):
    monkeypatch.chdir(tmp_path)  # output = "runs/{name}" lands here, where the test looks for it
    _assert_refused_before_any_task(_bad_config(tmp_path, mutate), tmp_path, pattern)


@pytest.mark.skipif(os.geteuid() == 0, reason="root may write anywhere")
def test_unwritable_output_parent_is_refused(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    path = _bad_config(tmp_path, _set("output", _unwritable_parent))
    try:
        _assert_refused_before_any_task(path, tmp_path, r"output: .*locked/run cannot be written: no write permission")
    finally:
        (tmp_path / "locked").chmod(0o700)


def test_a_missing_cuda_is_refused(tmp_path, monkeypatch):
    import torch

    if torch.cuda.is_available():
        pytest.skip("this machine has CUDA")
    monkeypatch.chdir(tmp_path)
    _assert_refused_before_any_task(_bad_config(tmp_path, _set("device", "cuda")), tmp_path,
                                    r"device='cuda' requested but CUDA is not available")


@pytest.mark.parametrize("content, pattern", [c[1:] for c in UNREADABLE], ids=[c[0] for c in UNREADABLE])
def test_unreadable_config_file_is_one_line(tmp_path, content, pattern):
    path = tmp_path / "study.toml"
    path.write_bytes(content)
    with pytest.raises(AdvtopoError, match=pattern) as info:
        run_study(path, executor=NeverRun(), verbose=False)
    assert "\n" not in str(info.value)


def test_config_path_that_is_missing_or_a_folder(tmp_path):
    with pytest.raises(AdvtopoError, match="does not exist"):
        check_config(tmp_path / "nope.toml")
    with pytest.raises(AdvtopoError, match="is a folder; give the TOML file"):
        check_config(tmp_path)


def test_a_utf8_byte_order_mark_is_accepted(tmp_path):
    path = tmp_path / "study.toml"
    path.write_bytes(codecs.BOM_UTF8 + dumps_toml(BASE).encode())
    assert check_config(path).name == "bad"


def test_three_mistakes_are_reported_at_once(tmp_path, monkeypatch):
    """A typo (build), a bad attack option value (config rules) and a layer the model lacks
    (needs the model built): all three in one report, nothing run."""
    monkeypatch.chdir(tmp_path)

    def three(d: dict, tmp: Path) -> None:
        d["dataset"]["subest"] = 3
        d["attacks"][0]["alpha"] = float("inf")
        d["layers"][0]["module"] = "fc9"

    exc = _assert_refused_before_any_task(_bad_config(tmp_path, three), tmp_path, "dataset.subest")
    assert len(exc.problems) == 3, exc.problems
    for pattern in (r"unknown key 'dataset.subest'", r"attacks\[0\].alpha=inf", r"unknown layer 'fc9'"):
        assert any(re.search(pattern, p) for p in exc.problems), (pattern, exc.problems)


def test_a_failed_key_does_not_cascade(tmp_path):
    """A key that failed is not checked again against what depends on it: one problem, one line."""
    d = copy.deepcopy(BASE)
    d["models"][0]["name"] = 5  # wrong type: the model's name then falls back to its default
    d["vulnerability"] = {"model": "std"}
    with pytest.raises(ConfigErrors) as info:
        check_config(_write(tmp_path, d))
    assert info.value.problems == ["models[0].name=5 has the wrong type; expected string or none"]


# --- the command line ---------------------------------------------------------------------------

def _advtopo(*args: str, cwd: Path) -> subprocess.CompletedProcess:
    env = {**os.environ, "OMP_NUM_THREADS": "1", "PYTHONPATH": str(Path(__file__).resolve().parents[1] / "src")}
    return subprocess.run([sys.executable, "-m", "advtopo", *args], cwd=cwd, capture_output=True, text=True,
                          env=env, timeout=300)


CLI_SAMPLE = ["unknown section key", "nan in a typed number", "empty mapper list", "huge seed", "output template typo",
              "checkpoint empty"]


def test_cli_run_exits_2_with_one_line_per_problem(tmp_path):
    """``python -m advtopo run`` on a sample of the corpus, and the three-mistake config."""
    cases = {c[0]: c for c in CORPUS}
    for i, case_id in enumerate(CLI_SAMPLE):
        folder = tmp_path / f"case{i}"
        folder.mkdir()
        _, mutate, pattern = cases[case_id]
        path = _bad_config(folder, mutate)
        r = _advtopo("run", str(path), cwd=folder)
        assert r.returncode == 2, (case_id, r.stderr)
        assert "Traceback" not in r.stderr, r.stderr
        lines = r.stderr.strip().splitlines()
        assert lines and all(line.startswith("advtopo run: error: ") for line in lines), lines
        assert any(re.search(pattern, line.removeprefix("advtopo run: error: ")) for line in lines), (case_id, lines)
        assert not (folder / "runs").exists()
    d = copy.deepcopy(BASE)
    d["dataset"]["subest"] = 3
    d["attacks"][0]["alpha"] = float("inf")
    d["layers"][0]["module"] = "fc9"
    r = _advtopo("check", str(_write(tmp_path, d)), cwd=tmp_path)
    assert r.returncode == 2 and "Traceback" not in r.stderr
    assert len(r.stderr.strip().splitlines()) == 3, r.stderr


def test_cli_check_and_run_check_run_nothing(tmp_path):
    path = _write(tmp_path, BASE)
    for args in (["check", str(path)], ["run", str(path), "--check"]):
        r = _advtopo(*args, cwd=tmp_path)
        assert r.returncode == 0, r.stderr
        assert "no problems found" in r.stdout and not (tmp_path / "runs").exists()
    r = _advtopo("run", str(path), "--check", "--out", str(path), cwd=tmp_path)
    assert r.returncode == 2 and "--out: " in r.stderr and "is a file, not a folder" in r.stderr


@pytest.fixture
def files(tmp_path):
    """Input files of every bad kind for the CLI cases."""
    rng = np.random.default_rng(0)
    np.save(tmp_path / "x.npy", rng.random((40, 5)))
    np.save(tmp_path / "x1d.npy", rng.random(40))
    nan = rng.random((40, 5))
    nan[3, 2] = np.nan
    np.save(tmp_path / "xnan.npy", nan)
    np.save(tmp_path / "pickled.npy", np.array([1, "a"], dtype=object), allow_pickle=True)
    (tmp_path / "empty.pt").write_bytes(b"")
    (tmp_path / "junk.pt").write_bytes(b"junk" * 50)
    (tmp_path / "md39.csv").write_text("label\n" + "\n".join("1" for _ in range(39)) + "\n")
    (tmp_path / "latin1.csv").write_bytes("label\ncaf\u00e9\n".encode("latin-1") * 20)
    (tmp_path / "afile").write_text("in the way")
    return tmp_path


# (id, argv with {d} for the files' folder, pattern of the one error line)
CLI_CASES = [
    ("mapper 1-D array", "mapper {d}/x1d.npy --out {d}/g.json", r"expected \(n_samples, n_features\)"),
    ("mapper NaN rows", "mapper {d}/xnan.npy --out {d}/g.json", r"NaN or infinite"),
    ("mapper pickled array", "mapper {d}/pickled.npy --out {d}/g.json", r"cannot read .*pickled.npy"),
    ("mapper input is a folder", "mapper {d} --out {d}/g.json", r"argument file: .* is a folder, not a file"),
    ("mapper metadata length", "mapper {d}/x.npy --metadata {d}/md39.csv --out {d}/g.json",
     r"39 rows; the array has 40"),
    ("mapper metadata not UTF-8", "mapper {d}/x.npy --metadata {d}/latin1.csv --out {d}/g.json",
     r"cannot read --metadata"),
    ("mapper metadata wrong type", "mapper {d}/x.npy --metadata {d}/x.npy --out {d}/g.json",
     r"allowed: .csv, .parquet"),
    ("mapper output under a file", "mapper {d}/x.npy --out {d}/afile/g.json", r"argument --out: .*afile is a file"),
    ("mapper output is a folder", "mapper {d}/x.npy --out {d}", r"argument --out: .* is a folder; give a file name"),
    ("mapper n_intervals 0", "mapper {d}/x.npy --out {d}/g.json --n-intervals 0", r"n_intervals=0 is not valid"),
    ("mapper overlap nan", "mapper {d}/x.npy --out {d}/g.json --overlap nan", r"overlap=nan is not valid"),
    ("mapper k 0", "mapper {d}/x.npy --out {d}/g.json --k 0", r"argument --k: 0 is out of range"),
    ("train batch size 0", "train --model lenet5 --dataset synthetic --out {d}/t --batch-size 0",
     r"argument --batch-size: 0 is out of range"),
    ("train huge seed", "train --model lenet5 --dataset synthetic --out {d}/t --seed 99999999999",
     r"argument --seed: .* not a valid seed"),
    ("train eps nan", "train --model lenet5 --dataset synthetic --out {d}/t --eps nan",
     r"argument --eps: nan must be a finite number"),
    ("train out is a file", "train --model lenet5 --dataset synthetic --out {d}/afile",
     r"argument --out: .*afile is a file"),
    ("evaluate subset 0", "evaluate --checkpoint zoo:mnist-lenet5-std --dataset synthetic --subset 0",
     r"argument --subset: 0 is out of range"),
    ("evaluate eps list", "evaluate --checkpoint zoo:mnist-lenet5-std --dataset synthetic --eps 0,inf",
     r"argument --eps: inf must be a finite"),
    ("evaluate empty checkpoint", "evaluate --checkpoint {d}/empty.pt --arch lenet5 --dataset synthetic",
     r"empty.pt is empty \(0 bytes\)"),
    ("evaluate junk checkpoint", "evaluate --checkpoint {d}/junk.pt --arch lenet5 --dataset synthetic",
     r"junk.pt is not a readable torch file \(truncated or damaged\?\): KeyError"),
    ("layers num classes 0", "layers lenet5 --num-classes 0", r"argument --num-classes: 0 is out of range"),
    ("layers mean nan", "layers lenet5 --mean nan --std 1", r"mean\[0\]=nan must be a finite number"),
    ("datapaths subset 0", "datapaths --checkpoint zoo:mnist-lenet5-std --dataset synthetic --subset 0",
     r"argument --subset: 0"),
    ("datapaths divergence nan", "datapaths --checkpoint zoo:mnist-lenet5-std --dataset synthetic --divergence nan",
     r"argument --divergence: nan"),
    ("persistence landmarks 0", "persistence diagrams {d}/x.npy --landmarks 0",
     r"argument --landmarks: 0 is out of range"),
    ("persistence layers needs npz", "persistence layers {d}/x.npy", r"is not an .npz archive"),
    ("persistence steps negative", "persistence sensitivity {d}/x.npy --steps -1",
     r"argument --steps: -1 is out of range"),
    ("export eps inf", "export-activations {d} --model m --layer l --out {d}/e.npy --eps inf", r"argument --eps: inf"),
    ("runs base is a file", "runs {d}/afile", r"afile is a file; give the folder holding run directories"),
    ("demo port", "demo --no-serve --port 70000", r"argument --port: 70000 is out of range"),
    ("report out is a file", "report {d} --out {d}/afile", r"argument --out: .*afile is a file, not a folder"),
    ("run config missing", "run {d}/nope.toml", r"study config .*nope.toml does not exist"),
    ("output file name too long", "mapper {d}/x.npy --out {d}/" + "g" * 300 + ".json",
     r"argument --out: g{30}... has 305 bytes"),
]


@pytest.mark.parametrize("argv, pattern", [c[1:] for c in CLI_CASES], ids=[c[0] for c in CLI_CASES])
def test_bad_cli_input_is_one_line_and_exit_2(files, capsys, argv, pattern):
    code = main(argv.format(d=files).split())
    err = capsys.readouterr().err.strip().splitlines()
    assert code == 2, err
    assert len(err) == 1 or err[0].startswith("usage:"), err
    assert re.search(pattern, err[-1]), err[-1]
    assert not (files / "t").exists() and not (files / "g.json").exists()


# --- the Python API -----------------------------------------------------------------------------

def test_mapper_fit_refuses_bad_arrays():
    from advtopo.mapper import Mapper

    X = np.random.default_rng(0).random((40, 5))
    with_nan = X.copy()
    with_nan[1, 1] = np.nan
    with_inf = X.copy()
    with_inf[2, 0] = np.inf
    cases = [
        (with_nan, None, r"NaN or infinite"), (with_inf, None, r"NaN or infinite"),
        (np.zeros((0, 5)), None, r"no rows"), (np.zeros((40, 0)), None, r"no columns"),
        (X[:, 0], None, r"2-D array"), (X.astype(complex), None, r"real numbers"),
        (np.array([["a"] * 5] * 40), None, r"must be numeric"),
        (X, {"label": np.arange(39)}, r"metadata column 'label' has shape \(39,\); expected \(40,\)"),
        (X, [1, 2, 3], r"metadata must be a dict or DataFrame"),
    ]
    with pytest.raises(AdvtopoError, match=r"lens must be an array of real numbers"):
        Mapper(n_intervals=5).fit(X, lens=np.array(["a"] * 40))
    with pytest.raises(AdvtopoError, match=r"lens has 39 values but X has 40 rows"):
        Mapper(n_intervals=5).fit(X, lens=np.arange(39.0))
    for data, metadata, pattern in cases:
        with pytest.raises(AdvtopoError, match=pattern):
            Mapper(n_intervals=5).fit(data, metadata)
    with pytest.raises(AdvtopoError, match=r"random_state=1099511627776 is not valid; allowed: an integer >= 0 "
                                           r"and < 2\*\*32"):
        Mapper(n_intervals=5, random_state=2 ** 40).fit(X)


def test_load_dataset_refuses_bad_options():
    from advtopo.data import load_dataset

    for kwargs, pattern in [({"bogus": 1}, r"has no option 'bogus'"), ({"subset": 0}, r"subset=0 is out of range"),
                            ({"subset": 2.5}, r"subset=2.5 must be an integer"), ({"seed": -1}, r"seed=-1"),
                            ({"seed": 2 ** 40}, r"not a valid seed"), ({"noise": float("nan")}, r"noise=nan"),
                            ({"shape": [1, 0, 28]}, r"shape=\[1, 0, 28\]"), ({"n": "ten"}, r"n='ten'")]:
        with pytest.raises(AdvtopoError, match=pattern):
            load_dataset("synthetic", "test", **kwargs)
    with pytest.raises(AdvtopoError, match=r"test_fraction=nan"):
        load_dataset("digits", "test", test_fraction=float("nan"))


def test_build_model_refuses_bad_arguments():
    from advtopo.models import build_model

    with pytest.raises(AdvtopoError, match=r"arch 'lenet5' does not accept 'bogus'"):
        build_model("lenet5", {"bogus": 1})
    with pytest.raises(AdvtopoError, match=r"arch 'torch.nn:Linear' failed to build with \{\}: TypeError: .*"
                                           r"its arguments: bias, device, dtype, in_features, out_features"):
        build_model("torch.nn:Linear", {})
    with pytest.raises(AdvtopoError, match=r"mean\[0\]=nan must be a finite number"):
        build_model("lenet5", mean=[float("nan")], std=[1.0])
    with pytest.raises(AdvtopoError, match=r"std=0.5 must be a list of numbers"):
        build_model("lenet5", mean=[0.5], std=0.5)


def test_damaged_checkpoints_are_one_line(tmp_path):
    import json

    import torch

    from advtopo.models import load_checkpoint

    damaged = {"config not JSON": {"format": "advtopo-checkpoint-v1", "config": "{", "state_dict": {}},
               "no config": {"format": "advtopo-checkpoint-v1", "state_dict": {}},
               "no state_dict": {"format": "advtopo-checkpoint-v1", "config": json.dumps({"arch": "lenet5"})},
               "arch_kwargs not a table": {"format": "advtopo-checkpoint-v1", "state_dict": {},
                                           "config": json.dumps({"arch": "lenet5", "arch_kwargs": [1]})}}
    for name, payload in damaged.items():
        torch.save(payload, tmp_path / "c.pt")
        with pytest.raises(AdvtopoError, match=r"c.pt is damaged") as info:
            load_checkpoint(tmp_path / "c.pt")
        assert "\n" not in str(info.value), name
    data = (tmp_path / "c.pt").read_bytes()
    for cut in (1, 10, 100, len(data) // 2, len(data) - 1):  # truncated anywhere
        (tmp_path / "t.pt").write_bytes(data[:cut])
        with pytest.raises(AdvtopoError, match=r"t.pt (is not a readable torch file|cannot be loaded safely)"):
            load_checkpoint(tmp_path / "t.pt", arch="lenet5")


def test_run_study_refuses_a_bad_dict_config_and_bad_objects(tmp_path):
    d = copy.deepcopy(BASE)
    d["output"] = str(tmp_path / "runs" / "{name}")
    d["attacks"][0]["alpha"] = float("inf")
    d["mapper"] = []
    with pytest.raises(ConfigErrors) as info:
        run_study(d, executor=NeverRun(), verbose=False)
    assert len(info.value.problems) == 2 and not (tmp_path / "runs").exists()
    with pytest.raises(AdvtopoError, match=r"a study config is a TOML file's path, a dict or a StudyConfig; got int"):
        run_study(5, executor=NeverRun(), verbose=False)
    with pytest.raises(AdvtopoError, match=r"'mine' is a str, not a torch.nn.Module"):
        run_study(BASE, models={"mine": "not a model"}, executor=NeverRun(), verbose=False)
