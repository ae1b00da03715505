"""Driver of tests/test_addon_lamps.py's dark-scene check: a dim world without lamps is warned about; a lamp
(unless hidden from renders) lights the target.

    python tests/blender/addon_lamps.py dark_scene TMP
"""
import bpy
from driver import build_scene, enable, main, result


def dark_scene(tmp):
    from mrd_blender_addon import export
    enable()
    ob, _ = build_scene(tmp, texture=False, hdr=False, strength=0.1)   # a dim constant world, no lamp
    dark = export.export_target(ob, bpy.context, views=1, width=8, height=8)
    light = bpy.data.objects.new("Lamp", bpy.data.lights.new("Lamp", "POINT"))
    bpy.context.scene.collection.objects.link(light)
    light.location = (0, 0, 3)
    lit = export.export_target(ob, bpy.context, views=1, width=8, height=8)
    light.hide_render = True
    hidden = export.export_target(ob, bpy.context, views=1, width=8, height=8)
    result(dark=dark.warnings, lit=lit.warnings, lights=len(lit.spec.lights), kind=lit.spec.lights[0].kind,
           hidden=len(hidden.spec.lights))


if __name__ == "__main__":
    main({"dark_scene": dark_scene})
