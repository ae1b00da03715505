"""Driver of tests/test_addon_e2e.py (bpy module side): the real run loop driven from Blender, and the scene the
Cycles-vs-Mitsuba check exports.

    python tests/blender/addon_e2e.py TEST TMP
"""
import json
import os
import time

import bpy
import numpy as np
from driver import build_scene, enable, main, record_step_times, result, settings, update_times

# A tiny real run: 2 views of 32 px, 4 spp, 3 epochs, a level-2 icosphere, no remeshing.
TINY = {"views": 2, "resolution": 32, "spp": 4, "epochs": 3, "icosphere_level": 2, "remesh": ""}


def real_shape_run(tmp):
    enable()
    from mrd_blender_addon import job
    record_step_times()
    ob, _ = build_scene(tmp, texture=True)
    settings(**TINY, keep_every=1, output_dir=os.path.join(tmp, "runs"))
    ret = list(bpy.ops.mrd.optimize_metamer())
    j = job.LAST
    res = bpy.data.objects[ob.name + ".metamer"]
    seg = bpy.data.objects[ob.name + ".metamer steps.00"]
    keys = seg.data.shape_keys.key_blocks
    basis = np.array([tuple(k.co) for k in keys["Basis"].data], np.float32)
    final = np.array([tuple(v.co) for v in res.data.vertices], np.float32)
    bpy.ops.mrd.open_renders(which="target")
    result(ret=ret, status=j.status, keys=[k.name for k in keys], moved=float(np.abs(final - basis).max()),
           n=len(final), files=sorted(p.name for p in j.run_dir.iterdir()),
           images=sorted(i.name for i in bpy.data.images), times=update_times(j))


def _cancel_after(j, step, limit=300):
    """Drives the job's timer path and presses Cancel once `step` is shown; waits for the backend to end."""
    from mrd_blender_addon import job
    job.CURRENT = j
    t0 = time.time()
    while j.active and time.time() - t0 < limit:
        j.tick()
        if j.step is not None and j.step >= step and j.status == "running":
            j.cancel()
        time.sleep(0.05)
    j.worker.proc.wait(limit)   # the UI lets go of a cancelled run at once; the backend then finishes its files


def _real_run_cancelled_at_step_1(tmp, epochs):
    """A real run of the tiny scene, cancelled from the UI once step 1 is shown: (the target object, the job)."""
    enable()
    from mrd_blender_addon import job
    ob, _ = build_scene(tmp, texture=False)
    settings(**dict(TINY, epochs=epochs), keep_every=1, output_dir=os.path.join(tmp, "runs"))
    j = job.Job.start(bpy.context)
    _cancel_after(j, 1)
    return ob, j


def real_run_cancelled(tmp):
    ob, j = _real_run_cancelled_at_step_1(tmp, epochs=40)
    report = json.loads((j.run_dir / "report.json").read_text())
    res = bpy.data.objects[ob.name + ".metamer"]
    keys = [k.name for k in bpy.data.objects[ob.name + ".metamer steps.00"].data.shape_keys.key_blocks]
    result(status=j.status, report_status=report["status"], step=j.step, keys=keys,
           steps=sorted(p.name for p in (j.run_dir / "steps").glob("step_*.npz")),
           final=(j.run_dir / "meshes" / "final.ply").is_file(), res_status=res.get("mrd_status"))


def _camera_looking_at(ob):
    sc = bpy.context.scene
    cam = bpy.data.objects.new("Cam", bpy.data.cameras.new("Cam"))
    sc.collection.objects.link(cam)
    sc.camera = cam
    cam.location = (3.5, -4.0, 2.0)
    cam.rotation_euler = (ob.location - cam.location).to_track_quat("-Z", "Y").to_euler()
    return cam


def _render_cycles(tmp, size):
    """A 64 spp direct-light Cycles render of the scene camera, saved as linear float (top row first)."""
    sc = bpy.context.scene
    sc.render.engine = "CYCLES"
    sc.cycles.device, sc.cycles.samples, sc.cycles.seed = "CPU", 64, 0
    sc.cycles.use_denoising = sc.cycles.use_adaptive_sampling = False
    sc.cycles.max_bounces = 0          # direct light only, like the backend's direct_projective integrator
    sc.render.resolution_x, sc.render.resolution_y, sc.render.resolution_percentage = size, size, 100
    sc.view_settings.view_transform, sc.view_settings.look = "Standard", "None"
    sc.render.image_settings.file_format, sc.render.image_settings.color_depth = "OPEN_EXR", "32"
    sc.render.filepath = os.path.join(tmp, "cycles.exr")
    bpy.ops.render.render(write_still=True)
    img = bpy.data.images.load(os.path.join(tmp, "cycles.exr"))
    px = np.zeros(size * size * 4, np.float32)
    img.pixels.foreach_get(px)
    np.save(os.path.join(tmp, "cycles.npy"), px.reshape(size, size, 4)[::-1, :, :3])


def cycles_scene(tmp):
    from addon_helpers import write_hdr
    from mrd_backend.scene.environment import studio
    from mrd_backend.scene.io import save_spec
    from mrd_blender_addon import export
    ob, _ = build_scene(tmp, texture=True, hdr=True, rotation_z=30.0, strength=1.5)
    write_hdr(os.path.join(tmp, "sky.hdr"), img=studio(64))   # smooth, strongly directional light
    bpy.data.images["sky.hdr"].reload()
    cam = _camera_looking_at(ob)
    _render_cycles(tmp, 64)
    ex = export.export_target(ob, bpy.context, camera=cam, width=64, height=64)
    save_spec(ex.spec, os.path.join(tmp, "spec.npz"))
    result(notes=ex.notes)


def real_material_run(tmp):
    enable()
    from mrd_blender_addon import job
    ob, _ = build_scene(tmp, texture=True)
    settings(mode="material", views=2, resolution=32, spp=4, epochs=2, output_dir=os.path.join(tmp, "runs"))
    ret = list(bpy.ops.mrd.optimize_metamer())
    res = bpy.data.objects[ob.name + ".metamer"]
    mat = res.active_material
    bsdf = mat.node_tree.nodes["Principled BSDF"]
    img = bsdf.inputs["Base Color"].links[0].from_node.image
    result(ret=ret, status=job.LAST.status, mat=mat.name, img=img.name, size=list(img.size), file=img.filepath,
           roughness=bsdf.inputs["Roughness"].default_value, backend_roughness=mat.get("mrd_roughness"),
           target_mat=ob.active_material.name, warnings=job.LAST.warnings)


def cancelled_then_resumed(tmp):
    from mrd_blender_addon import job
    ob, j = _real_run_cancelled_at_step_1(tmp, epochs=6)
    job.CURRENT, job.LAST = None, j
    res = bpy.data.objects[ob.name + ".metamer"]
    bpy.context.view_layer.objects.active = res
    first = (res.get("mrd_status"), res.get("mrd_step"))
    ret = list(bpy.ops.mrd.resume())   # background: blocks until the resumed run ends
    report = json.loads((j.run_dir / "report.json").read_text())
    result(ret=ret, first=first, status=job.LAST.status, same=str(job.LAST.run_dir) == str(j.run_dir),
           after=(res.get("mrd_status"), res.get("mrd_step")), report=report["status"],
           results=[o.name for o in bpy.data.objects if o.get("mrd_role") == "result"])


if __name__ == "__main__":
    main({f.__name__: f for f in (real_shape_run, real_run_cancelled, cycles_scene, real_material_run,
                                  cancelled_then_resumed)})
