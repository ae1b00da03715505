"""The objective registry. Adding a model = one module with an Objective subclass + one line here.

Models import torch, timm, open_clip and lpips inside their functions (lazy on purpose): listing the models, the
CLI's start and the worker's --check stay free of torch until a network is built."""
from __future__ import annotations

import importlib

from ..errors import MRDError
from .base import Objective

# name -> "module:Class" (imported only when used, so the CLI and the add-on stay light)
REGISTRY = {
    "mae": "pixel:MAE",
    "dual_buffer": "pixel:DualBuffer",
    "resnet": "resnet:ResNet50",
    "resnet_sin": "resnet:ResNet50SIN",
    "dino": "dino:DINOv2",
    "clip": "clip:CLIPViTL14",
    "vggloss": "vggloss:VGGLoss",
    "lpips": "lpips:LPIPS",
    "vgg": "lpips:LPIPSVGG",
    "effnet": "effnet:EfficientNetLite0",
    "effnet_lite2": "effnet:EfficientNetLite2",
}


def objective_names() -> list[str]:
    return list(REGISTRY)


def objective_class(name: str) -> type[Objective]:
    if name not in REGISTRY:
        raise MRDError(f"unknown model {name!r}: use one of {', '.join(REGISTRY)}")
    module, cls = REGISTRY[name].split(":")
    return getattr(importlib.import_module(f"{__name__}.{module}"), cls)


def build_objective(name: str, **options) -> Objective:
    """Constructs objective `name`; every bad option (unknown model, missing weights, wrong checkpoint, bad render
    size, --classify without a classifier head) is an MRDError raised here, before anything is rendered."""
    return objective_class(name)(**options)
