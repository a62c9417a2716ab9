"""The shipped zoo: every entry loads strictly, matches its SHA-256 and reproduces its recorded accuracy."""
from __future__ import annotations

import hashlib
import json
import subprocess
import sys
from pathlib import Path

import pytest
import torch

from advtopo.errors import AdvtopoError
from advtopo.models.pretrained import HERE, get_pretrained, list_pretrained, load_pretrained, resolve_pretrained

ENTRIES = list_pretrained()
FASHION = Path("/usr/share/datasets/fashion-mnist")


def _needs_data(entry):
    if entry.dataset == "fashion-mnist" and not FASHION.exists():
        pytest.skip("Fashion-MNIST not installed (make test installs Debian's dataset-fashion-mnist)")


def test_zoo_has_the_promised_models():
    names = {e.name for e in ENTRIES}
    for n in ("mnist-lenet5-std", "mnist-lenet5-fgsm0.1", "mnist-lenet5-fgsm0.2", "mnist-lenet5-fgsm0.3",
              "mnist-lenet5-pgd0.3",
              "fashion-lenet5-std", "fashion-lenet5-fgsm0.05", "fashion-lenet5-fgsm0.1", "fashion-lenet5-fgsm0.2"):
        assert n in names, f"{n} missing from the zoo index"


@pytest.mark.parametrize("entry", ENTRIES, ids=[e.name for e in ENTRIES])
def test_entry_file_hash_recipe(entry):
    blob = entry.path.read_bytes()
    assert hashlib.sha256(blob).hexdigest() == entry.sha256
    assert entry.command.startswith("advtopo train ") and f"--eps {entry.train_eps:g}" in entry.command
    assert entry.raw["recipe"]["eps"] == pytest.approx(entry.train_eps)
    assert resolve_pretrained("zoo:" + entry.name) == entry.path


@pytest.mark.parametrize("entry", ENTRIES, ids=[e.name for e in ENTRIES])
def test_entry_reproduces_recorded_clean_accuracy(entry):
    """Independent of the build tool: plain forward passes over the whole test split."""
    _needs_data(entry)
    from advtopo.data import load_dataset

    model, _ = load_pretrained(entry.name)
    test = load_dataset(entry.dataset, "test")
    with torch.no_grad():
        pred = torch.cat([model(test.x[i:i + 2000]).argmax(1) for i in range(0, len(test), 2000)])
    acc = (pred == test.y).double().mean().item()
    # the same weights; batch size may flip a near-tie, so allow two images of 10,000
    assert acc == pytest.approx(entry.accuracy["clean"], abs=2.5e-4)


def test_robustness_reproduced_by_an_independent_attack():
    """torchattacks' PGD-40 (not advtopo's) on 300 other test images at eps 0.1: the FGSM-trained
    model keeps its recorded full-test-set accuracy, the standard model its recorded grid value,
    each within sampling error, and adversarial training is what makes the difference."""
    import torchattacks

    from advtopo.data import load_dataset

    test = load_dataset("mnist", "test").subset(300, seed=1)
    accs = {}
    for name in ("mnist-lenet5-std", "mnist-lenet5-fgsm0.1"):
        model, entry = load_pretrained(name)
        torch.manual_seed(0)
        atk = torchattacks.PGD(model, eps=0.1, alpha=0.01, steps=40, random_start=True)
        xa = atk(test.x, test.y)
        with torch.no_grad():
            accs[name] = (model(xa).argmax(1) == test.y).float().mean().item()
    robust = get_pretrained("mnist-lenet5-fgsm0.1").accuracy["pgd40_train_eps_full"]["restarts1"]
    std_grid = {r["eps"]: r["restarts1"] for r in get_pretrained("mnist-lenet5-std").accuracy["pgd40_grid"]["rows"]}
    assert abs(accs["mnist-lenet5-fgsm0.1"] - robust) < 0.05   # 300 images: ~1.3 pp standard error
    assert abs(accs["mnist-lenet5-std"] - std_grid[0.1]) < 0.12  # ~2.6 pp + a 200-image grid's own error
    assert accs["mnist-lenet5-fgsm0.1"] > accs["mnist-lenet5-std"] + 0.15


def test_pgd_trained_model_is_robust_at_eps_03_under_an_independent_attack():
    """The zoo's eps-0.3 model holds under torchattacks' PGD-40 (step 0.01, random start) on 300
    test images the build did not use for its grid: its recorded full-test-set accuracy within
    sampling error, and far above the FGSM-trained model, which overfits catastrophically there."""
    import torchattacks

    from advtopo.data import load_dataset

    test = load_dataset("mnist", "test").subset(300, seed=1)
    accs = {}
    for name in ("mnist-lenet5-pgd0.3", "mnist-lenet5-fgsm0.3"):
        model, _ = load_pretrained(name)
        torch.manual_seed(0)
        xa = torchattacks.PGD(model, eps=0.3, alpha=0.01, steps=40, random_start=True)(test.x, test.y)
        with torch.no_grad():
            accs[name] = (model(xa).argmax(1) == test.y).float().mean().item()
    recorded = get_pretrained("mnist-lenet5-pgd0.3").accuracy["pgd40_train_eps_full"]
    assert recorded["n"] == 10000
    assert abs(accs["mnist-lenet5-pgd0.3"] - recorded["restarts1"]) < 0.05  # 300 images: ~1.7 pp standard error
    assert accs["mnist-lenet5-pgd0.3"] > accs["mnist-lenet5-fgsm0.3"] + 0.5


def test_unknown_name_suggests_the_closest():
    with pytest.raises(AdvtopoError, match="did you mean.*mnist-lenet5-fgsm0.3"):
        get_pretrained("zoo:mnist-lenet5-fgsm0.33")


def test_index_is_valid_json_with_protocol():
    doc = json.loads((HERE / "index.json").read_text())
    assert doc["format"] == "advtopo-zoo-v1"
    for m in doc["models"]:
        assert m["eval_protocol"] and m["machine"] and m["train_seconds"] > 0


def test_cli_lists_the_zoo():
    out = subprocess.run([sys.executable, "-m", "advtopo.cli", "zoo"], capture_output=True, text=True, check=True).stdout
    for e in ENTRIES:
        assert "zoo:" + e.name in out
    one = subprocess.run([sys.executable, "-m", "advtopo.cli", "zoo", ENTRIES[0].name], capture_output=True,
                         text=True, check=True).stdout
    assert json.loads(one)["sha256"] == ENTRIES[0].sha256
