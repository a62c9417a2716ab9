"""Every built-in attack in a study: only the arguments its constructor accepts reach it, a wrong
one is a config error before any work, and each runs end to end on a tiny digits study."""
from __future__ import annotations

import json

import numpy as np
import pytest

from advtopo.adversarial import ATTACKS
from advtopo.errors import AdvtopoError
from advtopo.models import save_checkpoint
from advtopo.study import StudyConfig, run_study

pytestmark = [pytest.mark.timeout(300), pytest.mark.usefixtures("one_torch_thread")]


def _cfg(attacks: list[dict], checkpoint: str | None = None) -> dict:
    model = {"name": "net", "arch": "lenet5", **({"checkpoint": checkpoint} if checkpoint else {})}
    return {"name": "atk", "seed": 0, "device": "cpu",
            "dataset": {"name": "digits", "split": "test", "subset": 40},
            "models": [model],
            "attacks": attacks, "layers": [{"module": "fc1"}], "capture": {"batch_size": 20},
            "mapper": [{"n_intervals": 3, "overlap": 0.3, "min_samples": 2}],
            "persistence": {"enabled": False}, "vulnerability": {"enabled": False},
            "separability": {"enabled": False}, "stability": {"enabled": False}}


@pytest.mark.parametrize("attack, key", [("fgsm", "steps"), ("cw", "random_start"), ("autoattack", "alpha")])
def test_an_argument_the_attack_does_not_take_is_a_config_error(attack, key):
    value = {"steps": 3, "random_start": True, "alpha": 0.01}[key]
    with pytest.raises(AdvtopoError, match=rf"attacks\[0\]: attack '{attack}' has no option '{key}'.*valid options") as exc:
        StudyConfig.from_dict(_cfg([{"name": attack, "eps": [0.0, 0.1], key: value}]))
    # the message lists what the attack does take
    for p in ("eps", "targeted"):
        assert p in str(exc.value)


def test_unknown_option_and_bad_value_are_config_errors():
    with pytest.raises(AdvtopoError, match=r"attacks\[0\]: attack 'pgd' has no option 'restart'.*did you mean 'restarts'"):
        StudyConfig.from_dict(_cfg([{"name": "pgd", "eps": [0.1], "options": {"restart": 2}}]))
    with pytest.raises(AdvtopoError, match=r"attacks\[0\] \(pgd\): restarts=0 must be an integer >= 1"):
        StudyConfig.from_dict(_cfg([{"name": "pgd", "eps": [0.1], "options": {"restarts": 0}}]))
    with pytest.raises(AdvtopoError, match=r"options.eps: set by the study"):
        StudyConfig.from_dict(_cfg([{"name": "pgd", "eps": [0.1], "options": {"eps": 0.2}}]))


def test_unset_defaults_are_not_sent():
    cfg = StudyConfig.from_dict(_cfg([{"name": "fgsm", "eps": [0.1]}, {"name": "pgd", "eps": [0.1], "steps": 3}]))
    assert cfg.attacks[0].kwargs() == {}
    assert cfg.attacks[1].kwargs() == {"steps": 3}


def _digits_lenet():
    """lenet5 trained 3 epochs on sklearn digits (about 90% test accuracy), so attacks have something to break."""
    import torch
    import torch.nn.functional as F

    from advtopo.data import load_dataset
    from advtopo.models import create_model

    torch.manual_seed(0)
    train = load_dataset("digits", "train")
    model = create_model("lenet5", input_size=8)
    opt = torch.optim.Adam(model.parameters(), lr=3e-3)
    for _ in range(3):
        for xb, yb in train.loader(64, shuffle=True, seed=0):
            opt.zero_grad()
            F.cross_entropy(model(xb), yb).backward()
            opt.step()
    return model.eval()


def test_every_builtin_attack_runs_in_a_study(tmp_path):
    """One tiny study with each attack of the registry, on a trained digits lenet5 loaded by checkpoint."""
    pytest.importorskip("torchattacks")  # installed by `make setup`; the adapter's attacks need it
    model = _digits_lenet()
    save_checkpoint(tmp_path / "model.pt", model, {"arch": "lenet5", "input_size": 8})
    eps = 0.2
    attacks = [{"name": "fgsm", "eps": [0.0, eps]},
               {"name": "pgd", "eps": [0.0, eps], "steps": 3},
               {"name": "pgd_l2", "eps": [0.0, 1.5], "steps": 3},
               {"name": "apgd", "eps": [0.0, eps], "steps": 3},
               # standard AutoAttack stops once every sample is fooled (at 0.2 one robust sample
               # would go through APGD-T, FAB-T and Square: 85 s here)
               {"name": "autoattack", "eps": [0.0, 0.3]},
               {"name": "cw", "eps": [0.0, 1.0], "steps": 10, "options": {"c": 5.0, "lr": 0.05}},
               {"name": "deepfool", "eps": [0.0, 1.5], "steps": 20}]  # L2 by default, clipped to the budget
    assert {a["name"] for a in attacks} == set(ATTACKS.names())  # a new attack must join this test
    cfg = _cfg(attacks, str(tmp_path / "model.pt"))
    root = run_study(StudyConfig.from_dict(cfg), out=tmp_path / "run", verbose=False)
    idx = json.loads((root / "index.json").read_text())
    acc = {(r["attack"], r["eps"]): r["accuracy"] for r in idx["accuracy"]}
    clean = np.load(root / idx["images"]["clean"]).astype(int)
    assert len(idx["graphs"]) == len(attacks) * 2
    for a in attacks:
        e = a["eps"][1]
        assert acc[(a["name"], e)] < acc[(a["name"], 0.0)], a["name"]  # the attack hurt the model
        adv = np.load(root / idx["images"]["adversarial"][f"net/{a['name']}/{e:g}"]).astype(int)
        if a["name"] in ("fgsm", "pgd", "apgd", "autoattack"):  # Linf-bounded (images rounded to uint8)
            assert np.abs(adv - clean).max() <= round(e * 255) + 1, a["name"]
        elif a["name"] in ("pgd_l2", "deepfool"):
            d = (adv - clean).reshape(len(adv), -1) / 255.0
            assert np.linalg.norm(d, axis=1).max() <= e + 0.02
    steps = {a["name"]: a["steps"] for a in idx["attacks"]}
    assert steps["pgd"] == 3 and steps["fgsm"] is None
