"""A run survives Ctrl+Z while it goes (its objects are tracked by identity and rebuilt from the step files), and a
second run of the same target is placed beside the first (bpy module, stand-in optimizer)."""
import pytest

from addon_helpers import FAKE, ROOT, has_bpy, run_bpy

pytestmark = [pytest.mark.blender, pytest.mark.skipif(not has_bpy(), reason="needs the bpy module")]
FAKE_ENV = {"MRD_WORKER_OPTIMIZER": FAKE, "MRD_WORKER_PYTHONPATH": str(ROOT / "tests")}

RUN = """
import time
from mrd_blender_addon import apply, job
def run(epochs, undo_at=None, rename_at=None):
    s = bpy.context.scene.mrd
    s.epochs, s.keep_every, s.output_dir = epochs, 1, {runs!r}
    bpy.ops.ed.undo_push(message="before the run")
    j = job.Job.start(bpy.context)
    job.CURRENT = j
    bpy.ops.ed.undo_push(message="Optimize Metamer")   # what the operator's UNDO flag pushes after it starts
    seen = {{}}
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
"""


def test_undo_during_a_run_keeps_its_whole_history(tmp_path):
    r = run_bpy(RUN.format(runs=str(tmp_path / "runs")) + f"""
enable()
ob, _ = build_scene({str(tmp_path)!r}, texture=False)
j, seen = run(10, undo_at=4)
res = [o for o in bpy.data.objects if o.get("mrd_role") == "result"]
cols = [c.name for c in bpy.data.collections if c.get("mrd_run_id")]
segs = [o for o in bpy.data.objects if o.get("mrd_role") == "steps"]
keys = [k.name for o in segs for k in o.data.shape_keys.key_blocks]
apply.show_steps(res[0].name, True)
shown = res[0].hide_get()
result(status=j.status, undone=seen.get("undo"), results=[o.name for o in res], cols=cols, keys=keys,
       step=res[0].get("mrd_step"), shown=shown, orphans=[c.name for c in bpy.data.collections if "steps" in c.name])
""", MRD_FAKE_STEP_SECONDS="0.1", **FAKE_ENV)
    assert r["status"] == "done", r["_stderr"][-2000:]
    assert r["undone"] == []                                  # the undo did remove the run's objects
    assert r["results"] == ["Suzanne.metamer"] and r["step"] == 9   # re-made under its own name, to the end
    assert r["keys"] == ["Basis"] + [f"step {i:06d}" for i in range(1, 10)]   # no step lost (0 is the Basis)
    assert r["cols"] == ["Suzanne.metamer steps"] and r["orphans"] == r["cols"]   # one steps collection
    assert r["shown"]                                         # Show steps finds the history


def test_a_renamed_result_is_still_the_runs_and_a_second_run_goes_beside_the_first(tmp_path):
    r = run_bpy(RUN.format(runs=str(tmp_path / "runs")) + f"""
enable()
ob, _ = build_scene({str(tmp_path)!r}, texture=False)
j1, _ = run(4, rename_at=1)
j2, _ = run(3)
res = sorted((o.name, round(o.location.x, 4), o.get("mrd_status")) for o in bpy.data.objects
             if o.get("mrd_role") == "result")
first = j1.writer.obj()
result(s1=j1.status, s2=j2.status, res=res, first=first.name, steps=first.get("mrd_step"),
       objs=[(o.name, o.get("mrd_run_id"), o.get("mrd_role")) for o in bpy.data.objects])
""", **FAKE_ENV)
    assert r["s1"] == "done" and r["s2"] == "done"
    assert r["first"] == "Renamed" and r["steps"] == 3, r["objs"]        # followed by identity, not re-created
    (n1, x1, st1), (n2, x2, st2) = sorted(r["res"], key=lambda t: t[1])
    assert (n1, n2) == ("Renamed", "Suzanne.metamer") and st1 == st2 == "done"
    assert x2 == pytest.approx(2 * x1, abs=1e-3) and x1 > 0           # the second run one slot further, not on the first
