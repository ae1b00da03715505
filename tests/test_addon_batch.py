"""scripts/mrd_blender_batch.py: the documented headless command line (bpy module; a blender binary when present)."""
import shutil
import subprocess
import sys

import pytest

from addon_helpers import FAKE, ROOT, env, has_bpy, run_driver

pytestmark = [pytest.mark.blender]
FAKE_ENV = {"MRD_WORKER_OPTIMIZER": FAKE, "MRD_WORKER_PYTHONPATH": str(ROOT / "tests")}
BATCH = str(ROOT / "scripts" / "mrd_blender_batch.py")


def _scene_blend(tmp_path):
    run_driver("addon_batch.py", "scene_blend", tmp_path)
    return tmp_path / "scene.blend"


@pytest.mark.skipif(not has_bpy(), reason="needs the bpy module")
def test_batch_script_with_the_bpy_module(tmp_path):
    blend = _scene_blend(tmp_path)
    r = run_driver("addon_batch.py", "batch_calls", tmp_path, blend, BATCH, **FAKE_ENV)
    assert r["codes"] == {"bad_target": 2, "bad_model": 2, "ok": 0}
    assert "no object named 'Nope'" in r["_stderr"] and "--model 'alexnet'" in r["_stderr"]
    assert r["res"] == "done" and r["epochs"] == 4  # the settings are saved with the file


@pytest.mark.slow
def test_batch_command_line_with_the_legacy_addon_in_a_blender_binary(tmp_path):
    exe = shutil.which("blender")
    if exe is None:
        pytest.skip("no blender binary")
    e = env(**FAKE_ENV)
    e.pop("PYTHONPATH")
    e.update(BLENDER_USER_SCRIPTS=str(tmp_path / "scripts"), BLENDER_USER_CONFIG=str(tmp_path / "config"))
    import zipfile

    import build_addon
    legacy, _ = build_addon.build(tmp_path / "dist")   # the legacy add-on, installed in the user's scripts folder
    zipfile.ZipFile(legacy).extractall(tmp_path / "scripts" / "addons")
    batch = tmp_path / "mrd_blender_batch.py"           # a copy outside the checkout: it must use the install
    batch.write_text(open(BATCH).read())
    blend = tmp_path / "scene.blend"  # written by this Blender (a newer one's files may not open in an older one)
    make = ("import bpy; [bpy.data.objects.remove(o) for o in list(bpy.data.objects)]; "
            "bpy.ops.mesh.primitive_monkey_add(); bpy.context.active_object.name = 'Target'; "
            f"bpy.ops.wm.save_as_mainfile(filepath={str(blend)!r})")
    subprocess.run([exe, "-b", "--factory-startup", "--python-expr", make], capture_output=True, timeout=120, env=e)
    cmd = [exe, "-b", str(blend), "--python", str(batch), "--", "--target", "Target", "--epochs", "3", "--views", "2", "--resolution", "16",
           "--output", str(tmp_path / "runs"), "--save", str(tmp_path / "out.blend"), "--backend-python", sys.executable]
    p = subprocess.run(cmd, capture_output=True, text=True, timeout=300, env=e)
    assert p.returncode == 0, p.stdout[-2000:] + p.stderr[-2000:]
    assert "MRD done: 3/3 steps" in p.stdout and (tmp_path / "out.blend").is_file()
    assert f"add-on mrd_blender_addon ({tmp_path / 'scripts' / 'addons' / 'mrd_blender_addon'})" in p.stdout
    e["MRD_FAKE_FAIL"] = "no pretrained weights for resnet: run `mrd weights fetch resnet`"
    p = subprocess.run(cmd, capture_output=True, text=True, timeout=300, env=e)
    assert p.returncode == 1 and (p.stdout + p.stderr).count("no pretrained weights for resnet") == 1


def _driver(tmp_path, install, script):
    """tests/blender/batch_driver.py in a fresh bpy process whose path holds no checkout."""
    import json
    blend = _scene_blend(tmp_path)
    e = env(**FAKE_ENV)
    e["PYTHONPATH"] = str(tmp_path / "nothing")   # not the checkout
    e["HOME"] = str(tmp_path / "home")            # Blender's user folders (extensions) in the test's folder
    p = subprocess.run([sys.executable, str(ROOT / "tests" / "blender" / "batch_driver.py"), install, str(script),
                        str(blend), str(tmp_path)], capture_output=True, text=True, timeout=600, env=e,
                       cwd=str(tmp_path))
    line = next((ln for ln in p.stdout.splitlines() if ln.startswith("BATCH ")), None)
    assert line is not None, p.stdout[-3000:] + p.stderr[-3000:]
    return json.loads(line[6:]), p.stdout + "\n@@ stderr\n" + p.stderr


def _check_calls(info, out, tmp_path):
    assert info["codes"] == {"bad_model": 2, "bad_target": 2, "ok": 0, "failed": 1}, out[-3000:]
    assert info["result"] == "done" and (tmp_path / "ok.blend").is_file()
    assert not (tmp_path / "failed.blend").exists()   # a run that made nothing saves nothing
    err = out.split("@@ stderr")[1]
    bad_model = err.split("@@ call bad_model")[1].split("@@ call")[0]
    assert "unknown --model 'alexnet': use one of mae," in bad_model and "enum" not in bad_model
    failed = out.split("@@ call failed")[1].split("@@ stderr")[0] + err.split("@@ call failed")[1]
    assert failed.count("no pretrained weights for resnet") == 1, failed   # said once, not three times
    assert "Error: MRD failed: no pretrained weights for resnet" in failed


@pytest.mark.slow
@pytest.mark.skipif(not has_bpy(), reason="needs the bpy module")
def test_batch_script_with_a_4_2_extension_install_and_no_checkout(tmp_path):
    import build_addon
    _, ext = build_addon.build(tmp_path / "dist")
    script = tmp_path / "mrd_blender_batch.py"   # a copy outside the checkout: no fallback to it
    script.write_text(open(BATCH).read())
    info, out = _driver(tmp_path, f"extension:{ext}", script)
    assert info["addons"] == ["bl_ext.user_default.mrd_blender_addon"]
    assert "add-on bl_ext.user_default.mrd_blender_addon (" + str(tmp_path / "home") in out
    _check_calls(info, out, tmp_path)


@pytest.mark.slow
@pytest.mark.skipif(not has_bpy(), reason="needs the bpy module")
def test_batch_script_with_nothing_installed_uses_its_checkout(tmp_path):
    info, out = _driver(tmp_path, "none", BATCH)
    assert f"add-on mrd_blender_addon ({ROOT / 'mrd_blender_addon'})" in out
    _check_calls(info, out, tmp_path)
