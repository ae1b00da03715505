"""Similarity measures, RSA, pixel measures, the held-out control and the cross-model panel (CPU, tiny)."""
import dataclasses

import numpy as np
import pytest

from mrd_backend.errors import MRDError
from mrd_backend.evidence import heldout as H
from mrd_backend.evidence import pixels as P
from mrd_backend.evidence import rsa as R
from mrd_backend.evidence.similarity import KINDS, per_view, similarity


@pytest.fixture
def feats():
    rng = np.random.default_rng(0)
    return rng.random((1, 2048)), rng.random((1, 16, 32))


def test_similarity_is_one_for_identical_and_lower_for_different(feats):
    vec, patches = feats
    rng = np.random.default_rng(1)
    for f in (vec, patches):
        same = similarity(f, f.copy())
        assert set(KINDS) <= set(same)
        for k in KINDS:
            assert same[k] == pytest.approx(1.0, abs=1e-12), k
        assert same["l2_distance"] == pytest.approx(0.0)
        other = similarity(f, f + rng.normal(0, 0.3, f.shape))
        for k in KINDS:
            assert other[k] < 0.999, k


def test_per_patch_cosine_and_flattened_input(feats):
    import torch
    _, patches = feats
    a = patches[0]
    b = a.copy()
    b[0] = -b[0]  # one patch flipped: per-patch mean cosine = (15 - 1) / 16
    assert similarity(a, b, "cosine")["cosine"] == pytest.approx(14 / 16)
    # last_features() is flat while prepared target features keep their (1, N, C) shape
    assert similarity(torch.tensor(patches), a.ravel(), "cosine")["cosine"] == pytest.approx(1.0)
    with pytest.raises(MRDError):
        similarity(np.ones(3), np.ones(4))
    with pytest.raises(MRDError):
        similarity(a, a, "manhattan")


def test_per_view_means():
    a = [np.arange(5.0) + i for i in range(3)]
    out = per_view(a, a)
    assert out["mean"]["cosine"] == pytest.approx(1.0) and len(out["per_view"]["pearson"]) == 3


def test_rsa_of_features_with_themselves_is_one():
    rng = np.random.default_rng(2)
    f = [rng.random(64) for _ in range(6)]
    m = R.rdm(f)
    assert m.shape == (6, 6) and np.allclose(np.diag(m), 0) and np.allclose(m, m.T)
    out = R.rsa(f, [x.copy() for x in f])
    assert out["kendall_tau_b"] == pytest.approx(1.0) and out["spearman_rho"] == pytest.approx(1.0)
    assert out["n_pairs"] == 15 and out["kendall_p"] < 1e-6
    other = R.compare_rdms(m, R.rdm([rng.random(64) for _ in range(6)]))
    assert other["kendall_tau_b"] < 0.9
    with pytest.raises(MRDError):
        R.rdm(f[:1])


def test_rsa_plots(tmp_path):
    rng = np.random.default_rng(3)
    a, b = R.rdm([rng.random(20) for _ in range(4)]), R.rdm([rng.random(20) for _ in range(4)])
    R.plot_rdms({"target": a, "result": b}, tmp_path / "rdms.png")
    R.plot_scatter(a, b, tmp_path / "scatter.png")
    assert (tmp_path / "rdms.png").stat().st_size > 1000 and (tmp_path / "scatter.png").stat().st_size > 1000


def test_pixel_measures(tmp_path):
    rng = np.random.default_rng(4)
    t = [rng.random((20, 20, 3)).astype(np.float32) for _ in range(2)]
    r = [np.clip(x + 0.1, 0, 1) for x in t]
    same, _ = P.pixel_metrics(t, t)
    assert same["mean"]["flip"] == pytest.approx(0.0) and same["mean"]["ssim"] == pytest.approx(1.0)
    assert same["mean"]["psnr"] is None  # identical images: infinite PSNR, stored as null
    diff, maps = P.pixel_metrics(r, t)
    assert 0 < diff["mean"]["flip"] < 1 and diff["mean"]["ssim"] < 1 and 10 < diff["mean"]["psnr"] < 40
    assert maps[0].shape == (20, 20)
    P.flip_grid_png(maps, tmp_path / "flip.png", means=diff["per_view"]["flip"])
    assert (tmp_path / "flip.png").is_file()
    with pytest.raises(MRDError):
        P.pixel_metrics(r, t[:1])


def test_control_rotation_moves_vertices_about_up():
    rng = np.random.default_rng(5)
    v = rng.random((50, 3)).astype(np.float32) + [2, 0, 1]
    w = H.rotate_about_up(v, 10)
    assert np.abs(w - v).max() > 1e-3
    assert np.allclose(w[:, 2], v[:, 2], atol=1e-6)                       # up is +Z: heights unchanged
    c = H.mesh_center(v)
    assert np.allclose(np.linalg.norm((w - c)[:, :2], axis=1), np.linalg.norm((v - c)[:, :2], axis=1), atol=1e-5)
    ang = np.degrees(np.arctan2(*(w - c)[0, [1, 0]]) - np.arctan2(*(v - c)[0, [1, 0]]))
    assert (ang + 180) % 360 - 180 == pytest.approx(10.0, abs=1e-3)       # counter-clockwise seen from above
    assert np.allclose(H.rotate_about_up(v, 0), v)


def test_control_and_heldout_renders(tmp_path):
    """The control renders differ from the targets with the same cameras; the held-out rig is another rig."""
    from mrd_backend.scenes import load_scene
    from mrd_backend.render.tonemap import to_ldr
    spec = load_scene("blob", "studio", views=3, size=16)
    spec = dataclasses.replace(spec, integrator={"type": "direct"})
    ctrl = H.control_spec(spec)
    assert all(np.allclose(a, b) for a, b in zip(ctrl.camera_matrices(), spec.camera_matrices()))
    rig = H.heldout_rig(spec)
    assert rig is not None and len(rig.matrices) == 3
    assert not H.rigs_overlap(spec.camera_matrices(), rig.matrices)
    t = [to_ldr(x) for x in spec.render(spp=4, seed=1)]
    c = [to_ldr(x) for x in ctrl.render(spp=4, seed=1)]
    again = [to_ldr(x) for x in spec.render(spp=4, seed=1)]
    assert all(np.abs(a - b).mean() > 1e-3 for a, b in zip(t, c))
    assert all(np.allclose(a, b) for a, b in zip(t, again))


@pytest.mark.slow
def test_panel_builds_what_it_can_and_says_why_not():
    from mrd_backend.evidence.panel import Panel
    rng = np.random.default_rng(6)
    t = [rng.random((16, 16, 3)).astype(np.float32)]  # one view: resnet runs at 256 px, three forwards in all
    p = Panel(["mae", "resnet", "no_such_model"], weights="untrained", log=lambda *a: None)
    assert p.models == ["mae", "resnet"] and "no_such_model" in p.skipped
    p.set_targets(t)
    same = p.evaluate(t)
    assert same["mae"]["mean"] == pytest.approx(1.0) and same["resnet"]["mean"] == pytest.approx(1.0, abs=1e-6)
    other = p.evaluate([np.clip(x[::-1] * 0.5, 0, 1) for x in t], detail=True)
    assert other["mae"]["mean"] < 0.99 and other["resnet"]["mean"] < same["resnet"]["mean"]
    assert "measures" in other["resnet"] and len(other["resnet"]["per_view"]) == 1
