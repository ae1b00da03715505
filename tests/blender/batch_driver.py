"""Runs scripts/mrd_blender_batch.py's main() several times in one bpy process, as a Blender user would after
installing the add-on a given way (bpy module). Prints one JSON line `BATCH {...}` with each call's exit status.

    python tests/blender/batch_driver.py INSTALL BATCH_SCRIPT BLEND OUT_DIR
        INSTALL: extension:ZIP (installed with bpy.ops.extensions.package_install_files; the checkout hidden)
                 | none (nothing installed: the script falls back to its checkout)

With an extension the top-level names `mrd_blender_addon` and `mrd_backend` cannot be imported in this process
(a real Blender 4.2+ has no checkout on its path), so any plain-name import in the script fails the test.
"""
import importlib.abc
import json
import os
import runpy
import sys

import bpy


class HideCheckout(importlib.abc.MetaPathFinder):
    def find_spec(self, name, path=None, target=None):
        if name.split(".")[0] in ("mrd_blender_addon", "mrd_backend"):
            raise ModuleNotFoundError(f"No module named {name!r} (the checkout is hidden)")
        return None


def main():
    install, script, blend, out = sys.argv[1:5]
    if install.startswith("extension:"):
        sys.meta_path.insert(0, HideCheckout())
        bpy.ops.extensions.package_install_files(filepath=install.split(":", 1)[1], repo="user_default",
                                                 enable_on_install=True)
    codes = {}

    def batch(label, *args, env=None):
        bpy.ops.wm.open_mainfile(filepath=blend)
        os.environ.update(env or {})
        sys.argv = ["blender", "--", *args]
        print(f"@@ call {label}", flush=True)
        sys.stderr.write(f"@@ call {label}\n")
        codes[label] = runpy.run_path(script, run_name="mrd_batch")["main"]()
        for k in env or {}:
            os.environ.pop(k)

    run = ["--target", "Target", "--epochs", "3", "--views", "2", "--resolution", "16", "--output",
           os.path.join(out, "runs")]
    batch("bad_model", "--target", "Target", "--model", "alexnet")
    batch("bad_target", "--target", "Nope")
    batch("ok", *run, "--save", os.path.join(out, "ok.blend"))
    batch("failed", *run, "--save", os.path.join(out, "failed.blend"),
          env={"MRD_FAKE_FAIL": "no pretrained weights for resnet: run `mrd weights fetch resnet`"})
    bpy.ops.wm.open_mainfile(filepath=os.path.join(out, "ok.blend"))
    res = bpy.data.objects.get("Target.metamer")
    addon = [m for m in bpy.context.preferences.addons.keys() if m.endswith("mrd_blender_addon")]
    print("BATCH " + json.dumps({"codes": codes, "result": res is not None and res.get("mrd_status"),
                                 "addons": addon, "modules": sorted(m for m in sys.modules if "mrd_blender" in m
                                                                     and m.count(".") <= 3)[:3]}), flush=True)


if __name__ == "__main__":
    main()
