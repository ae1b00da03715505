"""Driver of tests/test_addon_confine.py: Resume of a result whose run folder lies outside the Output folder.

    python tests/blender/addon_confine.py resume_outside TMP VICTIM_FOLDER
"""
import os

import bpy
from driver import build_scene, enable, main, result, settings


def resume_outside(tmp, victim):
    enable()
    ob, _ = build_scene(tmp, texture=False)
    settings(output_dir=os.path.join(tmp, "runs"))
    res = bpy.data.objects.new("Suzanne.metamer", ob.data.copy())   # a result from someone else's .blend
    bpy.context.scene.collection.objects.link(res)
    res["mrd_role"], res["mrd_run"], res["mrd_status"], res["mrd_target"] = "result", victim, "cancelled", ob.name
    bpy.context.view_layer.objects.active = res
    try:
        bpy.ops.mrd.resume()
        msg = ""
    except RuntimeError as exc:
        msg = str(exc)
    result(msg=msg)


if __name__ == "__main__":
    main({"resume_outside": resume_outside})
