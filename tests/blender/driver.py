"""Shared set-up of the add-on tests' bpy processes, imported by the driver scripts in this folder. Each bpy test
runs a driver in a fresh Python process (tests/addon_helpers.py `run_driver`; bpy's state is global) and sends its
outcome back as one line `@@RESULT@@{json}` (`result(...)`), which `run_driver` reads.
"""
from __future__ import annotations

import json
import math
import os
import sys
from pathlib import Path

import bpy
import numpy as np

ROOT = Path(__file__).resolve().parents[2]
for _p in (ROOT / "scripts", ROOT / "tests", ROOT):   # the add-on, addon_helpers, bench_addon (StepTimes)
    if str(_p) not in sys.path:
        sys.path.insert(0, str(_p))

from addon_helpers import MARK, write_hdr  # noqa: E402  (after the path set-up above)



def result(**kw):
    """Sends the test's outcome to the pytest side."""
    print(MARK + json.dumps(kw, default=lambda x: x.tolist() if hasattr(x, "tolist") else str(x)), flush=True)


def args() -> list[str]:
    """The driver's command-line arguments (after `--` when run by a Blender binary)."""
    return sys.argv[sys.argv.index("--") + 1:] if "--" in sys.argv else sys.argv[1:]


def main(tests: dict):
    """Runs the test named by the first argument with the remaining ones."""
    name, *rest = args()
    tests[name](*rest)


def fresh():
    bpy.ops.wm.read_homefile(use_empty=True)


def enable():
    import addon_utils
    mod = addon_utils.enable("mrd_blender_addon", default_set=True, handle_error=None)
    assert mod is not None, "the add-on did not enable"
    return mod


def snapshot() -> dict:
    """The names of the datablocks a run may create, to compare before and after."""
    return {k: sorted(x.name for x in getattr(bpy.data, k)) for k in
            ("objects", "meshes", "materials", "images", "collections")}


def settings(**values):
    """Sets fields of the scene's MRD settings; returns them."""
    s = bpy.context.scene.mrd
    for k, v in values.items():
        setattr(s, k, v)
    return s


def record_step_times():
    """Every job records its main-thread time per step from now on (scripts/bench_addon.py's StepTimes)."""
    from bench_addon import install_step_times
    install_step_times()


def update_times(job) -> list[float]:
    from bench_addon import step_times
    return step_times(job).update_times


def _checker_texture(tmp, nt, bsdf, expected):
    img = bpy.data.images.new("checker", 8, 4, alpha=False)
    px = np.zeros((4, 8, 4), np.float32)
    px[..., 3] = 1
    px[..., 0] = np.linspace(0, 1, 8)[None, :]
    px[..., 1] = np.linspace(0, 1, 4)[:, None]
    px[..., 2] = 0.25
    img.pixels.foreach_set(px.ravel())
    img.filepath_raw = os.path.join(tmp, "checker.png")
    img.file_format = "PNG"
    img.save()
    img = bpy.data.images.load(os.path.join(tmp, "checker.png"))
    node = nt.nodes.new("ShaderNodeTexImage")
    node.image = img
    nt.links.new(node.outputs["Color"], bsdf.inputs["Base Color"])
    raw = np.zeros(img.size[0] * img.size[1] * 4, np.float32)
    img.pixels.foreach_get(raw)
    expected["tex"] = raw.reshape(img.size[1], img.size[0], 4)[::-1, :, :3]


def _world(tmp, hdr, rotation_z, strength, mapping_type, expected):
    world = bpy.data.worlds.new("World")
    bpy.context.scene.world = world
    world.use_nodes = True
    wt = world.node_tree
    bg = wt.nodes["Background"]
    bg.inputs["Strength"].default_value = strength
    if not hdr:
        bg.inputs["Color"].default_value = (0.2, 0.4, 0.6, 1.0)
        return
    expected["hdr"] = write_hdr(os.path.join(tmp, "sky.hdr"), 16, 32)
    env = wt.nodes.new("ShaderNodeTexEnvironment")
    env.image = bpy.data.images.load(os.path.join(tmp, "sky.hdr"))
    wt.links.new(env.outputs["Color"], bg.inputs["Color"])
    mapping = wt.nodes.new("ShaderNodeMapping")
    mapping.vector_type = mapping_type
    mapping.inputs["Rotation"].default_value[2] = math.radians(rotation_z)
    coord = wt.nodes.new("ShaderNodeTexCoord")
    wt.links.new(coord.outputs["Generated"], mapping.inputs["Vector"])
    wt.links.new(mapping.outputs["Vector"], env.inputs["Vector"])


def build_scene(tmp, texture=True, hdr=True, rotation_z=30.0, strength=1.5, mapping_type="TEXTURE"):
    """Monkey (moved, rotated, scaled, subdivided) with a Principled material (an image texture on Base Color,
    roughness 0.6, metallic 0.1) under an HDRI world (Environment Texture + Mapping + Background strength).
    Returns the object and what the export should find: {"hdr": decoded sky or None, "tex": texture or None}."""
    tmp = str(tmp)
    fresh()
    bpy.ops.mesh.primitive_monkey_add(location=(0.5, -0.3, 0.2), rotation=(0.2, 0.0, 0.6))
    ob = bpy.context.active_object
    ob.scale = (1.0, 1.2, 0.9)
    mod = ob.modifiers.new("subsurf", "SUBSURF")
    mod.levels = 1
    mat = bpy.data.materials.new("MonkeyMat")
    mat.use_nodes = True
    nt = mat.node_tree
    bsdf = nt.nodes["Principled BSDF"]
    bsdf.inputs["Roughness"].default_value = 0.6
    bsdf.inputs["Metallic"].default_value = 0.1
    bsdf.inputs["Base Color"].default_value = (0.8, 0.3, 0.2, 1.0)
    expected = {"hdr": None, "tex": None}
    if texture:
        _checker_texture(tmp, nt, bsdf, expected)
    ob.data.materials.append(mat)
    _world(tmp, hdr, rotation_z, strength, mapping_type, expected)
    bpy.context.view_layer.objects.active = ob
    ob.select_set(True)
    return ob, expected


class StubLayout:
    """A stand-in UILayout that records what a draw() asks for and checks every property and operator exists."""

    def __init__(self, log):
        self.log, self.enabled, self.active = log, True, True

    def _child(self, *a, **k):
        return StubLayout(self.log)
    row = column = box = split = grid_flow = column_flow = _child

    def prop(self, data, name, **k):
        assert name in data.bl_rna.properties, f"{type(data).__name__} has no property {name!r}"
        self.log.append(("prop", name))

    def operator(self, idname, **k):
        mod, op = idname.split(".")
        assert hasattr(getattr(bpy.ops, mod), op), f"no operator {idname}"
        self.log.append(("operator", idname))
        return type("Props", (), {})()

    def label(self, text="", **k):
        self.log.append(("label", text))

    def separator(self, **k):
        pass

    def progress(self, **k):
        self.log.append(("progress", k.get("text")))


def draw_calls(panel_cls, context):
    log = []
    panel_cls.draw(type("P", (), {"layout": StubLayout(log)})(), context)
    return log
