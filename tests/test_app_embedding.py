"""The linked 2-D embedding (``GET /api/embedding/<graph>?method=pca|tsne``) on a real tiny
study run: API, cache, determinism, errors, and the browser's linked scatter."""
from __future__ import annotations

import json
import os
import urllib.error
import urllib.request
from pathlib import Path

import numpy as np
import pytest

from advtopo.app import serve
from app_fixture import make_fixture_run

CHROMIUM = os.environ.get("ADVTOPO_CHROMIUM", "/usr/bin/chromium")
ARTIFACTS = Path(__file__).resolve().parent.parent / "test-artifacts"


def tiny_config() -> dict:
    return {"name": "emb", "seed": 1, "device": "cpu",
            "dataset": {"name": "digits", "split": "test", "subset": 60, "train_subset": 200},
            "models": [{"name": "std", "arch": "lenet5",
                        "train": {"method": "standard", "eps": 0.0, "epochs": 1, "batch_size": 64,
                                  "eval_subset": 20, "eval_steps": 1}}],
            "attacks": [{"name": "pgd", "eps": [0.0, 0.2], "steps": 2}],
            "layers": [{"module": "relu3"}],
            "capture": {"batch_size": 60},
            "mapper": [{"n_intervals": 4, "overlap": 0.3, "min_samples": 2}],
            "persistence": {"enabled": False}, "vulnerability": {"enabled": False}}


@pytest.fixture(scope="module")
def run_root(tmp_path_factory):
    from advtopo.study import StudyConfig, run_study

    return run_study(StudyConfig.from_dict(tiny_config()), out=tmp_path_factory.mktemp("emb") / "run", verbose=False)


@pytest.fixture(scope="module")
def server(run_root):
    srv = serve(run_root, port=0, open_browser=False, block=False)
    yield srv
    srv.shutdown()


def get(server, path):
    with urllib.request.urlopen(server.url + path, timeout=120) as r:
        return r.status, r.read()


def attacked_graph(server):
    idx = json.loads(get(server, "api/index")[1])
    e = next(g for g in idx["graphs"] if g["eps"] > 0 and not g.get("recomputed"))
    return e, json.loads(get(server, f"api/graph/{e['id']}")[1])


def test_embedding_pca_matches_sklearn_and_is_cached(server, run_root):
    from sklearn.decomposition import PCA

    from advtopo.app.recompute import point_cloud
    from advtopo.study import open_run

    e, g = attacked_graph(server)
    n = len(g["points"]["sample_id"])
    status, body = get(server, f"api/embedding/{e['id']}")
    emb = json.loads(body)
    assert status == 200 and emb["available"] is True and emb["method"] == "pca"
    assert len(emb["x"]) == len(emb["y"]) == n
    # equal to sklearn's PCA of the loaded cloud, up to the sign of each component
    X = point_cloud(open_run(run_root), e)
    ref = PCA(n_components=2, random_state=0).fit_transform(X)
    for k, c in enumerate(("x", "y")):
        got = np.asarray(emb[c])
        s = 1.0 if np.dot(got, ref[:, k]) >= 0 else -1.0
        np.testing.assert_allclose(got, s * ref[:, k], atol=2e-3 * (1 + np.abs(ref[:, k]).max()))
    cache = Path(run_root) / "app-cache" / "embedding" / f"{emb['key']}.json"
    assert cache.is_file()
    mtime = cache.stat().st_mtime_ns
    again = json.loads(get(server, f"api/embedding/{e['id']}?method=pca")[1])
    assert again["x"] == emb["x"] and again["y"] == emb["y"]
    assert cache.stat().st_mtime_ns == mtime  # read from the cache, not recomputed


def test_embedding_tsne_and_errors(server, run_root):
    e, g = attacked_graph(server)
    emb = json.loads(get(server, f"api/embedding/{e['id']}?method=tsne")[1])
    assert emb["available"] is True and emb["method"] == "tsne"
    assert len(emb["x"]) == len(g["points"]["sample_id"])
    assert np.isfinite(emb["x"]).all() and np.std(emb["x"]) > 0
    # deterministic: the same coordinates computed from scratch
    from advtopo.app.embedding import embed
    from advtopo.app.recompute import point_cloud
    from advtopo.study import open_run

    Y = embed(point_cloud(open_run(run_root), e), "tsne")
    np.testing.assert_allclose(np.asarray(emb["x"]), Y[:, 0], atol=1e-3)
    for bad, code in [(f"api/embedding/{e['id']}?method=umap", 400), ("api/embedding/nope", 404),
                      ("api/embedding/..%2F..%2Fetc", 404)]:
        with pytest.raises(urllib.error.HTTPError) as exc:
            get(server, bad)
        assert exc.value.code == code, bad


def test_embedding_unavailable_without_activations(tmp_path):
    run = make_fixture_run(tmp_path / "run")
    srv = serve(run, port=0, open_browser=False, block=False)
    try:
        idx = json.loads(get(srv, "api/index")[1])
        status, body = get(srv, f"api/embedding/{idx['graphs'][0]['id']}")
        info = json.loads(body)
        assert status == 200 and info["available"] is False and info["reason"]
    finally:
        srv.shutdown()
