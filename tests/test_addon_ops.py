"""The add-on inside Blender (bpy module, background mode): register/unregister, Optimize Metamer with a fast
stand-in optimizer (the real loop is in test_addon_e2e.py), the interactive timer path, cancel, and bad inputs."""
import pytest

from addon_helpers import FAKE, ROOT, SCENE, has_bpy, run_bpy

pytestmark = [pytest.mark.blender, pytest.mark.skipif(not has_bpy(), reason="needs the bpy module (pip install bpy)")]
FAKE_ENV = {"MRD_WORKER_OPTIMIZER": FAKE, "MRD_WORKER_PYTHONPATH": str(ROOT / "tests")}

SNAPSHOT = """
def snapshot():
    return {k: sorted(x.name for x in getattr(bpy.data, k)) for k in
            ("objects", "meshes", "materials", "images", "collections")}
"""


def test_register_unregister_leaves_nothing_behind(tmp_path):
    r = run_bpy(SNAPSHOT + f"""
import atexit, addon_utils, threading
fresh()
types_before = set(dir(bpy.types))
load_pre_before = len(bpy.app.handlers.load_pre)
exit_funcs = set()
_reg, _unreg = atexit.register, atexit.unregister
atexit.register = lambda f, *a, **k: (exit_funcs.add(f), _reg(f, *a, **k))[1]
atexit.unregister = lambda f: (exit_funcs.discard(f), _unreg(f))[1]
enable()
registered = [n for n in ("MRD_OT_optimize_metamer", "MRD_OT_cancel", "VIEW3D_PT_mrd")
              if hasattr(bpy.types, n)]
has_prop = hasattr(bpy.types.Scene, "mrd")
ops = [hasattr(bpy.ops.mrd, n) for n in ("optimize_metamer", "cancel", "open_renders", "check_backend")]
# a run (interactive path: the job's timer), then disable while a slow run is still going
bpy.ops.mesh.primitive_monkey_add()
bpy.context.scene.mrd.output_dir = {str(tmp_path)!r}
bpy.context.scene.mrd.epochs = 500
from mrd_blender_addon import job
j = job.Job.start(bpy.context)
job.CURRENT = j
bpy.app.timers.register(job._timer, first_interval=10)
proc = j.worker.proc
addon_utils.disable("mrd_blender_addon", default_set=True)
left = [n for n in dir(bpy.types) if n not in types_before]
result(registered=registered, has_prop=has_prop, ops=ops, left=left,
       prop_after=hasattr(bpy.types.Scene, "mrd"), load_pre=len(bpy.app.handlers.load_pre) - load_pre_before,
       atexit=len(exit_funcs), timer=bpy.app.timers.is_registered(job._timer),
       worker_alive=proc.poll() is None, threads=[t.name for t in threading.enumerate() if t.name.startswith("mrd")])
""", MRD_FAKE_STEP_SECONDS="0.2", **FAKE_ENV)
    assert r["registered"] == ["MRD_OT_optimize_metamer", "MRD_OT_cancel", "VIEW3D_PT_mrd"]
    assert r["has_prop"] and all(r["ops"])
    assert r["left"] == [] and not r["prop_after"]
    assert r["load_pre"] == 0 and r["atexit"] == 0 and not r["timer"]
    assert not r["worker_alive"] and r["threads"] == []


def test_optimize_metamer_shape_run_applies_steps_and_history(tmp_path):
    r = run_bpy(SCENE + SNAPSHOT + f"""
enable()
ob, _ = build_scene({str(tmp_path)!r}, texture=False)
s = bpy.context.scene.mrd
s.epochs, s.keep_every, s.views, s.resolution, s.output_dir = 6, 2, 2, 16, {str(tmp_path / "runs")!r}
bpy.ops.ed.undo_push(message="before")
before = snapshot()
ret = bpy.ops.mrd.optimize_metamer()
from mrd_blender_addon import job
j = job.LAST
res = bpy.data.objects[ob.name + ".metamer"]
col = bpy.data.collections[ob.name + ".metamer steps"]
segs = sorted(o.name for o in col.objects)
keys = {{o.name: [k.name for k in o.data.shape_keys.key_blocks] for o in col.objects}}
# scrub: at frame_start + 4 the second segment shows step 4 exactly
seg1 = bpy.data.objects[segs[1]]
bpy.context.scene.frame_set(bpy.context.scene.frame_start + 4)
dg = bpy.context.evaluated_depsgraph_get()
ev = seg1.evaluated_get(dg)
shown = np.array([tuple(v.co) for v in ev.to_mesh().vertices], np.float32)
ev.to_mesh_clear()
with np.load(j.run_dir / "steps" / "step_000004.npz") as z:
    step4 = z["vertices"]
with np.load(j.run_dir / "steps" / "step_000005.npz") as z:
    final = z["vertices"]
res_v = np.array([tuple(v.co) for v in res.data.vertices], np.float32)
visible = [not seg1.hide_viewport, bpy.data.objects[segs[0]].hide_viewport]
after = snapshot()
n_res, has_sk, mat_name = len(res.data.vertices), res.data.shape_keys is not None, res.active_material.name
name = ob.name
bpy.ops.ed.undo_push(message="after")
bpy.ops.ed.undo()
undone = name + ".metamer" in bpy.data.objects
bpy.ops.ed.redo()
result(ret=list(ret), status=j.status, segs=segs, keys=keys, scrub_err=float(np.abs(shown - step4).max()),
       final_err=float(np.abs(res_v - final).max()), n_res=n_res, visible=visible,
       has_shape_keys=has_sk, material=mat_name,
       new={{k: sorted(set(after[k]) - set(before[k])) for k in after}}, undone=undone,
       redone=name + ".metamer" in bpy.data.objects, times=j.update_times, run=str(j.run_dir),
       step_files=len(list((j.run_dir / "steps").glob("step_*.npz"))))
""", MRD_FAKE_REMESH_AT="2", **FAKE_ENV)
    assert r["ret"] == ["FINISHED"] and r["status"] == "done"
    # two topologies (start sphere, then the remeshed one): two step objects with shape keys
    assert len(r["segs"]) == 2
    k0, k1 = (r["keys"][n] for n in r["segs"])
    assert k0 == ["Basis", "step 000002"]          # steps 0 (basis) and 2 (kept: remesh step)
    assert k1 == ["Basis", "step 000004", "step 000005"]  # 3 (basis), 4 (keep_every 2), 5 (last)
    assert r["scrub_err"] < 1e-6 and r["visible"] == [True, True]
    assert r["final_err"] < 1e-6 and r["n_res"] == 162 and not r["has_shape_keys"]  # final: an ordinary mesh
    assert r["material"] == "MonkeyMat"
    assert r["step_files"] == 6
    new = r["new"]
    assert new["objects"] == sorted(["Suzanne.metamer", *r["segs"]])
    assert new["materials"] == [] and new["collections"] == ["Suzanne.metamer steps"]
    assert new["images"] == ["Suzanne.metamer render"]
    assert not r["undone"] and r["redone"]  # undo removes the finished result, redo brings it back


def test_material_run_updates_textures_and_values(tmp_path):
    r = run_bpy(SCENE + f"""
enable()
ob, _ = build_scene({str(tmp_path)!r}, texture=False)
s = bpy.context.scene.mrd
s.mode, s.epochs, s.output_dir = "material", 3, {str(tmp_path / "runs")!r}
bpy.ops.mrd.optimize_metamer()
res = bpy.data.objects[ob.name + ".metamer"]
mat = res.active_material
bsdf = mat.node_tree.nodes["Principled BSDF"]
base = bsdf.inputs["Base Color"].links[0].from_node.image
px = np.zeros(base.size[0] * base.size[1] * 4, np.float32)
base.pixels.foreach_get(px)
target_v = len(ob.evaluated_get(bpy.context.evaluated_depsgraph_get()).data.vertices)
result(mat=mat.name, base=float(px[0]), metallic=bsdf.inputs["Metallic"].default_value,
       rough_linked=bsdf.inputs["Roughness"].is_linked, colorspace=bsdf.inputs["Roughness"].links[0].from_node.image.colorspace_settings.name,
       saved=base.filepath, n_vertices=len(res.data.vertices), target_vertices=target_v,
       uv=res.data.uv_layers.active is not None, target_mat=ob.active_material.name)
""", **FAKE_ENV)
    assert r["mat"] == "Suzanne.metamer" and r["target_mat"] == "MonkeyMat"  # the target's material is untouched
    assert r["base"] == pytest.approx(0.2, abs=1e-4)   # last step: 0.1 * 2 (saved as half-float EXR)
    assert r["metallic"] == pytest.approx(0.02)
    assert r["rough_linked"] and r["colorspace"] == "Non-Color"
    assert r["saved"].endswith(".exr")     # textures saved into the run folder, so they survive the .blend
    assert r["n_vertices"] == r["target_vertices"] and r["uv"]


def test_interactive_timer_path_and_cancel_keeps_steps(tmp_path):
    r = run_bpy(SCENE + f"""
import time
enable()
ob, _ = build_scene({str(tmp_path)!r}, texture=False)
s = bpy.context.scene.mrd
s.epochs, s.keep_every, s.output_dir = 200, 1, {str(tmp_path / "runs")!r}
from mrd_blender_addon import job
j = job.Job.start(bpy.context)
job.CURRENT = j
t0 = time.time()
ticks = 0
while j.active and time.time() - t0 < 60:
    nxt = j.tick()
    ticks += 1
    if j.step is not None and j.step >= 2 and j.status == "running":
        bpy.ops.mrd.cancel()
    time.sleep(0.05)
res = bpy.data.objects.get(ob.name + ".metamer")
col = bpy.data.collections[ob.name + ".metamer steps"]
keys = [k.name for o in col.objects for k in o.data.shape_keys.key_blocks]
files = sorted(p.name for p in (j.run_dir / "steps").glob("step_*.npz"))
result(status=j.status, step=j.step, keys=keys, files=files, last=job.LAST is j, current=job.CURRENT,
       poll=bpy.ops.mrd.optimize_metamer.poll(), times=j.update_times, res=res is not None, ticks=ticks)
""", MRD_FAKE_STEP_SECONDS="0.15", **FAKE_ENV)
    assert r["status"] == "cancelled" and r["last"] and r["current"] is None and r["poll"]
    assert 3 <= r["step"] + 1 < 200
    assert len(r["files"]) == r["step"] + 1 and len(r["keys"]) == r["step"] + 1  # Basis + one key per step
    assert max(r["times"]) < 0.5


def test_bad_inputs_give_clear_reports_and_leave_the_file_untouched(tmp_path):
    r = run_bpy(SCENE + SNAPSHOT + f"""
import os
enable()
out = {{}}
def attempt(key):
    before = snapshot()
    try:
        ret = list(bpy.ops.mrd.optimize_metamer())
        msg = ""
    except RuntimeError as exc:
        ret, msg = ["error"], str(exc)
    from mrd_blender_addon import job
    if job.LAST is not None and job.LAST.status == "failed" and not msg:
        msg = job.LAST.summary()
    out[key] = [ret, msg, snapshot() == before]
fresh()
bpy.context.scene.mrd.output_dir = {str(tmp_path / "runs")!r}
attempt("no_selection")
cam = bpy.data.objects.new("Cam", bpy.data.cameras.new("Cam"))
bpy.context.scene.collection.objects.link(cam)
bpy.context.view_layer.objects.active = cam
attempt("non_mesh")
empty = bpy.data.objects.new("Empty", bpy.data.meshes.new("Empty"))
bpy.context.scene.collection.objects.link(empty)
bpy.context.view_layer.objects.active = empty
attempt("empty_mesh")
ob, _ = build_scene({str(tmp_path)!r}, texture=True)
bpy.context.scene.mrd.output_dir = {str(tmp_path / "runs")!r}
bpy.context.scene.mrd.epochs = 3
os.remove(os.path.join({str(tmp_path)!r}, "checker.png"))
bpy.data.images["checker.png"].reload()
attempt("missing_image")
ob, _ = build_scene({str(tmp_path)!r}, texture=False)
s = bpy.context.scene.mrd
s.output_dir, s.epochs = {str(tmp_path / "runs")!r}, 3
me = bpy.data.meshes.new("Open")
me.from_pydata([(0, 0, 0), (1, 0, 0), (0, 1, 0), (3, 3, 3)], [], [(0, 1, 2)])
openobj = bpy.data.objects.new("Open", me)
bpy.context.scene.collection.objects.link(openobj)
s.start, s.start_object = "object", openobj
attempt("nonmanifold_start")
s.start = "icosphere"
s.remesh = "ten, twenty"
attempt("bad_remesh")
s.remesh = "auto"
os.environ["MRD_BACKEND_PYTHON"] = {str(tmp_path / "missing" / "python")!r}
attempt("missing_backend")
broken = os.path.join({str(tmp_path)!r}, "brokenpython")
open(broken, "w").write("#!/bin/sh\\necho 'ImportError: libtorch_cpu.so: cannot open shared object file' >&2\\nexit 1\\n")
os.chmod(broken, 0o755)
os.environ["MRD_BACKEND_PYTHON"] = broken
attempt("broken_backend")
os.environ["MRD_BACKEND_PYTHON"] = sys.executable
os.environ["MRD_FAKE_FAIL"] = "no pretrained weights for resnet: run `mrd weights fetch resnet`"
attempt("backend_error")
del os.environ["MRD_FAKE_FAIL"]
os.environ["MRD_FAKE_CRASH_AT"] = "2"
before = snapshot()
try:
    bpy.ops.mrd.optimize_metamer()
    crash_msg = ""
except RuntimeError as exc:
    crash_msg = str(exc)
from mrd_blender_addon import job
res = bpy.data.objects.get(ob.name + ".metamer")
out["crash"] = [crash_msg, res is not None and res.get("mrd_status"), res is not None and res.get("mrd_step"),
                sorted(set(snapshot()["objects"]) - set(before["objects"]))]
result(**out)
""", **FAKE_ENV)
    def check(key, *words, untouched=True):
        ret, msg, same = r[key]
        assert ret in (["error"], ["CANCELLED"]), (key, ret, msg)
        for w in words:
            assert w in msg, (key, msg)
        if untouched:
            assert same, f"{key} changed the file"
    check("no_selection", "nothing is selected")
    check("non_mesh", "camera object, not a mesh")
    check("empty_mesh", "empty mesh")
    check("missing_image", "missing", "Find Missing Files")
    check("nonmanifold_start", "not a closed manifold", "icosphere")
    check("bad_remesh", "not a list of epochs")
    check("missing_backend", "does not exist", "preferences")
    check("broken_backend", "without finishing", "libtorch_cpu.so")
    check("backend_error", "no pretrained weights for resnet")
    msg, status, step, new = r["crash"]
    assert "crashed (exit code 3)" in msg and "simulated crash" in msg
    assert status == "failed" and step == 1  # steps 0 and 1 were applied and kept
    assert new == ["Suzanne.metamer", "Suzanne.metamer steps.00"]


def test_panels_and_preferences_draw(tmp_path):
    from addon_helpers import STUB_LAYOUT
    r = run_bpy(SCENE + STUB_LAYOUT + f"""
enable()
ob, _ = build_scene({str(tmp_path)!r}, texture=False)
from mrd_blender_addon import job, panel, preferences
out = {{}}
for cls in (panel.VIEW3D_PT_mrd, panel.VIEW3D_PT_mrd_advanced, panel.VIEW3D_PT_mrd_results):
    out[cls.__name__] = draw_calls(cls, bpy.context)
s = bpy.context.scene.mrd
s.mode, s.start, s.model, s.weights = "shape", "object", "resnet", "file"
out["shape_object"] = draw_calls(panel.VIEW3D_PT_mrd, bpy.context)
s.output_dir, s.epochs, s.model, s.start = {str(tmp_path / "runs")!r}, 3, "mae", "icosphere"
bpy.ops.mrd.optimize_metamer()   # a finished run: the panel shows its summary
out["after"] = draw_calls(panel.VIEW3D_PT_mrd, bpy.context)
p = preferences.prefs()
fields = {{k: getattr(p, k) for k in ("backend_python", "venv_dir", "base_python", "weights_dir", "variant",
                                      "check_result", "check_ok")}}
out["prefs"] = []
fake = type("Prefs", (), {{"layout": StubLayout(out["prefs"]), "bl_rna": p.bl_rna, **fields}})()
preferences.MRDPreferences.draw(fake, bpy.context)
result(**out)
""", **FAKE_ENV)
    main = r["VIEW3D_PT_mrd"]
    assert ["operator", "mrd.optimize_metamer"] in main
    props = {c[1] for c in main if c[0] == "prop"}
    assert {"target", "mode", "start", "icosphere_level", "model", "views", "spp", "epochs", "lr", "resolution",
            "step_lambda", "remesh", "output_dir"} <= props
    assert {c[1] for c in r["VIEW3D_PT_mrd_advanced"] if c[0] == "prop"} >= {"reg_laplacian", "reg_edge", "reg_area",
                                                                             "reg_arap", "keep_every"}
    assert {"start_object", "weights", "weights_file"} <= {c[1] for c in r["shape_object"] if c[0] == "prop"}
    assert any(c[0] == "label" and "MRD done" in c[1] for c in r["after"])
    assert ["operator", "mrd.check_backend"] in r["prefs"] and ["operator", "mrd.install_backend"] in r["prefs"]


def test_preferences_check_and_install_report_problems(tmp_path):
    r = run_bpy(f"""
fresh()
enable()
from mrd_blender_addon import preferences
p = preferences.prefs()
out = {{}}
os.environ["MRD_BACKEND_PYTHON"] = {str(tmp_path / "none" / "python")!r}
try:
    bpy.ops.mrd.check_backend()
except RuntimeError:
    pass
out["check"] = [p.check_ok, p.check_result]
# the install button's plan: a venv from the base Python, then pip installs the backend's packages into it
cmds = preferences.install_commands(preferences.default_venv(), "/usr/bin/python3")
out["cmds"] = [c[:4] for c in cmds]
out["reqs"] = preferences.requirements()
# an install that fails (a base Python that cannot make a venv) says so, and Blender's Python is untouched
bad = os.path.join({str(tmp_path)!r}, "badpython")
open(bad, "w").write("#!/bin/sh\\necho 'No module named venv' >&2\\nexit 1\\n")
os.chmod(bad, 0o755)
p.base_python, p.venv_dir = bad, {str(tmp_path / "venv")!r}
out["offline"] = ""
if not getattr(bpy.app, "online_access", True):  # the bpy module starts offline: the button refuses, clearly
    try:
        bpy.ops.mrd.install_backend("EXEC_DEFAULT")
    except RuntimeError as exc:
        out["offline"] = str(exc)
    bpy.context.preferences.system.use_online_access = True
bpy.ops.mrd.install_backend("EXEC_DEFAULT")
out["install"] = [p.check_ok, p.check_result, open({str(tmp_path / "backend-install.log")!r}).read()]
result(**out)
""")
    ok, text = r["check"]
    assert ok == "no" and "does not exist" in text
    venv, pip_up, pip = r["cmds"]
    assert venv[1:3] == ["-m", "venv"] and pip[1:4] == ["-m", "pip", "install"]
    assert any(x.startswith("mitsuba") for x in r["reqs"]) and any(x.startswith("torch") for x in r["reqs"])
    assert r["offline"] == "" or "offline mode" in r["offline"]
    ok, text, log = r["install"]
    assert ok == "no" and "failed (exit 1)" in text and "backend-install.log" in text
    assert "No module named venv" in log
