"""User mesh files: NaN vertices caught before trimesh drops faces, UVs and textures kept (OBJ, glTF), Y-up files
turned to Z up as Blender imports them (`--up` overrides), and objects at any scale in view of the cameras."""
import copy

import numpy as np
import pytest

from mrd_backend import cli
from mrd_backend.errors import MRDError
from mrd_backend.scene.meshes import load_mesh, read_mesh_file
from mrd_backend.scenes import load_scene

RED, GREEN = (200, 30, 30), (30, 200, 30)


@pytest.fixture(scope="module")
def box_files(tmp_path_factory):
    """A box 1 x 3 x 0.5 (long along the file's Y), UV-mapped onto a texture red on top, green below, as OBJ
    (+ .mtl + .png), GLB and PLY."""
    import trimesh
    from PIL import Image
    d = tmp_path_factory.mktemp("meshes")
    m = trimesh.creation.box(extents=(1.0, 3.0, 0.5)).subdivide()
    uv = np.stack([m.vertices[:, 0] + 0.5, (m.vertices[:, 1] + 1.5) / 3.0], 1)
    tex = np.zeros((16, 16, 3), np.uint8)
    tex[:8], tex[8:] = RED, GREEN  # image row 0 is the top: v near 1 (file +Y) is red
    m.visual = trimesh.visual.TextureVisuals(uv=uv, image=Image.fromarray(tex))
    m.visual.material.diffuse = [255, 255, 255, 255]  # glTF multiplies the texture by this (trimesh's default: 0.4)
    for name in ("box.obj", "box.glb", "box.ply"):
        m.export(d / name)
    return d


def _ply_with_nan(path):
    path.write_text("ply\nformat ascii 1.0\nelement vertex 5\nproperty float x\nproperty float y\nproperty float z\n"
                    "element face 5\nproperty list uchar int vertex_indices\nend_header\n"
                    "0 0 0\n1 0 0\n0 1 0\n0 0 1\nnan 0 0\n3 0 2 1\n3 0 1 3\n3 0 3 2\n3 1 2 3\n3 4 1 2\n")


def test_nan_vertices_are_an_error_not_dropped_faces(tmp_path, monkeypatch, capsys):
    _ply_with_nan(tmp_path / "bad.ply")
    with pytest.raises(MRDError, match="1 vertices with NaN or infinite coordinates"):
        load_mesh(tmp_path / "bad.ply")
    monkeypatch.chdir(tmp_path)
    assert cli.main(["optimize", str(tmp_path / "bad.ply"), "studio", "mae", "-e", "1"]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "NaN" in err and not (tmp_path / "results").exists()


@pytest.mark.parametrize("name", ["box.obj", "box.glb"])
def test_obj_and_gltf_keep_uvs_and_texture_and_turn_y_up(box_files, name):
    f = read_mesh_file(box_files / name)
    assert np.allclose(f.vertices.max(0) - f.vertices.min(0), [1.0, 0.5, 3.0], atol=1e-5)  # file Y -> Z
    assert f.uvs is not None and f.uvs.shape == (len(f.vertices), 2)
    assert isinstance(f.base_color, np.ndarray) and f.base_color.shape == (16, 16, 3)
    red = f.base_color[0, 0]  # linear: sRGB 200/255 -> 0.58
    assert red[0] > 0.5 and red[1] < 0.05
    top = f.vertices[:, 2] > 1.4  # the file's +Y end, now on top, maps to the red half (v near 1)
    assert (f.uvs[top, 1] > 0.9).all()
    z = read_mesh_file(box_files / name, up="z")
    assert np.allclose(z.vertices.max(0) - z.vertices.min(0), [1.0, 3.0, 0.5], atol=1e-5)
    v, faces = load_mesh(box_files / name)  # geometry only: merged across UV seams, closed
    assert np.allclose(v.max(0) - v.min(0), [1.0, 0.5, 3.0], atol=1e-5)


def test_ply_is_z_up_as_blender_imports_it(box_files):
    f = read_mesh_file(box_files / "box.ply")
    assert np.allclose(f.vertices.max(0) - f.vertices.min(0), [1.0, 3.0, 0.5], atol=1e-5)
    assert np.allclose(load_mesh(box_files / "box.ply", up="y")[0].ptp(0), [1.0, 0.5, 3.0], atol=1e-5)


def test_textured_target_renders_its_texture_and_the_shape_its_mean(box_files):
    spec = load_scene(str(box_files / "box.obj"), "constant", views=1, size=24)
    spec.cameras.matrices = [__import__("mrd_backend.scene.cameras", fromlist=["look_at"]).look_at((6, 0, 0), (0, 0, 0))]
    img = spec.render(spp=4)[0]
    reddish = (img[..., 0] > 2 * img[..., 1]) & (img[..., 0] > 0.1)
    greenish = (img[..., 1] > 2 * img[..., 0]) & (img[..., 1] > 0.1)
    assert reddish[:10].sum() > 5 and greenish[14:].sum() > 5  # red on top, green below, as in the file
    # The optimized shape (new vertices, no UVs) gets the texture's mean colour, not one texel.
    scene = spec.load(vertices=spec.vertices * 1.01, faces=spec.faces)
    grey = np.asarray(__import__("mrd_backend.render.variant", fromlist=["mitsuba"]).mitsuba().render(
        scene, sensor=spec.sensors(spp=4)[0], spp=4))
    hit = grey.sum(-1) > 0.1
    assert hit.sum() > 20 and np.abs(grey[hit][:, 0] - grey[hit][:, 1]).mean() < 0.1


def test_material_mode_on_a_textured_obj_uses_its_uvs_and_texture(box_files, tmp_path):
    from conftest import tiny_config
    from mrd_backend import optimize
    logs = []
    cfg = tiny_config(scene=str(box_files / "box.obj"), envmap="constant", mode="material", views=1, width=16,
                      height=16, spp=2, epochs=1, texture_size=[8, 8], out=str(tmp_path / "run"))
    r = optimize(cfg, log=logs.append)
    assert r.status == "done"
    assert not any("no UV map" in str(m) for m in logs)
    assert any(p.suffix in (".png", ".exr") for p in (r.out / "textures").iterdir())


@pytest.mark.parametrize("scale", [1000.0, 1e-6])
def test_objects_at_any_scale_are_in_view(scale):
    """Suzanne in millimetres (x1000) or micrometres (x1e-6): the cameras follow the object, and so must the clip
    planes; the object covers the same pixels and looks the same as at scale 1."""
    def renders(k):
        spec = load_scene("suzanne", "studio", views=2, size=24)
        spec.vertices = (spec.vertices * k).astype(np.float32)
        depth = copy.copy(spec)
        depth.integrator = {"type": "aov", "aovs": "dd:depth"}
        masks = [np.asarray(d)[..., -1] > 0 for d in depth.render(spp=1)]
        return masks, [np.asarray(x) for x in spec.render(spp=8)]
    masks, rgb = renders(scale)
    masks1, rgb1 = renders(1.0)
    for m, m1 in zip(masks, masks1):
        assert m.mean() > 0.1 and (m == m1).mean() > 0.97  # not empty background: the object, where it was
    for x, x1 in zip(rgb, rgb1):
        assert np.isfinite(x).all() and np.abs(x - x1).mean() < 0.05
