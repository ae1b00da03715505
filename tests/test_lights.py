"""Lamps in the SceneSpec: Blender's units converted as Cycles lights them, saved in the .npz, rendered by Mitsuba."""
import math

import numpy as np
import pytest

from mrd_backend.errors import MRDError
from mrd_backend.scene.lights import Light, from_blender, spot_beam_width


def _at(x, y, z):
    m = np.eye(4)
    m[:3, 3] = (x, y, z)
    return m


def test_point_and_spot_intensity_is_power_over_four_pi():
    p = from_blender("POINT", 1000.0, (1.0, 0.5, 0.0), _at(0, 0, 3))
    assert p.kind == "point" and np.allclose(p.value, np.array([1.0, 0.5, 0.0]) * 1000 / (4 * math.pi))
    s = from_blender("SPOT", 1000.0, (1, 1, 1), _at(0, 0, 3), spot_size=math.radians(60), spot_blend=0.0)
    assert s.cutoff_angle == pytest.approx(30.0) and s.beam_width == pytest.approx(30.0)
    assert np.allclose(s.value, 1000 / (4 * math.pi))
    # a blend widens the fade inwards: half intensity where Cycles' smoothstep is at one half
    assert 0 < spot_beam_width(math.radians(60), 0.5) < 30.0
    # Blender shines along local -Z, Mitsuba along +Z: the frame's Z axis points down for an unrotated lamp
    assert np.allclose(np.asarray(p.to_world)[:3, 2], (0, 0, -1))


def test_area_radiance_is_power_over_pi_area_and_scale_counts():
    m = _at(0, 0, 2)
    m[:3, :3] = np.diag([2.0, 1.0, 1.0])   # object scale widens the lamp
    sq = from_blender("AREA", 100.0, (1, 1, 1), m, shape="RECTANGLE", size=1.0, size_y=0.5)
    assert sq.shape == "rectangle" and np.allclose(sq.value, 100 / (math.pi * 2.0 * 0.5))
    disk = from_blender("AREA", 100.0, (1, 1, 1), _at(0, 0, 2), shape="DISK", size=2.0)
    assert disk.shape == "disk" and np.allclose(disk.value, 100 / (math.pi * math.pi))
    old = from_blender("AREA", 100.0, (1, 1, 1), _at(0, 0, 2), shape="SQUARE", size=1.0, blender_version=(3, 4, 1))
    assert np.allclose(old.value, 100 / 4)   # before Blender 4.0 Cycles divided by 4, not pi
    raw = from_blender("AREA", 100.0, (1, 1, 1), _at(0, 0, 2), shape="SQUARE", size=2.0, normalize=False)
    assert np.allclose(raw.value, 100 / math.pi)   # power per square metre: independent of the size
    with pytest.raises(MRDError, match="shape"):
        from_blender("AREA", 1.0, (1, 1, 1), _at(0, 0, 0), shape="STAR")
    with pytest.raises(MRDError, match="POINT, SPOT"):
        from_blender("MESH", 1.0, (1, 1, 1), _at(0, 0, 0))


def _plane_spec(lights):
    from mrd_backend.scene.cameras import CameraRig, look_at
    from mrd_backend.scene.environment import Environment
    from mrd_backend.scene.spec import Material, SceneSpec
    v = np.array([[-1, -1, 0], [1, -1, 0], [1, 1, 0], [-1, 1, 0]], np.float32)
    f = np.array([[0, 1, 2], [0, 2, 3]], np.int32)
    cam = look_at((0, -2.5, 2.5), (0, 0, 0))   # obliquely: the lamps above the centre stay out of sight
    rig = CameraRig(n_views=1, fov=10.0, width=8, height=8, matrices=[np.asarray(cam).tolist()])
    return SceneSpec(v, f, material=Material("diffuse", (0.5, 0.5, 0.5)), cameras=rig,
                     environment=Environment("constant", color=(0, 0, 0)), lights=lights)


@pytest.mark.parametrize("kind", ["point", "sun", "area"])
def test_lamps_light_a_diffuse_plane_as_the_units_say(kind, tmp_path, mi):
    """Radiance of a diffuse plane (albedo 0.5) at its centre: albedo / pi x irradiance, from Mitsuba."""
    from mrd_backend.scene.io import load_spec, save_spec
    d = 2.0
    if kind == "point":
        light = from_blender("POINT", 400.0, (1, 1, 1), _at(0, 0, d))
        irradiance = 400 / (4 * math.pi) / d ** 2
    elif kind == "sun":
        light = from_blender("SUN", 3.0, (1, 1, 1), _at(0, 0, d))
        irradiance = 3.0
    else:  # a small square lamp far away acts like a point of intensity L A (cos = 1 on the axis)
        light = from_blender("AREA", 400.0, (1, 1, 1), _at(0, 0, d), shape="SQUARE", size=0.1)
        irradiance = 400 / (math.pi * 0.01) * 0.01 / d ** 2
    path = save_spec(_plane_spec([light]), tmp_path / "s.npz")
    spec = load_spec(path)
    assert len(spec.lights) == 1 and isinstance(spec.lights[0], Light) and spec.lights[0].kind == light.kind
    img = spec.render(spp=1024)[0]   # Mitsuba picks one of two emitters (lamp, black world) per sample: noise
    centre = float(img[3:5, 3:5].mean())
    assert centre == pytest.approx(0.5 / math.pi * irradiance, rel=0.03)
    assert float(img[3:5, 3:5].mean()) > 0  # lit (the world is black)


def test_area_lamps_stay_out_of_object_masks():
    from mrd_backend.scene.lights import Light
    assert Light("area").is_visible_shape() and not Light("point").is_visible_shape()
