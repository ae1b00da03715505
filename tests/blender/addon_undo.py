"""Driver of tests/test_addon_undo.py: runs with the stand-in optimizer, undone or renamed while they go.

    python tests/blender/addon_undo.py TEST TMP
"""
import os
import time

import bpy
from driver import build_scene, enable, main, result, settings


def _run(tmp, epochs, undo_at=None, rename_at=None):
    """One run through the job's timer path; Ctrl+Z once step `undo_at` is shown, or rename the result once step
    `rename_at` is. Returns the job and what was seen then."""
    from mrd_blender_addon import job
    settings(epochs=epochs, keep_every=1, output_dir=os.path.join(tmp, "runs"))
    bpy.ops.ed.undo_push(message="before the run")
    j = job.Job.start(bpy.context)
    job.CURRENT = j
    bpy.ops.ed.undo_push(message="Optimize Metamer")   # what the operator's UNDO flag pushes after it starts
    seen = {}
    t0 = time.time()
    while j.active and time.time() - t0 < 90:
        j.tick()
        if undo_at is not None and j.step is not None and j.step >= undo_at and "undo" not in seen:
            bpy.ops.ed.undo()   # back to before the run: Blender drops the result and its history
            seen["undo"] = sorted(o.name for o in bpy.data.objects if o.get("mrd_run_id"))
        if rename_at is not None and j.step is not None and j.step >= rename_at and "rename" not in seen:
            j.writer.obj().name = "Renamed"
            seen["rename"] = True
        time.sleep(0.03)
    return j, seen


def undo_during_a_run(tmp):
    enable()
    from mrd_blender_addon import apply
    build_scene(tmp, texture=False)
    j, seen = _run(tmp, 10, undo_at=4)
    res = [o for o in bpy.data.objects if o.get("mrd_role") == "result"]
    cols = [c.name for c in bpy.data.collections if c.get("mrd_run_id")]
    segs = [o for o in bpy.data.objects if o.get("mrd_role") == "steps"]
    keys = [k.name for o in segs for k in o.data.shape_keys.key_blocks]
    apply.show_steps(res[0].name, True)
    shown = res[0].hide_get()
    result(status=j.status, undone=seen.get("undo"), results=[o.name for o in res], cols=cols, keys=keys,
           step=res[0].get("mrd_step"), shown=shown,
           orphans=[c.name for c in bpy.data.collections if "steps" in c.name])


def renamed_then_second_run(tmp):
    enable()
    build_scene(tmp, texture=False)
    j1, _ = _run(tmp, 4, rename_at=1)
    j2, _ = _run(tmp, 3)
    res = sorted((o.name, round(o.location.x, 4), o.get("mrd_status")) for o in bpy.data.objects
                 if o.get("mrd_role") == "result")
    first = j1.writer.obj()
    result(s1=j1.status, s2=j2.status, res=res, first=first.name, steps=first.get("mrd_step"),
           objs=[(o.name, o.get("mrd_run_id"), o.get("mrd_role")) for o in bpy.data.objects])


if __name__ == "__main__":
    main({f.__name__: f for f in (undo_during_a_run, renamed_then_second_run)})
