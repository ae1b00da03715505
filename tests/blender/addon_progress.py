"""Driver of tests/test_addon_progress.py: what a run shows while it goes, Cancel, Blender quitting, Resume.

    python tests/blender/addon_progress.py TEST TMP [BACKEND_PYTHON]
"""
import json
import os
import sys
import time

import bpy
from driver import build_scene, enable, main, result, settings


def _start(tmp, epochs):
    """A run of the stand-in optimizer on the test scene, as the current job (driven by the test's own ticks)."""
    from mrd_blender_addon import job
    build_scene(tmp, texture=False)
    settings(epochs=epochs, keep_every=1, output_dir=os.path.join(tmp, "runs"))
    j = job.Job.start(bpy.context)
    job.CURRENT = j
    return j


def time_left_and_phase(tmp):
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


def cancel_latency(tmp):
    enable()
    j = _start(tmp, 200)
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
    res = bpy.data.objects.get(j.target_name + ".metamer")
    proc = j.worker.proc
    alive = proc.poll() is None
    proc.wait(60)
    report = json.loads((j.run_dir / "report.json").read_text())
    result(latency=t_free - t_cancel, status=j.status, alive_after_ui=alive, report=report["status"],
           res_status=res.get("mrd_status"), poll=bpy.ops.mrd.optimize_metamer.poll(), step=j.step,
           final=(j.run_dir / "renders" / "final_grid.png").is_file())


def quit_mid_run(tmp):
    enable()
    j = _start(tmp, 500)
    t0 = time.time()
    while (j.step is None or j.step < 2) and time.time() - t0 < 60:
        j.tick()
        time.sleep(0.05)
    result(run=str(j.run_dir), pid=j.worker.proc.pid, step=j.step)
    sys.exit(0)   # Blender quits: the add-on's exit handler tells the worker


def cancel_then_resume(tmp, backend_python):
    enable()
    from mrd_blender_addon import job
    j = _start(tmp, 6)
    t0 = time.time()
    while j.active and time.time() - t0 < 60:
        j.tick()
        if j.step is not None and j.step >= 2 and j.status == "running":
            j.cancel()
        time.sleep(0.05)
    job.CURRENT, job.LAST = None, j
    res = bpy.data.objects[j.target_name + ".metamer"]
    bpy.context.view_layer.objects.active = res
    can = bpy.ops.mrd.resume.poll()
    before = res.get("mrd_status")
    os.environ["MRD_BACKEND_PYTHON"] = backend_python
    bpy.ops.mrd.resume()
    results = [o.name for o in bpy.data.objects if o.get("mrd_role") == "result"]
    result(can=can, before=before, run=str(j.run_dir), after=res.get("mrd_status"), step=res.get("mrd_step"),
           results=results, status=job.LAST.status, same_run=str(job.LAST.run_dir) == str(j.run_dir))


if __name__ == "__main__":
    main({f.__name__: f for f in (time_left_and_phase, cancel_latency, quit_mid_run, cancel_then_resume)})
