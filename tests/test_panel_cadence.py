"""The cross-model panel's cost and memory: its cadence by integrator profile (panel_every overrides it), the
report's list of scored steps, and the end of a run holding at most one panel network at a time."""
import gc
import weakref

import numpy as np
import pytest

from conftest import tiny_config
from mrd_backend.config import PANEL_EVERY_FAST, RunConfig, panel_cadence
from mrd_backend.evidence import EvidenceInputs, Panel, end_of_run, write_report_html
from mrd_backend.optimization.loop import optimize
from mrd_backend.objectives import build_objective


def test_cadence_by_profile_and_override():
    assert panel_cadence(RunConfig(integrator="fast")) == PANEL_EVERY_FAST
    assert panel_cadence(RunConfig(integrator="research")) == 1           # the research code: every step
    assert panel_cadence(RunConfig(profile="research").resolved(False, None)) == 1
    assert panel_cadence(RunConfig(integrator="fast", log_every=4)) == 12  # a multiple of log_every: recorded
    assert panel_cadence(RunConfig(integrator="research", log_every=4)) == 4
    assert panel_cadence(RunConfig(integrator="fast", panel_every=3)) == 3  # the override
    assert panel_cadence(RunConfig(integrator="research", panel_every=-1)) == -1


@pytest.mark.parametrize("panel_every, scored", [(0, [0, 3]), (2, [0, 2, 3])])
def test_report_says_which_steps_were_scored(tmp_path, panel_every, scored):
    # a cheap panel (pixel objectives) under `fast`: the default scores step 0 and the last; panel_every overrides
    cfg = tiny_config(views=2, width=24, height=24, spp=2, epochs=4, evidence=True, panel_every=panel_every,
                      panel_models=["mae"], heldout_views=2, heldout_seeds=1, out=str(tmp_path / "r"))
    r = optimize(cfg, log=lambda *a, **k: None).report
    assert r["panel_steps"] == {"every": 10 if panel_every == 0 else panel_every, "steps": scored}
    assert [s["step"] for s in r["steps"] if "panel" in s] == scored   # the others carry no panel value at all
    assert all(0 <= s["panel"]["mae"] <= 1 for s in r["steps"] if "panel" in s)
    html = write_report_html(tmp_path / "r").read_text()
    assert "the other steps were not scored" in html


class _Net:
    """A stand-in panel network that counts how many of its kind are alive."""
    live = weakref.WeakSet()
    most = 0

    def __init__(self, name):
        self.name, self.weights_used, self.renders_per_view = name, "untrained", 1
        _Net.live.add(self)
        _Net.most = max(_Net.most, len(_Net.live))

    def prepare(self, x):
        return float(np.asarray(x).mean())

    def loss(self, x, tf, *_):
        self.s = 1.0 - abs(float(np.asarray(x).mean()) - tf)
        return self.s

    def similarity(self, tf):
        return self.s

    def last_features(self):
        return None


def _images(n=3, size=8):
    rng = np.random.default_rng(0)
    t = [rng.random((size, size, 3)).astype(np.float32) for _ in range(n)]
    return t, [np.clip(x + 0.05, 0, 1) for x in t]


def test_end_of_run_holds_one_panel_network_at_a_time(monkeypatch):
    import mrd_backend.evidence.panel as panel_mod
    monkeypatch.setattr(panel_mod, "build_model", lambda name, *a, **k: _Net(name))
    gc.collect()
    _Net.most = 0
    t, r = _images()
    ev = end_of_run(EvidenceInputs(build_objective("mae"), t, r, panel_models=["a", "b", "c"], lpips=False,
                                   log=None))
    assert set(ev["panel"]["models"]) == {"a", "b", "c"} and _Net.most == 1
    assert all(m["mean"] is not None for m in ev["panel"]["models"].values())

    # the loop's panel (all its networks loaded) hands each over and keeps none after the end-of-run evidence
    loop_panel = Panel(["a", "b"], log=None)
    loop_panel.set_targets(t)
    assert len(_Net.live) == 2
    ev = end_of_run(EvidenceInputs(build_objective("mae"), t, r, panel=loop_panel, lpips=False, log=None))
    assert set(ev["panel"]["models"]) == {"a", "b"} and not loop_panel.objectives
    gc.collect()
    assert len(_Net.live) == 0
