"""Driver of tests/test_addon_e2e.py's real-Blender-binary test: reopens the saved .blend (without the add-on)
and prints one line `CHECK {json}` about the result and its step history.

    blender -b RESULT.blend --python tests/blender/binary_check_result.py
"""
import json

import bpy
import numpy as np

res = bpy.data.objects["Suzanne.metamer"]
seg = bpy.data.objects["Suzanne.metamer steps.00"]
basis = np.array([tuple(v.co) for v in seg.data.shape_keys.key_blocks["Basis"].data])
final = np.array([tuple(v.co) for v in res.data.vertices])
print("CHECK " + json.dumps({"moved": float(np.abs(final - basis).max()), "n": len(final),
                              "keys": len(seg.data.shape_keys.key_blocks), "status": res.get("mrd_status")}))
