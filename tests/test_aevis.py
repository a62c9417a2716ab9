"""AEVis's layer, neuron and class levels (advtopo.datapaths.aevis, app/aevis.py), each checked
against an independent computation: feature maps against the model's layers applied by hand,
top examples against a plain sort, the class flow against sets counted by hand, the routes
against the model loaded from the run's checkpoint."""
from __future__ import annotations

import json
import urllib.error
import urllib.request

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from advtopo.activations import images_uint8
from advtopo.datapaths import DatapathExtractor, Datapaths, datapath_report
from advtopo.datapaths.aevis import (channel_means, class_flow, feature_maps, images_to_input, layer_view,
                                     top_examples, typical_path)
from advtopo.errors import AdvtopoError
from conftest import tiny_study_config


def aevis_study_config() -> dict:
    """The tiny study with the datapaths stage on (40 samples, 4 with detail)."""
    cfg = tiny_study_config()
    cfg["datapaths"] = {"enabled": True, "n_samples": 40, "steps": 40, "n_detail": 4}
    return cfg


def resnet_study_config() -> dict:
    """The tiny study on resnet18 (one epoch), gating two consecutive residual blocks."""
    cfg = tiny_study_config()
    cfg["models"][0]["arch"] = "resnet18"
    cfg["models"][0]["train"]["epochs"] = 1
    cfg["layers"] = [{"module": "layer3.1", "summary": "gap"}, {"module": "layer4.0", "summary": "gap"}]
    cfg["datapaths"] = {"enabled": True, "n_samples": 20, "steps": 20, "n_detail": 3}
    return cfg


def lenet_by_hand(model, x):
    """lenet5's relu1 / relu2 / relu3 outputs from its weights, without hooks."""
    r1 = F.relu(F.conv2d(x, model.conv1.weight, model.conv1.bias, padding=1))
    r2 = F.relu(F.conv2d(F.max_pool2d(r1, 2), model.conv2.weight, model.conv2.bias, padding=1))
    r3 = F.relu(F.linear(F.max_pool2d(r2, 2).flatten(1), model.fc1.weight, model.fc1.bias))
    return {"relu1": r1, "relu2": r2, "relu3": r3}


# ---- pure functions ----------------------------------------------------------------------------

def test_feature_maps_equal_the_layers_applied_by_hand(lenet):
    model, test = lenet
    x = test.x[:7]
    with torch.no_grad():
        ref = lenet_by_hand(model, x)
    for name in ("relu1", "relu2"):
        got = feature_maps(model, name, x, batch_size=3)  # batches joined in order
        assert got.shape == tuple(ref[name].shape)
        np.testing.assert_allclose(got, ref[name].numpy(), rtol=1e-5, atol=1e-6)
    units = feature_maps(model, "relu3", x)
    assert units.shape == (7, 200, 1, 1)
    np.testing.assert_allclose(units[:, :, 0, 0], ref["relu3"].numpy(), rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(channel_means(model, "relu2", x), ref["relu2"].numpy().mean(axis=(2, 3)),
                               rtol=1e-5, atol=1e-6)
    with pytest.raises(AdvtopoError, match="nope"):
        feature_maps(model, "nope", x)


def test_images_to_input_inverts_the_stored_images(lenet):
    _, test = lenet
    x = test.x[:5]
    back = images_to_input(images_uint8(x))
    assert back.shape == x.shape
    assert float((back - x).abs().max()) <= 0.5 / 255 + 1e-7
    with pytest.raises(AdvtopoError, match="uint8"):
        images_to_input(np.zeros((2, 8, 8, 1), np.float32))


def test_layer_view_sorts_marks_and_differences():
    rng = np.random.default_rng(0)
    clean = rng.random((5, 3, 2)).astype(np.float32)
    adv = rng.random((5, 3, 2)).astype(np.float32)
    gc = np.array([0.9, 0.1, 0.5, 0.2, 0.7], np.float32)
    ga = np.array([0.2, 0.95, 0.3, 0.49, 0.1], np.float32)
    by_act = layer_view(clean, adv, gc, ga, 0.5, "activation")
    want = np.argsort(-np.maximum(clean.mean((1, 2)), adv.mean((1, 2))), kind="stable")
    assert [c["channel"] for c in by_act["channels"]] == want.tolist()
    assert [c["channel"] for c in layer_view(clean, adv, gc, ga, 0.5, "gate")["channels"]] == [1, 0, 4, 2, 3]
    assert [c["channel"] for c in layer_view(clean, adv, gc, ga, 0.5, "channel")["channels"]] == [0, 1, 2, 3, 4]
    diff_order = [c["channel"] for c in layer_view(clean, adv, gc, ga, 0.5, "difference")["channels"]]
    assert diff_order == np.argsort(-np.abs(adv - clean).mean((1, 2)), kind="stable").tolist()
    rows = {c["channel"]: c for c in by_act["channels"]}
    assert [rows[i]["critical_clean"] for i in range(5)] == [True, False, True, False, True]  # gate >= 0.5
    assert [rows[i]["critical_adversarial"] for i in range(5)] == [False, True, False, False, False]
    np.testing.assert_allclose(np.array(rows[3]["difference"]), np.round(adv[3] - clean[3], 4), atol=1e-4)
    assert by_act["range"]["activation"] == pytest.approx(max(clean.max(), adv.max()), abs=1e-6)
    # stored critical sets win over the gates (rounded gates can sit on the threshold)
    forced = layer_view(clean, adv, gc, ga, 0.5, "channel", clean_critical=np.array([0, 0, 0, 0, 1], bool))
    assert [c["critical_clean"] for c in forced["channels"]] == [False, False, False, False, True]
    assert [c["critical_adversarial"] for c in forced["channels"]] == [False, True, False, False, False]
    none = layer_view(clean, adv, None, None)
    assert none["channels"][0]["gate_clean"] is None and none["channels"][0]["critical_adversarial"] is None
    with pytest.raises(AdvtopoError, match="sort"):
        layer_view(clean, adv, gc, ga, sort="size")
    with pytest.raises(AdvtopoError, match="one value per channel"):
        layer_view(clean, adv, gc[:3], ga)


def test_top_examples_are_the_highest_means():
    m = np.array([[0.1, 3.0], [0.5, 1.0], [0.3, 2.0], [0.5, 0.0]])
    assert top_examples(m, 0, 3) == [{"sample_id": 1, "activation": 0.5}, {"sample_id": 3, "activation": 0.5},
                                     {"sample_id": 2, "activation": 0.3}]
    assert [t["sample_id"] for t in top_examples(m, 1, 2, sample_ids=[10, 11, 12, 13])] == [10, 12]
    with pytest.raises(AdvtopoError, match="channel 2"):
        top_examples(m, 2)


def _paths(critical: dict[str, np.ndarray], prediction) -> Datapaths:
    gates = {k: v.astype(np.float32) for k, v in critical.items()}
    p = np.asarray(prediction)
    return Datapaths(list(critical), gates, p, p, p, p, 0.5)


def test_class_flow_counts_on_hand_built_paths():
    # 6 inputs, one layer of 6 neurons; labels 0 0 1 1 0 0; inputs 4, 5 are fooled 0 -> 1
    y = np.array([0, 0, 1, 1, 0, 0])
    clean = _paths({"l": np.array([[1, 1, 1, 0, 0, 0], [1, 1, 0, 0, 0, 0], [0, 0, 1, 1, 1, 0],
                                   [0, 0, 1, 1, 0, 0], [1, 1, 1, 0, 0, 0], [1, 0, 1, 0, 0, 0]], bool)},
                   [0, 0, 1, 1, 0, 0])
    adv = _paths({"l": np.array([[1, 1, 1, 0, 0, 0], [1, 1, 0, 0, 0, 0], [0, 0, 1, 1, 1, 0],
                                 [0, 0, 1, 1, 0, 0], [0, 1, 1, 1, 0, 1], [0, 0, 1, 1, 0, 1]], bool)},
                 [0, 0, 1, 1, 1, 1])
    (g,) = class_flow(clean, adv, y)
    assert (g["true"], g["adversarial"], g["n"], g["sample_ids"]) == (0, 1, 2, [4, 5])
    lay = g["layers"]["l"]
    # typical class-0 path: neurons critical in >= half of clean inputs 0, 1, 4, 5 -> {0, 1, 2}
    # typical class-1 path: inputs 2, 3 -> {2, 3} (4 is in one of two: 0.5 >= 0.5 -> kept) -> {2, 3, 4}
    # the group's path: neurons critical in >= half of adversarial inputs 4, 5 -> {1, 2, 3, 5}
    assert lay["true"] == [0, 1, 2] and lay["adversarial"] == [2, 3, 4] and lay["fooled"] == [1, 2, 3, 5]
    assert lay["counts"] == {"true_only": 1, "adversarial_only": 1, "both": 1, "neither": 1}
    jt = np.mean([2 / 5, 1 / 5])  # {1,2,3,5} vs {0,1,2}: 2/5; {2,3,5} vs {0,1,2}: 1/5
    ja = np.mean([2 / 5, 2 / 4])  # vs {2,3,4}: 2/5 and 2/4
    assert lay["jaccard_true"] == pytest.approx(jt, abs=1e-4) and lay["jaccard_adversarial"] == pytest.approx(ja, abs=1e-4)
    assert typical_path(np.ones((2, 3), bool), np.array([], int)) is None
    with pytest.raises(AdvtopoError, match="share"):
        class_flow(clean, adv, y, share=0)


def test_report_keeps_gates_and_class_flow(lenet):
    model, test = lenet
    x, y = test.x[:24], test.y[:24].numpy()
    g = torch.Generator().manual_seed(0)
    x_adv = (x + 0.4 * (torch.rand(x.shape, generator=g) - 0.5)).clamp(0, 1)
    ext = DatapathExtractor(["relu1", "relu3"], steps=20)
    rep = datapath_report(model, x, y, {0.3: x_adv}, ext, n_detail=3)
    clean, adv = ext.fit(model, x), ext.fit(model, x_adv)
    for i, d in enumerate(rep["detail"]):
        for k in ("relu1", "relu3"):
            np.testing.assert_allclose(d["clean"]["gates"][k], clean.gates[k][i], atol=6e-4)
            np.testing.assert_allclose(d["adversarial"]["0.3"]["gates"][k], adv.gates[k][i], atol=6e-4)
            assert d["clean"]["critical"][k] == np.flatnonzero(clean.gates[k][i] >= 0.5).tolist()
    fooled = adv.prediction != y
    groups = rep["class_flow"]["0.3"]
    assert 0 < len(groups) < 12  # fewer groups than max_pairs: every fooled input is in one
    assert sum(gr["n"] for gr in groups) == int(fooled.sum())
    for gr in groups:
        assert all(y[s] == gr["true"] and adv.prediction[s] == gr["adversarial"] for s in gr["sample_ids"])
        for k in ("relu1", "relu3"):
            assert sum(gr["layers"][k]["counts"].values()) == len(gr["layers"][k]["fooled"])
    json.dumps(rep, allow_nan=False)


# ---- the app's routes on a real study run ---------------------------------------------------------

@pytest.fixture(scope="module")
def aevis_run(tmp_path_factory):
    from advtopo.study import StudyConfig, run_study

    return run_study(StudyConfig.from_dict(aevis_study_config()), out=tmp_path_factory.mktemp("aevis") / "run",
                     verbose=False)


@pytest.fixture(scope="module")
def server(aevis_run):
    from advtopo.app import serve

    srv = serve(aevis_run, port=0, open_browser=False, block=False)
    yield srv
    srv.shutdown()


def get(server, path, token=True):
    headers = {"X-Advtopo-Token": server.token} if token else {"Sec-Fetch-Site": "cross-site"}
    with urllib.request.urlopen(urllib.request.Request(server.url + path, headers=headers), timeout=120) as r:
        return json.loads(r.read())


def _model_and_images(run):
    from advtopo.models import load_checkpoint
    from advtopo.rundir import open_run

    reader = open_run(run)
    doc = reader.datapaths()
    model, _ = load_checkpoint(reader.checkpoint(doc["model"]))
    return model.eval(), reader, doc


def test_layer_route_maps_equal_a_forward_by_hand(server, aevis_run):
    model, reader, doc = _model_and_images(aevis_run)
    eps = doc["eps"][0]
    for sid, layer in [(1, "relu2"), (2, "relu3")]:
        v = get(server, f"api/aevis/layer?sample={sid}&layer={layer}&eps={eps:g}&sort=channel")
        assert v["available"] and v["gates_from"] == "datapaths.json"  # a detail sample: the stored gates
        x = images_to_input(np.stack([reader.images()[sid], reader.images(doc["model"], doc["attack"], eps)[sid]]))
        with torch.no_grad():
            ref = lenet_by_hand(model, x)[layer].numpy()
        if ref.ndim == 2:
            ref = ref[:, :, None, None]
        assert v["n_channels"] == doc["widths"][layer] and (v["height"], v["width"]) == ref.shape[2:]
        for c in v["channels"]:
            np.testing.assert_allclose(c["clean"], ref[0, c["channel"]], atol=1e-4)
            np.testing.assert_allclose(c["adversarial"], ref[1, c["channel"]], atol=1e-4)
        det = next(d for d in doc["detail"] if d["sample_id"] == sid)
        marked = sorted(c["channel"] for c in v["channels"] if c["critical_clean"])
        assert marked == det["clean"]["critical"][layer]
        marked_adv = sorted(c["channel"] for c in v["channels"] if c["critical_adversarial"])
        assert marked_adv == det["adversarial"][f"{eps:g}"]["critical"][layer]
    # a sample without detail: gates fitted now for it, as the extractor gives them for those two inputs
    v = get(server, f"api/aevis/layer?sample=30&layer=relu3&eps={eps:g}&sort=gate")
    assert v["gates_from"] == "fitted now"
    x = images_to_input(np.stack([reader.images()[30], reader.images(doc["model"], doc["attack"], eps)[30]]))
    params = {k: doc["params"][k] for k in ("lam", "steps", "lr", "threshold", "target", "seed")}
    dp = DatapathExtractor(doc["layers"], **params).fit(model, x)
    got = {c["channel"]: c["gate_clean"] for c in v["channels"]}
    np.testing.assert_allclose([got[i] for i in range(len(got))], dp.gates["relu3"][0], atol=2e-4)
    gates = [max(c["gate_clean"], c["gate_adversarial"]) for c in v["channels"]]
    assert gates == sorted(gates, reverse=True)


def test_neuron_route_top_examples_and_feature(server, aevis_run):
    model, reader, doc = _model_and_images(aevis_run)
    v = get(server, "api/aevis/neuron?layer=relu2&channel=5&k=6")
    x = images_to_input(np.asarray(reader.images()))
    with torch.no_grad():
        means = lenet_by_hand(model, x)["relu2"].numpy().mean(axis=(2, 3))[:, 5]
    want = np.argsort(-means, kind="stable")[:6]
    assert [t["sample_id"] for t in v["top"]] == want.tolist()
    np.testing.assert_allclose([t["activation"] for t in v["top"]], means[want], atol=1e-5)
    assert v["n_images"] == len(x) and v["feature"].startswith("data:image/png;base64,")
    assert -1.0 <= v["feature_cosine"] <= 1.0


@pytest.mark.parametrize("path, code", [
    ("api/aevis/layer?sample=1&layer=fc9&eps=0.2", 400), ("api/aevis/layer?sample=1&layer=relu2&eps=0.7", 400),
    ("api/aevis/layer?sample=x&layer=relu2&eps=0.2", 400), ("api/aevis/layer?sample=999&layer=relu2&eps=0.2", 404),
    ("api/aevis/layer?sample=1&layer=relu2&eps=0.2&sort=size", 400),
    ("api/aevis/neuron?layer=relu2&channel=64", 400), ("api/aevis/neuron?layer=relu2&channel=1&k=0", 400),
    ("api/aevis/other", 404)])
def test_routes_refuse_bad_requests(server, path, code):
    with pytest.raises(urllib.error.HTTPError) as exc:
        get(server, path)
    assert exc.value.code == code
    assert json.loads(exc.value.read())["error"]


def test_routes_need_the_token(server):
    for path in ("api/aevis/layer?sample=1&layer=relu2&eps=0.2", "api/aevis/neuron?layer=relu2&channel=1"):
        with pytest.raises(urllib.error.HTTPError) as exc:
            get(server, path, token=False)
        assert exc.value.code == 403


def test_cache_is_bounded(aevis_run, monkeypatch):
    import advtopo.app.aevis as aevis_mod
    from advtopo.app.data import RunData

    monkeypatch.setattr(aevis_mod, "MAX_CACHED", 3)
    svc = aevis_mod.AevisService(RunData(aevis_run))
    for sid in range(4):
        svc.layer(str(sid), "relu2", "0.2")
    assert len(svc._cache) == 3 and ("layer", 0, "relu2", "0.2") not in svc._cache
    again = svc.layer("3", "relu2", "0.2")  # from the cache: the same answer
    assert again == svc.layer("3", "relu2", "0.2")


def test_unavailable_without_a_model(tmp_path):
    from advtopo.app import serve
    from app_fixture import make_fixture_run

    run = make_fixture_run(tmp_path / "run")  # datapaths.json, but no checkpoint
    srv = serve(run, port=0, open_browser=False, block=False)
    try:
        doc = json.loads((run / "datapaths.json").read_text())
        v = get(srv, f"api/aevis/layer?sample={doc['samples'][0]['sample_id']}&layer={doc['layers'][0]}"
                     f"&eps={doc['eps'][0]:g}")
        assert v["available"] is False and "model" in v["reason"]
        n = get(srv, f"api/aevis/neuron?layer={doc['layers'][0]}&channel=0")
        assert n["available"] is False and "model" in n["reason"]
    finally:
        srv.shutdown()


def test_unavailable_without_datapaths(tmp_path):
    from advtopo.app import serve
    from app_fixture import make_fixture_run

    run = make_fixture_run(tmp_path / "run", with_datapaths=False)
    srv = serve(run, port=0, open_browser=False, block=False)
    try:
        v = get(srv, "api/aevis/layer?sample=1&layer=relu2&eps=0.1")
        assert v["available"] is False and "datapaths" in v["reason"]
    finally:
        srv.shutdown()


def test_layer_route_on_residual_blocks_shows_the_skip_share(tmp_path_factory):
    from advtopo.app import serve
    from advtopo.datapaths.residual import skip_share
    from advtopo.study import StudyConfig, run_study

    run = run_study(StudyConfig.from_dict(resnet_study_config()), out=tmp_path_factory.mktemp("aevis-res") / "run",
                    verbose=False)
    model, reader, doc = _model_and_images(run)
    assert doc["residual"]["blocks"] == ["layer3.1", "layer4.0"]
    assert doc["connections"][0]["supported"] and doc["connections"][0]["skip"] == "conv"
    srv = serve(run, port=0, open_browser=False, block=False)
    try:
        v = get(srv, "api/aevis/layer?sample=1&layer=layer4.0&eps=0.2&sort=channel")
    finally:
        srv.shutdown()
    assert v["residual_block"] is True
    x = images_to_input(np.stack([reader.images()[1], reader.images(doc["model"], doc["attack"], 0.2)[1]]))
    want = skip_share(model, ["layer4.0"], x)["layer4.0"]
    np.testing.assert_allclose([c["skip_share_clean"] for c in v["channels"]], want[0], atol=1e-4)
    np.testing.assert_allclose([c["skip_share_adversarial"] for c in v["channels"]], want[1], atol=1e-4)
