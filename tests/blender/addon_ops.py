"""Driver of tests/test_addon_ops.py: the add-on inside a bpy process, one test per function.

    python tests/blender/addon_ops.py TEST TMP     (env: the stand-in optimizer's, set by the test)
"""
import atexit
import os
import sys
import threading
import time
from pathlib import Path

import bpy
import numpy as np
from driver import build_scene, draw_calls, enable, fresh, main, record_step_times, result, settings, snapshot
from driver import StubLayout, update_times

# The add-on's modules are imported inside each test, after enable() (as Blender imports them).


def register_unregister(tmp):
    import addon_utils   # importable once bpy is
    fresh()
    types_before = set(dir(bpy.types))
    load_pre_before = len(bpy.app.handlers.load_pre)
    exit_funcs = set()
    _reg, _unreg = atexit.register, atexit.unregister
    atexit.register = lambda f, *a, **k: (exit_funcs.add(f), _reg(f, *a, **k))[1]
    atexit.unregister = lambda f: (exit_funcs.discard(f), _unreg(f))[1]
    enable()
    from mrd_blender_addon import job
    registered = [n for n in ("MRD_OT_optimize_metamer", "MRD_OT_cancel", "VIEW3D_PT_mrd") if hasattr(bpy.types, n)]
    has_prop = hasattr(bpy.types.Scene, "mrd")
    ops = [hasattr(bpy.ops.mrd, n) for n in ("optimize_metamer", "cancel", "open_renders", "check_backend")]
    # a run (interactive path: the job's timer), then disable while a slow run is still going
    bpy.ops.mesh.primitive_monkey_add()
    settings(output_dir=tmp, epochs=500)
    j = job.Job.start(bpy.context)
    job.CURRENT = j
    bpy.app.timers.register(job._timer, first_interval=10)
    proc = j.worker.proc
    addon_utils.disable("mrd_blender_addon", default_set=True)
    left = [n for n in dir(bpy.types) if n not in types_before]
    result(registered=registered, has_prop=has_prop, ops=ops, left=left,
           prop_after=hasattr(bpy.types.Scene, "mrd"), load_pre=len(bpy.app.handlers.load_pre) - load_pre_before,
           atexit=len(exit_funcs), timer=bpy.app.timers.is_registered(job._timer),
           worker_alive=proc.poll() is None,
           threads=[t.name for t in threading.enumerate() if t.name.startswith("mrd")])


def _evaluated_vertices(obj):
    ev = obj.evaluated_get(bpy.context.evaluated_depsgraph_get())
    shown = np.array([tuple(v.co) for v in ev.to_mesh().vertices], np.float32)
    ev.to_mesh_clear()
    return shown


def _step_vertices(j, step):
    with np.load(j.run_dir / "steps" / f"step_{step:06d}.npz") as z:
        return z["vertices"]


def shape_run(tmp):
    enable()
    from mrd_blender_addon import job
    record_step_times()
    ob, _ = build_scene(tmp, texture=False)
    settings(epochs=6, keep_every=2, views=2, resolution=16, output_dir=os.path.join(tmp, "runs"))
    bpy.ops.ed.undo_push(message="before")
    before = snapshot()
    ret = bpy.ops.mrd.optimize_metamer()
    j = job.LAST
    res = bpy.data.objects[ob.name + ".metamer"]
    col = bpy.data.collections[ob.name + ".metamer steps"]
    segs = sorted(o.name for o in col.objects)
    keys = {o.name: [k.name for k in o.data.shape_keys.key_blocks] for o in col.objects}
    # scrub: at frame_start + 4 the second segment shows step 4 exactly
    seg1 = bpy.data.objects[segs[1]]
    bpy.context.scene.frame_set(bpy.context.scene.frame_start + 4)
    shown = _evaluated_vertices(seg1)
    step4, final = _step_vertices(j, 4), _step_vertices(j, 5)
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
           new={k: sorted(set(after[k]) - set(before[k])) for k in after}, undone=undone,
           redone=name + ".metamer" in bpy.data.objects, times=update_times(j), run=str(j.run_dir),
           step_files=len(list((j.run_dir / "steps").glob("step_*.npz"))))


def material_run(tmp):
    enable()
    ob, _ = build_scene(tmp, texture=False)
    settings(mode="material", epochs=3, output_dir=os.path.join(tmp, "runs"))
    bpy.ops.mrd.optimize_metamer()
    res = bpy.data.objects[ob.name + ".metamer"]
    mat = res.active_material
    bsdf = mat.node_tree.nodes["Principled BSDF"]
    base = bsdf.inputs["Base Color"].links[0].from_node.image
    px = np.zeros(base.size[0] * base.size[1] * 4, np.float32)
    base.pixels.foreach_get(px)
    target_v = len(ob.evaluated_get(bpy.context.evaluated_depsgraph_get()).data.vertices)
    result(mat=mat.name, base=float(px[0]), metallic=bsdf.inputs["Metallic"].default_value,
           rough_linked=bsdf.inputs["Roughness"].is_linked,
           colorspace=bsdf.inputs["Roughness"].links[0].from_node.image.colorspace_settings.name,
           saved=base.filepath, n_vertices=len(res.data.vertices), target_vertices=target_v,
           uv=res.data.uv_layers.active is not None, target_mat=ob.active_material.name)


def timer_and_cancel(tmp):
    enable()
    from mrd_blender_addon import job
    record_step_times()
    ob, _ = build_scene(tmp, texture=False)
    settings(epochs=200, keep_every=1, output_dir=os.path.join(tmp, "runs"))
    j = job.Job.start(bpy.context)
    job.CURRENT = j
    t0 = time.time()
    ticks = 0
    while j.active and time.time() - t0 < 60:
        j.tick()
        ticks += 1
        if j.step is not None and j.step >= 2 and j.status == "running":
            bpy.ops.mrd.cancel()
        time.sleep(0.05)
    res = bpy.data.objects.get(ob.name + ".metamer")
    col = bpy.data.collections[ob.name + ".metamer steps"]
    keys = [k.name for o in col.objects for k in o.data.shape_keys.key_blocks]
    files = sorted(p.name for p in (j.run_dir / "steps").glob("step_*.npz"))
    result(status=j.status, step=j.step, keys=keys, files=files, last=job.LAST is j, current=job.CURRENT,
           poll=bpy.ops.mrd.optimize_metamer.poll(), times=update_times(j), res=res is not None, ticks=ticks)


def _attempt(out, key):
    """Optimize Metamer once: [return value or "error", the message, whether the file is unchanged]."""
    from mrd_blender_addon import job
    before = snapshot()
    try:
        ret = list(bpy.ops.mrd.optimize_metamer())
        msg = ""
    except RuntimeError as exc:
        ret, msg = ["error"], str(exc)
    if job.LAST is not None and job.LAST.status == "failed" and not msg:
        msg = job.LAST.summary()
    out[key] = [ret, msg, snapshot() == before]


def _link(obj):
    bpy.context.scene.collection.objects.link(obj)
    bpy.context.view_layer.objects.active = obj


def _bad_selections(tmp, out):
    fresh()
    settings(output_dir=os.path.join(tmp, "runs"))
    _attempt(out, "no_selection")
    _link(bpy.data.objects.new("Cam", bpy.data.cameras.new("Cam")))
    _attempt(out, "non_mesh")
    _link(bpy.data.objects.new("Empty", bpy.data.meshes.new("Empty")))
    _attempt(out, "empty_mesh")
    build_scene(tmp, texture=True)
    settings(output_dir=os.path.join(tmp, "runs"), epochs=3)
    os.remove(os.path.join(tmp, "checker.png"))
    bpy.data.images["checker.png"].reload()
    _attempt(out, "missing_image")


def _bad_settings(tmp, out):
    s = settings(output_dir=os.path.join(tmp, "runs"), epochs=3)
    me = bpy.data.meshes.new("Open")
    me.from_pydata([(0, 0, 0), (1, 0, 0), (0, 1, 0), (3, 3, 3)], [], [(0, 1, 2)])
    openobj = bpy.data.objects.new("Open", me)
    bpy.context.scene.collection.objects.link(openobj)
    s.start, s.start_object = "object", openobj
    _attempt(out, "nonmanifold_start")
    s.start = "icosphere"
    s.remesh = "ten, twenty"
    _attempt(out, "bad_remesh")
    s.remesh = "auto"


def _bad_backends(tmp, out):
    os.environ["MRD_BACKEND_PYTHON"] = os.path.join(tmp, "missing", "python")
    _attempt(out, "missing_backend")
    broken = os.path.join(tmp, "brokenpython")
    with open(broken, "w") as f:
        f.write("#!/bin/sh\necho 'ImportError: libtorch_cpu.so: cannot open shared object file' >&2\nexit 1\n")
    os.chmod(broken, 0o755)
    os.environ["MRD_BACKEND_PYTHON"] = broken
    _attempt(out, "broken_backend")
    os.environ["MRD_BACKEND_PYTHON"] = sys.executable
    os.environ["MRD_FAKE_FAIL"] = "no pretrained weights for resnet: run `mrd weights fetch resnet`"
    _attempt(out, "backend_error")
    del os.environ["MRD_FAKE_FAIL"]


def bad_inputs(tmp):
    enable()
    out = {}
    _bad_selections(tmp, out)
    ob, _ = build_scene(tmp, texture=False)
    _bad_settings(tmp, out)
    _bad_backends(tmp, out)
    os.environ["MRD_FAKE_CRASH_AT"] = "2"
    before = snapshot()
    try:
        bpy.ops.mrd.optimize_metamer()
        crash_msg = ""
    except RuntimeError as exc:
        crash_msg = str(exc)
    res = bpy.data.objects.get(ob.name + ".metamer")
    out["crash"] = [crash_msg, res is not None and res.get("mrd_status"), res is not None and res.get("mrd_step"),
                    sorted(set(snapshot()["objects"]) - set(before["objects"]))]
    result(**out)


def panels_and_preferences(tmp):
    enable()
    from mrd_blender_addon import panel, preferences
    build_scene(tmp, texture=False)
    out = {}
    for cls in (panel.VIEW3D_PT_mrd, panel.VIEW3D_PT_mrd_advanced, panel.VIEW3D_PT_mrd_results):
        out[cls.__name__] = draw_calls(cls, bpy.context)
    settings(mode="shape", start="object", model="resnet", weights="file")
    out["shape_object"] = draw_calls(panel.VIEW3D_PT_mrd, bpy.context)
    settings(output_dir=os.path.join(tmp, "runs"), epochs=3, model="mae", start="icosphere")
    bpy.ops.mrd.optimize_metamer()   # a finished run: the panel shows its summary
    out["after"] = draw_calls(panel.VIEW3D_PT_mrd, bpy.context)
    p = preferences.prefs()
    fields = {k: getattr(p, k) for k in ("backend_python", "venv_dir", "base_python", "weights_dir", "variant",
                                         "check_result", "check_ok")}
    out["prefs"] = []
    fake = type("Prefs", (), {"layout": StubLayout(out["prefs"]), "bl_rna": p.bl_rna, **fields})()
    preferences.MRDPreferences.draw(fake, bpy.context)
    result(**out)


def preferences_check_and_install(tmp):
    fresh()
    enable()
    from mrd_blender_addon import preferences
    p = preferences.prefs()
    out = {}
    os.environ["MRD_BACKEND_PYTHON"] = os.path.join(tmp, "none", "python")
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
    bad = os.path.join(tmp, "badpython")
    with open(bad, "w") as f:
        f.write("#!/bin/sh\necho 'No module named venv' >&2\nexit 1\n")
    os.chmod(bad, 0o755)
    p.base_python, p.venv_dir = bad, os.path.join(tmp, "venv")
    out["offline"] = ""
    if not getattr(bpy.app, "online_access", True):  # the bpy module starts offline: the button refuses, clearly
        try:
            bpy.ops.mrd.install_backend("EXEC_DEFAULT")
        except RuntimeError as exc:
            out["offline"] = str(exc)
        bpy.context.preferences.system.use_online_access = True
    bpy.ops.mrd.install_backend("EXEC_DEFAULT")
    with open(os.path.join(tmp, "backend-install.log")) as f:
        out["install"] = [p.check_ok, p.check_result, f.read()]
    result(**out)


def run_folder_names(tmp):
    """Run folders taken in the same second: the backend's suffixes -2, -3 (never a reused folder)."""
    import datetime as dt

    from mrd_blender_addon import run_folder

    class Frozen(dt.datetime):
        @classmethod
        def now(cls, tz=None):
            return cls(2026, 1, 2, 3, 4, 5)
    run_folder.datetime = Frozen
    root = Path(tmp) / "runs"
    names = []
    for _ in range(3):
        path = run_folder.new_run_folder(root, "Suzanne-shape-mae")
        path.mkdir(parents=True)
        names.append(path.name)
    result(names=names)


if __name__ == "__main__":
    main({f.__name__: f for f in (register_unregister, shape_run, material_run, timer_and_cancel, bad_inputs,
                                  panels_and_preferences, preferences_check_and_install, run_folder_names)})
