"""Checkpoints, resume, signals and exit statuses: a run that is cancelled, killed or whose callback fails keeps
what it wrote, says how it ended, and continues to the end it was configured for."""
import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest

from conftest import tiny_config
from mrd_backend import optimize
from mrd_backend.errors import EXIT_CANCELLED, MRDError

QUIET = dict(log=lambda *a: None)


def _report(out) -> dict:
    return json.loads((Path(out) / "report.json").read_text())


def _stop_after(n):
    seen = []
    return (lambda s: seen.append(s.step)), (lambda: len(seen) >= n)


@pytest.mark.slow
def test_a_resumed_run_ends_where_an_uninterrupted_one_ends(tmp_path):
    """With --deterministic (one render thread) a run cut two steps after a remesh and resumed ends bit for bit
    where the uninterrupted run ends: the checkpoint holds everything the loop's state depends on."""
    kw = dict(epochs=7, remesh=[2], lr=0.05, deterministic=True)
    whole = optimize(tiny_config(out=str(tmp_path / "whole"), **kw), **QUIET)
    callback, stop = _stop_after(5)
    cut = optimize(tiny_config(out=str(tmp_path / "cut"), **kw), callback=callback, should_stop=stop, **QUIET)
    assert cut.status == "cancelled"
    assert [s["step"] for s in _report(cut.out)["steps"]] == [0, 1, 2, 3, 4]
    assert (cut.out / "meshes" / "final.ply").is_file() and (cut.out / "checkpoint" / "state.npz").is_file()

    resumed = optimize(resume=cut.out, **QUIET)
    assert resumed.out == cut.out and resumed.status == "done"
    rep, ref = _report(cut.out), _report(whole.out)
    assert [s["step"] for s in rep["steps"]] == [s["step"] for s in ref["steps"]] == list(range(7))
    assert [s["remeshed"] for s in rep["steps"]] == [s["remeshed"] for s in ref["steps"]]
    assert [s["lr"] for s in rep["steps"]] == [s["lr"] for s in ref["steps"]]
    assert [s["loss"] for s in rep["steps"]] == [s["loss"] for s in ref["steps"]]
    assert rep["resumed"][0]["from_step"] == 5
    assert rep["chamfer"] == ref["chamfer"] and rep["loss"]["end"] == ref["loss"]["end"]
    assert np.array_equal(resumed.vertices, whole.vertices) and np.array_equal(resumed.faces, whole.faces)
    assert "step_renders" in rep["files"] and len(set(rep["files"]["step_renders"])) == len(rep["files"]["step_renders"])


@pytest.mark.slow
def test_resume_of_a_finished_run_starts_nothing(tmp_path):
    done = optimize(tiny_config(epochs=1, out=str(tmp_path / "r")), **QUIET)
    before = (done.out / "report.json").stat().st_mtime_ns
    again = optimize(resume=done.out, **QUIET)
    assert again.status == "done" and (done.out / "report.json").stat().st_mtime_ns == before


def test_resume_of_a_folder_that_is_not_a_run_says_so(tmp_path):
    with pytest.raises(MRDError, match="not a run folder"):
        optimize(resume=tmp_path)


@pytest.mark.slow
def test_an_exception_in_the_callback_is_the_callers_error(tmp_path):
    def callback(step):
        if step.step == 1:
            raise ValueError("my plotting broke")
    with pytest.raises(MRDError, match="callback raised ValueError: my plotting broke .at step 1.") as info:
        optimize(tiny_config(out=str(tmp_path / "r")), callback=callback, **QUIET)
    assert "internal error" not in str(info.value)
    rep = _report(tmp_path / "r")
    assert rep["status"] == "failed" and [s["step"] for s in rep["steps"]] == [0, 1]


@pytest.mark.slow
def test_sys_exit_in_the_callback_leaves_a_cancelled_report(tmp_path):
    with pytest.raises(SystemExit):
        optimize(tiny_config(out=str(tmp_path / "r")), callback=lambda s: sys.exit(0), **QUIET)
    rep = _report(tmp_path / "r")
    assert rep["status"] == "cancelled" and (tmp_path / "r" / "meshes" / "final.ply").is_file()


def _cli(*args, **kw):
    return subprocess.Popen([sys.executable, "-m", "mrd_backend.cli", *args], stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True, **kw)


@pytest.mark.slow
@pytest.mark.parametrize("sig", [signal.SIGTERM, signal.SIGHUP])
def test_a_signal_cancels_like_ctrl_c_and_the_run_resumes_to_its_end(tmp_path, sig):
    cfg = tmp_path / "tiny.json"
    cfg.write_text(json.dumps(dict(views=2, width=32, height=32, spp=2, remesh=[], start_subdivisions=3,
                                   patience=0, evidence=False, turntable_frames=0, panel_every=-1)))
    out = tmp_path / "run"
    p = _cli("optimize", "blob", "constant", "mae", "-e", "40", "--config", str(cfg), "--out", str(out))
    deadline = time.time() + 120
    while time.time() < deadline:
        try:
            if len(_report(out)["steps"]) >= 2:
                break
        except (OSError, ValueError, KeyError):
            pass
        time.sleep(0.2)
    else:
        p.kill()
        pytest.fail("the run logged no steps: " + p.communicate()[1][-2000:])
    p.send_signal(sig)
    stdout, err = p.communicate(timeout=120)
    assert p.returncode == EXIT_CANCELLED, err[-2000:]
    assert f"mrd optimize --resume {out}" in stdout and "Traceback" not in err
    rep = _report(out)
    assert rep["status"] == "cancelled"
    assert (out / "meshes" / "final.ply").is_file() and (out / "report.html").is_file()
    assert not list(out.rglob("*.tmp*")), "a temporary file was left behind"
    cut_at = rep["steps"][-1]["step"]
    assert cut_at < 39

    r = subprocess.run([sys.executable, "-m", "mrd_backend.cli", "optimize", "--resume", str(out)],
                       capture_output=True, text=True, timeout=600)
    assert r.returncode == 0, r.stderr[-2000:]
    rep = _report(out)
    assert rep["status"] == "done" and [s["step"] for s in rep["steps"]] == list(range(40))
    # from the last checkpoint: the step after the last one logged (or that one again, when the signal came
    # between writing its report entry and its checkpoint)
    assert rep["resumed"][0]["from_step"] in (cut_at, cut_at + 1)


def test_resume_refuses_a_changed_configuration(tmp_path):
    r = subprocess.run([sys.executable, "-m", "mrd_backend.cli", "optimize", "--resume", str(tmp_path), "--lr", "1"],
                       capture_output=True, text=True, env={**os.environ})
    assert r.returncode == 2 and "drop --lr" in r.stderr and "Traceback" not in r.stderr


@pytest.mark.slow
def test_a_full_disk_is_one_line_and_leaves_no_temporary_files(tmp_path):
    disk = tmp_path / "disk"
    disk.mkdir()
    if subprocess.run(["mount", "-t", "tmpfs", "-o", "size=700k", "tmpfs", str(disk)], capture_output=True).returncode:
        pytest.skip("cannot mount a small tmpfs here (needs root): the full-disk case is not exercised")
    try:
        cfg = tmp_path / "tiny.json"
        cfg.write_text(json.dumps(dict(views=2, width=32, height=32, spp=2, remesh=[], start_subdivisions=3,
                                       patience=0, evidence=False, turntable_frames=0, panel_every=-1, mesh_every=1)))
        out = disk / "run"
        r = subprocess.run([sys.executable, "-m", "mrd_backend.cli", "optimize", "blob", "constant", "mae", "-e", "200",
                            "--config", str(cfg), "--out", str(out)], capture_output=True, text=True, timeout=600)
        assert r.returncode == 2, r.stderr[-2000:]
        assert "Traceback" not in r.stderr and "disk is full" in r.stderr, r.stderr[-2000:]
        assert not [p for p in out.rglob("*") if ".tmp" in p.name], "temporary files left behind"
        rep = json.loads((out / "report.json").read_text())
        assert rep["status"] == "failed" and "disk is full" in rep["error"] and rep["steps"]
    finally:
        subprocess.run(["umount", str(disk)])


@pytest.mark.slow
def test_a_material_run_resumes_bit_for_bit(tmp_path):
    """A bundled material scene (its target is rebuilt from the config) with Adam's moments on bitmaps and scalars."""
    from mrd_backend.config import RunConfig
    base = dict(scene="diffuse", envmap="studio", model="mae", width=32, height=32, spp=4, epochs=5,
                texture_size=[16, 16], patience=0, render_every=100, evidence=False, turntable_frames=0,
                panel_every=-1, deterministic=True, lr=0.1)
    whole = optimize(RunConfig(**base, out=str(tmp_path / "whole")), **QUIET)
    callback, stop = _stop_after(2)
    cut = optimize(RunConfig(**base, out=str(tmp_path / "cut")), callback=callback, should_stop=stop, **QUIET)
    assert cut.status == "cancelled" and (cut.out / "checkpoint" / "target-from-config").is_file()
    resumed = optimize(resume=cut.out, **QUIET)
    rep, ref = _report(resumed.out), _report(whole.out)
    assert resumed.status == "done" and [s["loss"] for s in rep["steps"]] == [s["loss"] for s in ref["steps"]]
    assert rep["material"] == ref["material"]


@pytest.mark.slow
def test_resume_can_extend_a_run_and_checks_the_new_end(tmp_path):
    done = optimize(tiny_config(epochs=2, out=str(tmp_path / "r")), **QUIET)
    with pytest.raises(MRDError, match="epochs must be at least 1"):
        optimize({"epochs": 0}, resume=done.out, **QUIET)
    longer = optimize({"epochs": 4}, resume=done.out, **QUIET)
    assert longer.status == "done" and [s["step"] for s in _report(done.out)["steps"]] == [0, 1, 2, 3]
