"""SceneSpec -> Mitsuba, the camera rig, environments and mesh checks."""
import numpy as np
import pytest

from mrd_backend.scene.cameras import CameraRig, fibonacci_directions, look_at
from mrd_backend.scene.environment import Environment, named_environment
from mrd_backend.errors import MRDError
from mrd_backend.scene.meshes import check_mesh, icosphere, manifold_problems, remesh
from mrd_backend.scene.spec import Material, SceneSpec
from mrd_backend.scenes import load_scene, load_target_mesh, target_mesh_names


def test_fibonacci_rig_matches_research_lattice_in_blender_frame():
    d = fibonacci_directions(25)
    assert np.allclose(np.linalg.norm(d, axis=1), 1)
    # research: polar angle from Mitsuba +Z = Blender -Y; view 0 is nearest that pole
    i = np.arange(25)
    assert np.allclose(-d[:, 1], 1 - 2 * (i + 0.5) / 25)
    # evenly spread: no two views closer than 15 degrees
    cos = d @ d.T - 2 * np.eye(25)
    assert np.degrees(np.arccos(cos.max())) > 15


def test_cameras_look_at_object_with_z_up():
    rig = CameraRig(n_views=8)
    center = np.array([1.0, 2.0, 3.0])
    for m in rig.to_worlds(center, 2.0):
        forward, up, origin = m[:3, 2], m[:3, 1], m[:3, 3]
        assert np.allclose(np.linalg.norm(origin - center), 2.8 * 2.0)
        assert np.allclose(forward, (center - origin) / np.linalg.norm(center - origin))
        assert up[2] > 0  # Blender's up
    assert np.allclose(look_at((0, 0, 5), (0, 0, 0))[:3, 2], (0, 0, -1))  # degenerate up handled


def test_heldout_rig_never_coincides():
    a = fibonacci_directions(25)
    b = CameraRig(n_views=25).held_out()
    bd = fibonacci_directions(25, b.offset)
    assert (a @ bd.T).max() < np.cos(np.radians(2))


def test_render_scene_dict(mi):
    v, f = icosphere(2)
    spec = SceneSpec(v, f, material=Material("principled", (0.8, 0.2, 0.1), {"roughness": 0.4}),
                     environment=named_environment("sky", 32), cameras=CameraRig(2, width=24, height=16))
    d = spec.to_mitsuba_dict()
    assert d["integrator"]["type"] == "direct_projective" and d["emitter"]["type"] == "envmap"
    imgs = spec.render(spp=4)
    assert len(imgs) == 2 and imgs[0].shape == (16, 24, 3)
    assert np.isfinite(imgs[0]).all() and imgs[0].mean() > 0
    center = imgs[0][6:10, 10:14].mean(-1)
    assert (center > 0).all()  # the object fills the middle of the frame


def test_constant_environment_and_textured_material(mi):
    v, f = icosphere(1)
    uv = np.c_[np.arctan2(v[:, 1], v[:, 0]) / (2 * np.pi) + 0.5, v[:, 2] * 0.5 + 0.5]
    tex = np.zeros((4, 4, 3), np.float32)
    tex[..., 0] = 1
    spec = SceneSpec(v, f, uvs=uv, material=Material("diffuse", tex),
                     environment=Environment("constant", color=(1, 1, 1)), cameras=CameraRig(1, width=8, height=8))
    img = spec.render(spp=8)[0]
    mid = img[3:5, 3:5].reshape(-1, 3).mean(0)
    assert mid[0] > 5 * max(mid[1], mid[2])  # red texture, white light


def test_bad_inputs_say_what_to_do():
    with pytest.raises(MRDError, match="no triangles"):
        SceneSpec(np.zeros((3, 3)), np.zeros((0, 3)))
    with pytest.raises(MRDError, match="NaN"):
        SceneSpec(np.full((3, 3), np.nan), np.array([[0, 1, 2]]))
    with pytest.raises(MRDError, match="unknown scene"):
        load_scene("nonesuch")
    with pytest.raises(MRDError, match="not bundled"):
        load_scene("dragon")
    with pytest.raises(MRDError, match="unknown environment"):
        named_environment("nowhere")
    with pytest.raises(MRDError, match="does not exist"):
        load_target_mesh("/no/such/mesh.ply")


def test_missing_image_file(mi, tmp_path):
    v, f = icosphere(1)
    spec = SceneSpec(v, f, material=Material("diffuse", str(tmp_path / "missing.png")))
    with pytest.raises(MRDError, match="does not exist"):
        spec.to_mitsuba_dict()
    spec = SceneSpec(v, f, environment=Environment("file", path=str(tmp_path / "sky.hdr")))
    with pytest.raises(MRDError, match="does not exist"):
        spec.to_mitsuba_dict()


def test_empty_or_unreadable_mesh_file(tmp_path):
    p = tmp_path / "empty.ply"
    p.write_text("")
    with pytest.raises(MRDError):
        load_target_mesh(str(p))


def test_non_manifold_start_is_refused():
    v, f = icosphere(1)
    with pytest.raises(MRDError, match="closed manifold"):
        check_mesh(v, f[:-3], "start mesh", closed=True)


def test_bundled_meshes_and_remesh_keeps_closed_manifold():
    for name in target_mesh_names():
        v, f = load_target_mesh(name)
        assert len(v) > 500
    v, f = icosphere(3)
    v = v * np.array([1.0, 0.6, 1.3], np.float32)
    nv, nf = remesh(v, f)
    assert manifold_problems(nv, nf) == ""
    assert abs(len(nv) - len(v)) < len(v)  # same resolution, roughly


@pytest.mark.parametrize("name", ["suzanne", "knot", "blob"])
def test_bundled_targets_face_outward(name):
    """A one-sided BSDF shades only the side a face's normal points to: inward faces (the knot had them) render a
    black silhouette. Outward winding is a positive signed volume."""
    v, f = load_target_mesh(name)
    p0, p1, p2 = (np.asarray(v, np.float64)[f[:, k]] for k in range(3))
    assert np.einsum("ij,ij->i", p0, np.cross(p1, p2)).sum() / 6 > 0
