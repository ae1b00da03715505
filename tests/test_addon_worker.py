"""The worker protocol and its client, without Blender: `python -m mrd_backend.worker` driven by
mrd_blender_addon.client (stdlib only). Most tests use a fast stand-in optimizer; one runs the real loop."""
import json
import sys
import time

import numpy as np
import pytest

from addon_helpers import FAKE, ROOT, env
from mrd_backend.scene.cameras import CameraRig
from mrd_backend.scene.spec import SceneSpec
from mrd_backend.scene.io import save_spec
from mrd_blender_addon import client


def _inputs(tmp_path, epochs=4, mode="shape", **cfg):
    v = np.array([[0, 0, 0], [1, 0, 0], [0, 1, 0], [0, 0, 1]], np.float32)
    f = np.array([[0, 2, 1], [0, 1, 3], [0, 3, 2], [1, 2, 3]], np.int32)
    save_spec(SceneSpec(v, f, cameras=CameraRig(n_views=2, width=16, height=16), name="tet"), tmp_path / "scene.npz")
    out = tmp_path / "run"
    config = {"scene": "blender", "model": "mae", "mode": mode, "views": 2, "width": 16, "height": 16, "spp": 4,
              "epochs": epochs, "out": str(out), **cfg}
    (tmp_path / "config.json").write_text(json.dumps(config))
    return out


@pytest.fixture
def fake(monkeypatch):
    for k, v in env(MRD_WORKER_OPTIMIZER=FAKE).items():
        monkeypatch.setenv(k, v)
    monkeypatch.setenv("MRD_WORKER_PYTHONPATH", str(ROOT / "tests"))


def _worker(tmp_path, **cfg):
    out = _inputs(tmp_path, **cfg)
    return client.Worker(sys.executable, out, tmp_path / "scene.npz", tmp_path / "config.json").start()


def test_stream_hello_steps_done_and_atomic_files(tmp_path, fake, monkeypatch):
    monkeypatch.setenv("MRD_FAKE_REMESH_AT", "1")
    w = _worker(tmp_path, epochs=4)
    events = list(w.events(timeout=60))
    kinds = [e["event"] for e in events]
    assert kinds[0] == "hello" and events[0]["protocol"] == 1 and events[0]["epochs"] == 4
    assert kinds[-1] == "done" and events[-1]["status"] == "done" and events[-1]["steps"] == 4
    steps = [e for e in events if e["event"] == "step"]
    assert [s["step"] for s in steps] == [0, 1, 2, 3]
    assert "log" in kinds  # the backend's log lines travel as events; its stdout noise does not
    assert [s["topology"] for s in steps] == [0, 0, 1, 1]  # the remesh after step 1 changes the faces
    for s in steps:
        with np.load(w.out / s["data"]) as z:
            assert z["vertices"].shape == (s["n_vertices"], 3) and z["vertices"].dtype == np.float32
            assert ("faces" in z.files) == (s["faces"] == s["data"])
            assert z["render"].dtype == np.uint8
        assert s["loss"] is not None and s["eta"] >= 0
    assert not list((w.out / "steps").glob(".*tmp"))  # no temporary files left
    assert w.returncode == 0 or w.proc.wait(10) == 0


def test_cancel_stops_after_the_current_step_and_keeps_files(tmp_path, fake, monkeypatch):
    monkeypatch.setenv("MRD_FAKE_STEP_SECONDS", "0.3")
    w = _worker(tmp_path, epochs=50)
    seen = []
    for ev in w.events(timeout=60):
        seen.append(ev)
        if ev["event"] == "step" and ev["step"] == 1:
            w.cancel()
    done = seen[-1]
    assert done["event"] == "done" and done["status"] == "cancelled"
    steps = [e for e in seen if e["event"] == "step"]
    assert 2 <= len(steps) < 50
    assert all((w.out / s["data"]).is_file() for s in steps)
    assert w.proc.wait(10) == 0


def test_a_crash_is_reported_with_the_log_tail(tmp_path, fake, monkeypatch):
    monkeypatch.setenv("MRD_FAKE_CRASH_AT", "2")
    w = _worker(tmp_path, epochs=10)
    events = list(w.events(timeout=60))
    assert [e["step"] for e in events if e["event"] == "step"] == [0, 1]
    err = events[-1]
    assert err["event"] == "error" and "crashed (exit code 3)" in err["message"]
    assert "simulated crash" in err["message"] and "worker.log" in err["message"]


def test_backend_errors_arrive_as_one_line(tmp_path, fake, monkeypatch):
    monkeypatch.setenv("MRD_FAKE_FAIL", "no pretrained weights for resnet: run `mrd weights fetch resnet`")
    w = _worker(tmp_path)
    events = list(w.events(timeout=60))
    assert events[-1] == {"event": "error", "message": "no pretrained weights for resnet: run `mrd weights fetch "
                          "resnet`", "out": str(w.out.resolve())}
    assert w.proc.wait(10) == 1
    (tmp_path / "b").mkdir()
    w2 = _worker(tmp_path / "b", bogus_key=1)
    err = list(w2.events(timeout=60))[-1]
    assert err["event"] == "error" and "unknown config keys bogus_key" in err["message"]


@pytest.mark.slow
def test_check_reports_what_is_there_and_what_is_missing(tmp_path):
    ok = client.check_backend(sys.executable)
    assert ok["ok"], ok["message"]
    assert ok["modules"]["mitsuba"] and "mae" in ok["models"] and ok["protocol"] == 1
    missing = client.check_backend(str(tmp_path / "nope" / "python"))
    assert not missing["ok"] and "does not exist" in missing["message"]
    broken = tmp_path / "python"
    broken.write_text("#!/bin/sh\necho 'error while loading shared libraries: libpython3.11.so' >&2\nexit 127\n")
    broken.chmod(0o755)
    bad = client.check_backend(str(broken))
    assert not bad["ok"] and "not a usable backend Python" in bad["message"] and "libpython" in bad["message"]


def test_check_names_missing_packages(tmp_path):
    venv = tmp_path / "venv"
    import venv as venv_mod
    venv_mod.create(venv, with_pip=False)  # a bare Python: no numpy, mitsuba, torch
    info = client.check_backend(str(venv / "bin" / "python"))
    assert not info["ok"]
    text = " ".join(info["missing"])
    for pkg in ("numpy", "mitsuba", "torch"):
        assert pkg in text


@pytest.mark.slow
def test_real_run_through_the_worker(tmp_path, monkeypatch):
    for k, v in env().items():
        monkeypatch.setenv(k, v)
    w = _worker(tmp_path, epochs=3, spp=4, start_subdivisions=2, remesh=[])
    t0 = time.time()
    events = list(w.events(timeout=300))
    assert events[-1]["event"] == "done", events[-1]
    steps = [e for e in events if e["event"] == "step"]
    assert len(steps) == 3 and steps[0]["n_vertices"] == 162
    with np.load(w.out / steps[0]["data"]) as a, np.load(w.out / steps[-1]["data"]) as b:
        assert np.abs(a["vertices"] - b["vertices"]).max() > 0  # the shape moved
    assert (w.out / "meshes" / "final.ply").is_file() and (w.out / "report.json").is_file()
    print(f"real tiny run through the worker: {time.time() - t0:.1f} s")


@pytest.mark.slow
def test_a_cancelled_run_resumes_through_the_worker(tmp_path, monkeypatch):
    import subprocess
    for k, v in env().items():
        monkeypatch.setenv(k, v)
    w = _worker(tmp_path, epochs=6, spp=4, start_subdivisions=2, remesh=[], evidence=False, turntable_frames=0,
                panel_every=-1, patience=0)
    for ev in w.events(timeout=300):
        if ev["event"] == "step" and ev["step"] == 1:
            w.cancel()
    assert ev["event"] == "done" and ev["status"] == "cancelled"
    p = subprocess.run([sys.executable, "-m", "mrd_backend.worker", "--resume", str(w.out)], capture_output=True,
                       text=True, timeout=300)
    events = [json.loads(line) for line in p.stdout.splitlines()]
    assert events[0]["event"] == "hello" and events[0]["resumed_from"] >= 2, p.stderr[-2000:]
    steps = [e["step"] for e in events if e["event"] == "step"]
    assert steps == list(range(events[0]["resumed_from"], 6))
    assert events[-1]["event"] == "done" and events[-1]["status"] == "done" and p.returncode == 0
    with np.load(w.out / [e for e in events if e["event"] == "step"][0]["data"]) as z:
        assert "faces" in z.files  # a resumed stream starts a topology: the client gets the faces again
    report = json.loads((w.out / "report.json").read_text())
    assert [s["step"] for s in report["steps"]] == list(range(6)) and report["status"] == "done"
