"""The client writes runs only inside the results folder: a run folder from a .blend or a config cannot send the
worker elsewhere (client.py is standard library only; one check through the Resume path with bpy)."""
import json
import os
import sys

import pytest

from addon_helpers import has_bpy, run_driver
from mrd_blender_addon import client


def test_run_folders_must_lie_inside_the_results_folder(tmp_path):
    root = tmp_path / "runs"
    root.mkdir()
    assert client.confined_run_folder(root / "a" / "run1", root) == (root / "a" / "run1").resolve()
    for bad in (tmp_path / "elsewhere", root, root / ".." / "escape", "/etc"):
        with pytest.raises(RuntimeError, match="not inside the results folder"):
            client.confined_run_folder(bad, root)
    (root / "link").symlink_to(tmp_path)   # a link inside that points out
    with pytest.raises(RuntimeError, match="not inside"):
        client.confined_run_folder(root / "link" / "run", root)


def test_the_worker_is_not_started_outside_or_against_its_config(tmp_path):
    root, outside = tmp_path / "runs", tmp_path / "elsewhere"
    cfg = tmp_path / "config.json"
    cfg.write_text(json.dumps({"out": str(outside)}))
    w = client.Worker(sys.executable, outside, tmp_path / "scene.npz", cfg, root=root)
    with pytest.raises(RuntimeError, match="not inside the results folder"):
        w.start()
    assert not outside.exists() and w.proc is None            # nothing written, nothing started
    inside = root / "run1"
    w = client.Worker(sys.executable, inside, tmp_path / "scene.npz", cfg, root=root)
    with pytest.raises(RuntimeError, match="names the run folder"):
        w.start()                                             # the config would send the worker elsewhere
    assert w.proc is None


@pytest.mark.blender
@pytest.mark.skipif(not has_bpy(), reason="needs the bpy module")
def test_resume_refuses_a_run_folder_outside_the_output_folder(tmp_path):
    victim = tmp_path / "victim"
    (victim / "input").mkdir(parents=True)
    (victim / "input" / "config.json").write_text(json.dumps({"mode": "shape", "epochs": 3, "out": str(victim)}))
    r = run_driver("addon_confine.py", "resume_outside", tmp_path, victim)
    assert "not inside the results folder" in r["msg"]
    assert sorted(os.listdir(victim)) == ["input"]            # nothing written there
