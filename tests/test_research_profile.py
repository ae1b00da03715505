"""`--profile research`: one switch for the research code's shape-run settings, each also settable on its own
(--camera-distance, --env-rotation, ...). The settings resolve as README documents them and reach the run."""
from __future__ import annotations

import json

import numpy as np
import pytest

from mrd_backend.config import RUN_PROFILES, RunConfig, target_seed, view_seed
from mrd_backend.errors import MRDError

RESEARCH = dict(integrator="research", preprocess="research", camera_distance=5.0, camera_target="origin",
                env_rotation=-90.0, target_seeds="research", render_seeds="research", start_placement="origin")


def test_the_profile_resolves_to_the_documented_settings():
    assert RUN_PROFILES["research"] == RESEARCH
    c = RunConfig(scene="suzanne", profile="research").resolved(False, 256)
    assert {k: getattr(c, k) for k in RESEARCH} == RESEARCH
    d = RunConfig(scene="suzanne").resolved(False, 256)          # without it: this project's choices
    assert (d.integrator, d.preprocess, d.camera_distance, d.camera_target, d.env_rotation) == \
        ("fast", "correct", None, "center", None)


def test_flags_given_away_from_their_defaults_win_over_the_profile():
    from mrd_backend.cli import build_parser, config_from_args
    args = build_parser().parse_args(["optimize", "suzanne", "forest", "lpips", "--profile", "research",
                                      "--camera-distance", "4", "--env-rotation", "0"])
    c = config_from_args(args).resolved(False, 256)
    assert (c.camera_distance, c.env_rotation, c.integrator, c.render_seeds) == (4.0, 0.0, "research", "research")


def test_research_seeds():
    c = RunConfig(profile="research").resolved(False, 256)
    assert [target_seed(c, i) for i in range(3)] == [42, 42, 42]
    assert [view_seed(c, e, i, 8) for e in (0, 7) for i in range(3)] == [0, 42, 84, 0, 42, 84]
    d = RunConfig().resolved(False, 256)
    seeds = {view_seed(d, e, i, 8) for e in range(3) for i in range(8)}
    assert len(seeds) == 24 and not seeds & {target_seed(d, i) for i in range(8)}


def test_research_envmap_orientation_puts_the_image_centre_where_the_research_had_it():
    """Mitsuba's native envmap (research: no to_world) faces the image centre along its +Z and has +Y up; the research
    frame maps to Blender's as (x, y, z) -> (x, -z, y): centre towards -Y, up +Z."""
    from mrd_backend.scene.environment import Environment
    m = Environment("file", path="x.exr", rotation_z=-90.0).mitsuba_to_world()[:3, :3]
    np.testing.assert_allclose(m @ [0, 0, 1], [0, -1, 0], atol=1e-12)     # image centre
    np.testing.assert_allclose(m @ [0, 1, 0], [0, 0, 1], atol=1e-12)      # top
    np.testing.assert_allclose(m @ [1, 0, 0], [1, 0, 0], atol=1e-12)      # u = 0.25: research +X = Blender +X


def test_bad_values_are_one_line_errors():
    for kw in (dict(profile="fastest"), dict(camera_distance=-1.0), dict(camera_target="bbox")):
        with pytest.raises(MRDError) as e:
            RunConfig(**kw).resolved(False, 256)
        assert "\n" not in str(e.value)


def test_the_profile_reaches_cameras_environment_start_and_seeds(tmp_path, monkeypatch):
    from mrd_backend.optimization.loop import Run
    from mrd_backend.optimization.shape import start_mesh
    cfg = RunConfig(scene="blob", envmap="forest", model="mae", views=3, width=32, height=32, spp=2, epochs=1,
                    remesh=[], start_subdivisions=2, patience=0, evidence=False, turntable_frames=0, panel_every=-1,
                    profile="research", out=str(tmp_path / "run"))
    run = Run(cfg)
    rig = run.spec.cameras
    mats = rig.to_worlds(*run.spec.bounds())
    np.testing.assert_allclose([np.linalg.norm(m[:3, 3]) for m in mats], 5.0, rtol=1e-9)
    for m in mats:   # each camera looks at the origin
        np.testing.assert_allclose(np.cross(m[:3, 2], -m[:3, 3] / np.linalg.norm(m[:3, 3])), 0, atol=1e-9)
    assert run.spec.environment.rotation_z == -90.0
    v, _ = start_mesh(run.cfg, run.spec, run.start)
    np.testing.assert_allclose(np.linalg.norm(v, axis=1), 1.0, rtol=1e-5)
    result = run.execute()
    saved = json.loads((tmp_path / "run" / "config.json").read_text())
    assert {k: saved[k] for k in RESEARCH} == RESEARCH and result.status in ("done", "stopped_early")
    assert result.report["integrator"]["profile"] == "research"
