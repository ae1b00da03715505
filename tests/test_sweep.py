"""`mrd sweep`: grid expansion, resume after a killed sweep, submitit's local executor, W&B offline, sweep.html."""
import csv
import json
import os
import re
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from mrd_backend.errors import MRDError
from mrd_backend.sweep import cell as cellmod
from mrd_backend.sweep.grid import check_names, expand, read_sweep_file

ROOT = Path(__file__).resolve().parents[1]
# A cell as cheap as a real run gets: 32 px, 2 views, 2 epochs, 2 spp, no end-of-run evidence, no turntables.
TINY = ["--epochs", "2", "--dims", "32", "--spp", "2", "--nviews", "2", "--no-evidence", "--panel-every", "-1"]


def test_grid_from_flags_and_file(tmp_path):
    cells = expand({"scenes": ["blob", "knot"], "envmaps": ["constant"], "models": ["mae", "vgg"],
                    "seeds": [1, 2]}, {"epochs": 2, "dims": [32], "no-evidence": True})
    assert len(cells) == 8 and len({c.name for c in cells}) == 8
    c = cells[0]
    assert c.name == "blob-constant-mae-s1"
    assert c.argv("OUT") == ["blob", "constant", "mae", "--out", "OUT", "--seed", "1", "--epochs", "2", "--dims", "32",
                             "--no-evidence"]
    f = tmp_path / "grid.yaml"
    f.write_text("scenes: [blob, knot]\nenvmaps: [constant, sky]\nmodels: [mae]\n"
                 "flags: {epochs: 3, nviews: 2, views: 4, l: 20}\n"
                 "overrides:\n  - match: {scene: knot, envmap: sky}\n    flags: {spp: 8, reg_edge: 0.5}\n"
                 "cells:\n  - {scene: suzanne, envmap: studio, model: mae, name: monkey, flags: {epochs: 5}}\n")
    cells = expand(read_sweep_file(f), {"epochs": 2})
    by = {c.name: c for c in cells}
    assert sorted(by) == ["blob-constant-mae", "blob-sky-mae", "knot-constant-mae", "knot-sky-mae", "monkey"]
    assert by["knot-sky-mae"].flags == {"epochs": 2, "nviews": 4, "l": 20, "spp": 8, "reg-edge": 0.5}
    assert by["blob-sky-mae"].flags == {"epochs": 2, "nviews": 4, "l": 20}
    assert by["monkey"].flags["epochs"] == 5 and "-l" in by["monkey"].argv("x")
    j = tmp_path / "grid.json"
    j.write_text(json.dumps({"scenes": ["blob"], "envmaps": ["constant"], "models": ["mae"], "modes": ["shape"]}))
    assert [c.name for c in expand(read_sweep_file(j))] == ["blob-constant-mae-shape"]
    # bad input: one clear line each
    for spec, msg in [({"scenes": ["blob"], "envmaps": ["constant"]}, "needs models"),
                      ({"scenes": ["blob"], "envmaps": ["c"], "models": ["mae"], "flags": {"epoch": 2}}, "unknown flag"),
                      ({"scenes": ["blob"], "envmaps": ["c"], "models": ["mae"], "flags": {"out": "x"}}, "per cell"),
                      ({}, "no cells"),
                      ({"cells": [{"scene": "blob", "envmap": "c", "model": "mae"}] * 2}, "share the name")]:
        with pytest.raises(MRDError, match=msg):
            expand(spec)
    with pytest.raises(MRDError, match="unknown model"):
        check_names(expand({"scenes": ["blob"], "envmaps": ["constant"], "models": ["nope"]}))
    (tmp_path / "bad.yaml").write_text("scenes: [blob\n")
    with pytest.raises(MRDError, match="cannot be read"):
        read_sweep_file(tmp_path / "bad.yaml")


def test_cell_plan_skip_resume_restart(tmp_path, monkeypatch):
    run = tmp_path / "blob-constant-mae"
    assert cellmod.plan(run) == "fresh"
    run.mkdir()
    (run / "report.json").write_text(json.dumps({"status": "running"}))
    monkeypatch.setattr(cellmod, "optimize_supports_resume", lambda: True)
    assert cellmod.plan(run) == "restart"          # no checkpoint: start again
    (run / "config.json").write_text("{}")
    (run / "checkpoint").mkdir()
    (run / "checkpoint" / "target.npz").write_bytes(b"")
    assert cellmod.plan(run) == "resume"
    monkeypatch.setattr(cellmod, "optimize_supports_resume", lambda: False)
    assert cellmod.plan(run) == "restart"          # an mrd without --resume
    for status in ("done", "stopped_early"):
        (run / "report.json").write_text(json.dumps({"status": status}))
        assert cellmod.plan(run) == "skip"
    # a cell that runs right now (its marker fresh, its process alive) is left alone; a dead one's marker is stale
    (run / "report.json").write_text(json.dumps({"status": "running"}))
    cellmod.marker(run).parent.mkdir()
    cellmod.marker(run).write_text(json.dumps({"host": os.uname().nodename, "pid": os.getpid()}))
    assert cellmod.plan(run) == "busy"
    dead = subprocess.Popen(["true"])
    dead.wait()
    cellmod.marker(run).write_text(json.dumps({"host": os.uname().nodename, "pid": dead.pid}))
    assert cellmod.plan(run) == "restart"
    cellmod.marker(run).write_text(json.dumps({"host": "another-node", "pid": 1}))
    assert cellmod.plan(run) == "busy"
    os.utime(cellmod.marker(run), (time.time() - 600, time.time() - 600))
    assert cellmod.plan(run) == "restart"
    assert cellmod._set_aside(run).name == "blob-constant-mae.attempt-1" and not run.exists()


def _fake_report(d: Path, status="done", sim=(0.5, 0.8), outcome="metamer", seed=1):
    d.mkdir(parents=True)
    d.joinpath("report.json").write_text(json.dumps({
        "status": status, "mode": "shape", "seconds": 3.0, "weights": "pretrained", "config": {"seed": seed},
        "similarity": {"start": sim[0], "end": sim[1]}, "chamfer": {"start": 0.01, "end": 0.005},
        "steps": [{"step": 0, "similarity": sim[0]}, {"step": 1, "similarity": sim[1]}],
        "evidence": {"verdict": {"outcome": outcome, "deciding": {"heldout_similarity": 0.9, "ceiling": 0.95}},
                     "research": {"bayes": {"bf_plus0": 12.0}},
                     "null": {"target_resample": 0.95, "percentile": 90.0}}}))


def test_aggregates_with_seeds(tmp_path):
    from mrd_backend.sweep.aggregate import write_aggregates
    cells = [c.to_dict() for c in expand({"scenes": ["blob"], "envmaps": ["constant"], "models": ["mae", "vgg"],
                                          "seeds": [1, 2, 3]})]
    for i, c in enumerate(cells[:-1]):   # the last cell never ran
        _fake_report(tmp_path / c["name"], sim=(0.5, 0.7 + 0.05 * i), outcome=["metamer", "inconclusive"][i % 2],
                     seed=c["seed"])
    paths = write_aggregates(cells, tmp_path)
    rows = list(csv.DictReader(open(paths["csv"])))
    assert [r["cell"] for r in rows] == [c["name"] for c in cells]
    assert rows[0]["outcome"] == "metamer" and float(rows[0]["noise_ceiling"]) == 0.95
    assert float(rows[0]["heldout_similarity"]) == 0.9 and float(rows[0]["bf_plus0"]) == 12.0
    assert rows[-1]["status"] == "not started" and rows[-1]["similarity_end"] == ""
    text = paths["html"].read_text()
    assert "95 % CI" in text and text.count("data:image/png;base64,") == 6
    assert not re.search(r'(src|href)="(https?:)?//', text)


def _sweep_cmd(out, *extra):
    return [sys.executable, "-m", "mrd_backend.cli", "sweep", "--scenes", "blob", "knot", "--envmaps", "constant",
            "--models", "mae", *TINY, "--out", str(out), *extra]


def _env():
    return dict(os.environ, PYTHONPATH=str(ROOT), RAY_DISABLE_USAGE_STATS="1")


@pytest.mark.slow
@pytest.mark.timeout(300)
def test_sweep_resumes_after_being_killed(tmp_path):
    """Kill a Ray sweep (its whole process group: driver, Ray and the cell in flight) once the first cell is done;
    the same command again runs only what is missing, and a third time starts nothing."""
    out = tmp_path / "sw"
    proc = subprocess.Popen(_sweep_cmd(out, "--max-parallel", "1"), env=_env(), start_new_session=True,
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    try:
        deadline = time.time() + 200
        while time.time() < deadline and proc.poll() is None:
            done = [d for d in ("blob-constant-mae", "knot-constant-mae") if cellmod.is_finished(out / d)]
            if done:
                break
            time.sleep(0.5)
        assert done, f"no cell finished: {proc.stdout.read() if proc.poll() is not None else ''}"
    finally:
        try:
            os.killpg(proc.pid, signal.SIGKILL)
        except ProcessLookupError:  # it had ended on its own
            pass
        proc.wait()
    first = done[0]
    other = ({"blob-constant-mae", "knot-constant-mae"} - {first}).pop()
    stamp = json.loads((out / first / "report.json").read_text())["started"]
    r = subprocess.run(_sweep_cmd(out), env=_env(), capture_output=True, text=True, timeout=240)
    assert r.returncode == 0, r.stderr[-3000:]
    state = json.loads((out / "sweep.json").read_text())
    assert state["cells"][first]["action"] == "skip"
    assert state["cells"][other]["action"] in ("fresh", "restart", "resume")
    assert json.loads((out / first / "report.json").read_text())["started"] == stamp  # not run again
    assert cellmod.is_finished(out / other)
    rows = list(csv.DictReader(open(out / "sweep.csv")))
    assert {r["status"] for r in rows} == {"done"} and len(rows) == 2
    r = subprocess.run(_sweep_cmd(out), env=_env(), capture_output=True, text=True, timeout=120)
    assert r.returncode == 0 and "0 to run" in r.stderr, r.stderr[-2000:]
    assert not list((out / "logs").glob("*.running"))


@pytest.fixture(scope="module")
def local_sweep(tmp_path_factory):
    """One cell through submitit's local executor, logged to W&B offline."""
    pytest.importorskip("submitit")
    pytest.importorskip("wandb", reason="wandb is an optional extra: pip install 'mrd[wandb]'")
    from mrd_backend.cli import main
    out = tmp_path_factory.mktemp("sweep") / "sw"
    os.environ.setdefault("PYTHONPATH", str(ROOT))
    rc = main(["sweep", "--scenes", "blob", "--envmaps", "constant", "--models", "mae", *TINY, "--out", str(out),
               "--executor", "local", "--wandb", "--wandb-project", "mrd-test"])
    return rc, out


@pytest.mark.slow
@pytest.mark.timeout(240)
def test_submitit_local_executor(local_sweep):
    rc, out = local_sweep
    assert rc == 0
    report = json.loads((out / "blob-constant-mae" / "report.json").read_text())
    assert report["status"] == "done" and report["similarity"]["end"] > 0
    state = json.loads((out / "sweep.json").read_text())
    assert state["engine"]["engine"] == "submitit-local" and state["engine"]["job_ids"]
    assert list((out / "submitit").iterdir()), "submitit's job folder"
    rows = list(csv.DictReader(open(out / "sweep.csv")))
    assert len(rows) == 1 and rows[0]["status"] == "done" and float(rows[0]["similarity_end"]) > 0


@pytest.mark.slow
def test_wandb_offline_run(local_sweep):
    rc, out = local_sweep
    runs = list((out / "wandb").glob("offline-run-*"))
    assert len(runs) == 1, list((out / "wandb").iterdir()) if (out / "wandb").exists() else "no wandb folder"
    data = next(runs[0].glob("run-*.wandb")).read_bytes()
    assert b"similarity" in data and b"chamfer/end" in data    # per-step history and the final report's summary
    assert json.loads((runs[0] / "files" / "report.json").read_text())["status"] == "done"
    assert list((runs[0] / "files" / "media" / "images").rglob("*.png"))   # target and result grids


def _chromium(*args, timeout=90):
    exe = shutil.which("chromium") or shutil.which("chromium-browser")
    return subprocess.run([exe, "--headless", "--no-sandbox", "--disable-gpu", "--no-first-run",
                           "--disable-background-networking", "--disable-component-update", "--disable-sync",
                           "--enable-logging=stderr", "--v=0", *args], capture_output=True, text=True, timeout=timeout)


@pytest.mark.slow
@pytest.mark.skipif(not (shutil.which("chromium") or shutil.which("chromium-browser")),
                    reason="no chromium binary: `make test` installs Debian's chromium (apt-get install chromium)")
def test_sweep_html_in_headless_chromium(local_sweep, tmp_path):
    rc, out = local_sweep
    page = out / "sweep.html"
    ud = str(tmp_path / "profile")
    dom = _chromium(f"--user-data-dir={ud}", "--virtual-time-budget=5000", "--dump-dom", page.resolve().as_uri())
    m = re.search(r'data-mrd-check="([^"]*)"', dom.stdout)
    assert m, f"the page's load check did not run: {dom.stderr[-2000:]}"
    check = json.loads(m.group(1).replace("&quot;", '"'))
    assert check == {"images": 6, "broken": [], "errors": [], "cells": 1}, check
    assert not [line for line in dom.stderr.splitlines() if "CONSOLE" in line]
    shot = tmp_path / "sweep.png"
    _chromium(f"--user-data-dir={ud}", "--hide-scrollbars", "--window-size=1200,1600", f"--screenshot={shot}",
              page.resolve().as_uri())
    assert shot.is_file() and shot.stat().st_size > 10_000


def test_declared_memory_per_cell():
    from mrd_backend.sweep.engines import cell_memory_gb
    base = {"scenes": ["blob"], "envmaps": ["constant"], "models": ["mae", "resnet"]}
    mae, resnet = expand(base)
    assert cell_memory_gb(mae) == cell_memory_gb(resnet) == 8.0     # the six-network panel at the end
    mae, resnet = expand(base, {"no-evidence": True})
    assert (cell_memory_gb(mae), cell_memory_gb(resnet)) == (2.0, 4.0)
    assert cell_memory_gb(expand(base, {"panel-models": []})[0]) == 2.0


@pytest.mark.slow
def test_an_unfinished_cell_is_resumed_and_a_failed_one_set_aside(tmp_path):
    """A cancelled cell with a checkpoint continues in its own folder (`mrd optimize --resume`); one without a
    checkpoint is renamed aside, files kept, and runs again from scratch."""
    from conftest import tiny_config
    from mrd_backend import optimize
    if not cellmod.optimize_supports_resume():
        pytest.skip("this mrd has no `mrd optimize --resume`")
    seen = []
    cut = optimize(tiny_config(epochs=3, views=2, width=32, height=32, spp=2, out=str(tmp_path / "blob-studio-mae")),
                   callback=lambda s: seen.append(s.step), should_stop=lambda: len(seen) >= 1, log=lambda *a: None)
    assert cut.status == "cancelled"
    cell = {"name": "blob-studio-mae", "scene": "blob", "envmap": "studio", "model": "mae", "flags": {}}
    res = cellmod.run_cell(cell, str(tmp_path))
    assert res["action"] == "resume" and res["status"] == "done" and res["returncode"] == 0, res
    rep = json.loads((tmp_path / "blob-studio-mae" / "report.json").read_text())
    assert [s["step"] for s in rep["steps"]] == [0, 1, 2] and rep["resumed"]
    assert cellmod.run_cell(cell, str(tmp_path))["action"] == "skip"
    # no checkpoint (e.g. killed before its first step): set aside with its files, then a new run from scratch
    # (here one that stops at once on bad input, exit status 2: the cell stays unfinished)
    broken = tmp_path / "knot-constant-mae"
    broken.mkdir()
    (broken / "report.json").write_text(json.dumps({"status": "running"}))
    cell = {"name": "knot-constant-mae", "scene": "knot", "envmap": "constant", "model": "mae",
            "flags": {"epochs": 1, "dims": [32], "nviews": 2, "spp": 0}}
    res = cellmod.run_cell(cell, str(tmp_path))
    assert res["action"] == "restart" and res["returncode"] == 2 and res["exit"] == "bad input", res
    assert res["status"] != "done" and "spp" in Path(res["log"]).read_text()
    assert json.loads((tmp_path / "knot-constant-mae.attempt-1" / "report.json").read_text())["status"] == "running"


def test_slurm_job_script_asks_for_the_cells_resources(tmp_path, monkeypatch):
    """No SLURM here: a stand-in `srun` lets submitit build the job script that sbatch would get."""
    pytest.importorskip("submitit")
    from mrd_backend.sweep.engines import EngineOptions, make_submitit_executor
    cells = expand({"scenes": ["blob"], "envmaps": ["constant"], "models": ["mae", "resnet"]}, {"no-evidence": True})
    opts = EngineOptions(executor="slurm", partition="gpu", gpus_per_cell=1, cpus_per_cell=4, max_parallel=8,
                         timeout_min=90)
    monkeypatch.setenv("PATH", str(tmp_path), prepend=os.pathsep)
    with pytest.raises(MRDError, match="SLURM is not reachable"):
        if shutil.which("srun"):
            raise MRDError("SLURM is not reachable (this machine has srun: skip the check)")
        make_submitit_executor(opts, tmp_path, cells)
    srun = tmp_path / "srun"
    srun.write_text("#!/bin/sh\nexit 0\n")
    srun.chmod(0o755)
    ex = make_submitit_executor(opts, tmp_path, cells)
    from submitit.slurm.slurm import _make_sbatch_string
    script = _make_sbatch_string(command="true", folder=str(tmp_path), **ex._executor.parameters)
    for line in ("--partition=gpu", "--gpus-per-node=1", "--cpus-per-task=4", "--mem=4GB", "--time=90"):
        assert f"#SBATCH {line}" in script, script
    array = _make_sbatch_string(command="true", folder=str(tmp_path), map_count=20, **ex._executor.parameters)
    assert "#SBATCH --array=0-19%8" in array   # one job array, at most --max-parallel cells at once
    with pytest.raises(MRDError, match="partition"):
        make_submitit_executor(EngineOptions(executor="slurm"), tmp_path, cells)
