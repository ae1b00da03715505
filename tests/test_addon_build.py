"""build_addon.py: the legacy zip and the 4.2+ extension zip, each carrying the backend's source."""
import json
import os
import subprocess
import sys
import tomllib
import zipfile

import pytest

from addon_helpers import FAKE, ROOT, env, has_bpy, run_driver  # noqa: I001  (puts the repository root on sys.path)
import build_addon


@pytest.fixture(scope="module")
def dist(tmp_path_factory):
    return build_addon.build(tmp_path_factory.mktemp("dist"))


def test_legacy_zip_layout(dist):
    legacy, _ = dist
    names = zipfile.ZipFile(legacy).namelist()
    assert all(n.startswith("mrd_blender_addon/") for n in names)
    for need in ("__init__.py", "export/__init__.py", "export/mesh.py", "apply/__init__.py", "apply/history.py",
                 "bpy_arrays.py", "client.py", "operators.py", "panel.py", "properties.py",
                 "preferences.py", "mrd_backend/worker.py", "mrd_backend/scene/spec.py", "mrd_backend/scene/io.py",
                 "mrd_backend/optimization/loop.py", "requirements.txt"):
        assert f"mrd_blender_addon/{need}" in names, need
    assert "mrd_blender_addon/blender_manifest.toml" not in names
    assert not any("__pycache__" in n or n.endswith(".pyc") for n in names)
    init = zipfile.ZipFile(legacy).read("mrd_blender_addon/__init__.py").decode()
    assert "bl_info" in init and '"blender": (3, 4, 0)' in init
    reqs = zipfile.ZipFile(legacy).read("mrd_blender_addon/requirements.txt").decode()
    assert "mitsuba" in reqs and "torch" in reqs


def test_extension_manifest(dist):
    _, ext = dist
    z = zipfile.ZipFile(ext)
    assert "blender_manifest.toml" in z.namelist() and "__init__.py" in z.namelist()
    assert "mrd_backend/worker.py" in z.namelist()
    for sub in ("bpy_arrays.py", "export/__init__.py", "export/world.py", "apply/__init__.py", "apply/material.py"):
        assert sub in z.namelist(), sub   # the add-on's sub-packages travel in the extension too
    m = tomllib.loads(z.read("blender_manifest.toml").decode())
    for key in ("schema_version", "id", "version", "name", "tagline", "maintainer", "type", "blender_version_min",
                "license"):
        assert m.get(key), key
    assert m["type"] == "add-on" and m["version"] == "0.1.0" and m["id"].isidentifier()
    assert tuple(int(x) for x in m["blender_version_min"].split(".")) >= (4, 2, 0)
    assert len(m["tagline"]) <= 64 and not m["tagline"].endswith((".", "!"))
    for reason in m["permissions"].values():
        assert len(reason) <= 64 and not reason.endswith(".")


def test_builds_are_reproducible(dist, tmp_path):
    again = build_addon.build(tmp_path)
    assert [p.read_bytes() for p in dist] == [p.read_bytes() for p in again]


def test_the_worker_runs_from_the_archive(dist, tmp_path):
    legacy, _ = dist
    zipfile.ZipFile(legacy).extractall(tmp_path / "addons")
    root = tmp_path / "addons" / "mrd_blender_addon"
    e = env(MRD_WORKER_OPTIMIZER=FAKE)
    e["PYTHONPATH"] = os.pathsep.join([str(root), str(ROOT / "tests")])
    where = subprocess.run([sys.executable, "-c", "import mrd_backend; print(mrd_backend.__file__)"],
                           capture_output=True, text=True, env=e, cwd=str(tmp_path)).stdout.strip()
    assert where.startswith(str(root))
    from mrd_backend.scene.cameras import CameraRig
    from mrd_backend.scene.spec import SceneSpec
    from mrd_backend.scene.io import save_spec
    import numpy as np
    save_spec(SceneSpec(np.eye(3, dtype=np.float32), np.array([[0, 1, 2]]), cameras=CameraRig(2, width=8, height=8)),
              tmp_path / "scene.npz")
    (tmp_path / "config.json").write_text(json.dumps({"mode": "shape", "epochs": 2, "out": str(tmp_path / "run")}))
    p = subprocess.run([sys.executable, "-m", "mrd_backend.worker", "--scene", str(tmp_path / "scene.npz"),
                        "--config", str(tmp_path / "config.json")], capture_output=True, text=True, env=e,
                       cwd=str(tmp_path), timeout=120)
    events = [json.loads(ln) for ln in p.stdout.splitlines()]
    assert events[0]["event"] == "hello" and events[-1]["event"] == "done", p.stderr[-2000:]


@pytest.mark.blender
@pytest.mark.skipif(not has_bpy(), reason="needs the bpy module")
def test_extension_installs_in_blender_5(dist, tmp_path):
    _, ext = dist
    r = run_driver("addon_build.py", "extension_install", ext, HOME=str(tmp_path / "home"),
                   PYTHONPATH=str(ROOT / "tests"))
    assert r["mods"] == ["bl_ext.user_default.mrd_blender_addon"] and r["has_prop"]
    assert r["backend"] == "bl_ext.user_default.mrd_blender_addon.mrd_backend"  # the archive's own copy
    assert str(tmp_path / "home") in r["file"] and r["n"] > 500


@pytest.mark.blender
@pytest.mark.slow
@pytest.mark.skipif(not has_bpy(), reason="needs the bpy module")
def test_objective_list_matches_the_backend():
    r = run_driver("addon_build.py", "objective_list")
    assert r["addon"] == r["backend"]
