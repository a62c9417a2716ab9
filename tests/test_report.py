"""advtopo report on a tiny real run: files, offline HTML, numbers against direct
recomputations, figure reuse, absent inputs, the CLI and the app's report route."""
from __future__ import annotations

import json
import re
import shutil
import urllib.error
import urllib.request

import numpy as np
import pytest

from advtopo.report import FINDINGS_FILE, REPORT_FILE, build_report
from advtopo.report.sections import HOLDS, NOT_HOLD, PARTLY, UNJUDGED, series_verdict, trend


@pytest.fixture(scope="session")
def full_run(study_run, tmp_path_factory):
    """A copy of the shared tiny run, re-run with the vulnerability, persistence and datapaths
    stages on (train / attack / capture / mapper come from the copied task cache)."""
    from conftest import tiny_study_config

    from advtopo.study import StudyConfig, run_study

    run = tmp_path_factory.mktemp("report") / "run"
    shutil.copytree(study_run, run, ignore=shutil.ignore_patterns("report"))
    cfg = tiny_study_config()
    cfg["vulnerability"] = {"enabled": True, "model": "std", "layer": "relu3", "attack": "pgd"}
    cfg["persistence"] = {"enabled": True, "settings": {"plots": False}}
    cfg["datapaths"] = {"enabled": True, "model": "std", "layers": ["relu2", "relu3"], "attack": "pgd",
                        "eps": [0.2], "n_samples": 20, "steps": 10}
    return run_study(StudyConfig.from_dict(cfg), out=run, verbose=False)


@pytest.fixture(scope="session")
def report(full_run):
    """(run dir, report.html path, findings) of the full run, report in RUN/report/."""
    page = build_report(full_run, quiet=True)
    return full_run, page, json.loads((page.parent / FINDINGS_FILE).read_text())


def _section(findings, key):
    return next(s for s in findings["sections"] if s["key"] == key)


def test_report_writes_every_file(report):
    run, page, findings = report
    assert page == run / "report" / REPORT_FILE and page.is_file()
    drawn = [s for s in findings["sections"] if s.get("figure")]
    assert {s["key"] for s in drawn} >= {"accuracy", "purity", "layers", "diagram_distance", "vulnerability",
                                         "datapaths", "gallery"}
    from PIL import Image

    for s in drawn:
        png, svg = page.parent / s["figure"]["png"], page.parent / s["figure"]["svg"]
        assert png.is_file() and svg.is_file()
        assert svg.read_text().lstrip().startswith(("<?xml", "<svg"))
        dpi = Image.open(png).info.get("dpi")
        assert dpi and round(dpi[0]) == 200
    manifest = json.loads((page.parent / "figures" / "manifest.json").read_text())
    assert set(manifest) == {s["key"] for s in drawn}
    for s in findings["sections"]:  # every section: a verdict from the rule, or why it is absent
        assert s["claim"] and s["source"]
        if s["status"] == "ok" and s["key"] != "gallery":
            assert s["verdict"] in (HOLDS, PARTLY, NOT_HOLD, UNJUDGED)
            assert s["sentence"].lower().startswith(s["verdict"])
            assert s["rule"]


def test_html_is_self_contained(report):
    _, page, findings = report
    html = page.read_text()
    # nothing to load from the network: no external src/href/url()/@import, no script
    assert not re.search(r"""(?:src|href)\s*=\s*["']?\s*(?:https?:)?//""", html, re.I)
    assert not re.search(r"url\(\s*['\"]?\s*(?:https?:)?//", html, re.I)
    assert "@import" not in html and "<script" not in html.lower() and "<link" not in html.lower()
    # every drawn figure is inline, with unique ids across figures
    drawn = [s for s in findings["sections"] if s.get("figure")]
    assert html.count("<svg") >= len(drawn)
    ids = re.findall(r'\bid="([^"]+)"', html)
    assert len(ids) == len(set(ids))
    for s in findings["sections"]:
        assert s["title"] in html


def test_findings_match_direct_recomputation(report):
    import pandas as pd
    from sklearn.metrics import roc_auc_score

    run, _, findings = report
    samples = pd.read_parquet(run / "samples.parquet")
    index = json.loads((run / "index.json").read_text())
    acc = _section(findings, "accuracy")["numbers"]["series"]
    for s in acc:
        for e, v, lo, hi in zip(s["eps"], s["accuracy"], s["lo"], s["hi"]):
            sel = samples[(samples.model == s["model"]) & (samples.attack == s["attack"]) & np.isclose(samples.eps, e)]
            assert v == pytest.approx(sel["correct"].mean(), abs=1e-12)
            stored = next(a["accuracy"] for a in index["accuracy"]
                          if a["model"] == s["model"] and a["attack"] == s["attack"] and np.isclose(a["eps"], e))
            assert v == pytest.approx(stored, abs=1e-12)
            assert lo <= v <= hi

    vul = json.loads((run / "vulnerability.json").read_text())
    sec = _section(findings, "vulnerability")["numbers"]
    assert sec["curves"], "the tiny run should have an eps with fooled and not-fooled samples"
    score = np.array([s["score"] for s in vul["samples"]], dtype=float)
    fooled_at = np.array([np.inf if s["fooled_at"] is None else s["fooled_at"] for s in vul["samples"]])
    for c in sec["curves"]:
        y = fooled_at <= c["eps"] + 1e-9
        ok = np.isfinite(score) & np.array([s["clean_correct"] for s in vul["samples"]])  # misclassified: left out
        assert c["auc"] == pytest.approx(roc_auc_score(y[ok], score[ok]), abs=1e-12)
        assert c["auc"] == pytest.approx(c["stored_auc"], abs=1e-9)  # the study's own Mann-Whitney AUC
    # the layer-distance numbers are the persistence stage's
    ld = index["persistence"]["layer_distance"]
    lay = _section(findings, "layers")["numbers"]
    assert lay["distance"] == ld["matrix"] and lay["cka"] == ld["cka"]


def test_rerun_reuses_figures_and_redraws_changed_ones(report, tmp_path, capsys):
    run, page, findings = report
    figs = sorted((page.parent / "figures").glob("*.[ps][nv]g"))
    before = {p.name: p.stat().st_mtime_ns for p in figs}
    build_report(run)
    out = capsys.readouterr().out
    assert {p.name: p.stat().st_mtime_ns for p in figs} == before
    assert out.count("figure reused") == len(before) // 2 and "figure drawn" not in out
    # a changed input (one sample fewer in the datapaths) redraws that figure only
    copy = tmp_path / "run"
    shutil.copytree(run, copy, ignore=shutil.ignore_patterns("tasks"))
    dp = json.loads((copy / "datapaths.json").read_text())
    dp["samples"] = dp["samples"][:-1]
    (copy / "datapaths.json").write_text(json.dumps(dp))
    build_report(copy)
    out = capsys.readouterr().out
    assert re.search(r"datapaths: figure drawn", out)
    assert out.count("figure drawn") == 1


def test_absent_inputs_are_sections_not_errors(study_run, tmp_path):
    from advtopo.cli import main

    out = tmp_path / "rep"
    assert main(["report", str(study_run), "--out", str(out), "--quiet"]) == 0
    findings = json.loads((out / FINDINGS_FILE).read_text())
    status = {s["key"]: s["status"] for s in findings["sections"]}
    assert status["accuracy"] == status["purity"] == "ok"
    for key in ("layers", "diagram_distance", "vulnerability", "datapaths", "recovery", "gallery"):
        assert status[key] == "not in this run", key
        assert _section(findings, key)["enable"]
    assert not any(s == "error" for s in status.values())
    html = (out / REPORT_FILE).read_text()
    assert html.count("not in this run") >= 6 and "[persistence]" in html
    assert not (study_run / "report").exists()  # --out respected


def test_cli_bad_run_dir_is_a_user_error(tmp_path, capsys):
    from advtopo.cli import main

    assert main(["report", str(tmp_path)]) == 2
    assert "not a finished run directory" in capsys.readouterr().err


def test_cli_out_that_is_a_file_is_a_user_error(study_run, tmp_path, capsys):
    from advtopo.cli import main

    (tmp_path / "f").write_text("x")
    assert main(["report", str(study_run), "--out", str(tmp_path / "f")]) == 2
    assert "is a file" in capsys.readouterr().err


def test_verdict_rules():
    eps = [0.0, 0.1, 0.2]
    falls = trend(eps, [0.9, 0.6, 0.3], [0.85, 0.55, 0.25], [0.95, 0.65, 0.35])
    assert falls["falls"] and falls["monotone"] and falls["holds"]
    overlap = trend(eps, [0.9, 0.85, 0.8], [0.7, 0.7, 0.7], [1.0, 1.0, 1.0])  # CIs overlap: no fall
    assert not overlap["falls"]
    bump = trend(eps, [0.9, 1.0, 0.3], [0.88, 0.99, 0.25], [0.92, 1.0, 0.35])  # falls, significant rise at 0.1
    assert bump["falls"] and not bump["monotone"] and not bump["holds"]
    no_ci = trend([0.2, 0.0], [0.1, 0.5])  # unsorted eps, no CIs: plain comparison
    assert no_ci["falls"] and no_ci["start"] == 0.5
    assert not trend([0.0], [0.5])["judged"]
    assert series_verdict([falls, falls]) == HOLDS
    assert series_verdict([falls, overlap]) == PARTLY
    assert series_verdict([bump]) == PARTLY
    assert series_verdict([overlap]) == NOT_HOLD
    assert series_verdict([trend([0.0], [0.5])]) == UNJUDGED


def test_app_serves_the_report_confined(report):
    from advtopo.app import serve

    run, _, _ = report
    srv = serve(run, port=0, open_browser=False, block=False)
    try:
        def get(path):
            with urllib.request.urlopen(srv.url.rstrip("/") + path, timeout=10) as r:
                return r.status, r.headers.get("Content-Type"), r.read()

        st, ctype, body = get("/report/report.html")
        assert st == 200 and ctype.startswith("text/html") and b"advtopo report" in body
        st, ctype, body = get("/report/figures/accuracy.png")
        assert st == 200 and ctype == "image/png" and body[:4] == b"\x89PNG"
        assert json.loads(get("/api/index")[2])["app"]["report"] is True
        for bad in ("/report/..%2Findex.json", "/report/figures/..%2F..%2Findex.json", "/report/findings.json",
                    "/report/figures/manifest.json", "/report/%2E%2E/index.json"):
            with pytest.raises(urllib.error.HTTPError) as exc:
                get(bad)
            assert exc.value.code == 404, bad
    finally:
        srv.shutdown()


def test_cka_recomputed_from_stored_activations_when_not_stored(full_run, tmp_path):
    from advtopo.report.sections import layers_section
    from advtopo.study import open_run

    copy = tmp_path / "run"
    shutil.copytree(full_run, copy, ignore=shutil.ignore_patterns("report"))
    index = json.loads((copy / "index.json").read_text())
    stored = index["persistence"]["layer_distance"].pop("cka")
    (copy / "index.json").write_text(json.dumps(index))
    sec = layers_section(open_run(copy))
    assert sec.present and sec.numbers["cka_source"].startswith("linear CKA recomputed")
    np.testing.assert_allclose(sec.numbers["cka"], stored, atol=1e-6)


@pytest.mark.browser
def test_app_summary_links_the_report_in_a_browser(report):
    """The Summary tab's link opens the served report; the page loads nothing but itself."""
    import os

    chromium = os.environ.get("ADVTOPO_CHROMIUM", "/usr/bin/chromium")
    if not os.path.exists(chromium):
        pytest.skip(f"{chromium} not installed (apt-get install chromium)")
    sync_api = pytest.importorskip("playwright.sync_api", reason="playwright not installed")
    from advtopo.app import serve

    run, _, _ = report
    srv = serve(run, port=0, open_browser=False, block=False)
    try:
        with sync_api.sync_playwright() as p:
            b = p.chromium.launch(executable_path=chromium, args=["--no-sandbox", "--disable-gpu",
                                                                  "--disable-background-networking"])
            pg = b.new_page()
            errors, urls = [], []
            pg.on("console", lambda m: errors.append(m.text) if m.type == "error" else None)
            pg.on("pageerror", lambda e: errors.append(str(e)))
            pg.goto(srv.url)
            pg.wait_for_selector("body[data-ready='1']", timeout=60000)
            pg.click(".tab[data-tab='summary']")
            pg.wait_for_selector("#report-link a", timeout=30000)
            with pg.context.expect_page() as new:
                pg.click("#report-link a")
            rep = new.value
            rep.on("request", lambda r: urls.append(r.url))
            rep.wait_for_load_state()
            rep.reload()
            assert rep.url == srv.url + "report/report.html"
            assert rep.title().startswith("advtopo report")
            assert rep.locator(".fig svg").count() >= 7
            assert urls == [srv.url + "report/report.html"]
            assert errors == []
            b.close()
    finally:
        srv.shutdown()
