"""advtopo.rundir: the run directory's keys, index records, path confinement, format versions,
the reader's point clouds and the app-cache graphs it keeps."""
from __future__ import annotations

import json
import os
import shutil
from pathlib import Path

import numpy as np
import pytest

from advtopo.errors import AdvtopoError
from advtopo.rundir import (FORMAT_VERSION, ArtefactInvalid, ArtefactMissing, GraphEntry, RunIndex, RunNotFound,
                            UnsupportedFormat, layout, open_run, writer)
from app_fixture import make_fixture_run


# ------------------------------------------------------------------------------ layout
@pytest.mark.parametrize("eps, key", [(0, "0"), (0.0, "0"), (0.1, "0.1"), (8 / 255, "0.0313725"), ("0.30", "0.3")])
def test_eps_key(eps, key):
    assert layout.eps_key(eps) == key
    assert layout.eps_equal(layout.eps_key(eps), eps)


def test_eps_equal_reads_every_spelling():
    assert layout.eps_equal("0.10", 0.1) and layout.eps_equal("1e-1", "0.1") and layout.eps_equal(0, "0.0")
    assert not layout.eps_equal(0.1, 0.2) and not layout.eps_equal("x", 0.1) and not layout.eps_equal(None, 0)


def test_ids_and_paths_round_trip():
    assert layout.graph_id("std", "fc1", "pgd", 0.1) == "std__fc1__pgd__0.1"
    assert layout.graph_id("std", "fc1", "pgd", 0.0, "fine") == "std__fc1__pgd__0__fine"
    key = layout.adversarial_images_key("std", "pgd", 8 / 255)
    assert key == "std/pgd/0.0313725"
    assert layout.split_adversarial_images_key(key) == ("std", "pgd", "0.0313725")
    assert layout.split_adversarial_images_key("no-slashes") is None
    assert layout.adversarial_images_path("std", "pgd", 0.1) == "images/std/pgd_0.1.npy"
    assert layout.clean_images_path() == "images/clean.npy"
    assert layout.mapper_graph_path("std__fc1__pgd__0.1") == "mapper/std__fc1__pgd__0.1.json"
    assert layout.task_file("capture", "ab12", "activations.zarr") == "tasks/capture/ab12/activations.zarr"
    assert layout.recompute_graph_path("g__r1") == "app-cache/recompute/g__r1.json"
    assert layout.app_cache_path("embedding", "k.json") == "app-cache/embedding/k.json"


@pytest.mark.parametrize("name", ["../x.json", "a/b.json", ".hidden", "", "a\\b", "a\x00b"])
def test_paths_refuse_names_that_are_not_one_file_name(name):
    with pytest.raises(AdvtopoError, match="cannot name a file"):
        layout.app_cache_path("featurevis", name)
    with pytest.raises(AdvtopoError, match="cannot name a file"):
        layout.mapper_graph_path(name)


def test_unknown_app_cache_is_refused():
    with pytest.raises(AdvtopoError, match="allowed: recompute, featurevis, embedding"):
        layout.app_cache_path("thumbnails", "x.png")


# ------------------------------------------------------------------------------ records
GRAPH = {"id": "std__fc1__pgd__0.1", "model": "std", "layer": "fc1", "attack": "pgd", "eps": 0.1,
         "path": "mapper/std__fc1__pgd__0.1.json", "mapper_set": "default", "rows": "both",
         "params": {"lens": "l2norm"}, "stats": {"n_nodes": 3}}


def test_graph_entry_round_trip_keeps_unknown_keys():
    d = {**GRAPH, "added_by_a_newer_writer": [1, 2]}
    e = GraphEntry.from_dict(d)
    assert e.eps == 0.1 and e.rows == "both" and not e.recomputed
    assert e.to_dict() == d and list(e.to_dict()) == list(d)


def test_recomputed_entry_leaves_out_what_is_unset():
    e = GraphEntry(id="g", model="m", layer="l", attack="a", eps=0.0, path="p")
    assert e.to_dict() == {"id": "g", "model": "m", "layer": "l", "attack": "a", "eps": 0.0, "path": "p",
                           "params": None, "stats": None}


@pytest.mark.parametrize("bad, message", [
    ({"eps": "x"}, "graphs[1].eps must be a number, got 'x'"),
    ({"layer": 3}, "graphs[1].layer must be a string, got 3"),
    ({"eps": True}, "graphs[1].eps must be a number"),
    ({"params": [1]}, "graphs[1].params must be an object"),
    ({"id": None}, "graphs[1].id must be a string, got None"),
])
def test_index_records_name_the_bad_key(bad, message):
    with pytest.raises(ArtefactInvalid) as exc:
        RunIndex.from_dict({"graphs": [GRAPH, {**GRAPH, **bad}]})
    assert message in str(exc.value)


def test_index_records_name_a_missing_key_and_a_bad_section():
    d = dict(GRAPH)
    del d["path"]
    with pytest.raises(ArtefactInvalid, match=r"graphs\[0\] lacks the key 'path'"):
        RunIndex.from_dict({"graphs": [d]})
    with pytest.raises(ArtefactInvalid, match="models must be a list"):
        RunIndex.from_dict({"models": {"name": "std"}})
    with pytest.raises(ArtefactInvalid, match=r"attacks\[0\].eps\[1\] must be a number"):
        RunIndex.from_dict({"attacks": [{"name": "pgd", "eps": [0.0, "big"]}]})


def test_empty_index_is_a_valid_partial_run():
    idx = RunIndex.from_dict({})
    assert idx.format_version == 1 and idx.graphs == [] and idx.dataset is None


# ------------------------------------------------------------------------------ reader: a hand-made run
@pytest.fixture(scope="module")
def fixture_run(tmp_path_factory) -> Path:
    return make_fixture_run(tmp_path_factory.mktemp("rundir") / "run", n_per_class=4)


def test_old_run_without_format_version_opens_as_version_1(fixture_run):
    assert "format_version" not in json.loads((fixture_run / "index.json").read_text())
    run = open_run(fixture_run)
    assert run.index_record.format_version == 1
    assert run.models == ["cnn_std", "cnn_adv0.1", "cnn_adv0.3"] and len(run.graph_entries()) == 18
    gid = run.graph_entries()[0].id
    assert run.graph(gid)["nodes"] and run.graph(gid) is run.graph(gid)  # cached
    # the fixture spells eps "0.1"; any spelling finds the images
    assert run.images("cnn_std", "pgd", "1e-1").shape[0] == 40
    assert run.images().shape == run.images("cnn_std", "pgd", 0).shape  # eps 0: the clean images


def test_reader_errors_say_what_exists(fixture_run):
    run = open_run(fixture_run)
    with pytest.raises(ArtefactMissing, match="did you mean 'cnn_std__fc1__pgd__0.1'"):
        run.graph_entry("cnn_std__fc1__pgd__0.11")
    with pytest.raises(ArtefactMissing, match="did you mean 'cnn_std'"):
        run.activations("cnn_sdt", "fc1")
    with pytest.raises(ArtefactMissing, match="this run stores none"):
        run.activations("cnn_std", "fc1")
    with pytest.raises(ArtefactMissing, match="no adversarial images 'cnn_std/pgd/0.2'"):
        run.images("cnn_std", "pgd", 0.2)
    with pytest.raises(ArtefactMissing, match="no checkpoint"):
        run.checkpoint("cnn_std")
    assert run.separability() is None and run.document("recovery") is None


def test_not_a_run(tmp_path):
    with pytest.raises(RunNotFound, match="run directory not found"):
        open_run(tmp_path / "missing")
    (tmp_path / "manifest.json").write_text(json.dumps({"status": "running"}))
    with pytest.raises(RunNotFound, match="not a finished run directory .*manifest status: running"):
        open_run(tmp_path)


def _one_graph_run(root: Path, index_extra: dict | None = None) -> Path:
    root.mkdir(parents=True)
    (root / "index.json").write_text(json.dumps({"name": "x", "graphs": [], **(index_extra or {})}))
    return root


def test_a_newer_format_version_is_refused_with_the_upgrade(tmp_path):
    run = _one_graph_run(tmp_path / "run", {"format_version": FORMAT_VERSION + 1})
    with pytest.raises(UnsupportedFormat) as exc:
        open_run(run)
    msg = str(exc.value)
    assert f"format {FORMAT_VERSION + 1}" in msg and "pip install -U advtopo" in msg and "advtopo run CONFIG" in msg
    (run / "index.json").write_text(json.dumps({"format_version": "1", "graphs": []}))
    with pytest.raises(ArtefactInvalid, match="format_version must be a positive integer"):
        open_run(run)


def test_broken_index_is_an_error_naming_the_file_and_key(tmp_path):
    run = _one_graph_run(tmp_path / "run", {"graphs": [{**GRAPH, "eps": "x"}]})
    with pytest.raises(ArtefactInvalid, match=r"index.json is not a valid run index: graphs\[0\].eps must be a number"):
        open_run(run)


@pytest.mark.parametrize("rel", ["../secret.json", "/etc/passwd", "~/secret.json", "a\\..\\..\\secret.json",
                                 "a\x00.json", "", "sub/../../secret.json", None, {"path": "x"}, "link.json",
                                 "linkdir/secret.json", "missing.json"])
def test_safe_path_refuses_everything_outside_the_run(tmp_path, rel):
    secret = tmp_path / "secret.json"
    secret.write_text("{}")
    run = _one_graph_run(tmp_path / "run")
    (run / "link.json").symlink_to(secret)
    (run / "linkdir").symlink_to(tmp_path, target_is_directory=True)
    (run / "sub").mkdir()
    (run / "sub" / "x.json").write_text("{}")
    reader = open_run(run)
    with pytest.raises(ArtefactMissing):
        reader.safe_path(rel)
    assert reader.safe_path("sub/x.json") == (run / "sub" / "x.json").resolve()
    assert reader.safe_path("sub", directory=True) == (run / "sub").resolve()
    with pytest.raises(ArtefactMissing):
        reader.safe_path("sub")  # a folder where a file is wanted


def test_documents_named_outside_the_run_read_as_absent(tmp_path):
    (tmp_path / "secret.json").write_text(json.dumps({"samples": ["stolen"]}))
    run = _one_graph_run(tmp_path / "run", {"vulnerability": "../secret.json", "datapaths": {"path": "x"},
                                            "stability": "stability.json"})
    (run / "stability.json").write_text("{not json")
    reader = open_run(run)
    assert reader.vulnerability() is None and reader.datapaths() is None
    with pytest.raises(ArtefactInvalid, match="stability.json is not valid JSON"):
        reader.stability()


def _store(path: Path, layer: str, arr: np.ndarray) -> None:
    from advtopo.activations import ActivationWriter

    w = ActivationWriter(path, len(arr), {layer: arr.shape[1]})
    w.write(0, {layer: arr})
    w.close()


@pytest.fixture()
def run_with_activations(tmp_path) -> tuple[Path, dict]:
    """The fixture run with stored activations for cnn_std / fc1: clean and pgd at eps 0.1 and 0.3."""
    run = make_fixture_run(tmp_path / "run", n_per_class=2, with_extras=False)
    idx = json.loads((run / "index.json").read_text())
    n = idx["dataset"]["n_samples"]
    rng = np.random.default_rng(0)
    arrays = {}
    idx["activations"] = []
    for attack, eps in (("clean", 0.0), ("pgd", 0.1), ("pgd", 0.3)):
        arrays[(attack, eps)] = rng.normal(size=(n, 5)).astype(np.float32)
        rel = f"acts/{attack}_{eps}.zarr"
        _store(run / rel, "fc1", arrays[(attack, eps)])
        idx["activations"].append({"model": "cnn_std", "layer": "fc1", "attack": attack, "eps": eps,
                                   "is_adversarial": attack != "clean", "path": rel, "array": "fc1"})
    (run / "index.json").write_text(json.dumps(idx))
    return run, arrays


def test_point_cloud_is_the_clean_then_the_adversarial_activations(run_with_activations):
    run_dir, arrays = run_with_activations
    run = open_run(run_dir)
    clean, adv = arrays[("clean", 0.0)], arrays[("pgd", 0.3)]
    e = run.graph_entry("cnn_std__fc1__pgd__0.3")
    X = run.point_cloud(e)
    assert X.dtype == np.float32 and np.array_equal(X, np.concatenate([clean, adv]))
    assert len(X) == len(run.graph(e.id)["points"]["sample_id"])
    assert np.array_equal(run.point_cloud(run.graph_entry("cnn_std__fc1__pgd__0.0")), clean)
    from dataclasses import replace

    assert np.array_equal(run.point_cloud(replace(e, rows="adversarial")), adv)
    assert np.array_equal(run.point_cloud(replace(e, rows="clean")), clean)
    assert run.cached_point_cloud(e) is run.cached_point_cloud(e)
    with pytest.raises(ArtefactMissing, match="no stored activations .*conv2"):
        run.point_cloud(run.graph_entry("cnn_std__conv2__pgd__0.3"))


def test_point_metadata_matches_the_graph_points(run_with_activations):
    run = open_run(run_with_activations[0])
    for gid in ("cnn_std__fc1__pgd__0.3", "cnn_std__fc1__pgd__0.0"):
        e = run.graph_entry(gid)
        md, pts = run.point_metadata(e), run.graph(gid)["points"]
        for k in ("sample_id", "label", "prediction", "is_adversarial"):
            assert md[k].tolist() == pts[k], (gid, k)


def test_added_graph_is_kept_in_the_run_and_listed_after_a_restart(run_with_activations):
    run_dir, _ = run_with_activations
    run = open_run(run_dir)
    base = run.graph_entry("cnn_std__fc1__pgd__0.1")
    doc = dict(run.graph(base.id))
    from dataclasses import replace

    kept = run.add_graph(replace(base, id=base.id + "__r1", source=base.id), doc)
    assert kept.recomputed and kept.path == "app-cache/recompute/cnn_std__fc1__pgd__0.1__r1.json"
    assert json.loads((run_dir / kept.path).read_text())["nodes"] == doc["nodes"]
    again = open_run(run_dir)
    assert again.graph_entry(kept.id).recomputed and again.graph(kept.id)["nodes"] == doc["nodes"]
    assert kept.id not in {g["id"] for g in again.index["graphs"]}  # index.json itself is the study's
    with pytest.raises(ArtefactInvalid, match="belongs to the study"):
        run.add_graph(base, doc)


def test_a_republished_index_is_read_again(tmp_path):
    run_dir = make_fixture_run(tmp_path / "run", n_per_class=2, with_extras=False)
    run = open_run(run_dir)
    gid = run.graph_entries()[0].id
    run.graph(gid)
    idx = json.loads((run_dir / "index.json").read_text())
    idx["graphs"] = idx["graphs"][:1]
    (run_dir / "index.json").write_text(json.dumps(idx))
    os.utime(run_dir / "index.json", ns=(1, 1))  # a new mtime whatever the clock's resolution
    assert [g.id for g in run.graph_entries()] == [gid]


# ------------------------------------------------------------------------------ writer
def test_writer_places_files_and_stamps_the_format_version(tmp_path):
    src = tmp_path / "task"
    src.mkdir()
    np.save(src / "clean.npy", np.zeros((3, 2, 2, 1), np.uint8))
    np.save(src / "adv.npy", np.ones((3, 2, 2, 1), np.uint8))
    (src / "graph.json").write_text(json.dumps({"nodes": [], "edges": [], "points": {}}))
    root = tmp_path / "run"
    (root / "mapper").mkdir(parents=True)
    (root / "mapper" / "stale.json").write_text("{}")
    images = writer.place_images(root, src / "clean.npy", {("m", "pgd", 0.1): src / "adv.npy"})
    assert images == {"clean": "images/clean.npy", "adversarial": {"m/pgd/0.1": "images/m/pgd_0.1.npy"}}
    entry = GraphEntry(id="m__l__pgd__0.1", model="m", layer="l", attack="pgd", eps=0.1,
                       path=layout.mapper_graph_path("m__l__pgd__0.1"))
    writer.place_graphs(root, [(entry, src / "graph.json")])
    assert sorted(p.name for p in (root / "mapper").iterdir()) == ["m__l__pgd__0.1.json"]  # the stale one is gone
    assert writer.write_document(root, layout.STABILITY, {"rows": []}) == "stability.json"
    assert writer.write_document(root, layout.STABILITY, None) is None and not (root / "stability.json").exists()
    doc = writer.write_index(root, RunIndex(name="w", images=images, graphs=[entry]))
    assert list(doc)[0] == "format_version" and doc["format_version"] == FORMAT_VERSION
    run = open_run(root)
    assert run.images("m", "pgd", 0.1).sum() == 12 and run.graph(entry.id)["nodes"] == []


# ------------------------------------------------------------------------------ a real study run
def test_study_run_carries_the_format_version_and_opens_without_it(study_run, tmp_path):
    """conftest's tiny study: index.json has format_version; the same run without it (as written
    before the key existed) opens with the same content; point clouds match the graphs."""
    idx = json.loads((study_run / "index.json").read_text())
    assert idx["format_version"] == FORMAT_VERSION
    old = tmp_path / "old"
    shutil.copytree(study_run, old, symlinks=True)
    del idx["format_version"]
    (old / "index.json").write_text(json.dumps(idx))
    a, b = open_run(study_run), open_run(old)
    assert b.index_record.format_version == 1
    assert [g.to_dict() for g in a.graph_entries()] == [g.to_dict() for g in b.graph_entries()]
    for e in b.graph_entries():
        pts = b.graph(e.id)["points"]
        X = b.point_cloud(e)
        parts = [b.activations(e.model, e.layer, att, eps) for att, eps in b.row_blocks(e)]
        assert np.array_equal(X, np.concatenate(parts)) and len(X) == len(pts["sample_id"])
        md = b.point_metadata(e)
        assert all(md[k].tolist() == pts[k] for k in ("sample_id", "label", "prediction", "is_adversarial"))
