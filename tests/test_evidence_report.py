"""The verdict, the report schema, report.html in headless Chromium, the null distribution and `mrd compare`."""
import copy
import dataclasses
import json
import re
import shutil
import subprocess

import numpy as np
import pytest

from mrd_backend.errors import MRDError
from mrd_backend.evidence import EvidenceInputs, end_of_run, validate_report, write_report_html
from mrd_backend.evidence.compare import write_compare
from mrd_backend.evidence.null import NullDistribution, build_null, default_others, load_null


def minimal_report(**extra) -> dict:
    r = {"version": 1, "status": "done", "mode": "shape", "scene": "blob", "envmap": "studio", "model": "mae",
         "weights": "none", "preprocess": "correct", "variant": "llvm_ad_rgb", "versions": {"mrd": "0.1.0"},
         "config": {"epochs": 2}, "objective": {"name": "mae"}, "integrator": {"type": "direct"},
         "steps": [{"step": 0, "loss": 0.2, "similarity": 0.8, "seconds": 0.1},
                   {"step": 1, "loss": 0.1, "similarity": 0.9, "seconds": 0.1, "panel": {"resnet": 0.7}}],
         "chamfer": {"start": 0.1, "end": 0.01}, "similarity": {"start": 0.8, "end": 0.9},
         "files": {"curves": "curves.png"}, "error": None}
    r.update(extra)
    return r


def _images(seed=0, n=4, size=16):
    rng = np.random.default_rng(seed)
    t = [rng.random((size, size, 3)).astype(np.float32) for _ in range(n)]
    r = [np.clip(x + 0.04 * rng.standard_normal(x.shape), 0, 1).astype(np.float32) for x in t]
    c = [np.roll(x, 3, axis=1) for x in t]
    return t, r, c


def _png(path, img):
    import imageio.v3 as iio
    path.parent.mkdir(parents=True, exist_ok=True)
    iio.imwrite(path, (np.clip(img, 0, 1) * 255).astype(np.uint8))


@pytest.fixture(scope="module")
def run_dir(tmp_path_factory):
    """A fake run folder: small PNGs, a GIF turntable, and report.json whose evidence comes from end_of_run."""
    from mrd_backend.objectives import build_objective
    import imageio.v3 as iio
    d = tmp_path_factory.mktemp("run")
    t, r, c = _images()
    _png(d / "renders/target_grid.png", np.concatenate(t, 1))
    _png(d / "renders/final_grid.png", np.concatenate(r, 1))
    _png(d / "curves.png", np.random.default_rng(1).random((30, 50, 3)))
    iio.imwrite(d / "renders/turntable.gif", (np.stack(r) * 255).astype(np.uint8), loop=0)
    null = NullDistribution("blob", "studio", "mae", "none", values=list(np.linspace(0.5, 0.9, 20)), views=4,
                            width=16, height=16, target_resample=0.97)
    import trimesh
    m = trimesh.creation.icosphere(1)
    mesh = (np.asarray(m.vertices, np.float32), np.asarray(m.faces, np.int32))
    t2, r2, c2 = _images(seed=5)
    ev = end_of_run(EvidenceInputs(build_objective("mae"), t, r, c, heldout_target_images=t, heldout_result_images=r,
                                   heldout_target_repeats=[t2], heldout_control_repeats=[c2], target_mesh=mesh,
                                   result_mesh=(mesh[0] * 1.01, mesh[1]), null=null, run_dir=d,
                                   panel_models=["mae", "no_such_model"], panel_weights="untrained",
                                   scene="blob", envmap="studio", lpips=False, draws=2000, log=None))
    (d / "report.json").write_text(json.dumps(minimal_report(evidence=ev)))
    return d


def test_schema_accepts_a_minimal_report_and_rejects_others():
    validate_report(minimal_report())
    validate_report(minimal_report(evidence=None, status="running", similarity={"start": 0.8, "end": None}))
    with pytest.raises(MRDError, match="version 2"):
        validate_report(minimal_report(version=2))
    with pytest.raises(MRDError, match="no version"):
        validate_report({k: v for k, v in minimal_report().items() if k != "version"})
    with pytest.raises(MRDError, match="status"):
        validate_report(minimal_report(status="finished"))
    with pytest.raises(MRDError):
        validate_report(minimal_report(steps=[{"step": 0, "loss": 0.1}]))
    with pytest.raises(MRDError):
        validate_report(["not", "a", "report"])
    validate_report(minimal_report(extra_top_level_key={"anything": 1}))  # the top level stays open


def test_end_of_run_evidence_validates_and_is_strict(run_dir):
    report = json.loads((run_dir / "report.json").read_text())
    validate_report(report)
    ev = report["evidence"]
    assert ev["verdict"]["outcome"] in ("metamer", "reconstruction", "not_metamer", "inconclusive", "uninformative")
    assert ev["verdict"]["findings"]["equivalence"]["views"] == 4
    v = ev["research"]  # the research-compatible statistics, unchanged
    assert v["outcome"] in ("supported", "inconclusive", "not supported") and v["n"] == 4
    assert v["sentence"].startswith(("Metamer", "Inconclusive")) and "BF+0" in v["sentence"]
    assert v["sign_flip"]["draws"] == 2000 and len(v["differences"]) == 4
    assert ev["measures"]["result_vs_target"]["mean"]["model"] > ev["measures"]["result_vs_control"]["mean"]["model"]
    assert ev["rsa"]["heldout_views"]["kendall_tau_b"] == pytest.approx(1.0)  # held-out images = the same here
    assert ev["null"]["percentile"] == 100.0 and ev["panel"]["skipped"].keys() == {"no_such_model"}
    assert ev["geometry"]["result"]["chamfer"] >= 0
    for rel in ev["files"].values():
        assert (run_dir / rel).is_file(), rel
    bad = copy.deepcopy(report)
    bad["evidence"]["unexpected"] = 1
    with pytest.raises(MRDError, match="evidence"):
        validate_report(bad)
    bad = copy.deepcopy(report)
    bad["evidence"]["verdict"]["outcome"] = "probably"
    with pytest.raises(MRDError):
        validate_report(bad)


def test_verdict_without_control_is_undetermined(tmp_path):
    from mrd_backend.objectives import build_objective
    t, r, _ = _images(n=3)
    ev = end_of_run(EvidenceInputs(build_objective("mae"), t, r, run_dir=tmp_path, panel_models=[], lpips=False,
                                   log=None))
    assert ev["research"]["outcome"] == "undetermined" and ev["measures"]["result_vs_control"] is None
    assert ev["verdict"]["outcome"] == "inconclusive" and ev["verdict"]["findings"]["equivalence"] is None
    validate_report(minimal_report(evidence=ev))
    masks = [np.zeros((16, 16), bool) for _ in t]
    for m in masks:
        m[4:12, 4:12] = True
    evm = end_of_run(EvidenceInputs(build_objective("mae"), t, r, masks=masks, panel_models=[], lpips=False, log=None))
    assert evm["masked"] and evm["measures"]["result_vs_target"]["mean"]["model"] > ev["measures"][
        "result_vs_target"]["mean"]["model"]  # the zeroed background matches exactly
    with pytest.raises(MRDError, match="mask"):
        end_of_run(EvidenceInputs(build_objective("mae"), t, r, masks=masks[:1], panel_models=[], lpips=False))
    ev2 = end_of_run(EvidenceInputs(build_objective("mae"), t, r, baseline="scores", baseline_scores=[0.1, 0.2, 0.15],
                                    baseline_label="the mae run", panel_models=[], lpips=False, draws=200, log=None))
    assert ev2["research"]["outcome"] == "supported" and "the mae run" in ev2["research"]["sentence"]
    with pytest.raises(MRDError):
        end_of_run(EvidenceInputs(build_objective("mae"), t, r[:2], panel_models=[], lpips=False, log=None))


def _chromium(*args, timeout=90):
    exe = shutil.which("chromium") or shutil.which("chromium-browser")
    return subprocess.run([exe, "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
                           "--disable-background-networking", "--disable-component-update", "--disable-sync",
                           "--enable-logging=stderr", "--v=0", *args], capture_output=True, text=True, timeout=timeout)


@pytest.mark.skipif(not (shutil.which("chromium") or shutil.which("chromium-browser")),
                    reason="no chromium binary: `make test` installs Debian's chromium (apt-get install chromium)")
def test_report_html_loads_in_headless_chromium(run_dir, tmp_path):
    page = write_report_html(run_dir)
    text = page.read_text()
    assert "Metamer" in text or "Inconclusive" in text
    assert not re.search(r'(src|href)="(https?:)?//', text), "the page must not reference the network"
    url = page.resolve().as_uri()
    ud = str(tmp_path / "profile")
    dom = _chromium(f"--user-data-dir={ud}", "--virtual-time-budget=5000", "--dump-dom", url)
    m = re.search(r'data-mrd-check="([^"]*)"', dom.stdout)
    assert m, f"the page's load check did not run: {dom.stderr[-2000:]}"
    check = json.loads(m.group(1).replace("&quot;", '"'))
    assert check["broken"] == [] and check["errors"] == [], check
    assert check["images"] >= 10  # grids, turntable, curves, scores, flip x2, rdms x2, scatter, null
    console = [line for line in dom.stderr.splitlines() if "CONSOLE" in line]
    assert not console, console
    shot = tmp_path / "report.png"
    _chromium(f"--user-data-dir={ud}", "--hide-scrollbars", "--window-size=1200,1800", f"--screenshot={shot}", url)
    assert shot.is_file() and shot.stat().st_size > 10_000
    shutil.copy(shot, run_dir / "report-screenshot.png")


def test_report_html_for_a_failed_run_and_bad_folders(tmp_path):
    (tmp_path / "report.json").write_text(json.dumps(minimal_report(status="failed", error="boom")))
    text = write_report_html(tmp_path).read_text()
    assert "The run failed: boom" in text and "<img " not in text
    with pytest.raises(MRDError, match="run folder"):
        write_report_html(tmp_path / "nope")
    with pytest.raises(MRDError, match="not a run folder"):
        write_report_html(tmp_path / "report.json")
    old = tmp_path / "old"
    old.mkdir()
    (old / "report.json").write_text(json.dumps(minimal_report(version=0)))
    with pytest.raises(MRDError, match="version 0"):
        write_report_html(old)


def test_compare_writes_csv_and_html(run_dir, tmp_path):
    other = tmp_path / "run2"
    other.mkdir()
    (other / "report.json").write_text(json.dumps(minimal_report(model="resnet", weights="untrained", scene="knot")))
    csv_path, html_path = write_compare([run_dir, other], tmp_path / "table")
    import csv
    rows = list(csv.reader(csv_path.read_text().splitlines()))
    assert rows[0] == ["scene / envmap", "mae", "resnet [untrained]"]
    assert rows[1][0] == "blob / studio" and rows[1][1].startswith("0.9000 (") and "BF+0" in rows[1][1]
    assert rows[1][2] == "" and rows[2][1] == "" and rows[2][2] == "0.9000 (no verdict: done)"
    assert "<table>" in html_path.read_text()
    with pytest.raises(MRDError, match="not a run folder"):
        write_compare([tmp_path], tmp_path / "t2")


def test_compare_cli(run_dir, tmp_path, capsys):
    from mrd_backend.cli import main
    assert main(["compare", str(run_dir), "--out", str(tmp_path / "c")]) == 0
    assert (tmp_path / "c.csv").is_file()
    assert main(["compare", str(tmp_path)]) == 2
    assert "not a run folder" in capsys.readouterr().err


def test_null_distribution_build_store_and_refuse(tmp_path):
    from mrd_backend.objectives import build_objective
    from mrd_backend.scenes import load_scene
    spec = dataclasses.replace(load_scene("blob", "studio", views=2, size=12), integrator={"type": "direct"})
    others = default_others("blob", primitives=("sphere", "box"))
    assert "blob" not in [o[0] for o in others] and {"sphere", "box"} <= {o[0] for o in others}
    dist = build_null(spec, build_objective("mae"), others[-2:], per_mesh=2, spp=2, scene="blob", envmap="studio",
                      log=lambda *a: None)
    assert len(dist.values) == 4 and dist.views == 2 and dist.target_resample > max(dist.values) - 0.2
    p = dist.save(tmp_path / "null.json")
    back = load_null(p, scene="blob", envmap="studio", model="mae", weights="none")
    assert back.values == dist.values
    assert back.percentile(2.0) == 100.0 and back.percentile(-1.0) == 0.0
    with pytest.raises(MRDError, match="model 'mae'"):
        load_null(p, model="resnet")
    with pytest.raises(MRDError, match="scene 'blob'"):
        load_null(p, scene="knot")
    (tmp_path / "other.json").write_text(json.dumps({"version": 1}))
    with pytest.raises(MRDError, match="not a null distribution"):
        load_null(tmp_path / "other.json")
    from mrd_backend.evidence.null import plot_null
    assert plot_null(back, tmp_path / "null.png", mark=0.9).stat().st_size > 1000
