"""Material metamers: the shared run loop with principled-BSDF parameters (tiny CPU runs: 32x32, 4 spp, 16x16
textures)."""
import json

import numpy as np
import pytest

from mrd_backend.scenes import materials as material_scenes
from mrd_backend.scene.cameras import look_at
from mrd_backend.config import RunConfig
from mrd_backend.errors import MRDError
from mrd_backend.optimization.material import MaterialParameters
from mrd_backend.scene.images import from_srgb, read_texture, to_srgb
from mrd_backend.scene.principled import valid_range
from mrd_backend.optimization.loop import optimize
from mrd_backend.scene.spec import Material

# End-of-run extras (held-out controls, cross-model panel, turntables) are not what these tests are about.
FAST = {k: v for k, v in dict(evidence=False, turntable_frames=0, panel_every=-1).items()
        if k in RunConfig.__dataclass_fields__}


def cfg(tmp_path, **kw):
    base = dict(scene="diffuse", envmap="studio", model="mae", width=32, height=32, spp=4, epochs=3,
                texture_size=[16, 16], patience=0, render_every=100, out=str(tmp_path / "run"), **FAST)
    base.update(kw)
    return RunConfig(**base)


def quiet(*a):
    pass


@pytest.fixture(scope="module")
def diffuse_run(tmp_path_factory):
    """One short mae run of the diffuse scene, shared by the tests that read its results."""
    tmp = tmp_path_factory.mktemp("diffuse")
    steps = []
    r = optimize(cfg(tmp, epochs=8, lr=0.1, render_every=4), callback=steps.append, log=quiet)
    return r, steps


def test_scenes_are_listed_and_build():
    assert material_scenes.names() == ["diffuse", "translucent", "brushed_metal", "aurora"]
    spec = material_scenes.load("translucent", 16)
    assert spec.uvs is not None and spec.uvs.shape == (len(spec.vertices), 2)
    assert spec.integrator["max_depth"] == 12 and "point_light" not in spec.extras
    assert material_scenes.load("diffuse", 16).integrator["max_depth"] == 10
    assert "point_light" in material_scenes.load("aurora", 16).extras
    assert len(spec.cameras.matrices) == 4
    # heights along +Z: every camera at z = 2 looking horizontally
    for m in spec.cameras.matrices:
        assert m[2, 3] == pytest.approx(2.0) and abs(m[2, 2]) < 1e-9
    with pytest.raises(MRDError, match="diffuse, translucent"):
        material_scenes.load("velvet")


def test_base_color_texture_moves_toward_target(diffuse_run):
    r, steps = diffuse_run
    assert r.status == "done"
    m = r.report["material"]
    rmse = m["texture_rmse"]["base_color"]
    assert rmse["end"] * 2 <= rmse["start"], rmse  # texel RMSE falls by at least 2x
    assert r.report["loss"]["end"] < r.report["loss"]["start"]
    assert m["params"] == ["base_color"] and m["texture_size"] == [16, 16]
    # per-step curves in report.json
    assert all("texture_rmse" in s for s in r.report["steps"])
    for f in ("material_mitsuba.json", "material_blender.json", "material_curves.png", "renders/final_grid.png",
              "renders/target_grid.png", "textures/final_base_color.exr", "textures/final_base_color.png",
              "textures/step_000004_base_color.exr"):
        assert (r.out / f).is_file(), f
    assert steps[-1].textures["base_color"].shape == (16, 16, 3)


def test_textures_on_disk_equal_the_values_in_memory(diffuse_run, mi):
    import imageio.v3 as iio
    r, steps = diffuse_run
    tex = steps[-1].textures["base_color"]  # the last step = the final state (no early stop)
    exr = read_texture(r.out / "textures/final_base_color.exr")
    assert exr.dtype == np.float32 and np.array_equal(exr, tex)  # EXR: exact
    png = iio.imread(r.out / "textures/final_base_color.png").astype(np.float64) / 255
    assert np.abs(png - to_srgb(tex)).max() <= 0.5 / 255 + 1e-6  # PNG: 8-bit sRGB rounding
    assert np.abs(from_srgb(png) - tex).max() < 0.01
    # the final material as a Mitsuba dict loads (paths relative to the run folder) with the same texture
    d = json.loads((r.out / "material_mitsuba.json").read_text())
    d["base_color"]["filename"] = str(r.out / d["base_color"]["filename"])
    params = mi.traverse(mi.load_dict(d))
    assert np.array_equal(np.asarray(params["base_color.data"]), tex)
    blender = json.loads((r.out / "material_blender.json").read_text())
    assert blender["inputs"]["Base Color"]["image"] == "textures/final_base_color.exr"
    assert 0 < blender["inputs"]["Roughness"] <= 1


def test_scalar_roughness_moves_toward_target(tmp_path):
    target = 0.12
    spec = material_scenes.load("diffuse", 32)
    spec.material = Material("principled", (0.5, 0.5, 0.5), {"roughness": target, "metallic": 0.6})
    c = cfg(tmp_path, params=["roughness"], init="gray", epochs=6, lr=0.06)  # gray start = the target's colour
    r = optimize(c, target=spec, log=quiet)
    e = r.report["material"]["parameter_error"]["roughness"]
    assert e["start"] == pytest.approx(0.5) and e["target"] == pytest.approx(target)
    assert e["error_end"] < 0.6 * e["error_start"], e
    curve = [s["params"]["roughness"] for s in r.report["steps"]]
    assert curve[-1] < curve[0]


def _front_and_sky(spec):
    """View 0 sees the object; view 1 looks straight up at the sky: no path from it reaches the object."""
    front = spec.cameras.matrices[0]
    sky = look_at((0.0, 0.0, 50.0), (0.0, 0.0, 100.0), up=(0.0, 1.0, 0.0))
    spec.cameras.matrices = [front, sky]
    return spec


def test_every_views_gradient_reaches_the_step(tmp_path, monkeypatch):
    """The last view sees nothing of the object, so only the first view's gradient can move the texture."""
    def moved(tag):
        steps = []
        spec = _front_and_sky(material_scenes.load("diffuse", 32))
        optimize(cfg(tmp_path, epochs=1, out=str(tmp_path / tag)), target=spec, callback=steps.append, log=quiet)
        return np.abs(steps[-1].textures["base_color"] - valid_range("base_color")[0]).max(axis=-1)

    d = moved("accumulated")
    assert (d > 0.02).mean() > 0.2, (d > 0.02).mean()  # a step of ~lr on the texels the front view sees
    assert np.median(d[d > 0.02]) == pytest.approx(0.03, abs=0.002)

    # The research code's loop re-registered every parameter before each view, dropping the earlier views'
    # gradients: the same check then sees nothing move (so the assertion above tests accumulation).
    import drjit as dr

    def research_apply(self):
        for n, k in self.keys.items():
            self.opt[k] = dr.clip(self.opt[k], *valid_range(n))
        self.params.update(self.opt)

    monkeypatch.setattr(MaterialParameters, "apply", research_apply)
    assert moved("last_view_only").max() == 0


def _parameters(mi, tmp_path, **kw):
    c = cfg(tmp_path, **kw).resolved(True, None)
    spec = material_scenes.load(c.scene, 16)
    return MaterialParameters.create(mi, spec, c, None, quiet)


def test_clamping_keeps_every_parameter_valid(mi, tmp_path):
    import drjit as dr
    P = _parameters(mi, tmp_path, scene="translucent", lr=1e6,
                    params=["base_color", "roughness", "eta", "spec_trans", "metallic", "sheen"])
    assert float(P.state()["base_color"].min()) == pytest.approx(0.001)  # zero start, clamped before rendering
    rng = np.random.default_rng(0)
    for n, k in P.keys.items():
        x = P.opt[k]
        g = rng.choice([-1.0, 1.0], size=np.asarray(x).shape).astype(np.float32)
        if n == "eta":
            g[...] = -1.0  # pushed up, far past 4.1
        dr.set_grad(x, type(x)(g) if n == "base_color" else type(x)(g.ravel()))
    before = P.state()
    P.step()
    for n, v in P.state().items():
        lo, hi = valid_range(n)
        assert v.min() >= lo - 1e-7 and v.max() <= hi + 1e-7, (n, v.min(), v.max())
        assert np.isclose(v, lo).any() or np.isclose(v, hi).any()
        assert np.array_equal(np.asarray(P.params[P.keys[n]]), np.asarray(P.opt[P.keys[n]]))  # the scene sees it
    assert float(P.state()["eta"][0]) == pytest.approx(4.1)
    assert P.is_finite()
    P.restore(before)  # early stopping's restore: back to the exact earlier state, in the scene too
    for n, v in P.state().items():
        assert np.array_equal(v, before[n]) and np.array_equal(np.asarray(P.params[P.keys[n]]), v), n


def test_research_dual_buffer_schedule(mi, tmp_path):
    P = _parameters(mi, tmp_path, scene="brushed_metal", model="dual_buffer", preprocess="research", lr=0.03)
    k_base, k_rough, k_aniso = P.keys["base_color"], P.keys["roughness"], P.keys["anisotropic"]
    P.end_of_epoch(0)
    assert P.opt.learning_rate(k_rough) in (None, 0.03)
    P.end_of_epoch(1)
    assert P.opt.learning_rate(k_rough) == pytest.approx(0.09)     # max(0.09, 0.03 * 0.95) = 0.09
    assert P.opt.learning_rate(k_aniso) == pytest.approx(0.09)     # the research pops only base_color
    assert P.opt.learning_rate(k_base) in (None, 0.03)
    P2 = _parameters(mi, tmp_path, scene="brushed_metal", model="dual_buffer", lr=0.03)  # correct preprocessing
    P2.end_of_epoch(5)
    assert P2.opt.learning_rate(k_rough) in (None, 0.03)


def test_init_states(mi, tmp_path):
    gray = _parameters(mi, tmp_path, init="gray").state()["base_color"]
    assert np.all(gray == 0.5)
    noise = _parameters(mi, tmp_path, init="noise").state()["base_color"]
    assert noise.std() > 0.2 and noise.min() >= 0.001


# -- bad input ------------------------------------------------------------------------------------------------------
def _fails(tmp_path, match, name="bad", **kw):
    out = tmp_path / name
    with pytest.raises(MRDError, match=match) as exc:
        optimize(cfg(tmp_path, width=16, height=16, epochs=1, out=str(out), **kw), log=quiet)
    msg = str(exc.value)
    assert "\n" not in msg
    report = json.loads((out / "report.json").read_text())  # what was written before stays, and says why
    assert report["status"] == "failed" and report["error"] == msg
    assert (out / "config.json").is_file() and (out / "renders/target_grid.png").is_file()
    return msg


def test_unknown_parameter_lists_what_can_be_optimized(tmp_path):
    msg = _fails(tmp_path, "unknown material parameter", params=["base_color", "roughnes"])
    assert "'roughnes'" in msg and "roughness" in msg and "spec_trans" in msg and "eta" in msg


def test_zero_resolution_and_unreadable_texture_are_one_line_errors(tmp_path):
    with pytest.raises(MRDError, match="texture_size must be two positive numbers"):  # refused before set-up
        optimize(cfg(tmp_path, texture_size=[0, 16], out=str(tmp_path / "zero")), log=quiet)
    assert not (tmp_path / "zero").exists()
    bad = tmp_path / "broken.png"
    bad.write_bytes(b"not a png at all")
    _fails(tmp_path, "cannot read texture file", "unreadable", init=str(bad))
    _fails(tmp_path, "does not exist", "missing", init=str(tmp_path / "missing.exr"))
    with pytest.raises(MRDError, match="eta and specular"):
        optimize(cfg(tmp_path, params=["eta", "specular"], out=str(tmp_path / "both")), log=quiet)
