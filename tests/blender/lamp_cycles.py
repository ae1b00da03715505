"""Renders a diffuse object lit by one lamp with Cycles and exports the same scene (bpy module, one process).

    python tests/blender/lamp_cycles.py OUT_DIR LAMP [SIZE SPP]
    blender -b --factory-startup --python tests/blender/lamp_cycles.py -- OUT_DIR LAMP [SIZE SPP]

LAMP: comma-separated, each one of point | sun | spot | square | rectangle | disk | ellipse | factory (Blender's
factory scene: its Light and world, the default cube). Writes OUT_DIR/LAMP_cycles.npy (linear RGBA, top row first) and OUT_DIR/LAMP_spec.npz
(the exported SceneSpec), and prints one JSON line (LAMPS {...}) with each export's notes and warnings.
"""
import json
import math
import os
import sys

import bpy
import numpy as np

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
sys.path.insert(0, ROOT)


def aim(ob, target):
    from mathutils import Vector
    d = Vector(target) - ob.location
    ob.rotation_euler = d.to_track_quat("-Z", "Y").to_euler()


def lamp(kind):
    """One lamp of each type, placed so that it lights the object from above and one side."""
    btype = {"point": "POINT", "sun": "SUN", "spot": "SPOT"}.get(kind, "AREA")
    la = bpy.data.lights.new(kind, btype)
    ob = bpy.data.objects.new(kind, la)
    bpy.context.scene.collection.objects.link(ob)
    la.color = (1.0, 0.9, 0.8)
    if kind == "point":
        ob.location, la.energy, la.shadow_soft_size = (1.5, -2.0, 2.5), 600.0, 0.1
    elif kind == "sun":
        ob.location, la.energy = (2.0, -1.0, 3.0), 4.0
    elif kind == "spot":
        ob.location, la.energy, la.shadow_soft_size = (0.6, -1.2, 3.0), 1500.0, 0.05
        la.spot_size, la.spot_blend = math.radians(50), 0.3
    else:
        ob.location, la.energy = (1.2, -1.5, 2.2), 300.0
        la.shape = kind.upper()
        la.size, la.size_y = (1.0, 0.4) if kind in ("rectangle", "ellipse") else (0.8, 0.8)
        ob.scale = (1.0, 1.5, 1.0) if kind == "ellipse" else (1.0, 1.0, 1.0)
    aim(ob, (0.0, 0.0, 0.0))
    return ob


def build(kind):
    if kind == "factory":
        bpy.ops.wm.read_factory_settings(use_empty=False)
        return bpy.data.objects["Cube"], bpy.data.objects["Camera"]
    bpy.ops.wm.read_factory_settings(use_empty=True)
    sc = bpy.context.scene
    bpy.ops.mesh.primitive_uv_sphere_add(radius=0.6, location=(0, 0, 0.6), segments=48, ring_count=24)
    sphere = bpy.context.active_object
    bpy.ops.object.shade_smooth()
    bpy.ops.mesh.primitive_plane_add(size=4.0)
    plane = bpy.context.active_object
    sphere.select_set(True)
    bpy.context.view_layer.objects.active = plane
    bpy.ops.object.join()   # one object: a sphere standing on a floor (its shadow shows where the light is)
    ob = bpy.context.active_object
    for p in ob.data.polygons:
        p.use_smooth = True
    mat = bpy.data.materials.new("Grey")
    mat.use_nodes = True
    nt = mat.node_tree
    for n in list(nt.nodes):
        if n.bl_idname != "ShaderNodeOutputMaterial":
            nt.nodes.remove(n)
    diff = nt.nodes.new("ShaderNodeBsdfDiffuse")
    diff.inputs["Color"].default_value = (0.7, 0.7, 0.7, 1.0)
    nt.links.new(diff.outputs["BSDF"], nt.nodes["Material Output"].inputs["Surface"])
    ob.data.materials.append(mat)
    world = bpy.data.worlds.new("Black")
    world.color = (0.0, 0.0, 0.0)
    if world.node_tree is not None and "Background" in world.node_tree.nodes:   # Blender 5 worlds have nodes
        world.node_tree.nodes["Background"].inputs["Color"].default_value = (0.0, 0.0, 0.0, 1.0)
    sc.world = world
    lamp(kind)
    cam = bpy.data.objects.new("Cam", bpy.data.cameras.new("Cam"))
    sc.collection.objects.link(cam)
    sc.camera = cam
    cam.location = (0.0, -5.5, 4.0)
    aim(cam, (0.0, 0.0, 0.3))
    return ob, cam


def render_and_export(out, kind, size, spp):
    ob, cam = build(kind)
    sc = bpy.context.scene
    sc.render.engine = "CYCLES"
    sc.cycles.device, sc.cycles.samples, sc.cycles.seed = "CPU", spp, 0
    sc.cycles.use_denoising = sc.cycles.use_adaptive_sampling = False
    sc.cycles.max_bounces = 0     # direct light only, like the backend's direct_projective integrator
    sc.render.film_transparent = True   # alpha: where the object is
    sc.render.resolution_x, sc.render.resolution_y, sc.render.resolution_percentage = size, size, 100
    sc.view_settings.view_transform, sc.view_settings.look = "Standard", "None"
    sc.view_settings.exposure, sc.view_settings.gamma = 0.0, 1.0
    sc.render.image_settings.file_format, sc.render.image_settings.color_depth = "OPEN_EXR", "32"
    sc.render.filepath = os.path.join(out, f"{kind}_cycles.exr")
    bpy.ops.render.render(write_still=True)
    img = bpy.data.images.load(sc.render.filepath)
    px = np.zeros(size * size * 4, np.float32)
    img.pixels.foreach_get(px)
    np.save(os.path.join(out, f"{kind}_cycles.npy"), px.reshape(size, size, 4)[::-1])
    import addon_utils
    addon_utils.enable("mrd_blender_addon", default_set=True, handle_error=None)
    from mrd_blender_addon import export
    from mrd_backend.scene.io import save_spec
    ex = export.export_target(ob, bpy.context, camera=cam, width=size, height=size)
    save_spec(ex.spec, os.path.join(out, f"{kind}_spec.npz"))
    return {"notes": ex.notes, "warnings": ex.warnings, "lights": len(ex.spec.lights)}


def main():
    args = sys.argv[sys.argv.index("--") + 1:] if "--" in sys.argv else sys.argv[1:]   # a Blender binary's too
    out, kinds = args[0], args[1].split(",")
    size = int(args[2]) if len(args) > 2 else 64
    spp = int(args[3]) if len(args) > 3 else 64
    print("LAMPS " + json.dumps({k: render_and_export(out, k, size, spp) for k in kinds}), flush=True)


if __name__ == "__main__":
    main()
