"""SceneSpec: one object, its material, the environment and a camera rig, as plain numpy. Converts to Mitsuba.

Everything is in Blender's Z-up world frame. UVs follow Blender (v up); textures are (H, W, 3) arrays with row 0 at
the top, linear RGB. The Mitsuba conversions (v -> 1 - v, camera and envmap frames) happen only here.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from .cameras import CameraRig
from .environment import Environment
from ..errors import MRDError
from .lights import Light
from .meshes import bounding_sphere, check_mesh

# Principled BSDF scalars Mitsuba knows, with its defaults (used to list and validate optimizable parameters).
PRINCIPLED_DEFAULTS = {
    "roughness": 0.5, "metallic": 0.0, "specular": 0.5, "spec_tint": 0.0, "anisotropic": 0.0, "sheen": 0.0,
    "sheen_tint": 0.0, "clearcoat": 0.0, "clearcoat_gloss": 0.0, "spec_trans": 0.0, "eta": 1.5, "flatness": 0.0,
}


@dataclass
class Material:
    """`diffuse` or `principled`. Each value is a float, an RGB tuple, an (H, W, C) linear array or an image path."""
    kind: str = "diffuse"
    base_color: object = (0.5, 0.5, 0.5)
    params: dict = field(default_factory=dict)   # other principled values: roughness, metallic, eta, ...
    twosided: bool = False
    notes: list = field(default_factory=list)    # what an exporter approximated, shown to the user

    def to_mitsuba(self) -> dict:
        if self.kind == "diffuse":
            d = {"type": "diffuse", "reflectance": _texture(self.base_color, "base_color", rgb=True)}
        elif self.kind == "principled":
            d = {"type": "principled", "base_color": _texture(self.base_color, "base_color", rgb=True)}
            for k, v in self.params.items():
                if k not in PRINCIPLED_DEFAULTS:
                    raise MRDError(f"unknown principled parameter {k!r}: use one of {', '.join(PRINCIPLED_DEFAULTS)}")
                d[k] = float(v) if k in ("eta", "specular") else _texture(v, k, rgb=False)
        elif self.kind == "raw":  # a plain Mitsuba BSDF dict (e.g. a conductor used as a target)
            d = dict(self.params)
        else:
            raise MRDError(f"unknown material kind {self.kind!r}: use diffuse or principled")
        return {"type": "twosided", "bsdf": d} if self.twosided else d

    def untextured(self) -> "Material":
        """This material with each image replaced by its mean (for a mesh without UVs, e.g. an optimized shape)."""
        from dataclasses import replace

        def mean(v):
            a = v if isinstance(v, np.ndarray) else None
            return tuple(float(x) for x in a.reshape(-1, a.shape[-1]).mean(0)) if a is not None and a.ndim == 3 else v
        return replace(self, base_color=mean(self.base_color), params={k: mean(v) for k, v in self.params.items()})


def _texture(value, name, rgb):
    from ..render.variant import mitsuba  # lazy: Blender imports scene/, Mitsuba only to render
    mi = mitsuba()
    if isinstance(value, (str, Path)):
        if not Path(value).is_file():
            raise MRDError(f"image file {value} for {name} does not exist: fix the path or use a colour value")
        return {"type": "bitmap", "filename": str(value)}
    arr = np.asarray(value, np.float32)
    if arr.ndim == 0:
        return float(arr) if not rgb else {"type": "rgb", "value": [float(arr)] * 3}
    if arr.ndim == 1:
        return {"type": "rgb", "value": [float(x) for x in arr[:3]]}
    if arr.ndim == 3 and arr.shape[0] > 0 and arr.shape[1] > 0:
        if not rgb:
            arr = arr[..., :1]
        return {"type": "bitmap", "bitmap": mi.Bitmap(np.ascontiguousarray(arr)), "raw": True}
    raise MRDError(f"{name} must be a value, an RGB triple or an (H, W, C) image with H, W > 0; got shape {arr.shape}")


def clip_planes(center, radius, camera_matrices) -> tuple[float, float]:
    """Near and far clip planes that hold the object at any scale (0.01 and 1000 at Blender's usual sizes): an
    object in millimetres or micrometres would otherwise lie beyond the far plane or before the near one."""
    eyes = np.asarray([np.asarray(m)[:3, 3] for m in camera_matrices]).reshape(-1, 3)
    dist = np.linalg.norm(eyes - np.asarray(center), axis=1) if len(eyes) else np.zeros(1)
    gap = float(dist.min()) - radius  # from the nearest camera to the object's bounding sphere
    near = min(0.01, 0.1 * gap) if gap > 0 else min(0.01, 1e-3 * radius)
    return near, max(1000.0, 100.0 * (float(dist.max()) + radius))


@dataclass
class SceneSpec:
    vertices: np.ndarray
    faces: np.ndarray
    uvs: np.ndarray | None = None        # (V, 2), Blender convention
    normals: np.ndarray | None = None    # (V, 3) smooth vertex normals
    material: Material = field(default_factory=Material)
    environment: Environment = field(default_factory=Environment)
    cameras: CameraRig = field(default_factory=CameraRig)
    integrator: dict | None = None       # None: direct_projective (shape runs)
    extras: dict = field(default_factory=dict)  # more plain Mitsuba plugin dicts: ground plane, point light
    name: str = "scene"
    lights: list = field(default_factory=list)  # Light (lamps exported from Blender), besides the environment

    def __post_init__(self):
        self.vertices = np.ascontiguousarray(self.vertices, np.float32)
        self.faces = np.ascontiguousarray(self.faces, np.int32)
        self.lights = [x if isinstance(x, Light) else Light(**x) for x in (self.lights or [])]
        check_mesh(self.vertices, self.faces, f"mesh of scene {self.name!r}")

    # -- geometry -------------------------------------------------------------------------------------------
    def bounds(self) -> tuple[np.ndarray, float]:
        return bounding_sphere(self.vertices)

    def camera_matrices(self, rig: CameraRig | None = None) -> list[np.ndarray]:
        center, radius = self.bounds()
        return (rig or self.cameras).to_worlds(center, radius)

    # -- Mitsuba ----------------------------------------------------------------------------------------------
    def mesh(self, vertices=None, faces=None, material: Material | None = None):
        """An in-memory mi.Mesh (optionally with other vertices/faces: the optimized shape)."""
        from ..render.variant import mitsuba  # lazy: Blender imports scene/, Mitsuba only to render
        mi = mitsuba()
        import drjit as dr
        v = np.ascontiguousarray(self.vertices if vertices is None else vertices, np.float32)
        f = np.ascontiguousarray(self.faces if faces is None else faces, np.uint32)
        uvs = self.uvs if (vertices is None and self.uvs is not None) else None
        normals = self.normals if (vertices is None and self.normals is not None) else None
        if material is None and uvs is None and self.uvs is not None:
            material = self.material.untextured()  # the optimized shape has no UVs to carry the texture
        props = mi.Properties()
        props["bsdf"] = mi.load_dict((material or self.material).to_mitsuba())
        m = mi.Mesh(self.name, len(v), len(f), props=props, has_vertex_normals=normals is not None,
                    has_vertex_texcoords=uvs is not None)
        p = mi.traverse(m)
        p["vertex_positions"] = dr.ravel(mi.Point3f(v.T))
        p["faces"] = dr.ravel(mi.Vector3u(f.T))
        if uvs is not None:
            uv = np.asarray(uvs, np.float32).copy()
            uv[:, 1] = 1.0 - uv[:, 1]  # Blender's v runs up from the bottom row, Mitsuba's down from the top
            p["vertex_texcoords"] = dr.ravel(mi.Point2f(uv.T))
        if normals is not None:
            p["vertex_normals"] = dr.ravel(mi.Normal3f(np.asarray(normals, np.float32).T))
        p.update()
        return m

    def integrator_dict(self) -> dict:
        return dict(self.integrator) if self.integrator else {"type": "direct_projective"}

    def to_mitsuba_dict(self, vertices=None, faces=None, material: Material | None = None) -> dict:
        """Scene dict without sensors (cameras are passed per render). The object is under key 'shape'."""
        d = {"type": "scene", "integrator": self.integrator_dict(), "emitter": self.environment.to_mitsuba(),
             "shape": self.mesh(vertices, faces, material)}
        for i, light in enumerate(self.lights):
            d[f"light_{i:03d}"] = light.to_mitsuba()
        d.update(self.extras)
        return d

    def sensors(self, rig: CameraRig | None = None, spp: int = 16) -> list:
        from ..render.variant import mitsuba  # lazy: Blender imports scene/, Mitsuba only to render
        mi = mitsuba()
        rig = rig or self.cameras
        if rig.width < 1 or rig.height < 1:
            raise MRDError(f"render size {rig.width}x{rig.height} is invalid: give -d/--dims of at least 1")
        out = []
        mats = self.camera_matrices(rig)
        near, far = clip_planes(*self.bounds(), mats)
        for m in mats:
            out.append(mi.load_dict({
                "type": "perspective", "fov": float(rig.fov), "fov_axis": "x",
                "to_world": mi.ScalarTransform4f(np.asarray(m)), "near_clip": near, "far_clip": far,
                "sampler": {"type": "independent", "sample_count": spp},
                "film": {"type": "hdrfilm", "width": rig.width, "height": rig.height, "rfilter": {"type": "gaussian"},
                         "sample_border": True, "pixel_format": "rgb"},
            }))
        return out

    def load(self, **kw):
        from ..render.variant import mitsuba  # lazy: Blender imports scene/, Mitsuba only to render
        mi = mitsuba()
        try:
            return mi.load_dict(self.to_mitsuba_dict(**kw))
        except MRDError:
            raise
        except Exception as exc:
            raise MRDError(f"Mitsuba could not build scene {self.name!r}: {str(exc).splitlines()[0]}") from None

    def render(self, spp: int = 16, seed: int = 0, rig: CameraRig | None = None) -> list[np.ndarray]:
        """Linear HDR renders (H, W, 3) of every view, as numpy."""
        from ..render.variant import mitsuba  # lazy: Blender imports scene/, Mitsuba only to render
        mi = mitsuba()
        scene = self.load()
        return [np.asarray(mi.render(scene, sensor=s, spp=spp, seed=seed + i))
                for i, s in enumerate(self.sensors(rig, spp))]
