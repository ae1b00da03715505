"""The principled table (scene/principled.py) that the backend's export and the add-on's export/apply share: its
three specular conversions agree with each other, and the Blender description uses the add-on's sockets."""
from __future__ import annotations

import numpy as np
import pytest

from mrd_backend.scene import principled as P


@pytest.mark.parametrize("s", [0.05, 0.5, 1.0])
def test_specular_eta_and_level_agree(s):
    eta = P.eta_from_specular(s)
    assert P.specular_from_eta(eta) == pytest.approx(s, rel=1e-9)
    # Blender 4 at the neutral level with this IOR is Mitsuba's specular again, both ways
    assert P.level_from_specular(s, P.ior_reflectance(eta)) == pytest.approx(P.NEUTRAL_SPECULAR_LEVEL, rel=1e-9)
    assert P.specular_from_level(eta, P.NEUTRAL_SPECULAR_LEVEL) == pytest.approx(s, rel=1e-9)


def test_blender_description_uses_the_addons_sockets():
    values = {n: 0.25 for n in P.OPTIMIZABLE}

    def val(n):
        return {"image": f"{n}.exr"} if n == "base_color" else values[n]
    b4, b3 = P.blender_inputs(val, 1.5, 0.5), P.blender_inputs(val, 1.5, 0.5, blender_3=True)
    assert b4["Base Color"] == {"image": "base_color.exr"} and b4["IOR"] == 1.5 and b4["Specular IOR Level"] == 0.5
    assert b3["Specular"] == 0.5 and "Specular Tint" in b3 and "Specular Tint" not in b4   # a colour in Blender 4
    sockets = {s for names in P.SOCKETS.values() for s in names} | set(P.COAT_ROUGHNESS)
    assert set(b4) <= sockets and set(b3) <= sockets
    assert b4["Coat Roughness"] == pytest.approx(np.sqrt(0.1 + (0.001 - 0.1) * 0.25))
    assert all(P.valid_range(n)[0] == P.LOWER for n in P.OPTIMIZABLE) and P.valid_range("eta")[1] == 4.1
