import os
import tempfile

import pytest

# An empty weights folder: no test may find (or download) pretrained weights by accident.
os.environ["MRD_WEIGHTS_DIR"] = tempfile.mkdtemp(prefix="mrd-empty-weights-")
os.environ.setdefault("TORCH_HOME", tempfile.mkdtemp(prefix="mrd-torch-home-"))
os.environ.setdefault("HF_HUB_OFFLINE", "1")


@pytest.fixture(scope="session")
def mi():
    from mrd_backend.variant import mitsuba
    return mitsuba()


def tiny_config(**kw):
    from mrd_backend.config import RunConfig
    base = dict(scene="blob", envmap="studio", model="mae", views=4, width=48, height=48, spp=4, epochs=3,
                remesh=[], start_subdivisions=3, patience=0, mesh_every=1, evidence=False, turntable_frames=0,
                panel_every=-1)
    base.update(kw)
    return RunConfig(**base)
