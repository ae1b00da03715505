"""scripts/mrd_blender_batch.py: the documented headless command line (bpy module; a blender binary when present)."""
import shutil
import subprocess
import sys

import pytest

from addon_helpers import FAKE, ROOT, SCENE, env, has_bpy, run_bpy

pytestmark = [pytest.mark.blender]
FAKE_ENV = {"MRD_WORKER_OPTIMIZER": FAKE, "MRD_WORKER_PYTHONPATH": str(ROOT / "tests")}
BATCH = str(ROOT / "scripts" / "mrd_blender_batch.py")


def _scene_blend(tmp_path):
    run_bpy(SCENE + f"""
ob, _ = build_scene({str(tmp_path)!r}, texture=False)
ob.name = "Target"
bpy.ops.wm.save_as_mainfile(filepath={str(tmp_path / "scene.blend")!r})
result(ok=True)
""")
    return tmp_path / "scene.blend"


@pytest.mark.skipif(not has_bpy(), reason="needs the bpy module")
def test_batch_script_with_the_bpy_module(tmp_path):
    blend = _scene_blend(tmp_path)
    r = run_bpy(f"""
import runpy
bpy.ops.wm.open_mainfile(filepath={str(blend)!r})
def batch(*args):
    sys.argv = ["blender", "--", *args]
    return runpy.run_path({BATCH!r}, run_name="mrd_batch")["main"]()
codes = {{}}
codes["bad_target"] = batch("--target", "Nope")
codes["bad_model"] = batch("--target", "Target", "--model", "alexnet")
codes["ok"] = batch("--target", "Target", "--epochs", "4", "--views", "2", "--resolution", "16",
                    "--output", {str(tmp_path / "runs")!r}, "--save", {str(tmp_path / "out.blend")!r})
bpy.ops.wm.open_mainfile(filepath={str(tmp_path / "out.blend")!r})
res = bpy.data.objects.get("Target.metamer")
result(codes=codes, res=res is not None and res.get("mrd_status"), epochs=bpy.context.scene.mrd.epochs)
""", **FAKE_ENV)
    assert r["codes"] == {"bad_target": 2, "bad_model": 2, "ok": 0}
    assert "no object named 'Nope'" in r["_stderr"] and "--model 'alexnet'" in r["_stderr"]
    assert r["res"] == "done" and r["epochs"] == 4  # the settings are saved with the file


@pytest.mark.slow
def test_batch_command_line_with_a_blender_binary(tmp_path):
    exe = shutil.which("blender")
    if exe is None:
        pytest.skip("no blender binary")
    e = env(**FAKE_ENV)
    e.pop("PYTHONPATH")
    e.update(BLENDER_USER_SCRIPTS=str(tmp_path / "scripts"), BLENDER_USER_CONFIG=str(tmp_path / "config"))
    blend = tmp_path / "scene.blend"  # written by this Blender (a newer one's files may not open in an older one)
    make = ("import bpy; [bpy.data.objects.remove(o) for o in list(bpy.data.objects)]; "
            "bpy.ops.mesh.primitive_monkey_add(); bpy.context.active_object.name = 'Target'; "
            f"bpy.ops.wm.save_as_mainfile(filepath={str(blend)!r})")
    subprocess.run([exe, "-b", "--factory-startup", "--python-expr", make], capture_output=True, timeout=120, env=e)
    cmd = [exe, "-b", str(blend), "--python", BATCH, "--", "--target", "Target", "--epochs", "3", "--views", "2", "--resolution", "16",
           "--output", str(tmp_path / "runs"), "--save", str(tmp_path / "out.blend"), "--backend-python", sys.executable]
    p = subprocess.run(cmd, capture_output=True, text=True, timeout=300, env=e)
    assert p.returncode == 0, p.stdout[-2000:] + p.stderr[-2000:]
    assert "MRD done: 3/3 steps" in p.stdout and (tmp_path / "out.blend").is_file()
    e["MRD_FAKE_FAIL"] = "no pretrained weights for resnet: run `mrd weights fetch resnet`"
    p = subprocess.run(cmd, capture_output=True, text=True, timeout=300, env=e)
    assert p.returncode == 1 and "no pretrained weights for resnet" in p.stderr
