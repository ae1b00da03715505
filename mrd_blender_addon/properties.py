"""`scene.mrd`: every setting of an optimization, saved in the .blend. Per-machine settings (the backend's Python,
the weights folder) are in the add-on preferences instead."""

import bpy
from bpy.props import BoolProperty, EnumProperty, FloatProperty, IntProperty, PointerProperty, StringProperty

from .client import backend

# The backend's models with the input size each was trained at (None: any size), from its bpy-free catalogue
# (mrd_backend/objectives/catalogue.py). The preferences' "Check backend" lists what the chosen environment offers.
MODELS = [(m.name, m.label, m.description, m.native_size) for m in backend().objectives.catalogue.MODELS]
NATIVE_SIZE = {m[0]: m[3] for m in MODELS}


def _model_items():
    return [(k, f"{label} ({size} px)" if size else f"{label} (any size)", desc, i)
            for i, (k, label, desc, size) in enumerate(MODELS)]


MODEL_ITEMS = _model_items()


# Material runs: what can be optimized and how it starts, from the backend's principled table (scene/principled.py; short
# labels: the panel shows them as toggles two to a row).
_material = backend().scene.principled
SHORT = {"base_color": "Base color", "spec_tint": "Spec. tint", "anisotropic": "Anisotropy",
         "clearcoat_gloss": "Coat gloss", "spec_trans": "Transmit", "eta": "IOR (eta)", "clearcoat": "Clearcoat"}
PARAM_ITEMS = [(n, SHORT.get(n, n.replace("_", " ").capitalize()), f"Optimize {n} (Mitsuba principled BSDF)", 1 << i)
               for i, n in enumerate(_material.OPTIMIZABLE)]
INIT_ITEMS = [(n, n.capitalize(), {"zero": "Textures start at the lowest valid value (research)",
                                   "gray": "Textures start mid-grey", "noise": "Textures start as noise"}.get(n, n), i)
              for i, n in enumerate(_material.INITS)]
DEFAULT_TEXTURE = 256


def _is_mesh(self, obj):
    return obj.type == "MESH"


class MRDSettings(bpy.types.PropertyGroup):
    target: PointerProperty(name="Target", type=bpy.types.Object, poll=_is_mesh,
                            description="The mesh to make a metamer of (empty: the active object)")
    mode: EnumProperty(name="Optimize", items=[
        ("shape", "Shape", "Optimize the mesh (Large Steps, remeshing) under the target's material", 0),
        ("material", "Material", "Optimize the material (textures and values) on the target's mesh", 1)],
        default="shape")
    start: EnumProperty(name="Start", items=[
        ("icosphere", "Icosphere", "A sphere around the target", 0),
        ("object", "Object", "Another mesh object (a closed manifold)", 1)], default="icosphere")
    start_object: PointerProperty(name="Start object", type=bpy.types.Object, poll=_is_mesh,
                                  description="Mesh the shape optimization starts from")
    icosphere_level: IntProperty(name="Icosphere level", default=4, min=1, max=7,
                                 description="Subdivisions of the start sphere (4: 2,562 vertices; 5: 10,242)")
    model: EnumProperty(name="Objective", items=MODEL_ITEMS, default="mae",
                        description="The model whose view of the renders must match the target's")
    weights: EnumProperty(name="Weights", items=[
        ("pretrained", "Pretrained", "The model's trained weights (from the weights folder or library caches)", 0),
        ("untrained", "Untrained", "Random initialization with a fixed seed (a control condition)", 1),
        ("file", "File", "A checkpoint file", 2)], default="pretrained")
    weights_file: StringProperty(name="Weights file", subtype="FILE_PATH", description="Checkpoint to load")
    views: IntProperty(name="Views", default=8, min=1, max=200, description="Cameras around the object")
    use_native_size: BoolProperty(name="Model's size", default=False,
                                  description="Render at the objective's native input size")
    resolution: IntProperty(name="Resolution", default=128, min=8, max=2048, subtype="PIXEL",
                            description="Width and height of every render")
    spp: IntProperty(name="Samples", default=16, min=1, max=4096, description="Samples per pixel")
    epochs: IntProperty(name="Epochs", default=100, min=1, max=100000, description="Passes over all views")
    lr: FloatProperty(name="Learning rate", default=0.0, min=0.0, precision=4, step=1,
                      description="0: the backend's default (0.1 shape, 0.03 material)")
    step_lambda: FloatProperty(name="Large Steps λ", default=15.0, min=0.0, soft_max=100.0,
                               description="Smoothness of the shape's steps (research: 15; Suzanne 25)")
    remesh: StringProperty(name="Remesh", default="auto",
                           description="Epochs after which to remesh, e.g. '25, 50'; 'auto': the research schedule; "
                                       "empty: never")
    reg_laplacian: FloatProperty(name="Laplacian", default=0.0, min=0.0, description="Laplacian smoothness weight")
    reg_edge: FloatProperty(name="Edge", default=0.0, min=0.0, description="Edge-length regularizer weight")
    reg_area: FloatProperty(name="Area", default=0.0, min=0.0, description="Face-area regularizer weight")
    reg_arap: FloatProperty(name="ARAP", default=0.0, min=0.0, description="As-rigid-as-possible weight")
    seed: IntProperty(name="Seed", default=42, min=0)
    patience: IntProperty(name="Patience", default=50, min=0,
                          description="Stop after this many epochs without improvement (0: never)")
    keep_every: IntProperty(name="Keep every", default=10, min=1,
                            description="Keep every Nth step as a shape key (and PLY) for the timeline")
    output_dir: StringProperty(name="Output", subtype="DIR_PATH", default="//mrd_runs",
                               description="Folder for run folders (// is the .blend's folder; a temporary "
                                           "folder when the file is unsaved)")
    show_advanced: BoolProperty(name="Advanced", default=False)
    material_params: EnumProperty(name="Parameters", items=PARAM_ITEMS, options={"ENUM_FLAG"},
                                  default=set(_material.GENERIC_PARAMS),
                                  description="What a material run optimizes (eta and specular exclude each other)")
    material_init: EnumProperty(name="Start", items=INIT_ITEMS, default="zero",
                                description="What the optimized textures start from")
    texture_source: EnumProperty(name="Texture size", items=[
        ("target", "Target's", "The size of the target's own image texture (else Width x Height)", 0),
        ("custom", "Custom", "Width x Height", 1)], default="target")
    texture_width: IntProperty(name="Width", default=DEFAULT_TEXTURE, min=1, max=4096, subtype="PIXEL",
                               description="Width of the optimized textures")
    texture_height: IntProperty(name="Height", default=DEFAULT_TEXTURE, min=1, max=4096, subtype="PIXEL",
                                description="Height of the optimized textures")


def parse_remesh(text: str) -> list | None:
    """The Remesh field as epochs (None: 'auto'), by the backend's one parser; a bad entry is a ValueError."""
    try:
        return backend().config.parse_remesh(text, "the Remesh field")
    except backend().errors.MRDError as exc:
        raise ValueError(str(exc)) from None


def resolution(settings) -> int | None:
    if settings.use_native_size:
        return NATIVE_SIZE.get(settings.model) or settings.resolution
    return settings.resolution


def texture_size_of(material) -> list | None:
    """(W, H) of the first image texture of an exported mrd Material (None without one)."""
    import numpy as np
    for value in [material.base_color, *material.params.values()]:
        if isinstance(value, np.ndarray) and value.ndim == 3:
            return [int(value.shape[1]), int(value.shape[0])]
    return None


def run_config(settings, out: str, weights_dir: str | None = None) -> dict:
    """The RunConfig (as a dict) for these settings; `out` is the run folder."""
    size = resolution(settings)
    weights = settings.weights if NATIVE_SIZE.get(settings.model) else "pretrained"  # pixel losses have none
    if weights == "file":
        path = bpy.path.abspath(settings.weights_file) if settings.weights_file else ""
        if not path:
            raise ValueError("weights 'File' is chosen but no file is set: pick a checkpoint or choose Pretrained")
        weights = path
    cfg = {"scene": "blender", "model": settings.model, "mode": settings.mode, "views": settings.views,
           "width": size, "height": size, "spp": settings.spp, "seed": settings.seed, "epochs": settings.epochs,
           "weights": weights, "patience": settings.patience, "mesh_every": settings.keep_every, "out": out}
    if settings.lr > 0:
        cfg["lr"] = settings.lr
    if weights_dir:
        cfg["weights_dir"] = weights_dir
    if settings.mode == "material":
        order = [item[0] for item in PARAM_ITEMS]
        cfg.update(params=[n for n in order if n in settings.material_params] or None, init=settings.material_init,
                   texture_size=[settings.texture_width, settings.texture_height])
    if settings.mode == "shape":
        cfg.update(step_lambda=settings.step_lambda, remesh=parse_remesh(settings.remesh),
                   reg_laplacian=settings.reg_laplacian, reg_edge=settings.reg_edge, reg_area=settings.reg_area,
                   reg_arap=settings.reg_arap, start_subdivisions=settings.icosphere_level)
    return cfg


classes = (MRDSettings,)


def register():
    for c in classes:
        bpy.utils.register_class(c)
    bpy.types.Scene.mrd = PointerProperty(type=MRDSettings)


def unregister():
    if hasattr(bpy.types.Scene, "mrd"):
        del bpy.types.Scene.mrd
    for c in reversed(classes):
        bpy.utils.unregister_class(c)
