"""Driver of tests/test_addon_batch.py (bpy module side): the test scene saved as a .blend, and
scripts/mrd_blender_batch.py's main() called several times in one bpy process.

    python tests/blender/addon_batch.py scene_blend TMP
    python tests/blender/addon_batch.py batch_calls TMP BLEND BATCH_SCRIPT
"""
import os
import runpy
import sys

import bpy
from driver import build_scene, main, result


def scene_blend(tmp):
    ob, _ = build_scene(tmp, texture=False)
    ob.name = "Target"
    bpy.ops.wm.save_as_mainfile(filepath=os.path.join(tmp, "scene.blend"))
    result(ok=True)


def batch_calls(tmp, blend, script):
    bpy.ops.wm.open_mainfile(filepath=blend)

    def batch(*args):
        sys.argv = ["blender", "--", *args]
        return runpy.run_path(script, run_name="mrd_batch")["main"]()
    codes = {"bad_target": batch("--target", "Nope"),
             "bad_model": batch("--target", "Target", "--model", "alexnet"),
             "ok": batch("--target", "Target", "--epochs", "4", "--views", "2", "--resolution", "16",
                         "--output", os.path.join(tmp, "runs"), "--save", os.path.join(tmp, "out.blend"))}
    bpy.ops.wm.open_mainfile(filepath=os.path.join(tmp, "out.blend"))
    res = bpy.data.objects.get("Target.metamer")
    result(codes=codes, res=res is not None and res.get("mrd_status"), epochs=bpy.context.scene.mrd.epochs)


if __name__ == "__main__":
    main({f.__name__: f for f in (scene_blend, batch_calls)})
