"""The bundled photographic environments (CC0 HDRIs from Blender's studio lights): listed, loaded by name, and they
light a scene, each differently."""
from __future__ import annotations

import numpy as np
import pytest

from mrd_backend.scene.environment import BUNDLED_HDRIS, HDRI_DIR, named_environment
from mrd_backend.scenes import environment_names, load_scene


def test_bundled_hdris_are_listed_with_their_license():
    assert {"forest", "courtyard", "sunset", "city"} <= set(BUNDLED_HDRIS) <= set(environment_names())
    assert "CC0" in (HDRI_DIR / "LICENSE.txt").read_text()
    for n in BUNDLED_HDRIS:
        env = named_environment(n)
        assert env.kind == "file" and env.name == n and (HDRI_DIR / f"{n}.exr").is_file()


def test_mrd_scenes_lists_them(capsys):
    from mrd_backend.cli import main
    assert main(["scenes"]) == 0
    line = next(ln for ln in capsys.readouterr().out.splitlines() if ln.startswith("environments"))
    assert all(n in line for n in ("forest", "courtyard", "sunset", "city", "studio"))


def test_each_hdri_loads_and_lights_a_scene_differently(mi):
    from mrd_backend.render.tonemap import to_ldr
    means = {}
    for n in ("forest", "courtyard", "sunset", "city"):
        assert np.asarray(mi.Bitmap(str(HDRI_DIR / f"{n}.exr"))).shape == (512, 1024, 3)
        spec = load_scene("blob", n, views=1, size=32)
        scene = spec.load()
        img = np.asarray(to_ldr(mi.render(scene, sensor=spec.sensors(spp=4)[0], spp=4, seed=0)))
        assert np.isfinite(img).all()
        centre = img[12:20, 12:20].mean(axis=(0, 1))       # the lit object, not only the visible background
        assert centre.mean() > 0.05, (n, centre)
        means[n] = img.mean(axis=(0, 1))
    vals = list(means.values())
    assert all(np.abs(a - b).max() > 0.01 for i, a in enumerate(vals) for b in vals[i + 1:]), means


def test_an_unknown_environment_names_the_bundled_ones():
    from mrd_backend.errors import MRDError
    with pytest.raises(MRDError, match="forest"):
        named_environment("hallstatt")
