import os
import tempfile

import pytest

# The user's own weight locations, kept for the tests that compare against pretrained weights (`real_weights`).
REAL_WEIGHT_ENV = {k: os.environ.get(k) for k in ("MRD_WEIGHTS_DIR", "TORCH_HOME")}
# An empty weights folder: no other test may find (or download) pretrained weights by accident.
os.environ["MRD_WEIGHTS_DIR"] = tempfile.mkdtemp(prefix="mrd-empty-weights-")
os.environ.setdefault("TORCH_HOME", tempfile.mkdtemp(prefix="mrd-torch-home-"))
os.environ.setdefault("HF_HUB_OFFLINE", "1")


@pytest.fixture
def real_weights(monkeypatch):
    """The user's weights folder and torch hub cache, as they were before the test session blanked them."""
    for k, v in REAL_WEIGHT_ENV.items():
        if v is None:
            monkeypatch.delenv(k, raising=False)
        else:
            monkeypatch.setenv(k, v)


@pytest.fixture(scope="session")
def mi():
    from mrd_backend.render.variant import mitsuba
    return mitsuba()


def tiny_config(**kw):
    from mrd_backend.config import RunConfig
    base = dict(scene="blob", envmap="studio", model="mae", views=4, width=48, height=48, spp=4, epochs=3,
                remesh=[], start_subdivisions=3, patience=0, mesh_every=1, evidence=False, turntable_frames=0,
                panel_every=-1)
    base.update(kw)
    return RunConfig(**base)
