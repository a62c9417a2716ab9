"""Critical datapaths: the extractor finds the neurons that carry a prediction, batches do
not change per-input results, comparisons match hand-computed values, and the study stage
and the CLI write what docs/architecture.md promises."""
from __future__ import annotations

import json

import numpy as np
import pytest
import torch
import torch.nn as nn

from advtopo.datapaths import (DatapathExtractor, Datapaths, compare_datapaths, divergence_layer, flow_edges,
                               jaccard, layer_connections, weighted_jaccard)
from advtopo.errors import AdvtopoError

pytestmark = pytest.mark.timeout(120)


# --- a hand-built network --------------------------------------------------------------------

class Tiny(nn.Module):
    """4 inputs -> 6 hidden (relu1) -> 4 hidden (relu2) -> 2 classes, weights set by hand.

    For x = 1: hidden units 0 and 1 are on and both are needed for class 0 (3 + 3 > 4.5,
    3 < 4.5); unit 2 is off (relu of a negative number) although it is wired strongly to
    class 0; units 3-5 are on but wired to nothing. In relu2 only unit 0 is wired on.
    """

    def __init__(self) -> None:
        super().__init__()
        self.fc1 = nn.Linear(4, 6, bias=False)
        self.relu1 = nn.ReLU()
        self.fc2 = nn.Linear(6, 4, bias=False)
        self.relu2 = nn.ReLU()
        self.fc3 = nn.Linear(4, 2)
        with torch.no_grad():
            self.fc1.weight.copy_(torch.tensor([[1., 0, 0, 0], [0, 1, 0, 0], [-1, -1, -1, -1],
                                                [1, 1, 1, 1], [1, 1, 1, 1], [1, 1, 1, 1]]))
            w2 = torch.zeros(4, 6)
            w2[0, 0] = w2[0, 1] = 3.0   # relu2 unit 0 = 3 h0 + 3 h1
            w2[0, 2] = 10.0             # dead unit 2 would help, but it is off
            w2[1, 3] = 0.5              # relu2 unit 1 reads unit 3 but leads nowhere
            self.fc2.weight.copy_(w2)
            self.fc3.weight.copy_(torch.tensor([[1.0, 0, 0, 0], [0, 0, 0, 0]]))
            self.fc3.bias.copy_(torch.tensor([0.0, 4.5]))

    def forward(self, x):
        return self.fc3(self.relu2(self.fc2(self.relu1(self.fc1(x)))))


def test_extractor_finds_exactly_the_neurons_that_carry_the_prediction():
    net = Tiny()
    x = torch.ones(3, 4)
    assert net(x).argmax(1).tolist() == [0, 0, 0]
    dp = DatapathExtractor(["relu1", "relu2"]).fit(net, x)
    for i in range(3):
        assert dp.critical_ids(i) == {"relu1": [0, 1], "relu2": [0]}
    assert dp.retained_accuracy == 1.0 and dp.sizes["relu1"].tolist() == [2, 2, 2]
    assert dp.gates["relu1"].dtype == np.float32 and dp.gates["relu1"].shape == (3, 6)
    assert dp.gates["relu1"][:, 2:].max() < 0.01  # the dead and the unwired units are switched off


def test_flow_edges_are_the_absolute_weights_between_critical_neurons():
    net = Tiny()
    conns = layer_connections(net, ["relu1", "relu2"], (4,))
    assert len(conns) == 1 and conns[0].via == "fc2"
    np.testing.assert_allclose(conns[0].strength, net.fc2.weight.detach().abs().numpy())
    dp = DatapathExtractor(["relu1", "relu2"], steps=60).fit(net, torch.ones(1, 4))
    (flow,) = flow_edges(conns, dp, 0, top_k=5)
    assert flow["source"] == "relu1" and flow["target"] == "relu2"
    assert flow["edges"] == [[0, 0, 3.0], [1, 0, 3.0]]
    # a pair joined by two weight modules is reported as unsupported, not guessed
    (c,) = layer_connections(net, ["fc1", "relu2"], (4,))
    assert c.strength is not None and c.via == "fc2"
    (c,) = layer_connections(net, ["relu1", "fc3"], (4,))
    assert c.strength is None and "2 weight modules" in c.reason


def test_conv_connection_sums_the_kernel_and_linear_after_flatten_sums_positions():
    from advtopo.models import create_model

    torch.manual_seed(0)
    m = create_model("lenet5", input_size=8)
    c1, c2 = layer_connections(m, ["relu1", "relu2", "relu3"], (1, 8, 8))
    assert c1.via == "conv2" and c1.strength.shape == (64, 32)
    np.testing.assert_allclose(c1.strength[5, 7], m.conv2.weight[5, 7].abs().sum().item(), rtol=1e-5)
    assert c2.via == "fc1" and c2.strength.shape == (200, 64)  # 64 channels x 2 x 2 positions
    np.testing.assert_allclose(c2.strength[3, 10], m.fc1.weight[3, 40:44].abs().sum().item(), rtol=1e-5)


# --- comparisons -------------------------------------------------------------------------------

def test_jaccard_and_weighted_jaccard_against_hand_computed_values():
    a = {"l1": np.array([[1, 1, 0, 0], [0, 0, 0, 0], [1, 0, 1, 0]], bool)}
    b = {"l1": np.array([[1, 0, 1, 0], [0, 0, 0, 0], [1, 0, 1, 0]], bool)}
    np.testing.assert_allclose(jaccard(a, b)["l1"], [1 / 3, 1.0, 1.0])  # empty vs empty counts as equal
    ga = {"l1": np.array([[0.9, 0.2, 0.0], [0.0, 0.0, 0.0]])}
    gb = {"l1": np.array([[0.3, 0.6, 0.5], [0.0, 0.0, 0.0]])}
    # min: 0.3 + 0.2 + 0 = 0.5; max: 0.9 + 0.6 + 0.5 = 2.0
    np.testing.assert_allclose(weighted_jaccard(ga, gb)["l1"], [0.25, 1.0])
    sim = {"a": np.array([0.9, 0.4, 0.9]), "b": np.array([0.3, 0.2, 0.8])}
    assert divergence_layer(sim, 0.5).tolist() == [1, 0, -1]


def _dp(gates: dict[str, np.ndarray], pred) -> Datapaths:
    p = np.asarray(pred)
    return Datapaths(list(gates), {k: np.asarray(v, np.float32) for k, v in gates.items()}, p, p, p, p)


def test_compare_splits_fooled_and_not_fooled():
    clean = _dp({"a": [[0.9, 0.9], [0.9, 0.1]], "b": [[0.9, 0.1], [0.9, 0.9]]}, [1, 2])
    adv = _dp({"a": [[0.9, 0.9], [0.1, 0.9]], "b": [[0.1, 0.9], [0.9, 0.9]]}, [3, 2])
    c = compare_datapaths(clean, adv)
    assert c.fooled.tolist() == [True, False]
    np.testing.assert_allclose(c.jaccard["a"], [1.0, 0.0])
    np.testing.assert_allclose(c.jaccard["b"], [0.0, 1.0])
    assert c.divergence_names() == ["b", "a"]
    s = c.summary()
    assert s["layers"]["a"]["jaccard"] == {"all": 0.5, "fooled": 1.0, "not_fooled": 0.0}
    assert s["divergence_counts"]["fooled"] == {"a": 0, "b": 1, "none": 0}
    json.dumps(s)


# --- validation --------------------------------------------------------------------------------

def test_bad_parameters_are_clear_errors():
    net = Tiny()
    x = torch.ones(2, 4)
    with pytest.raises(AdvtopoError, match="unknown layer 'relu3'.*valid layers: fc1, relu1"):
        DatapathExtractor(["relu3"]).fit(net, x)
    for kw, msg in [({"lam": -1}, "lam=-1 must be >= 0"), ({"steps": 0}, "steps=0 must be an integer >= 1"),
                    ({"threshold": 1.0}, r"threshold=1.0 must be a number in \(0, 1\)"),
                    ({"threshold": 0}, "threshold=0"), ({"target": "labels"}, "did you mean 'label'"),
                    ({"lr": 0}, "lr=0 must be > 0")]:
        with pytest.raises(AdvtopoError, match=msg):
            DatapathExtractor(["relu1"], **kw).fit(net, x)
    with pytest.raises(AdvtopoError, match="needs the labels y"):
        DatapathExtractor(["relu1"], target="label").fit(net, x)
    with pytest.raises(AdvtopoError, match="non-empty batch"):
        DatapathExtractor(["relu1"]).fit(net, x[:0])
    with pytest.raises(AdvtopoError, match="non-empty list"):
        DatapathExtractor([]).validate()


# the briefly trained lenet5 on sklearn digits is the `lenet` fixture of conftest.py

LAYERS = ["relu1", "relu2", "relu3"]


def test_gates_of_one_sample_do_not_depend_on_the_batch(lenet):
    model, test = lenet
    ext = DatapathExtractor(LAYERS, steps=80)
    one = ext.fit(model, test.x[:1])
    eight = ext.fit(model, test.x[:8])
    for k in LAYERS:
        np.testing.assert_allclose(one.gates[k][0], eight.gates[k][0], atol=1e-4)
    assert one.critical_ids(0) == eight.critical_ids(0)
    # batch_size splits the work, not the problem
    split = DatapathExtractor(LAYERS, steps=80, batch_size=3).fit(model, test.x[:8])
    for k in LAYERS:
        np.testing.assert_allclose(split.gates[k], eight.gates[k], atol=1e-4)


def test_same_inputs_same_gates_bit_for_bit(lenet, tmp_path):
    model, test = lenet
    ext = DatapathExtractor(LAYERS, steps=40, seed=3)
    a, b = ext.fit(model, test.x[:16]), ext.fit(model, test.x[:16])
    for k in LAYERS:
        assert np.array_equal(a.gates[k], b.gates[k])
    a.save(tmp_path / "clean")
    c = Datapaths.load(tmp_path / "clean.npz")
    assert c.layers == LAYERS and c.threshold == a.threshold and c.params == json.loads(json.dumps(a.params))
    for k in LAYERS:
        assert np.array_equal(c.gates[k], a.gates[k])
    assert np.array_equal(c.gated_prediction, a.gated_prediction)


def test_critical_neurons_alone_keep_the_prediction(lenet):
    model, test = lenet
    dp = DatapathExtractor(LAYERS).fit(model, test.x[:200])
    assert dp.retained_accuracy >= 0.9, dp.summary()
    assert dp.kept_fraction_total < 0.5, dp.summary()  # a datapath is a small part of the network
    # and it is the selection that matters: as many random neurons per layer keep far fewer predictions
    rng = np.random.default_rng(0)
    rand = {k: np.zeros_like(v) for k, v in dp.gates.items()}
    for k, sizes in dp.sizes.items():
        for i, s in enumerate(sizes):
            rand[k][i, rng.choice(rand[k].shape[1], s, replace=False)] = 1.0
    handles = []
    mods = dict(model.named_modules())
    for k in LAYERS:
        g = torch.from_numpy(rand[k])
        handles.append(mods[k].register_forward_hook(
            lambda m, i, o, g=g: o * g.view(g.shape[0], g.shape[1], *([1] * (o.dim() - 2)))))
    try:
        with torch.no_grad():
            kept_random = (model(test.x[:200]).argmax(1).numpy() == dp.prediction).mean()
    finally:
        for h in handles:
            h.remove()
    assert kept_random < dp.retained_accuracy - 0.2


# --- study stage and CLI -----------------------------------------------------------------------

def tiny_study(**datapaths) -> dict:
    return {"name": "dp", "seed": 1, "device": "cpu",
            "dataset": {"name": "digits", "split": "test", "subset": 30, "train_subset": 300},
            "models": [{"name": "std", "arch": "lenet5",
                        "train": {"method": "standard", "eps": 0.0, "epochs": 1, "batch_size": 64,
                                  "eval_subset": 20, "eval_steps": 1}}],
            "attacks": [{"name": "pgd", "eps": [0.0, 0.1, 0.3], "steps": 2}],
            "layers": [{"module": "relu2", "summary": "top_l2"}, {"module": "fc1"}],
            "capture": {"batch_size": 30},
            "mapper": [{"n_intervals": 3, "overlap": 0.3, "min_samples": 2}],
            "persistence": {"enabled": False}, "vulnerability": {"enabled": False},
            "datapaths": {"enabled": True, "n_samples": 12, "steps": 30, "n_detail": 3, "top_k": 4,
                          **datapaths}}


def test_datapaths_config_is_validated():
    from advtopo.study import StudyConfig

    assert StudyConfig.from_dict({**tiny_study(), "datapaths": {}}).datapaths.enabled is False
    with pytest.raises(AdvtopoError, match="unknown key 'datapaths.n_sample'.*did you mean 'n_samples'"):
        StudyConfig.from_dict(tiny_study(n_sample=3))
    with pytest.raises(AdvtopoError, match=r"datapaths.eps\[0\]=0.2 is not an eps of attack 'pgd'"):
        StudyConfig.from_dict(tiny_study(eps=[0.2]))
    with pytest.raises(AdvtopoError, match="datapaths: lam=-1.0 must be >= 0"):
        StudyConfig.from_dict(tiny_study(lam=-1.0))
    with pytest.raises(AdvtopoError, match="datapaths.model='st'"):
        StudyConfig.from_dict(tiny_study(model="st"))
    cfg = StudyConfig.from_dict(tiny_study(layers=["relu1", "fc1"]))
    assert cfg.datapath_layers() == ["relu1", "fc1"]
    with pytest.raises(AdvtopoError, match="datapaths.layers: unknown layer 'relu9'"):
        StudyConfig.from_dict(tiny_study(layers=["relu9"])).check_layers_against_models()


def test_study_writes_datapaths_json(tmp_path):
    from advtopo.study import StudyConfig, open_run, run_study

    root = run_study(StudyConfig.from_dict(tiny_study()), out=tmp_path / "run", verbose=False)
    idx = json.loads((root / "index.json").read_text())
    assert idx["datapaths"] == "datapaths.json"
    doc = json.loads((root / "datapaths.json").read_text())
    assert open_run(root).datapaths() == doc
    assert doc["model"] == "std" and doc["attack"] == "pgd" and doc["layers"] == ["relu2", "fc1"]
    assert doc["eps"] == [0.1, 0.3] and doc["n_samples"] == 12 and doc["widths"] == {"relu2": 64, "fc1": 200}
    for k in ("jaccard_fooled", "jaccard_not_fooled", "weighted_jaccard_fooled", "weighted_jaccard_all"):
        assert len(doc["by_layer"]["fc1"][k]) == 2
    assert [b["eps"] for b in doc["by_eps"]] == [0.1, 0.3]
    assert len(doc["samples"]) == 12 and len(doc["detail"]) == 3
    s = doc["samples"][0]["eps"]["0.3"]
    assert set(s) == {"prediction", "fooled", "divergence_layer", "jaccard", "weighted_jaccard"}
    assert len(s["jaccard"]) == 2 and all(0.0 <= v <= 1.0 for v in s["jaccard"])
    flow = doc["detail"][0]["clean"]["flow"]
    assert flow[0]["source"] == "relu2" and flow[0]["target"] == "fc1" and len(flow[0]["edges"]) <= 4
    assert doc["connections"][0]["via"] == "fc1" and doc["connections"][0]["supported"]
    crit = doc["detail"][0]["clean"]["critical"]
    assert {e[0] for e in flow[0]["edges"]} <= set(crit["relu2"])
    assert {e[1] for e in flow[0]["edges"]} <= set(crit["fc1"])
    from advtopo.study import format_summary

    text = format_summary(open_run(root))  # what `advtopo show` prints
    assert "datapaths (std, pgd)" in text and "eps 0.3" in text and "J fooled" in text


def test_cli_prints_the_layer_table(lenet, tmp_path, capsys):
    from advtopo.cli import main
    from advtopo.models import save_checkpoint

    model, _ = lenet
    ckpt = tmp_path / "ckpt.pt"
    save_checkpoint(ckpt, model, {"arch": "lenet5", "num_classes": 10, "in_channels": 1, "input_size": 8})
    out = tmp_path / "dp.json"
    rc = main(["datapaths", "--checkpoint", str(ckpt), "--dataset", "digits", "--subset", "20", "--eps", "0.2",
               "--attack-steps", "3", "--steps", "20", "--quiet", "--out", str(out)])
    text = capsys.readouterr().out
    assert rc == 0, text
    assert "eps 0.2" in text and "relu3" in text and "J fooled" in text
    assert json.loads(out.read_text())["n_samples"] == 20
    assert main(["datapaths", "--checkpoint", str(ckpt), "--dataset", "digits", "--layers", "relu9",
                 "--quiet", "--subset", "10"]) == 2
