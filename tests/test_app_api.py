"""The app's server: JSON API over a fixture run, confinement to the run dir, robustness."""
from __future__ import annotations

import csv
import http.client
import io
import json
import urllib.parse
import os
import socket
import struct
import zlib
from pathlib import Path

import numpy as np
import pytest

from advtopo.app import AppServer, encode_png, export_html, serve
from advtopo.app.export import embedded_data
from advtopo.errors import AdvtopoError
from app_fixture import make_fixture_run


@pytest.fixture(scope="module")
def run_dir(tmp_path_factory) -> Path:
    return make_fixture_run(tmp_path_factory.mktemp("run") / "run")


@pytest.fixture(scope="module")
def server(run_dir):
    srv = serve(run_dir, port=0, open_browser=False, block=False)
    yield srv
    srv.shutdown()


def request(srv, path: str, method: str = "GET", body: bytes | None = None, headers: dict | None = None):
    conn = http.client.HTTPConnection("127.0.0.1", srv.port, timeout=10)
    conn.putrequest(method, path, skip_host=True, skip_accept_encoding=True)
    # a script's request: it carries the session token (tests/test_app_security.py: requests without it)
    hdrs = {"Host": f"127.0.0.1:{srv.port}", "X-Advtopo-Token": srv.token, **(headers or {})}
    if body is not None:
        hdrs.setdefault("Content-Length", str(len(body)))
    for k, v in hdrs.items():
        conn.putheader(k, v)
    conn.endheaders(body)
    r = conn.getresponse()
    data = r.read()
    conn.close()
    return r.status, dict(r.getheaders()), data


def get_json(srv, path):
    status, headers, data = request(srv, path)
    assert headers["Content-Type"].startswith("application/json"), (path, headers)
    return status, json.loads(data)


def decode_png(data: bytes) -> np.ndarray:
    """Tiny PNG reader for the encoder's output (8-bit, filter 0)."""
    assert data[:8] == b"\x89PNG\r\n\x1a\n"
    pos, idat, w = 8, b"", None
    while pos < len(data):
        (n,) = struct.unpack(">I", data[pos:pos + 4])
        tag, chunk = data[pos + 4:pos + 8], data[pos + 8:pos + 8 + n]
        (crc,) = struct.unpack(">I", data[pos + 8 + n:pos + 12 + n])
        assert crc == zlib.crc32(tag + chunk) & 0xFFFFFFFF
        if tag == b"IHDR":
            w, h, depth, ctype = struct.unpack(">IIBB", chunk[:10])
            ch = {0: 1, 2: 3, 6: 4}[ctype]
        elif tag == b"IDAT":
            idat += chunk
        pos += 12 + n
    raw = np.frombuffer(zlib.decompress(idat), np.uint8).reshape(h, 1 + w * ch)
    assert (raw[:, 0] == 0).all()
    return raw[:, 1:].reshape(h, w, ch)


# ------------------------------------------------------------------------------ API
def test_index(server, run_dir):
    status, idx = get_json(server, "/api/index")
    assert status == 200
    assert len(idx["graphs"]) == 18
    assert idx["app"]["mode"] == "server"
    assert idx["dataset"]["class_names"][0] == "zero"


def test_graph_matches_file(server, run_dir):
    idx = json.loads((run_dir / "index.json").read_text())
    for entry in idx["graphs"][:4]:
        status, g = get_json(server, f"/api/graph/{entry['id']}")
        assert status == 200
        assert len(g["nodes"]) == entry["stats"]["n_nodes"]
        assert g["nodes"] == json.loads((run_dir / entry["path"]).read_text())["nodes"]


def test_unknown_graph_is_404_json(server):
    status, body = get_json(server, "/api/graph/nope")
    assert status == 404 and "error" in body


def _a_mixed_node(run_dir):
    idx = json.loads((run_dir / "index.json").read_text())
    entry = next(e for e in idx["graphs"] if e["eps"] == 0.3 and e["layer"] == "fc1")
    g = json.loads((run_dir / entry["path"]).read_text())
    node = max(g["nodes"], key=lambda n: (n["frac_adversarial"] > 0, n["size"]))
    return entry["id"], g, node


def test_node_detail(server, run_dir):
    gid, g, node = _a_mixed_node(run_dir)
    status, d = get_json(server, f"/api/node/{gid}/{node['id']}")
    assert status == 200
    assert d["size"] == node["size"] == len(d["members"])
    adv = g["points"]["is_adversarial"]
    assert d["n_adversarial"] == sum(adv[r] for r in node["members"])
    assert d["n_clean"] + d["n_adversarial"] == d["size"]
    assert sum(c["clean"] + c["adversarial"] for c in d["by_class"]) == d["size"]
    assert {m["sample_id"] for m in d["members"]} == {g["points"]["sample_id"][r] for r in node["members"]}
    assert sum(d["predictions"].values()) == d["size"]
    assert get_json(server, f"/api/node/{gid}/n99999")[0] == 404


def test_members_csv(server, run_dir):
    gid, g, node = _a_mixed_node(run_dir)
    status, headers, data = request(server, f"/api/node/{gid}/{node['id']}/members.csv")
    assert status == 200
    assert headers["Content-Type"].startswith("text/csv")
    assert "attachment" in headers["Content-Disposition"]
    rows = list(csv.DictReader(io.StringIO(data.decode())))
    assert len(rows) == node["size"]
    assert [int(r["row"]) for r in rows] == node["members"]
    assert {int(r["sample_id"]) for r in rows} == {g["points"]["sample_id"][r] for r in node["members"]}


def test_samples(server):
    status, d = get_json(server, "/api/samples?ids=1,2")
    assert status == 200
    assert {r["sample_id"] for r in d["samples"]} == {1, 2}
    assert len(d["samples"]) == 2 * 9  # one row per (model, attack, eps)
    assert get_json(server, "/api/samples?ids=1,x")[0] == 400
    assert get_json(server, "/api/samples?ids=" + ",".join(["1"] * 10001))[0] in (400, 414)


def test_images_are_pngs_of_the_arrays(server, run_dir):
    clean = np.load(run_dir / "images" / "clean.npy")
    status, headers, data = request(server, "/api/image/clean/7.png")
    assert status == 200 and headers["Content-Type"] == "image/png"
    assert np.array_equal(decode_png(data)[:, :, 0], clean[7, :, :, 0])
    adv = np.load(run_dir / "images" / "cnn_std" / "pgd_0.1.npy")
    for eps in ("0.1", "0.10", "1e-1"):
        status, _, data = request(server, f"/api/image/adversarial/cnn_std/pgd/{eps}/3.png")
        assert status == 200, eps
        assert np.array_equal(decode_png(data)[:, :, 0], adv[3, :, :, 0])
    assert request(server, "/api/image/clean/100000.png")[0] == 404
    assert request(server, "/api/image/adversarial/cnn_std/pgd/0.2/3.png")[0] == 404
    assert request(server, "/api/image/clean/-1.png")[0] == 400


def test_png_encoder_shapes():
    rng = np.random.default_rng(0)
    rgb = rng.integers(0, 256, (5, 7, 3), dtype=np.uint8)
    assert np.array_equal(decode_png(encode_png(rgb)), rgb)
    chw = rng.integers(0, 256, (3, 5, 7), dtype=np.uint8)
    assert np.array_equal(decode_png(encode_png(chw)), chw.transpose(1, 2, 0))
    gray = rng.integers(0, 256, (4, 4), dtype=np.uint8)
    assert np.array_equal(decode_png(encode_png(gray))[:, :, 0], gray)
    with pytest.raises(ValueError):
        encode_png(np.zeros((2, 2, 2, 2), np.uint8))


def test_locate(server, run_dir):
    sid = 5
    status, d = get_json(server, f"/api/locate/{sid}")
    assert status == 200 and d["sample_id"] == sid
    idx = json.loads((run_dir / "index.json").read_text())
    assert set(d["graphs"]) == {e["id"] for e in idx["graphs"]}
    for e in idx["graphs"]:
        g = json.loads((run_dir / e["path"]).read_text())
        rows = {r for r, s in enumerate(g["points"]["sample_id"]) if s == sid}
        want = sorted(n["id"] for n in g["nodes"] if rows & set(n["members"]))
        assert d["graphs"][e["id"]]["nodes"] == want
        for r in d["graphs"][e["id"]]["rows"]:
            assert r["point_purity"] == g["point_purity"][r["row"]]
    assert len(d["samples"]) == 9
    one = get_json(server, f"/api/locate/{sid}?graphs={idx['graphs'][0]['id']}")[1]
    assert list(one["graphs"]) == [idx["graphs"][0]["id"]]


def test_vulnerability(server):
    status, d = get_json(server, "/api/vulnerability")
    assert status == 200 and len(d["samples"]) == 20
    assert {"sample_id", "score", "fooled_at"} <= set(d["samples"][0])


def test_datapaths(server, run_dir):
    idx = json.loads((run_dir / "index.json").read_text())
    assert idx["datapaths"] == "datapaths.json"
    want = json.loads((run_dir / "datapaths.json").read_text())
    status, d = get_json(server, "/api/datapaths")
    assert status == 200 and d.pop("available") is True
    assert d == want
    assert d["layers"] == ["relu1", "relu2", "fc1"] and d["eps"] == [0.1, 0.3]
    assert len(d["samples"]) == 10 and len(d["detail"]) == 3
    # the fixture is self-consistent: a sample's Jaccard row matches its detail's critical sets
    det = d["detail"][0]
    row = next(s for s in d["samples"] if s["sample_id"] == det["sample_id"])
    for e in ("0.1", "0.3"):
        for k, layer in enumerate(d["layers"]):
            a, b = set(det["clean"]["critical"][layer]), set(det["adversarial"][e]["critical"][layer])
            assert row["eps"][e]["jaccard"][k] == pytest.approx(len(a & b) / len(a | b) if a | b else 1.0, abs=1e-4)


def _dp_run(tmp_path, index_extra: dict | None = None, text: str | None = None) -> Path:
    """A minimal run dir (index.json only, plus datapaths.json when ``text`` is given)."""
    run = tmp_path / "run"
    run.mkdir()
    (run / "index.json").write_text(json.dumps({"name": "dp", "graphs": [], **(index_extra or {})}))
    if text is not None:
        (run / "datapaths.json").write_text(text)
    return run


def test_datapaths_absent_is_not_an_error(tampered, tmp_path):
    assert get_json(tampered, "/api/datapaths") == (200, {"available": False})
    from advtopo.app.data import RunData

    assert RunData(_dp_run(tmp_path, {"datapaths": "datapaths.json"})).datapaths() == {"available": False}


@pytest.mark.parametrize("text, error", [
    ("{not json", "not valid JSON"),
    ("[1, 2]", "lacks"),
    (json.dumps({"layers": ["fc1"], "samples": []}), "lacks"),  # no eps
])
def test_datapaths_invalid_file(tmp_path, text, error):
    run = _dp_run(tmp_path, {"datapaths": "datapaths.json"}, text)
    with serve(run, port=0, open_browser=False, block=False) as srv:
        status, d = get_json(srv, "/api/datapaths")
    assert status == 200 and d["available"] is False and error in d["error"]


def test_datapaths_non_finite_numbers_become_null(tmp_path):
    text = '{"layers": ["fc1"], "eps": [0.1], "samples": [], "by_layer": {"fc1": {"jaccard_all": [NaN], "x": Infinity}}}'
    run = _dp_run(tmp_path, {"datapaths": "datapaths.json"}, text)
    with serve(run, port=0, open_browser=False, block=False) as srv:
        status, d = get_json(srv, "/api/datapaths")
    assert status == 200 and d["available"] is True
    assert d["by_layer"]["fc1"] == {"jaccard_all": [None], "x": None}


@pytest.mark.parametrize("how", ["dotdot", "abs", "symlink", "linkdir", "backslash", "tilde", "null", "notstr"])
def test_datapaths_path_outside_the_run_is_refused(tmp_path, how):
    secret = tmp_path / "secret.json"
    secret.write_text(json.dumps({"layers": ["stolen"], "eps": [0.1], "samples": []}))
    run = tmp_path / "run"
    run.mkdir()
    (run / "sub").mkdir()
    (run / "link.json").symlink_to(secret)
    (run / "sub" / "up").symlink_to(tmp_path, target_is_directory=True)
    rel = {"dotdot": "../secret.json", "abs": str(secret), "symlink": "link.json", "linkdir": "sub/up/secret.json",
           "backslash": "sub\\..\\..\\secret.json", "tilde": "~/secret.json", "null": "a\x00.json",
           "notstr": {"path": "../secret.json"}}[how]
    (run / "index.json").write_text(json.dumps({"name": "evil", "graphs": [], "datapaths": rel}))
    with serve(run, port=0, open_browser=False, block=False) as srv:
        status, headers, data = request(srv, "/api/datapaths")
    assert status == 200 and json.loads(data) == {"available": False}
    assert b"stolen" not in data


def test_persistence_diagram(server, run_dir):
    idx = json.loads((run_dir / "index.json").read_text())
    key, rel = next(iter(idx["persistence"]["diagrams"].items()))
    status, d = get_json(server, "/api/diagram?key=" + urllib.parse.quote(key))
    arr = np.load(run_dir / rel)
    assert status == 200 and d["key"] == key
    assert len(d["dims"]["0"]) == int((arr[:, 2] == 0).sum()) and len(d["dims"]["1"]) == int((arr[:, 2] == 1).sum())
    assert d["dims"]["1"][0] == pytest.approx(arr[arr[:, 2] == 1][0, :2].round(6).tolist())
    for bad in ("nope", "../index.json", "", urllib.parse.quote("/etc/passwd")):
        status, d = get_json(server, "/api/diagram?key=" + bad)
        assert status == 404 and "error" in d


def test_static_files(server):
    status, headers, data = request(server, "/")
    assert status == 200 and b"<title>advtopo</title>" in data
    assert "script-src 'self'" in headers["Content-Security-Policy"]
    for path in ("/static/app.js", "/static/app.css", "/static/vendor/d3.min.js"):
        assert request(server, path)[0] == 200, path
    assert b"https://" not in data and b"http://" not in data  # nothing loads from the internet


# ------------------------------------------------------------------------------ security
TRAVERSALS = [
    "/static/../data.py",
    "/static/%2e%2e/data.py",
    "/static/%2E%2E/%2E%2E/index.json",
    "/static/..%2f..%2fapp%2fdata.py",
    "/static/%2fetc%2fpasswd",
    "/static//etc/passwd",
    "/static/vendor/../../server.py",
    "/static/..%5c..%5cserver.py",
    "/api/graph/..%2F..%2Findex.json",
    "/api/graph/%2e%2e",
    "/api/image/clean/..%2F..%2Findex.json",
    "/api/image/adversarial/..%2F..%2F/pgd/0.1/1.png",
    "/api/node/..%2Findex.json/n0",
    "/../../../etc/passwd",
    "/%2e%2e/%2e%2e/etc/passwd",
    "/index.json",
    "/samples.parquet",
    "/mapper/" ,
]


@pytest.mark.parametrize("path", TRAVERSALS)
def test_traversal_is_404(server, path):
    status, headers, data = request(server, path)
    assert status == 404, (path, status, data[:200])
    assert headers["Content-Type"].startswith("application/json")
    assert b"Traceback" not in data


@pytest.fixture(scope="module")
def tampered(tmp_path_factory):
    """A run whose index names files outside the run dir, directly and through symlinks."""
    base = tmp_path_factory.mktemp("tampered")
    run = make_fixture_run(base / "run", n_per_class=3, with_extras=False)
    secret = base / "secret.json"
    secret.write_text(json.dumps({"nodes": [{"id": "stolen", "members": []}], "edges": []}))
    np.save(base / "secret.npy", np.full((4, 2, 2, 1), 7, np.uint8))
    (run / "mapper" / "link.json").symlink_to(secret)
    (run / "images" / "linkdir").symlink_to(base, target_is_directory=True)
    (run / "mapper" / "broken.json").write_text("{not json")
    idx = json.loads((run / "index.json").read_text())
    g0 = idx["graphs"][0]
    evil = {
        "abs": str(secret), "dotdot": "../secret.json", "link": "mapper/link.json",
        "linkdir": "images/linkdir/secret.json", "backslash": "mapper\\..\\..\\secret.json",
        "tilde": "~/secret.json", "broken": "mapper/broken.json", "null": "mapper/a\x00.json",
    }
    for name, path in evil.items():
        idx["graphs"].append({**g0, "id": f"evil_{name}", "path": path})
    idx["images"]["adversarial"]["cnn_std/pgd/0.5"] = "images/linkdir/secret.npy"
    idx["vulnerability"] = "../secret.json"
    (run / "index.json").write_text(json.dumps(idx))
    srv = serve(run, port=0, open_browser=False, block=False)
    yield srv
    srv.shutdown()


@pytest.mark.parametrize("name", ["abs", "dotdot", "link", "linkdir", "backslash", "tilde", "null"])
def test_index_paths_outside_the_run_are_404(tampered, name):
    status, body = get_json(tampered, f"/api/graph/evil_{name}")
    assert status == 404, body
    assert "stolen" not in json.dumps(body)


def test_symlinked_images_and_files_outside_are_404(tampered):
    assert request(tampered, "/api/image/adversarial/cnn_std/pgd/0.5/1.png")[0] == 404
    assert get_json(tampered, "/api/vulnerability") == (200, {"samples": []})


def test_broken_graph_file_is_4xx_json(tampered):
    status, body = get_json(tampered, "/api/graph/evil_broken")
    assert status == 400 and "not valid JSON" in body["error"]


def test_malformed_requests_get_json_errors(server):
    assert request(server, "/api/graph/%ff%fe")[0] == 400
    status, headers, data = request(server, "/api/samples?ids=" + "1," * 5000)
    assert status in (400, 414)
    status, headers, data = request(server, "/x" * 5000)
    assert status == 414 and json.loads(data)["status"] == 414
    assert request(server, "/api/index", method="PUT", body=b"")[0] == 405
    assert request(server, "/api/index", method="DELETE")[0] == 405
    # a broken request line: http.server's own error path, still JSON
    with socket.create_connection(("127.0.0.1", server.port), timeout=5) as s:
        s.sendall(b"GARBAGE\r\n\r\n")
        resp = b""
        while chunk := s.recv(4096):  # the server closes the connection after an error
            resp += chunk
    head, _, body = resp.partition(b"\r\n\r\n")
    assert head.startswith(b"HTTP/1.") and b" 400 " in head.split(b"\r\n")[0]
    assert b"application/json" in head and json.loads(body)["status"] == 400


def test_foreign_host_header_is_refused(server):
    status, headers, data = request(server, "/api/index", headers={"Host": "evil.example:80"})
    assert status == 403


def test_post_limits(server):
    big = b"{" + b" " * (70 * 1024) + b"}"
    assert request(server, "/api/recompute", "POST", big, {"Content-Type": "application/json"})[0] == 413
    assert request(server, "/api/recompute", "POST", b"{nope", {"Content-Type": "application/json"})[0] == 400
    assert request(server, "/api/recompute", "POST", b"[1]", {"Content-Type": "application/json"})[0] == 400
    assert request(server, "/api/index", "POST", b"{}")[0] == 405


def test_recompute_validation_and_501(server, run_dir):
    gid = json.loads((run_dir / "index.json").read_text())["graphs"][0]["id"]

    def post(obj):
        s, h, d = request(server, "/api/recompute", "POST", json.dumps(obj).encode(), {"Content-Type": "application/json"})
        return s, json.loads(d)

    assert post({"graph": "nope"})[0] == 404
    assert post({"graph": gid, "n_intervals": 0})[0] == 400
    assert post({"graph": gid, "overlap": 1.5})[0] == 400
    assert post({"graph": gid, "lens": "rm -rf"})[0] == 400
    status, body = post({"graph": gid, "n_intervals": 12, "overlap": 0.4})
    # the fixture run holds no activations: whatever engine is installed, this is a clear 501
    assert status == 501, body
    assert "error" in body and ("mapper engine" in body["error"] or "activations" in body["error"] or "run" in body["error"])


def test_loopback_by_default(run_dir):
    srv = serve(run_dir, port=0, open_browser=False, block=False)
    try:
        assert srv.host == "127.0.0.1"
        assert srv.url.startswith("http://127.0.0.1:")
    finally:
        srv.shutdown()


def test_not_a_run_dir(tmp_path):
    with pytest.raises(AdvtopoError, match="not a finished run directory"):
        AppServer(tmp_path)
    with pytest.raises(AdvtopoError, match="not found"):
        AppServer(tmp_path / "missing")


def test_port_in_use_is_a_user_error(server, run_dir):
    with pytest.raises(AdvtopoError, match="cannot listen"):
        AppServer(run_dir, port=server.port)


# ------------------------------------------------------------------------------ export + CLI
def test_export_html_is_self_contained(run_dir, tmp_path):
    idx = json.loads((run_dir / "index.json").read_text())
    ids = [e["id"] for e in idx["graphs"][:3]]
    out = export_html(run_dir, tmp_path / "x.html", graph_ids=ids)
    html = out.read_text()
    assert "window.ADVTOPO_EMBED=" in html
    assert '<script src=' not in html and '<link rel="stylesheet"' not in html
    assert "src=\"http" not in html and "href=\"http" not in html
    embed = embedded_data(html)  # the compressed payload, as the page unpacks it
    assert sorted(embed["graphs"]) == sorted(ids)
    assert embed["images"]["clean"]["0"].startswith("data:image/png;base64,")
    # the datapaths data and the thumbnails of its samples (clean, and adversarial at its eps)
    dp = json.loads((run_dir / "datapaths.json").read_text())
    assert embed["datapaths"]["available"] is True and embed["datapaths"]["samples"] == dp["samples"]
    for s in dp["samples"]:
        assert str(s["sample_id"]) in embed["images"]["clean"]
        for e in dp["eps"]:
            assert str(s["sample_id"]) in embed["images"]["adversarial"][f"{dp['model']}/{dp['attack']}/{e}"]
    with pytest.raises(AdvtopoError, match="unknown graph"):
        export_html(run_dir, tmp_path / "y.html", graph_ids=["nope"])


def test_export_endpoint(server, run_dir):
    gid = json.loads((run_dir / "index.json").read_text())["graphs"][0]["id"]
    status, headers, data = request(server, f"/api/export.html?graphs={gid}")
    assert status == 200 and headers["Content-Type"].startswith("text/html")
    assert "attachment" in headers["Content-Disposition"]
    assert b"window.ADVTOPO_EMBED=" in data


def test_cli(run_dir, tmp_path, capsys):
    from advtopo.cli import build_parser, main

    args = build_parser().parse_args(["serve", str(run_dir), "--no-browser", "--port", "0"])
    assert args.host == "127.0.0.1" and args.no_browser and args.port == 0
    assert main(["serve", str(tmp_path / "missing"), "--no-browser"]) == 2
    assert "run directory not found" in capsys.readouterr().err
    assert main(["export-html", str(run_dir), str(tmp_path / "o.html"), "--no-images"]) == 0
    assert (tmp_path / "o.html").stat().st_size > 100_000
    assert os.path.getsize(tmp_path / "o.html") > 0


def test_recompute_job_with_the_engine(tmp_path):
    """Full job: stored activations (real zarr stores named by index.json) -> advtopo.mapper.Mapper
    -> a graph cached in the run."""
    from advtopo.activations import ActivationWriter

    run = make_fixture_run(tmp_path / "run", n_per_class=6, with_extras=False)
    idx = json.loads((run / "index.json").read_text())
    entry = next(e for e in idx["graphs"] if e["eps"] > 0)
    n = idx["dataset"]["n_samples"]
    idx["activations"] = []
    for attack, eps in (("clean", 0.0), (entry["attack"], entry["eps"])):
        rng = np.random.default_rng(int(eps * 10))
        acts = rng.normal(size=(n, 6)) + np.repeat(np.arange(10), n // 10)[:, None]
        store = ActivationWriter(run / "acts" / f"{attack}.zarr", n, {entry["layer"]: 6})
        store.write(0, {entry["layer"]: acts})
        store.close()
        idx["activations"].append({"model": entry["model"], "layer": entry["layer"], "attack": attack, "eps": eps,
                                   "path": f"acts/{attack}.zarr", "array": entry["layer"]})
    (run / "index.json").write_text(json.dumps(idx))
    srv = serve(run, port=0, open_browser=False, block=False)
    try:
        body = json.dumps({"graph": entry["id"], "n_intervals": 5, "overlap": 0.4, "eps": 1.5, "lens": "l2norm"}).encode()
        status, _, data = request(srv, "/api/recompute", "POST", body, {"Content-Type": "application/json"})
        assert status == 202, data
        job = json.loads(data)
        import time

        for _ in range(200):
            job = get_json(srv, f"/api/recompute/{job['id']}")[1]
            if job["state"] in ("done", "error"):
                break
            time.sleep(0.05)
        assert job["state"] == "done", job
        ids = [g["id"] for g in get_json(srv, "/api/index")[1]["graphs"]]
        assert job["graph_id"] in ids
        g = get_json(srv, f"/api/graph/{job['graph_id']}")[1]
        assert len(g["points"]["sample_id"]) == 2 * n and g["nodes"]
    finally:
        srv.shutdown()
    # cached in the run: a new server lists it too
    with AppServer(run) as again:
        assert job["graph_id"] in [g["id"] for g in again.run.index()["graphs"]]
