"""guiding_every: each view's indirect-silhouette octree is built on every K-th backward pass of that view and
reused in between; a remesh (new topology, so a new boundary-sample space) forces a build; K = 1 builds every pass."""
import pytest

from conftest import tiny_config
from mrd_backend.config import RunConfig
from mrd_backend.errors import MRDError
from mrd_backend.optimization.loop import optimize


def _run(tmp_path, monkeypatch, name, **kw):
    """(report, octree builds per epoch) of a 2-view research run at 32 px."""
    from mrd_backend.render.variant import mitsuba
    mi = mitsuba()
    built = []
    build = mi.ad.ProjectiveDetail.init_indirect_silhouette_octree

    def counting(self, *a, **k):            # one call per octree build
        built.append(1)
        return build(self, *a, **k)
    monkeypatch.setattr(mi.ad.ProjectiveDetail, "init_indirect_silhouette_octree", counting)
    totals = []
    cfg = tiny_config(**{**dict(views=2, width=32, height=32, spp=4, epochs=4, integrator="research", start_subdivisions=5,
                                out=str(tmp_path / name)), **kw})
    r = optimize(cfg, callback=lambda step: totals.append(len(built)), log=lambda *a: None)
    return r.report, [b - a for a, b in zip([0] + totals, totals)]


@pytest.mark.slow
def test_octrees_are_kept_for_guiding_every_passes_and_rebuilt_after_a_remesh(tmp_path, monkeypatch):
    # The start sphere is convex (no shadow boundaries): epoch 0's set-ups find no samples and keep no octree, so
    # epoch 1 builds again; then each view's octree would be kept for one pass, but the remesh after epoch 1
    # forces builds in epoch 2.
    report, per_epoch = _run(tmp_path, monkeypatch, "k2", guiding_every=2, remesh=[1])
    assert per_epoch == [2, 2, 2, 0], per_epoch     # 2 views: kept through epoch 3
    assert report["loss"]["end"] < report["loss"]["start"]
    assert report["integrator"]["guiding_every"] == 2
    assert report["integrator"]["octree_builds"] == 6 and report["integrator"]["octree_reuses"] == 2
    report, per_epoch = _run(tmp_path, monkeypatch, "k1", guiding_every=1, views=1, epochs=2)
    assert per_epoch == [1, 1], per_epoch        # K = 1: Mitsuba's behaviour, a build in every pass
    assert report["integrator"]["octree_reuses"] == 0


def test_guiding_every_is_checked():
    with pytest.raises(MRDError, match="guiding_every"):
        RunConfig(guiding_every=0)
