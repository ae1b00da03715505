"""Material scenes: a fixed object on a checkerboard ground plane, seen by four fixed cameras, lit by the scene's own
environment and a point light, rendered by a path tracer. The optimized material is a principled BSDF; the targets
are the research code's `diffuse`, `translucent`, `brushed_metal` and `aurora`, made the same way where we can and
replaced by our own stand-ins where the research uses measured materials we cannot ship (docs/material.md).

Layout (the research scenes' layout, moved to Blender's Z-up world: the research's Mitsuba (x, y, z) is our
(x, -z, y)): cameras 10 units from the vertical axis at height 2, looking horizontally at it from the front (-Y),
back (+Y), right (+X) and left (-X); a point light of intensity 100 at the right camera (not in `translucent`);
a two-sided diffuse ground plane at z = 0 with a 0.4/0.2 checkerboard; the object 4.2 units tall standing on
it. Everything here (mesh, UVs, textures) is generated in code.
"""
from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from ..errors import MRDError
from ..render.variant import mitsuba
from ..scene.cameras import CameraRig, look_at
from ..scene.environment import Environment, named_environment
from ..scene.spec import Material, SceneSpec
from .shapes import blob

# The research scenes' sensors: fov 39.597755 for back/right/left, 28.841546 for the front one. Our rig has one
# fov, so the front camera keeps the research framing by moving closer (same image extent at the axis).
FOV = 39.597755
FRONT_FOV = 28.841546
DISTANCE = 10.0
HEIGHT = 2.0
ENVIRONMENT = "studio"            # the scene's own environment (the research's envmap.exr is not ours to ship)
POINT_LIGHT = {"type": "point", "position": [DISTANCE, 0.0, HEIGHT], "intensity": {"type": "rgb", "value": 100.0}}
PLANE_HALF_SIZE = 20.0
CHECKER_SCALE = 16.0              # checks of 2.5 units
OBJECT_HEIGHT = 4.2
# The research scenes use Mitsuba's `path`; `prb` is the same path tracer (identical renders at the same seed, the
# same gradients up to Monte Carlo noise, measured) with path-replay backpropagation: 3-4x faster on the CPU and
# with constant memory in the backward pass (docs/material.md).
INTEGRATOR = "prb"
DEFAULT_TEXTURE_SIZE = (128, 96)  # (W, H); research 720 x 480 (use --texture-size 720 480)
RESEARCH_TEXTURE_SIZE = (720, 480)
TARGET_TEXTURE_SIZE = (512, 384)  # procedural target textures (resampled for per-texel errors)
# The scalars of Mitsuba's principled BSDF that the research's brushed_metal / aurora runs optimize (its regex).
ALL_SCALARS = ("clearcoat", "clearcoat_gloss", "metallic", "specular", "roughness", "spec_tint", "sheen",
               "sheen_tint", "spec_trans", "flatness")


@dataclass(frozen=True)
class MaterialScene:
    """How a material scene starts and what it optimizes by default.

    `params`: the research parameter set; `start`: start values of principled scalars (the rest at Mitsuba's
    defaults); `textures`: parameters that are bitmaps in the start material (base_color always is, when the object
    has UVs); `max_depth`: path tracer depth; `point_light`: whether the point light is on; `target`: builds the
    target Material from a texture size (W, H); `note`: how the target differs from the research's."""
    name: str
    params: tuple
    start: dict = field(default_factory=dict)
    textures: tuple = ("base_color",)
    max_depth: int = 10
    point_light: bool = True
    note: str = ""

    def target(self, size=TARGET_TEXTURE_SIZE) -> Material:
        return TARGETS[self.name](*size)


SCENES = {
    "diffuse": MaterialScene(
        "diffuse", ("base_color",),
        note="target: a pure diffuse BSDF with a procedural colour texture (research: diffuse with gradient.jpg); "
             "the principled model keeps its default specular lobe, so an exact match is impossible by design, "
             "as in the research"),
    "translucent": MaterialScene(
        "translucent", ("roughness", "eta", "base_color", "spec_trans"),
        start={"eta": 1.64, "spec_trans": 0.11, "roughness": 0.69}, max_depth=12, point_light=False,
        note="target: principled glass (roughness 0.001, spec_trans 1, eta 1.49) with a procedural base-colour "
             "texture, as in the research (which uses gradient.jpg)"),
    "brushed_metal": MaterialScene(
        "brushed_metal", (*ALL_SCALARS, "base_color", "anisotropic"), textures=("base_color", "anisotropic"),
        note="stand-in target: an anisotropic rough conductor (GGX, alpha_u 0.05, alpha_v 0.35, pinkish steel "
             "reflectance); the research uses the measured RGL material weta_brushed_steel_satin_pink"),
    "aurora": MaterialScene(
        "aurora", (*ALL_SCALARS, "anisotropic", "base_color"), start={"anisotropic": 0.0},
        note="stand-in target: a principled clear-coated metal with procedural aurora-coloured bands and a "
             "procedural anisotropy map; the research uses the measured RGL material cc_nothern_aurora"),
}


def names() -> list[str]:
    return list(SCENES)


def setup(name: str) -> MaterialScene | None:
    return SCENES.get(name)


# -- procedural textures ((H, W, C) linear, row 0 at the top, u along the columns) ---------------------------------
def _uv(w: int, h: int):
    u = (np.arange(w) + 0.5) / w
    v = 1.0 - (np.arange(h) + 0.5) / h  # Blender's v: 1 at the top row
    return np.meshgrid(u, v)


def hue_gradient(w: int, h: int) -> np.ndarray:
    """A smooth colour texture, periodic in u (no seam on the spherical map): a hue wheel around the object and
    a brightness gradient from bottom to top, with soft low-frequency bands."""
    u, v = _uv(w, h)
    a = 2 * np.pi * u
    r = 0.45 + 0.35 * np.cos(a)
    g = 0.45 + 0.35 * np.cos(a - 2 * np.pi / 3)
    b = 0.45 + 0.35 * np.cos(a + 2 * np.pi / 3)
    rgb = np.stack([r, g, b], -1) * (0.45 + 0.55 * v)[..., None]
    rgb *= (1.0 + 0.25 * np.sin(6 * np.pi * v) * np.cos(2 * a))[..., None]
    return np.clip(rgb, 0.02, 0.95).astype(np.float32)


def aurora_bands(w: int, h: int) -> np.ndarray:
    """Green, teal and violet waves, like an aurora."""
    u, v = _uv(w, h)
    s = np.sin(2 * np.pi * (3 * v + 0.15 * np.sin(4 * np.pi * u)))
    t = 0.5 + 0.5 * s
    green, violet = np.array([0.1, 0.75, 0.35]), np.array([0.45, 0.15, 0.7])
    rgb = green * t[..., None] + violet * (1 - t)[..., None]
    rgb *= (0.6 + 0.4 * np.cos(2 * np.pi * u))[..., None] * 0.5 + 0.5
    return np.clip(rgb, 0.02, 0.95).astype(np.float32)


def anisotropy_map(w: int, h: int) -> np.ndarray:
    """Stripes of anisotropy from 0.1 to 0.9 (one channel)."""
    u, v = _uv(w, h)
    return (0.5 + 0.4 * np.sin(2 * np.pi * (4 * u + 2 * v)))[..., None].astype(np.float32)


def _diffuse_target(w, h):
    return Material("diffuse", hue_gradient(w, h))


def _translucent_target(w, h):
    return Material("principled", hue_gradient(w, h), {"roughness": 0.001, "spec_trans": 1.0, "eta": 1.49})


def _brushed_metal_target(w, h):
    return Material("raw", (0.9, 0.72, 0.74), {
        "type": "roughconductor", "distribution": "ggx", "material": "none", "alpha_u": 0.05, "alpha_v": 0.35,
        "specular_reflectance": {"type": "rgb", "value": [0.9, 0.72, 0.74]}})


def _aurora_target(w, h):
    return Material("principled", aurora_bands(w, h), {
        "metallic": 0.7, "roughness": 0.3, "anisotropic": anisotropy_map(w, h), "clearcoat": 0.8,
        "clearcoat_gloss": 0.9, "specular": 0.5, "sheen": 0.2})


TARGETS = {"diffuse": _diffuse_target, "translucent": _translucent_target, "brushed_metal": _brushed_metal_target,
           "aurora": _aurora_target}


# -- the object --------------------------------------------------------------------------------------------------
def spherical_uvs(vertices: np.ndarray, faces: np.ndarray, normals: np.ndarray | None = None):
    """Spherical UVs (Blender convention: v up) about the bounding-box centre. Faces across the seam get copies of
    their vertices with u + 1 (bitmaps repeat), so no face interpolates across the whole texture.
    Returns (vertices, faces, uvs, normals) with the seam vertices duplicated."""
    v = np.asarray(vertices, np.float64)
    f = np.asarray(faces, np.int64).copy()
    c = (v.min(0) + v.max(0)) / 2
    d = v - c
    d /= np.maximum(np.linalg.norm(d, axis=1, keepdims=True), 1e-12)
    u = np.arctan2(d[:, 1], d[:, 0]) / (2 * np.pi) + 0.5
    vv = 0.5 + np.arcsin(np.clip(d[:, 2], -1, 1)) / np.pi
    uf = u[f]
    seam = (uf.max(1) - uf.min(1)) > 0.5
    new_v, new_u, new_vv, new_n = [v], [u], [vv], [normals] if normals is not None else None
    copies: dict[int, int] = {}
    n = len(v)
    for fi in np.nonzero(seam)[0]:
        for k in range(3):
            i = int(f[fi, k])
            if u[i] < 0.5:
                if i not in copies:
                    copies[i] = n + len(copies)
                f[fi, k] = copies[i]
    if copies:
        src = np.array(list(copies), np.int64)
        new_v.append(v[src])
        new_u.append(u[src] + 1.0)
        new_vv.append(vv[src])
        if new_n is not None:
            new_n.append(normals[src])
    uvs = np.stack([np.concatenate(new_u), np.concatenate(new_vv)], 1).astype(np.float32)
    out_n = np.concatenate(new_n).astype(np.float32) if new_n is not None else None
    return np.concatenate(new_v).astype(np.float32), f.astype(np.int32), uvs, out_n


def material_object() -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """The fixed object: our lumpy blob (mrd_backend.scenes.shapes.blob), standing on the ground, OBJECT_HEIGHT tall,
    with smooth normals and spherical UVs. Returns vertices, faces, uvs, normals."""
    import trimesh
    v, f = blob()
    v = v.astype(np.float64)
    lo, hi = v.min(0), v.max(0)
    s = OBJECT_HEIGHT / (hi[2] - lo[2])
    v = (v - np.array([(lo[0] + hi[0]) / 2, (lo[1] + hi[1]) / 2, lo[2]])) * s
    normals = np.asarray(trimesh.Trimesh(v, f, process=False).vertex_normals, np.float64)
    return spherical_uvs(v, f, normals)


def camera_matrices() -> list[np.ndarray]:
    """front, back, right, left (the research order), all looking horizontally at the vertical axis."""
    target = np.array([0.0, 0.0, HEIGHT])
    front_distance = DISTANCE * np.tan(np.radians(FRONT_FOV / 2)) / np.tan(np.radians(FOV / 2))
    dirs = [((0.0, -1.0, 0.0), front_distance), ((0.0, 1.0, 0.0), DISTANCE), ((1.0, 0.0, 0.0), DISTANCE),
            ((-1.0, 0.0, 0.0), DISTANCE)]
    return [look_at(target + dist * np.array(d), target) for d, dist in dirs]


def ground_plane() -> dict:
    mi = mitsuba()
    return {"type": "rectangle", "to_world": mi.ScalarTransform4f().scale([PLANE_HALF_SIZE, PLANE_HALF_SIZE, 1.0]),
            "bsdf": {"type": "twosided", "bsdf": {"type": "diffuse", "reflectance": {
                "type": "checkerboard", "color0": {"type": "rgb", "value": 0.4},
                "color1": {"type": "rgb", "value": 0.2},
                "to_uv": mi.ScalarTransform4f().scale([CHECKER_SCALE, CHECKER_SCALE, 1.0])}}}}


def environment(envmap: str | None = None) -> Environment:
    return named_environment(envmap or ENVIRONMENT)


def load(name: str, size: int = 256, envmap: str | None = None, height: int | None = None,
         texture_size=TARGET_TEXTURE_SIZE) -> SceneSpec:
    """The target scene `name` as a SceneSpec (the target material on the object). `envmap` None: the scene's own
    environment (the research code ignores the envmap argument of material runs; so does `mrd optimize`)."""
    if name not in SCENES:
        raise MRDError(f"unknown material scene {name!r}: use one of {', '.join(SCENES)}")
    s = SCENES[name]
    v, f, uvs, normals = material_object()
    extras = {"ground": ground_plane()}
    if s.point_light:
        extras["point_light"] = dict(POINT_LIGHT)
    return SceneSpec(v, f, uvs, normals, material=s.target(texture_size), environment=environment(envmap),
                     cameras=CameraRig(n_views=4, fov=FOV, width=size, height=height or size,
                                       matrices=camera_matrices()),
                     integrator={"type": INTEGRATOR, "max_depth": s.max_depth, "rr_depth": 5}, extras=extras, name=name)


__all__ = ["names", "load", "setup", "SCENES", "MaterialScene", "DEFAULT_TEXTURE_SIZE"]
