"""The app's server against a hostile web page and a hostile run directory (real server, real sockets).

Another site's page must not drive the server (cross-site POSTs, cross-site GETs of routes that
compute, DNS rebinding through the Host header); bodies cannot crash it; and nothing it reads
or writes lies outside the run directory, whatever index.json says or links point to.
"""
from __future__ import annotations

import http.client
import json
import os
import shutil
import socket
import stat
import time
from pathlib import Path
from urllib.parse import quote

import numpy as np
import pytest

from advtopo.app import serve
from advtopo.app.cache import AppCache, CacheLimits
from advtopo.app.data import RunData
from advtopo.rundir import confine
from app_fixture import make_fixture_run

EVIL = "http://evil.example"


def request(srv, path: str, method: str = "GET", body: bytes | None = None, headers: dict | None = None):
    """One request as a browser or script sends it: exactly the headers given (plus Host)."""
    conn = http.client.HTTPConnection("127.0.0.1", srv.port, timeout=60)
    conn.putrequest(method, path, skip_host=True, skip_accept_encoding=True)
    hdrs = {"Host": f"127.0.0.1:{srv.port}", **(headers or {})}
    if body is not None:
        hdrs.setdefault("Content-Length", str(len(body)))
    for k, v in hdrs.items():
        conn.putheader(k, v)
    conn.endheaders(body)
    r = conn.getresponse()
    data = r.read()
    conn.close()
    return r.status, data


def raw(srv, data: bytes) -> bytes:
    """Send bytes as they are; the whole answer (the server closes after an error)."""
    with socket.create_connection(("127.0.0.1", srv.port), timeout=30) as s:
        s.sendall(data)
        out = b""
        while chunk := s.recv(65536):
            out += chunk
            if b"\r\n\r\n" in out and b'"status"' in out:
                break
    return out


def post(srv, obj, headers: dict | None = None) -> tuple[int, dict]:
    status, data = request(srv, "/api/recompute", "POST", json.dumps(obj).encode(),
                           {"Content-Type": "application/json", **(headers or {})})
    return status, json.loads(data)


def wait_job(srv, job: dict) -> dict:
    """The rebuild job once finished (polled as the page does)."""
    for _ in range(1200):
        job = json.loads(request(srv, f"/api/recompute/{job['id']}", headers={"X-Advtopo-Token": srv.token})[1])
        if job["state"] in ("done", "error"):
            break
        time.sleep(0.05)
    return job


def files_under(path: Path) -> list[str]:
    return sorted(str(p.relative_to(path)) for p in path.rglob("*")) if path.exists() else []


def add_activations(run: Path, model: str = "cnn_std", layer: str = "fc1", dim: int = 6) -> Path:
    """Real zarr activation stores for ``model``/``layer`` (clean and each attack eps), named by index.json."""
    from advtopo.activations import ActivationWriter

    idx = json.loads((run / "index.json").read_text())
    n = idx["dataset"]["n_samples"]
    idx["activations"] = []
    for attack, eps in [("clean", 0.0)] + [(a["name"], e) for a in idx["attacks"] for e in a["eps"] if e > 0]:
        rng = np.random.default_rng(int(eps * 100))
        acts = rng.normal(size=(n, dim)) + np.repeat(np.arange(10), n // 10)[:, None]
        store = ActivationWriter(run / "acts" / f"{attack}_{eps}.zarr", n, {layer: dim})
        store.write(0, {layer: acts})
        store.close()
        idx["activations"].append({"model": model, "layer": layer, "attack": attack, "eps": eps,
                                   "path": f"acts/{attack}_{eps}.zarr", "array": layer})
    (run / "index.json").write_text(json.dumps(idx))
    return run


@pytest.fixture(scope="module")
def acts_template(tmp_path_factory) -> Path:
    return add_activations(make_fixture_run(tmp_path_factory.mktemp("acts") / "run", n_per_class=4, with_extras=False))


@pytest.fixture
def acts_run(acts_template, tmp_path) -> Path:
    """A fresh copy (the tests below damage it), inside ``tmp_path/base``: the rest of base is 'outside'."""
    run = tmp_path / "base" / "run"
    shutil.copytree(acts_template, run)
    return run


@pytest.fixture(scope="module")
def run_dir(tmp_path_factory) -> Path:
    return make_fixture_run(tmp_path_factory.mktemp("sec") / "run", n_per_class=3, with_extras=False)


@pytest.fixture(scope="module")
def server(run_dir):
    srv = serve(run_dir, port=0, open_browser=False, block=False)
    yield srv
    srv.shutdown()


def first_graph(run: Path, eps_positive: bool = True, layer: str = "fc1", model: str = "cnn_std") -> str:
    idx = json.loads((run / "index.json").read_text())
    return next(g["id"] for g in idx["graphs"] if (g["eps"] > 0) == eps_positive and g["layer"] == layer
                and g["model"] == model)


# ------------------------------------------------------------------------------ cross-site requests
def test_cross_site_posts_are_refused(server, run_dir):
    gid = first_graph(run_dir)
    own = f"http://127.0.0.1:{server.port}"
    body = json.dumps({"graph": gid, "n_intervals": 6}).encode()
    # a form on another site: text/plain needs no CORS preflight
    assert request(server, "/api/recompute", "POST", body, {"Content-Type": "text/plain", "Origin": EVIL})[0] == 403
    assert post(server, {"graph": gid}, {"Origin": EVIL})[0] == 403
    assert post(server, {"graph": gid}, {"Origin": "null"})[0] == 403  # a sandboxed frame
    assert post(server, {"graph": gid}, {"Origin": own + ".evil.example"})[0] == 403
    assert post(server, {"graph": gid}, {"Origin": own, "Host": f"localhost:{server.port}"})[0] == 403
    status, answer = post(server, {"graph": gid})  # no Origin, no token: not the page, not a script
    assert status == 403 and "X-Advtopo-Token" in answer["error"]
    assert post(server, {"graph": gid}, {"X-Advtopo-Token": "guess"})[0] == 403
    assert post(server, {"graph": gid}, {"X-Advtopo-Token": server.token, "Origin": EVIL})[0] != 403  # scripts
    assert server.recompute.jobs == {}
    # the app's own page (its Origin), or a script with the token, gets through: this run has no
    # activations, so the answer is 501, past the checks
    assert post(server, {"graph": gid}, {"Origin": own})[0] == 501
    assert post(server, {"graph": gid}, {"X-Advtopo-Token": server.token})[0] == 501
    assert request(server, "/api/recompute", "POST", body, {"Content-Type": "text/plain",
                                                              "X-Advtopo-Token": server.token})[0] == 415


@pytest.mark.parametrize("headers, allowed", [
    ({"Sec-Fetch-Site": "cross-site"}, False),          # <img src> or fetch from another site
    ({"Sec-Fetch-Site": "same-site"}, False),           # another port of localhost is another origin
    ({}, False),                                        # a script without the token
    ({"Sec-Fetch-Site": "same-origin", "Origin": EVIL}, False),
    ({"X-Advtopo-Token": "wrong"}, False),
    ({"Sec-Fetch-Site": "same-origin"}, True),          # the app's page
    ({"Sec-Fetch-Site": "none"}, True),                 # a URL typed in the address bar
    ("token", True),                                    # a script with the token
])
def test_cross_site_gets_that_compute_are_refused_and_write_nothing(acts_run, headers, allowed):
    gid = first_graph(acts_run)
    with serve(acts_run, port=0, open_browser=False, block=False) as srv:
        hdrs = {"X-Advtopo-Token": srv.token} if headers == "token" else headers
        status, data = request(srv, f"/api/embedding/{gid}?method=pca", headers=hdrs)
        if allowed:
            assert status == 200 and json.loads(data)["available"] is True
            assert len(files_under(acts_run / "app-cache" / "embedding")) == 1
        else:
            assert status == 403, data
            assert "error" in json.loads(data)
            assert files_under(acts_run / "app-cache" / "embedding") == []  # nothing computed, nothing written
            g = json.loads(request(srv, f"/api/graph/{gid}")[1])  # reading stays open: it changes nothing
            status, data = request(srv, f"/api/featurevis/{gid}/{g['nodes'][0]['id']}", headers=hdrs)
            assert status == 403
            assert files_under(acts_run / "app-cache" / "featurevis") == []


def test_cross_site_featurevis_computes_nothing(study_server, study_run):
    """On a run with a model: a cross-site GET (or an <img> of the PNG URL) computes no image."""
    idx = json.loads(request(study_server, "/api/index")[1])
    gid = next(g["id"] for g in idx["graphs"] if g["layer"] == "relu3" and not g.get("recomputed"))
    g = json.loads(request(study_server, f"/api/graph/{gid}")[1])
    node = min(g["nodes"], key=lambda n: n["size"])["id"]
    before = files_under(Path(study_run) / "app-cache" / "featurevis")
    for rows in ("auto", "all", "clean"):
        path = f"/api/featurevis/{gid}/{node}?rows={rows}"
        assert request(study_server, path, headers={"Sec-Fetch-Site": "cross-site", "Origin": EVIL})[0] == 403
        assert request(study_server, path, headers={})[0] == 403
        png = f"/api/featurevis/{gid}/{node}.png?rows={rows}"
        status, data = request(study_server, png, headers={"Sec-Fetch-Site": "cross-site"})
        if status == 200:  # computed before by the app's own request (another test): read, not computed
            assert data[:8] == b"\x89PNG\r\n\x1a\n"
        else:
            assert status == 404 and b"computes it" in data
    assert files_under(Path(study_run) / "app-cache" / "featurevis") == before


# ------------------------------------------------------------------------------ Host header
@pytest.mark.parametrize("host, status", [
    ("127.0.0.1:{port}@evil.example", 400),
    ("evil.example", 403),
    ("evil.example:{port}", 403),
    ("127.0.0.1.evil.example:{port}", 403),
    ("localhost.evil.example", 403),
    ("127.0.0.1:{port}:80", 400),
    ("127.0.0.1:99999", 400),
    ("127.0.0.1:{port}/x", 400),
    ("user@127.0.0.1:{port}", 400),
    ("127.0.0.1 evil.example", 400),
    ("[::1]evil", 400),
    ("", 400),
    ("0.0.0.0:{port}", 403),
    ("127.0.0.1:{port}", 200),
    ("localhost:{port}", 200),
    ("LOCALHOST", 200),
    ("[::1]:{port}", 200),
])
def test_host_header_variants(server, host, status):
    got, data = request(server, "/api/index", headers={"Host": host.format(port=server.port)})
    assert got == status, (host, data[:200])
    if status != 200:
        assert b"class_names" not in data and json.loads(data)["status"] == status


@pytest.mark.parametrize("hosts", [("127.0.0.1:{port}", "127.0.0.1:{port}"), ("127.0.0.1:{port}", "evil.example"),
                                   ("evil.example", "127.0.0.1:{port}")])
def test_duplicate_host_headers_are_refused(server, hosts):
    head = "".join(f"Host: {h.format(port=server.port)}\r\n" for h in hosts)
    answer = raw(server, f"GET /api/index HTTP/1.1\r\n{head}Connection: close\r\n\r\n".encode())
    status_line, _, rest = answer.partition(b"\r\n")
    assert b" 400 " in status_line, answer[:300]
    assert b"class_names" not in rest and b"exactly one Host" in rest


def test_no_host_header_is_refused(server):
    answer = raw(server, b"GET /api/index HTTP/1.0\r\n\r\n")
    assert b" 400 " in answer.split(b"\r\n")[0] and b"class_names" not in answer


# ------------------------------------------------------------------------------ bodies
NESTED = [
    b"[" * 20000 + b"]" * 20000,
    b'{"a":' * 6000 + b"1" + b"}" * 6000,
    b'{"graph": ' + b"[" * 10000 + b"]" * 10000 + b"}",
    b'{"graph": {"x": 1}}',
    b'{"graph": [1, 2]}',
    b'{"n_intervals": 1' + b"0" * 5000 + b"}",  # an integer too long to parse
    b'{"graph": "\xff\xfe"}',
    b'{"graph": "a", "graph": ',
    b"\x00" * 100,
    b"NaN",
    b"",
    b'"just a string"',
]


@pytest.mark.parametrize("body", NESTED, ids=[f"body{i}" for i in range(len(NESTED))])
def test_malformed_and_nested_bodies_are_400_without_traceback(server, body, capfd):
    status, data = request(server, "/api/recompute", "POST", body, {"Content-Type": "application/json",
                                                                    "X-Advtopo-Token": server.token})
    assert status == 400, data[:300]
    answer = json.loads(data)
    assert answer["status"] == 400 and "Traceback" not in answer["error"]
    assert "Traceback" not in capfd.readouterr().err


def test_body_shorter_than_announced_and_chunked_are_refused(server):
    tok = server.token
    head = (f"POST /api/recompute HTTP/1.1\r\nHost: 127.0.0.1:{server.port}\r\nX-Advtopo-Token: {tok}\r\n"
            "Content-Type: application/json\r\n")
    chunked = raw(server, (head + "Transfer-Encoding: chunked\r\n\r\n2\r\n{}\r\n0\r\n\r\n").encode())
    assert b" 411 " in chunked.split(b"\r\n")[0]
    twice = raw(server, (head + "Content-Length: 2\r\nContent-Length: 3\r\n\r\n{} ").encode())
    assert b" 400 " in twice.split(b"\r\n")[0]


# ------------------------------------------------------------------------------ paths from index.json
BAD_IDS = ["../../../../x/pwn", "..", ".hidden", "a/b", "a\\b", "nul\x00byte", "x" * 300, "line\nbreak",
           "/etc/passwd", "~/x", "a b"]


@pytest.mark.parametrize("bad_id", BAD_IDS, ids=range(len(BAD_IDS)))
def test_graph_ids_from_index_json_never_name_files(acts_run, bad_id):
    base = acts_run.parent
    idx = json.loads((acts_run / "index.json").read_text())
    good = next(g for g in idx["graphs"] if g["id"] == first_graph(acts_run))
    idx["graphs"].append({**good, "id": bad_id})
    (acts_run / "index.json").write_text(json.dumps(idx))
    outside_before = files_under(base)
    with serve(acts_run, port=0, open_browser=False, block=False) as srv:
        status, answer = post(srv, {"graph": bad_id, "n_intervals": 6}, {"X-Advtopo-Token": srv.token})
        assert status == 400 and "cannot name a cache file" in answer["error"], answer
        # the embedding's cache file is named by a hash: computed and kept inside the run
        status, data = request(srv, f"/api/embedding/{quote(bad_id, safe='')}", headers={"X-Advtopo-Token": srv.token})
        assert status in (200, 400, 404), data
    new = sorted(set(files_under(base)) - set(outside_before))
    assert all(p == "run/app-cache" or p.startswith("run/app-cache/") for p in new), new
    assert not any("pwn" in p or "passwd" in p for p in files_under(base)), files_under(base)
    assert files_under(acts_run / "app-cache" / "recompute") == []


@pytest.mark.parametrize("where", ["app-cache", "app-cache/embedding", "app-cache/recompute"])
def test_symlinked_app_cache_is_never_followed(acts_run, where):
    outside = acts_run.parent / "outside"
    outside.mkdir()
    link = acts_run / where
    link.parent.mkdir(parents=True, exist_ok=True)
    link.symlink_to(outside, target_is_directory=True)
    gid = first_graph(acts_run)
    with serve(acts_run, port=0, open_browser=False, block=False) as srv:
        tok = {"X-Advtopo-Token": srv.token}
        status, data = request(srv, f"/api/embedding/{gid}", headers=tok)
        if where != "app-cache/recompute":
            assert status == 400 and b"symbolic link" in data, data
        status, job = post(srv, {"graph": gid, "n_intervals": 5}, tok)
        assert status == 202, job
        job = wait_job(srv, job)
        if where != "app-cache/embedding":
            assert job["state"] == "error" and "symbolic link" in job["message"], job
    assert files_under(outside) == []  # nothing written through the link
    assert link.is_symlink()


def test_a_symlinked_cache_file_is_not_read(acts_run):
    gid = first_graph(acts_run)
    secret = acts_run.parent / "secret.json"
    secret.write_text(json.dumps({"available": True, "x": ["stolen"]}))
    with serve(acts_run, port=0, open_browser=False, block=False) as srv:
        tok = {"X-Advtopo-Token": srv.token}
        key = json.loads(request(srv, f"/api/embedding/{gid}", headers=tok)[1])["key"]
        cached = acts_run / "app-cache" / "embedding" / f"{key}.json"
        cached.unlink()
        cached.symlink_to(secret)
        status, data = request(srv, f"/api/embedding/{gid}", headers=tok)
    assert status == 400 and b"stolen" not in data and b"symbolic link" in data


@pytest.mark.parametrize("how", ["absolute", "dotdot", "symlinked folder"])
def test_activations_outside_the_run_are_not_read(acts_run, how):
    base = acts_run.parent
    idx = json.loads((acts_run / "index.json").read_text())
    for a in idx["activations"]:
        src = acts_run / a["path"]
        dst = base / "stolen" / Path(a["path"]).name
        dst.parent.mkdir(exist_ok=True)
        shutil.move(src, dst)
        if how == "absolute":
            a["path"] = str(dst)
        elif how == "dotdot":
            a["path"] = f"../stolen/{dst.name}"
        else:
            src.symlink_to(dst, target_is_directory=True)
    (acts_run / "index.json").write_text(json.dumps(idx))
    gid = first_graph(acts_run)
    with serve(acts_run, port=0, open_browser=False, block=False) as srv:
        tok = {"X-Advtopo-Token": srv.token}
        status, data = request(srv, f"/api/embedding/{gid}", headers=tok)
        answer = json.loads(data)
        assert status == 200 and answer["available"] is False and "inside the run directory" in answer["reason"]
        status, answer = post(srv, {"graph": gid, "n_intervals": 5}, tok)
        if status == 202:  # the stores are named: reading them is refused when the job runs
            answer = wait_job(srv, answer)
            assert answer["state"] == "error" and "inside the run directory" in answer["message"], answer
        else:
            assert status == 501, answer
    assert files_under(acts_run / "app-cache" / "embedding") == []


# ------------------------------------------------------------------------------ token
def test_session_token_in_the_page_and_the_session_file(run_dir):
    srv = serve(run_dir, port=0, open_browser=False, block=False)
    try:
        status, page = request(srv, "/", headers={})
        assert status == 200 and f'<meta name="advtopo-token" content="{srv.token}">'.encode() in page
        session = run_dir / "app-cache" / "session.json"
        assert stat.S_IMODE(session.stat().st_mode) == 0o600
        assert json.loads(session.read_text())["token"] == srv.token
        assert json.loads(session.read_text())["url"] == srv.url
        with serve(run_dir, port=0, open_browser=False, block=False) as other:
            assert other.token != srv.token
            assert json.loads(session.read_text())["token"] == other.token  # the last one started
        assert session.exists() is False  # removed by the server that wrote it
    finally:
        srv.shutdown()


# ------------------------------------------------------------------------------ bounded caches
def test_app_caches_are_bounded(acts_run):
    from advtopo.app.server import AppServer

    idx = json.loads((acts_run / "index.json").read_text())
    gids = [g["id"] for g in idx["graphs"] if g["model"] == "cnn_std" and g["layer"] == "fc1"]
    with AppServer(acts_run, port=0, cache_limits=CacheLimits(max_files=2)).start() as srv:
        tok = {"X-Advtopo-Token": srv.token}
        for gid in gids:  # 3 graphs x 2 methods: 6 embeddings, the last 2 kept
            for method in ("pca", "tsne"):
                assert json.loads(request(srv, f"/api/embedding/{gid}?method={method}", headers=tok)[1])["available"]
        assert len(files_under(acts_run / "app-cache" / "embedding")) == 2
        last = json.loads(request(srv, f"/api/embedding/{gids[-1]}?method=tsne", headers=tok)[1])
        assert (acts_run / "app-cache" / "embedding" / f"{last['key']}.json").is_file()
        made = []
        for n in (4, 5, 6):
            status, job = post(srv, {"graph": gids[1], "n_intervals": n}, tok)
            assert status == 202
            job = wait_job(srv, job)
            assert job["state"] == "done", job
            made.append(job["graph_id"])
        listed = [g["id"] for g in json.loads(request(srv, "/api/index")[1])["graphs"] if g.get("recomputed")]
        assert listed == made[1:]  # the oldest went, from the list and the disk
        assert sorted(files_under(acts_run / "app-cache" / "recompute")) == sorted(
            ["index.json"] + [f"{g}.json" for g in made[1:]])
        assert request(srv, f"/api/graph/{made[0]}")[0] == 404


def test_cache_evicts_the_least_recently_used_by_bytes(run_dir, tmp_path):
    run = tmp_path / "run"
    shutil.copytree(run_dir, run)
    cache = AppCache(RunData(run), CacheLimits(max_files=100, max_bytes=2500))
    for i in range(3):
        cache.write("embedding", f"k{i}.json", b"x" * 1000)  # the third write pushes k0 out
    assert files_under(run / "app-cache" / "embedding") == ["k1.json", "k2.json"]
    assert cache.read("embedding", "k1.json") == b"x" * 1000  # k1 used: now k2 is the oldest use
    cache.write("embedding", "k3.json", b"y" * 1000)
    assert files_under(run / "app-cache" / "embedding") == ["k1.json", "k3.json"]
    cache.write("featurevis", "a.png", b"p" * 1200)  # an entry is its files together (png + json)
    cache.write("featurevis", "a.json", b"j" * 1200)
    assert files_under(run / "app-cache" / "featurevis") == ["a.json", "a.png"]
    cache.write("featurevis", "b.png", b"p" * 200)  # 2,600 bytes: a goes, both its files
    assert files_under(run / "app-cache" / "featurevis") == ["b.png"]


# ------------------------------------------------------------------------------ confined file access
def test_confined_writes_refuse_a_link_at_every_level(tmp_path):
    root, outside = tmp_path / "run", tmp_path / "outside"
    root.mkdir()
    outside.mkdir()
    for link in ("a", "a/b"):
        shutil.rmtree(root / "a", ignore_errors=True)
        (root / link).parent.mkdir(parents=True, exist_ok=True)
        (root / link).symlink_to(outside, target_is_directory=True)
        with pytest.raises(confine.UnsafePath, match="symbolic link"):
            confine.write_bytes(root, "a/b/c.json", b"{}")
        with pytest.raises(confine.UnsafePath, match="symbolic link"):
            confine.read_bytes(root, "a/b/c.json")
        (root / link).unlink()
    assert files_under(outside) == []
    confine.write_bytes(root, "a/b/c.json", b"{}")
    target = outside / "secret"
    target.write_text("secret")
    (root / "a" / "b" / "d.json").symlink_to(target)
    with pytest.raises(confine.UnsafePath, match="symbolic link"):
        confine.read_bytes(root, "a/b/d.json")
    confine.write_bytes(root, "a/b/d.json", b"new")  # replaces the link itself
    assert target.read_text() == "secret" and (root / "a" / "b" / "d.json").read_bytes() == b"new"
    os.mkfifo(root / "a" / "b" / "fifo")
    with pytest.raises(confine.UnsafePath, match="not a plain file"):
        confine.read_bytes(root, "a/b/fifo")  # would block a worker forever if opened blocking
    for bad in ("../x", "/etc/passwd", "a/../../x", "a//b", "a\\b", "", "a/./b", "nul\x00"):
        with pytest.raises(confine.UnsafePath):
            confine.write_bytes(root, bad, b"")
    assert confine.read_bytes(root, "missing/x.json") is None
    assert sorted(f[0] for f in confine.list_files(root, "a/b")) == ["c.json", "d.json"]  # not the fifo
