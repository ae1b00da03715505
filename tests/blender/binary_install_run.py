"""Driver of tests/test_addon_e2e.py's real-Blender-binary test: installs the legacy zip, runs a tiny real
Optimize Metamer and saves the .blend. Runs in a Blender binary's own Python (no checkout on its path):

    blender -b --factory-startup --python tests/blender/binary_install_run.py -- ZIP OUT_BLEND RUNS BACKEND_PYTHON
"""
import sys

import bpy


def main():
    zip_path, out_blend, runs, backend_python = sys.argv[sys.argv.index("--") + 1:]
    bpy.ops.preferences.addon_install(filepath=zip_path, overwrite=True)
    bpy.ops.preferences.addon_enable(module="mrd_blender_addon")
    prefs = bpy.context.preferences.addons["mrd_blender_addon"].preferences
    prefs.backend_python = backend_python
    for o in list(bpy.data.objects):
        bpy.data.objects.remove(o)
    bpy.ops.mesh.primitive_monkey_add()
    world = bpy.context.scene.world or bpy.data.worlds.new("World")
    bpy.context.scene.world = world
    world.use_nodes = True
    world.node_tree.nodes["Background"].inputs["Color"].default_value = (0.8, 0.8, 0.8, 1)
    s = bpy.context.scene.mrd
    s.views, s.resolution, s.spp, s.epochs, s.icosphere_level, s.remesh = 2, 32, 4, 3, 2, ""
    s.keep_every, s.output_dir = 1, runs
    bpy.ops.mrd.optimize_metamer()
    import mrd_blender_addon
    print("ADDON_FILE", mrd_blender_addon.__file__)
    bpy.ops.wm.save_as_mainfile(filepath=out_blend)


main()
