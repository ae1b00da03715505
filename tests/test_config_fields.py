"""Every RunConfig setting is validated the same way from the CLI, the worker and the Python API."""
import dataclasses

import pytest

from mrd_backend.config import FIELD_KINDS, RunConfig
from mrd_backend.errors import MRDError


def test_every_setting_has_a_declared_kind():
    missing = [f.name for f in dataclasses.fields(RunConfig) if f.name not in FIELD_KINDS]
    assert not missing, f"add these RunConfig fields to config.FIELD_KINDS: {missing}"


@pytest.mark.parametrize("bad", [{"replicates": "two"}, {"camera_distance": -1.0}, {"heldout_views": 1.5},
                                 {"render_seeds": "sometimes"}])
def test_new_settings_are_checked_too(bad):
    with pytest.raises(MRDError):
        RunConfig(**bad)
