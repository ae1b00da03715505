"""Progress that tells the truth: time left from steady steps, the finishing phase, Cancel that frees the UI at once
while the worker keeps writing, Blender quitting mid-run, and Resume's launch (bpy module, stand-in optimizer)."""
import json
import os
import stat
import sys
import time

import pytest

from addon_helpers import FAKE, ROOT, has_bpy, run_bpy

pytestmark = [pytest.mark.blender, pytest.mark.skipif(not has_bpy(), reason="needs the bpy module")]
FAKE_ENV = {"MRD_WORKER_OPTIMIZER": FAKE, "MRD_WORKER_PYTHONPATH": str(ROOT / "tests")}


def test_time_left_leaves_out_the_start_up_and_the_finishing_phase_is_shown():
    r = run_bpy("""
enable()
from mrd_blender_addon import job
j = job.Job()
j.status, j.epochs, j.target_name = "running", 100, "X"
texts = []
# step 0 came after 60 s of start-up and kernel compilation; then 2 s per step
for step, elapsed in enumerate([60.0, 75.0, 77.0, 79.0, 81.0, 83.0]):
    j.handle([{"event": "step", "step": step, "epochs": 100, "loss": 1.0, "elapsed": elapsed, "eta": 9999.0}])
    texts.append(j.progress_text())
left = j.time_left()
for step in range(6, 100):
    j.handle([{"event": "step", "step": step, "epochs": 100, "loss": 1.0, "elapsed": 83.0 + 2 * (step - 5)}])
finishing = j.progress_text()
j.handle([{"event": "phase", "name": "evidence", "done": 3, "total": 8}])
phase = j.progress_text()
result(texts=texts, left=left, finishing=finishing, phase=phase)
""")
    assert "estimating time left" in r["texts"][0] and "estimating time left" in r["texts"][2]
    assert r["left"] == pytest.approx(2.0 * 94)                   # 94 steps to go at 2 s, not (83/6) s each
    assert "3m08s left" in r["texts"][-1] and "h" not in r["texts"][-1].split("left")[0].split()[-1]
    assert "finishing: final renders, evidence" in r["finishing"] and "left" not in r["finishing"]
    assert "evidence 3/8" in r["phase"]


def test_cancel_frees_the_ui_within_3_s_and_the_worker_keeps_writing(tmp_path):
    r = run_bpy(f"""
import time
enable()
ob, _ = build_scene({str(tmp_path)!r}, texture=False)
s = bpy.context.scene.mrd
s.epochs, s.keep_every, s.output_dir = 200, 1, {str(tmp_path / "runs")!r}
from mrd_blender_addon import job
j = job.Job.start(bpy.context)
job.CURRENT = j
t0 = time.time()
t_cancel = t_free = None
while time.time() - t0 < 60:
    j.tick()
    if t_cancel is None and j.step is not None and j.step >= 2:
        bpy.ops.mrd.cancel()
        t_cancel = time.time()
    if t_cancel is not None and not j.active:
        t_free = time.time()
        break
    time.sleep(0.05)
res = bpy.data.objects.get(ob.name + ".metamer")
proc = j.worker.proc
alive = proc.poll() is None
proc.wait(60)
report = json.loads((j.run_dir / "report.json").read_text())
result(latency=t_free - t_cancel, status=j.status, alive_after_ui=alive, report=report["status"],
       res_status=res.get("mrd_status"), poll=bpy.ops.mrd.optimize_metamer.poll(), step=j.step,
       final=(j.run_dir / "renders" / "final_grid.png").is_file())
""", MRD_FAKE_STEP_SECONDS="0.1", MRD_FAKE_FINISH_SECONDS="8", **FAKE_ENV)
    print(f"Cancel -> UI free: {r['latency']:.2f} s (the stand-in worker then writes its final files for 8 s)")
    assert r["latency"] < 3.0 and r["status"] == "cancelled" and r["res_status"] == "cancelled" and r["poll"]
    assert r["alive_after_ui"]                                  # the backend was still finishing ...
    assert r["report"] == "cancelled" and r["final"]            # ... and wrote everything


def test_blender_quitting_mid_run_lets_the_worker_finish_as_cancelled(tmp_path):
    r = run_bpy(f"""
import time
enable()
ob, _ = build_scene({str(tmp_path)!r}, texture=False)
s = bpy.context.scene.mrd
s.epochs, s.keep_every, s.output_dir = 500, 1, {str(tmp_path / "runs")!r}
from mrd_blender_addon import job
j = job.Job.start(bpy.context)
job.CURRENT = j
t0 = time.time()
while (j.step is None or j.step < 2) and time.time() - t0 < 60:
    j.tick()
    time.sleep(0.05)
result(run=str(j.run_dir), pid=j.worker.proc.pid, step=j.step)
sys.exit(0)   # Blender quits: the add-on's exit handler tells the worker
""", MRD_FAKE_STEP_SECONDS="0.2", MRD_FAKE_FINISH_SECONDS="1", **FAKE_ENV)
    run = r["run"]
    report = os.path.join(run, "report.json")
    t0 = time.time()
    while not os.path.exists(report) and time.time() - t0 < 30:
        time.sleep(0.2)
    assert json.load(open(report))["status"] == "cancelled"
    events = [json.loads(ln) for ln in open(os.path.join(run, "events.jsonl"))]
    assert events[-1]["event"] == "done" and events[-1]["status"] == "cancelled"
    assert r["step"] < events[-1]["steps"] < 500             # it finished the step it was on, then stopped


FAKE_WORKER = '''
import json, sys, os
open(os.environ["MRD_TEST_ARGV"], "w").write(json.dumps(sys.argv[1:]))
out = sys.argv[sys.argv.index("--resume") + 1]
def emit(**ev):
    print(json.dumps(ev), flush=True)
emit(event="hello", protocol=1, pid=os.getpid(), python="3", out=out, epochs=6)
for step in (4, 5):
    emit(event="step", step=step, epochs=6, loss=0.1, similarity=0.9, elapsed=float(step))
json.dump({{"status": "done"}}, open(os.path.join(out, "report.json"), "w"))
emit(event="done", status="done", out=out, steps=2)
'''


def test_resume_starts_the_worker_on_the_run_folder_and_the_result_follows(tmp_path):
    fake = tmp_path / "fake_worker.py"
    fake.write_text(FAKE_WORKER.replace("{{", "{").replace("}}", "}"))
    python = tmp_path / "python"   # a stand-in backend interpreter that runs the fake worker
    python.write_text(f"#!/bin/sh\nexec {sys.executable} {fake} \"$@\"\n")
    python.chmod(python.stat().st_mode | stat.S_IEXEC)
    r = run_bpy(f"""
import time
enable()
ob, _ = build_scene({str(tmp_path)!r}, texture=False)
s = bpy.context.scene.mrd
s.epochs, s.keep_every, s.output_dir = 6, 1, {str(tmp_path / "runs")!r}
from mrd_blender_addon import job
j = job.Job.start(bpy.context)
job.CURRENT = j
t0 = time.time()
while j.active and time.time() - t0 < 60:
    j.tick()
    if j.step is not None and j.step >= 2 and j.status == "running":
        j.cancel()
    time.sleep(0.05)
job.CURRENT, job.LAST = None, j
res = bpy.data.objects[ob.name + ".metamer"]
bpy.context.view_layer.objects.active = res
can = bpy.ops.mrd.resume.poll()
before = res.get("mrd_status")
os.environ["MRD_BACKEND_PYTHON"] = {str(python)!r}
bpy.ops.mrd.resume()
results = [o.name for o in bpy.data.objects if o.get("mrd_role") == "result"]
result(can=can, before=before, run=str(j.run_dir), after=res.get("mrd_status"), step=res.get("mrd_step"),
       results=results, status=job.LAST.status, same_run=str(job.LAST.run_dir) == str(j.run_dir))
""", MRD_FAKE_STEP_SECONDS="0.2", MRD_TEST_ARGV=str(tmp_path / "argv.json"), **FAKE_ENV)
    argv = json.loads((tmp_path / "argv.json").read_text())
    assert argv == ["-u", "-m", "mrd_backend.worker", "--resume", r["run"], "--exit-on-eof"]
    assert r["can"] and r["before"] == "cancelled"
    assert r["status"] == "done" and r["same_run"] and r["after"] == "done" and r["step"] == 5
    assert r["results"] == ["Suzanne.metamer"]                 # the same result object followed the resumed run
