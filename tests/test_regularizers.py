"""Geometric regularizers: zero at rest, positive and differentiable when perturbed, rebuilt after a topology change."""
import numpy as np
import pytest

from mrd_backend.errors import MRDError
from mrd_backend.scene.meshes import icosphere
from mrd_backend.optimization.regularizers import NAMES, REGULARIZERS, Regularizers, unique_edges
from mrd_backend.render.variant import mitsuba

mi = mitsuba()
import drjit as dr  # noqa: E402  (after mitsuba(), which sets the libLLVM path)


def _flat(v):
    return mi.Float(np.asarray(v, np.float32).ravel())


def _perturbed(v, scale=0.05, seed=0):
    return v + np.random.default_rng(seed).normal(scale=scale, size=v.shape).astype(np.float32)


# float64 numpy references of the four definitions, to check the Dr.Jit values and gradients.
def _ref(name, v, v0, f):
    e = unique_edges(f)
    if name == "laplacian":
        def lap(x):
            nbr_sum, deg = np.zeros_like(x), np.zeros(len(x))
            for a, b in ((0, 1), (1, 0)):
                np.add.at(nbr_sum, e[:, a], x[e[:, b]])
                np.add.at(deg, e[:, a], 1)
            return x - nbr_sum / deg[:, None]
        return np.mean(((lap(v) - lap(v0)) ** 2).sum(1))
    if name == "edge":
        length = lambda x: np.linalg.norm(x[e[:, 1]] - x[e[:, 0]], axis=1)
        return np.mean((length(v) - length(v0)) ** 2)
    if name == "area":
        area = lambda x: 0.5 * np.linalg.norm(np.cross(x[f[:, 1]] - x[f[:, 0]], x[f[:, 2]] - x[f[:, 0]]), axis=1)
        return np.mean((area(v) - area(v0)) ** 2)
    d0 = v0[e[:, 1]] - v0[e[:, 0]]
    d0 = d0 / (np.linalg.norm(d0, axis=1, keepdims=True) + 1e-8)
    ed = v[e[:, 1]] - v[e[:, 0]]
    perp = ed - (ed * d0).sum(1, keepdims=True) * d0
    return np.mean((perp ** 2).sum(1))


@pytest.fixture(scope="module")
def mesh():
    return icosphere(subdivisions=1)


@pytest.mark.parametrize("name", NAMES)
def test_zero_at_rest_positive_when_perturbed(mesh, name):
    v, f = mesh
    reg = REGULARIZERS[name](v, f)
    assert float(reg(_flat(v))[0]) == pytest.approx(0.0, abs=1e-9)
    value = float(reg(_flat(_perturbed(v)))[0])
    assert value > 1e-6
    ref = _ref(name, _perturbed(v).astype(np.float64), v.astype(np.float64), f)
    assert value == pytest.approx(ref, rel=1e-3)


@pytest.mark.parametrize("name", NAMES)
def test_point3f_input_matches_flat(mesh, name):
    v, f = mesh
    reg = REGULARIZERS[name](v, f)
    p = _perturbed(v)
    point = mi.Point3f(p[:, 0], p[:, 1], p[:, 2])
    assert float(reg(point)[0]) == pytest.approx(float(reg(_flat(p))[0]), rel=1e-6)


@pytest.mark.parametrize("name", NAMES)
def test_gradient_flows_into_vertex_buffer(mesh, name):
    v, f = mesh
    reg = REGULARIZERS[name](v, f)
    p = _perturbed(v)
    x = _flat(p)
    dr.enable_grad(x)
    loss = reg(x)
    dr.backward(loss)
    g = dr.grad(x).numpy().reshape(-1, 3)
    assert np.isfinite(g).all() and np.abs(g).max() > 0
    # Directional derivative against a central difference of the float64 reference.
    u = np.random.default_rng(1).normal(size=p.shape)
    h = 1e-4
    p64, v64 = p.astype(np.float64), v.astype(np.float64)
    fd = (_ref(name, p64 + h * u, v64, f) - _ref(name, p64 - h * u, v64, f)) / (2 * h)
    assert float((g * u).sum()) == pytest.approx(fd, rel=1e-2, abs=1e-7)


def test_container_weighted_sum_terms_and_gradient(mesh):
    v, f = mesh
    weights = {"laplacian": 2.0, "edge": 0.5, "area": 0.0, "arap": 1.0}
    regs = Regularizers(v, f, weights)
    assert regs.names == ["laplacian", "edge", "arap"]  # weight 0: not built at all
    assert "area" not in regs.terms_by_name
    assert float(regs(_flat(v))[0]) == pytest.approx(0.0, abs=1e-9)
    x = _flat(_perturbed(v))
    dr.enable_grad(x)
    terms = regs.terms(x)
    assert set(terms) == {"laplacian", "edge", "arap"} and all(isinstance(t, float) for t in terms.values())
    total = regs(x)
    assert float(total[0]) == pytest.approx(sum(weights[n] * t for n, t in terms.items()), rel=1e-5)
    dr.backward(total)
    g = dr.grad(x).numpy()
    assert np.isfinite(g).all() and np.abs(g).max() > 0


def test_all_weights_zero_builds_nothing_and_returns_zero(mesh):
    v, f = mesh
    for weights in ({}, {n: 0.0 for n in NAMES}):
        regs = Regularizers(v, f, weights)
        assert not regs and regs.names == [] and regs.terms(_flat(v)) == {}
        assert float(regs(_flat(_perturbed(v)))[0]) == 0.0


def test_rebuild_after_topology_change(mesh):
    v, f = mesh
    regs = Regularizers(v, f, {n: 1.0 for n in NAMES})
    v2, f2 = icosphere(subdivisions=2)  # 162 vertices instead of 42: the old index arrays no longer fit
    regs.rebuild(v2, f2)
    assert all(t.num_vertices == len(v2) for t in regs.terms_by_name.values())
    assert float(regs(_flat(v2))[0]) == pytest.approx(0.0, abs=1e-9)
    x = _flat(_perturbed(v2))
    dr.enable_grad(x)
    total = regs(x)
    assert float(total[0]) > 0
    dr.backward(total)
    g = dr.grad(x).numpy()
    assert g.shape == (3 * len(v2),) and np.isfinite(g).all() and np.abs(g).max() > 0


def test_bad_input_is_reported(mesh):
    v, f = mesh
    with pytest.raises(MRDError, match="unknown regularizer"):
        Regularizers(v, f, {"smoothness": 1.0})
    with pytest.raises(MRDError, match=">= 0"):
        Regularizers(v, f, {"edge": -1.0})
    with pytest.raises(MRDError, match="index outside"):
        Regularizers(v, f + len(v), {"edge": 1.0})
