"""What is read is what was written: a damaged run directory is reported, never a crash.

Mapper graph JSON is checked before anything indexes with it (an out-of-range member used to
segfault scipy's sparse products); JSON documents never hold NaN; ``advtopo verify`` names each
damaged artefact of a real tiny run; ``advtopo show`` and the web app answer one line naming the
file and what to run."""
from __future__ import annotations

import copy
import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from advtopo.errors import AdvtopoError
from advtopo.mapper import Mapper, MapperGraph, check_graph_dict
from advtopo.mapper.stats import vulnerability_scores

pytestmark = pytest.mark.timeout(600)


# --- mapper graph JSON -------------------------------------------------------------------------

@pytest.fixture(scope="module")
def graph_doc() -> dict:
    X = np.random.default_rng(0).normal(size=(80, 3))
    return Mapper(n_intervals=4, overlap=0.3, min_samples=2).fit(X, {"label": np.arange(80) % 3}).to_dict()


def _damaged(doc: dict, change) -> dict:
    d = copy.deepcopy(doc)
    change(d)
    return d


def _first_node_with_members(d: dict) -> dict:
    return next(n for n in d["nodes"] if n["members"])


GRAPH_DAMAGE = {
    "member beyond the last row": (
        lambda d: _first_node_with_members(d)["members"].append(10**6),
        r"node 'n\d+' \(nodes\[\d+\]\): member 1000000 is not a row of the graph's 80 points"),
    "member equal to the row count": (lambda d: _first_node_with_members(d)["members"].append(80),
                                      r"member 80 is not a row of the graph's 80 points \(allowed: 0 to 79\)"),
    "negative member": (lambda d: _first_node_with_members(d)["members"].insert(0, -5), r"member -5 is not a row"),
    "huge member": (lambda d: _first_node_with_members(d)["members"].append(10**20), r"member 10+ is not a row"),
    "float member": (lambda d: _first_node_with_members(d)["members"].append(1.5), "integer row indices"),
    "bool member": (lambda d: _first_node_with_members(d)["members"].append(True), "integer row indices"),
    "text member": (lambda d: _first_node_with_members(d)["members"].append("3"), "integer row indices"),
    "members not a list": (lambda d: d["nodes"][0].__setitem__("members", 3), "integer row indices"),
    "repeated member": (
        lambda d: _first_node_with_members(d)["members"].append(_first_node_with_members(d)["members"][0]),
        "lists a row twice"),
    "duplicate node id": (lambda d: d["nodes"][1].__setitem__("id", d["nodes"][0]["id"]), "no other node has"),
    "edge to an unknown node": (lambda d: d["edges"].append({"source": "n0", "target": "n999"}),
                                r"edges\[\d+\]\.target 'n999' names no node"),
    "text cover element": (lambda d: d["nodes"][0].__setitem__("cover_element", ["a"]), "'cover_element' must be"),
    "points column too short": (lambda d: d["points"]["label"].pop(), "points.label must be a list of 80 values"),
    "no points": (lambda d: d.pop("points"), "needs points"),
    "no sample ids": (lambda d: d["points"].pop("sample_id"), "needs points.sample_id"),
    "nodes not a list": (lambda d: d.__setitem__("nodes", {}), "needs nodes"),
}


@pytest.mark.parametrize("case", list(GRAPH_DAMAGE))
def test_a_damaged_graph_dict_is_refused_naming_what_is_wrong(graph_doc, case):
    change, message = GRAPH_DAMAGE[case]
    d = _damaged(graph_doc, change)
    with pytest.raises(AdvtopoError, match=message):
        check_graph_dict(d)
    with pytest.raises(AdvtopoError, match=message):
        MapperGraph.from_dict(d)


def test_an_intact_graph_dict_reloads_to_the_same_graph(graph_doc):
    check_graph_dict(graph_doc)
    assert MapperGraph.from_dict(graph_doc).to_dict() == graph_doc


def test_a_graph_built_with_an_out_of_range_member_is_refused():
    with pytest.raises(AdvtopoError, match=r"node n1: member 12 is not a row of the graph's 10 points"):
        MapperGraph([[0, 1], [2, 12]], [(0,), (1,)], 10)
    with pytest.raises(AdvtopoError, match=r"node n0: member -1 is not a row"):
        MapperGraph([[-1, 3]], [(0,)], 10)


CRASH_SCRIPT = """
import json, sys
from advtopo.errors import AdvtopoError
from advtopo.mapper import MapperGraph
from advtopo.mapper.stats import vulnerability_scores
d = json.loads(sys.stdin.read())
try:
    vulnerability_scores(MapperGraph.from_dict(d))
except AdvtopoError as exc:
    print("refused:", exc)
"""


@pytest.mark.parametrize("member", [-5, 60, 61, 10**10])
def test_an_out_of_range_member_no_longer_crashes_the_process(graph_doc, member):
    """Before the check these values segfaulted or aborted (heap corruption) the interpreter."""
    d = _damaged(graph_doc, lambda d: _first_node_with_members(d)["members"].append(member))
    d["points"] = {k: v[:60] for k, v in d["points"].items()}
    for n in d["nodes"]:
        n["members"] = [m for m in n["members"] if m < 60 or m == member]
    d["edges"] = []
    proc = subprocess.run([sys.executable, "-c", CRASH_SCRIPT], input=json.dumps(d), capture_output=True,
                          text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr[-2000:]
    assert f"member {member} is not a row of the graph's 60 points" in proc.stdout


def test_vulnerability_scores_of_a_reloaded_graph_match_the_fitted_one(graph_doc):
    scores = vulnerability_scores(MapperGraph.from_dict(graph_doc))
    assert scores.shape == (80,) and np.all((scores >= 0) & (scores <= 1))


# --- a real tiny run: one model, one layer, persistence and datapaths on ---------------------------

def _config() -> dict:
    from test_study_concurrency import small

    return {**small(), "persistence": {"enabled": True},
            "datapaths": {"enabled": True, "n_samples": 20, "steps": 5}}


@pytest.fixture(scope="module")
def reference(tmp_path_factory, one_torch_thread) -> Path:
    from advtopo.study import StudyConfig, run_study

    root = tmp_path_factory.mktemp("verify") / "run"
    run_study(StudyConfig.from_dict(_config()), out=root, verbose=False)
    return root


@pytest.fixture
def run(reference, tmp_path) -> Path:
    """A copy of the reference run to damage."""
    root = tmp_path / "run"
    shutil.copytree(reference, root)
    return root


def _strict_json(text: str):
    def refuse(token):
        raise ValueError(f"non-standard JSON token {token}")
    return json.loads(text, parse_constant=refuse)


def test_a_one_layer_run_with_persistence_writes_standard_json_and_opens(reference, tmp_path):
    """A rank correlation over < 2 layer pairs is undefined: null in every document (it was NaN,
    which browsers refuse), and the app, the export and `advtopo show` open the run."""
    from advtopo.app import serve
    from advtopo.app.export import export_html
    from advtopo.cli import main

    files = sorted(reference.rglob("*.json"))
    assert len(files) > 10
    for p in files:
        _strict_json(p.read_text())  # raises on NaN / Infinity
    layer_distance = json.loads((reference / "persistence" / "layer_distance.json").read_text())
    assert layer_distance["labels"] == ["std/fc1"]
    assert layer_distance["rank_correlation_cka"] == {"spearman": None, "pvalue": None, "n_pairs": 0}
    index = json.loads((reference / "index.json").read_text())
    assert index["persistence"]["layer_distance"]["rank_correlation_svcca"]["spearman"] is None
    with serve(reference, port=0, open_browser=False, block=False) as srv:
        status, body = _get(srv, "/api/index")
    assert status == 200 and _strict_json(body)["persistence"]["layer_distance"]["labels"] == ["std/fc1"]
    out = export_html(reference, tmp_path / "export.html")
    assert out.stat().st_size > 10_000
    assert main(["show", str(reference)]) == 0
    assert main(["verify", str(reference), "--full"]) == 0


def test_atomic_write_json_writes_non_finite_numbers_as_null(tmp_path):
    from advtopo.utils import atomic_write_json

    atomic_write_json(tmp_path / "x.json", {"nan": float("nan"), "inf": np.float64("inf"), "ninf": [-np.inf],
                                            "ok": np.float32(0.5), "n": np.int64(3)})
    assert _strict_json((tmp_path / "x.json").read_text()) == {"nan": None, "inf": None, "ninf": [None],
                                                               "ok": 0.5, "n": 3}


# --- corruption, one artefact kind at a time -----------------------------------------------------

GRAPH = "mapper/std__fc1__pgd__0.json"


def _truncate(p: Path) -> None:
    data = p.read_bytes()
    p.write_bytes(data[: len(data) // 2])


def _edit_json(p: Path, change) -> None:
    doc = json.loads(p.read_text())
    change(doc)
    p.write_text(json.dumps(doc))


def _flip_byte(p: Path) -> None:
    data = bytearray(p.read_bytes())
    data[len(data) // 2] ^= 0xFF
    p.write_bytes(bytes(data))


def _capture(root: Path, label: str = "capture std clean") -> Path:
    for folder in sorted((root / "tasks" / "capture").iterdir()):
        if json.loads((folder / "DONE.json").read_text())["label"] == label:
            return folder
    raise AssertionError(f"no task {label!r}")


def _chunk(root: Path) -> Path:
    return _capture(root) / "activations.zarr" / "fc1" / "c" / "0" / "0"


def _task_file(root: Path) -> Path:
    return next((root / "tasks" / "attack").glob("*/images.npy"))


# name: (damage, the path `advtopo verify` names, needs --full, the file `advtopo show`'s error names or None)
CORRUPTIONS = {
    "index.json truncated": (lambda r: _truncate(r / "index.json"), "index.json", False, "index.json"),
    "index.json invalid record": (lambda r: _edit_json(r / "index.json", lambda d: d["graphs"][0].update(eps="x")),
                                  "index.json", False, "index.json"),
    "index.json future format": (lambda r: _edit_json(r / "index.json", lambda d: d.update(format_version=99)),
                                 "index.json", False, "index.json"),
    "graph truncated": (lambda r: _truncate(r / GRAPH), GRAPH, False, None),
    "graph member out of range": (
        lambda r: _edit_json(r / GRAPH, lambda d: next(n for n in d["nodes"] if n["members"])["members"].append(10**6)),
        GRAPH, False, None),
    "images truncated": (lambda r: _truncate(r / "images" / "clean.npy"), "images/clean.npy", False, None),
    "samples.parquet truncated": (lambda r: _truncate(r / "samples.parquet"), "samples.parquet", False, None),
    "vulnerability.json truncated": (lambda r: _truncate(r / "vulnerability.json"), "vulnerability.json", False,
                                     "vulnerability.json"),
    "vulnerability.json without samples": (lambda r: _edit_json(r / "vulnerability.json", lambda d: d.pop("samples")),
                                           "vulnerability.json", False, "vulnerability.json"),
    "datapaths.json truncated": (lambda r: _truncate(r / "datapaths.json"), "datapaths.json", False, "datapaths.json"),
    "datapaths.json without by_eps": (lambda r: _edit_json(r / "datapaths.json", lambda d: d.pop("by_eps")),
                                      "datapaths.json", False, "datapaths.json"),
    "manifest.json truncated": (lambda r: _truncate(r / "manifest.json"), "manifest.json", False, "manifest.json"),
    "manifest.json not a manifest": (lambda r: (r / "manifest.json").write_text("[]"), "manifest.json", False,
                                     "manifest.json"),
    "zarr chunk deleted": (lambda r: _chunk(r).unlink(), "activations.zarr", False, None),
    "zarr chunk flipped": (lambda r: _flip_byte(_chunk(r)), "activations.zarr", True, None),
    "task file edited": (lambda r: _flip_byte(_task_file(r)), "tasks/attack/", True, None),
    "index.json nested too deep": (lambda r: _deep_json(r / "index.json"), "index.json", False, "index.json"),
    "graph nested too deep": (lambda r: _deep_json(r / GRAPH), GRAPH, False, None),
    "vulnerability.json nested too deep": (lambda r: _deep_json(r / "vulnerability.json"), "vulnerability.json",
                                           False, "vulnerability.json"),
    "manifest.json nested too deep": (lambda r: _deep_json(r / "manifest.json"), "manifest.json", False,
                                      "manifest.json"),
    "graph a symbolic-link loop": (lambda r: _link_loop(r / GRAPH), GRAPH, False, None),
    "images of floats": (lambda r: np.save(r / "images" / "clean.npy", np.zeros((60, 8, 8, 1))), "images/clean.npy",
                         False, None),
}


def _deep_json(p: Path) -> None:
    """Valid JSON nested deeper than Python's parser recurses (RecursionError, not ValueError)."""
    p.write_text("[" * 100_000 + "]" * 100_000)


def _link_loop(p: Path) -> None:
    p.unlink()
    p.symlink_to(p.name + ".loop")
    p.with_name(p.name + ".loop").symlink_to(p.name)


@pytest.mark.parametrize("case", list(CORRUPTIONS))
def test_verify_names_each_damaged_artefact(run, case, capsys):
    from advtopo.cli import main

    damage, named, needs_full, _ = CORRUPTIONS[case]
    damage(run)
    capsys.readouterr()
    code = main(["verify", str(run)])
    cheap = capsys.readouterr().out
    code_full = main(["verify", str(run), "--full"])
    full = capsys.readouterr().out
    lines = [line for line in full.splitlines() if line.startswith("damaged: ")]
    assert code_full == 1 and lines and any(named in line for line in lines), full
    assert all("advtopo" in line for line in lines), full  # each says what to run
    assert full.splitlines()[-1].startswith(f"{run}: {len(lines)} damaged of ")
    if needs_full:  # same size, other bytes: only hashes and checksums see it
        assert code == 0 and not any(line.startswith("damaged: ") for line in cheap.splitlines()), cheap
    else:
        assert code == 1 and any(named in line for line in cheap.splitlines() if line.startswith("damaged: ")), cheap


@pytest.mark.parametrize("case", list(CORRUPTIONS))
def test_show_names_the_damaged_file_in_one_line(run, case):
    damage, _, _, shown = CORRUPTIONS[case]
    damage(run)
    proc = subprocess.run([sys.executable, "-m", "advtopo.cli", "show", str(run)], capture_output=True, text=True,
                          timeout=300, env={**os.environ, "OMP_NUM_THREADS": "1"})
    assert "Traceback" not in proc.stderr, proc.stderr
    if shown is None:  # `advtopo show` does not read this artefact
        assert proc.returncode == 0, proc.stderr
        return
    assert proc.returncode == 2 and len(proc.stderr.strip().splitlines()) == 1, proc.stderr
    message = proc.stderr.strip()
    assert shown in message, message
    if "future format" in case:  # not damage: a newer advtopo wrote it
        assert "pip install -U advtopo" in message, message
    else:
        assert "advtopo verify" in message and "advtopo run CONFIG" in message, message


@pytest.mark.parametrize("case", ["index.json truncated", "index.json invalid record", "index.json future format"])
def test_serve_refuses_a_damaged_index_at_startup_in_one_line(run, case):
    from advtopo.app import serve
    from advtopo.app.data import RunData

    CORRUPTIONS[case][0](run)
    for start in (lambda: RunData(run), lambda: serve(run, port=0, open_browser=False, block=False)):
        with pytest.raises(AdvtopoError) as info:
            start()
        message = str(info.value)
        assert "index.json" in message and "\n" not in message
        assert "advtopo run CONFIG" in message or "pip install -U advtopo" in message


def _get(srv, path: str, method: str = "GET", body: bytes | None = None) -> tuple[int, bytes]:
    import http.client

    conn = http.client.HTTPConnection("127.0.0.1", srv.port, timeout=120)
    headers = {"X-Advtopo-Token": srv.token}
    if body is not None:
        headers.update({"Content-Type": "application/json", "Content-Length": str(len(body))})
    conn.request(method, path, body=body, headers=headers)
    r = conn.getresponse()
    data = r.read()
    conn.close()
    return r.status, data


def _error(srv, path: str, status: int) -> str:
    code, body = _get(srv, path)
    assert code == status, (path, code, body[:300])
    doc = _strict_json(body)
    assert "Traceback" not in body.decode()
    return doc["error"]


def test_the_server_answers_json_errors_naming_damaged_files(run):
    from advtopo.app import serve

    _truncate(run / GRAPH)
    _truncate(run / "images" / "clean.npy")
    _truncate(run / "samples.parquet")
    _truncate(run / "vulnerability.json")
    _edit_json(run / "datapaths.json", lambda d: d.pop("samples"))
    with serve(run, port=0, open_browser=False, block=False) as srv:
        gid = GRAPH.split("/")[1][:-5]
        assert GRAPH in _error(srv, f"/api/graph/{gid}", 400)
        assert "images/clean.npy" in _error(srv, "/api/image/clean/0.png", 400)
        assert "samples.parquet" in _error(srv, "/api/samples?ids=0,1", 400)
        status, body = _get(srv, "/api/vulnerability")
        doc = _strict_json(body)
        assert status == 200 and doc["samples"] == [] and "vulnerability.json is not valid JSON" in doc["error"]
        status, body = _get(srv, "/api/datapaths")
        doc = _strict_json(body)
        assert status == 200 and doc["available"] is False and "datapaths.json lacks" in doc["error"]
        assert "advtopo verify" in doc["error"]
        status, body = _get(srv, "/api/graph/std__fc1__pgd__0.2")  # an intact graph still reads
        assert status == 200 and _strict_json(body)["nodes"]


def test_views_that_read_activations_answer_an_error_on_a_deleted_chunk(run):
    """Feature visualisation, embedding and recompute read the graph's activations: a deleted
    chunk is an error naming layer and chunk (it read as zeros before: 200 with other data)."""
    import time

    from advtopo.app import serve

    _chunk(run).unlink()
    gid = "std__fc1__pgd__0.2"  # its clean rows come from the damaged store
    with serve(run, port=0, open_browser=False, block=False) as srv:
        node = _strict_json(_get(srv, f"/api/graph/{gid}")[1])["nodes"][0]["id"]
        for path in (f"/api/embedding/{gid}?method=pca", f"/api/featurevis/{gid}/{node}"):
            message = _error(srv, path, 400)
            assert "layer 'fc1' is missing 1 of" in message and "chunks: 0 (rows 0-24)" in message, message
        status, body = _get(srv, "/api/recompute", "POST", json.dumps({"graph": gid, "n_intervals": 5}).encode())
        assert status == 202, body
        job = _strict_json(body)
        deadline = time.monotonic() + 120
        while job["state"] not in ("done", "error") and time.monotonic() < deadline:
            time.sleep(0.2)
            job = _strict_json(_get(srv, f"/api/recompute/{job['id']}")[1])
        assert job["state"] == "error" and "layer 'fc1' is missing 1 of" in job["message"], job


# --- advtopo runs / show: the status of a run that is written or was killed -------------------------

def test_runs_reports_an_unreadable_manifest_and_show_reads_running_or_interrupted(run, capsys):
    from advtopo.cli import main
    from advtopo.rundir import RunNotFound, open_run
    from advtopo.rundir.layout import RUN_LOCK
    from advtopo.rundir.lock import acquire

    _edit_json(run / "manifest.json", lambda d: d.update(status="running"))
    assert open_run(run).status.startswith("interrupted (the process that wrote it is gone")
    with acquire(run / RUN_LOCK):
        status = open_run(run).status
    assert status.startswith(f"running (pid {os.getpid()} on host "), status
    (run / "index.json").unlink()  # a first run still writing: no index yet
    with acquire(run / RUN_LOCK):
        with pytest.raises(RunNotFound, match=rf"manifest status: running \(pid {os.getpid()} on host"):
            open_run(run)
    with pytest.raises(RunNotFound, match=r"manifest status: running, but interrupted \(the process that wrote"):
        open_run(run)
    for text in ("[]", '{"tasks": [1]}', '{"tasks": {"a": 1}}', "{"):
        (run / "manifest.json").write_text(text)
        capsys.readouterr()
        assert main(["runs", str(run)]) == 0
        assert "unreadable manifest" in capsys.readouterr().out


def test_export_html_names_a_damaged_image_file_and_report_opens_an_index_without_dataset(run, tmp_path):
    from advtopo.app.export import export_html
    from advtopo.report import build_report

    _truncate(run / "images" / "clean.npy")
    with pytest.raises(AdvtopoError, match=r"image array 'images/clean.npy' is unreadable .*advtopo verify"):
        export_html(run, tmp_path / "export.html")  # it left the thumbnails out silently before
    _edit_json(run / "index.json", lambda d: d.pop("dataset"))  # optional in index.json
    (run / "images" / "clean.npy").unlink()
    _edit_json(run / "index.json", lambda d: d["images"].pop("clean"))
    page = build_report(run, tmp_path / "report", quiet=True)
    assert "dataset ?" in page.read_text()


def test_the_server_answers_node_details_of_a_run_without_its_optional_dataset_entry(run):
    from advtopo.app import serve

    _edit_json(run / "index.json", lambda d: d.update(dataset=None))
    with serve(run, port=0, open_browser=False, block=False) as srv:
        status, body = _get(srv, "/api/node/std__fc1__pgd__0.2/n0")  # was a 500 (None.get)
    detail = _strict_json(body)
    assert status == 200 and detail["size"] == len(detail["members"]) > 0
    assert all(c["name"] == str(c["label"]) for c in detail["by_class"])  # no class names: the label


@pytest.mark.parametrize("n_layers", [1, 2])
def test_the_persistence_stage_writes_an_undefined_rank_correlation_as_null(tmp_path, n_layers):
    """Over < 2 layer pairs Spearman is undefined: null in layer_distance.json and in the entry
    index.json gets (NaN before: the app answered 400 and export-html raised)."""
    from advtopo.persistence import persistence_stage

    rng = np.random.default_rng(0)
    acts = {("m", f"l{i}", "pgd", eps): rng.normal(size=(40, 5)) for i in range(n_layers) for eps in (0.0, 0.1)}
    entry = persistence_stage(acts, np.arange(40), tmp_path / "persistence", {"plots": True})
    doc = _strict_json((tmp_path / "persistence" / "layer_distance.json").read_text())
    for key in ("rank_correlation_cka", "rank_correlation_svcca"):
        assert doc[key] == {"spearman": None, "pvalue": None, "n_pairs": n_layers - 1}
        assert entry["layer_distance"][key] == doc[key]
    json.dumps(entry, allow_nan=False)  # the index entry is standard JSON too
    _strict_json((tmp_path / "persistence" / "clean_vs_adv.json").read_text())
