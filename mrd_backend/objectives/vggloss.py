"""VGG loss (Johnson et al. 2016): VGG-19 IMAGENET1K_V1 (vgg19-dcbb9e9d.pth = timm `vgg19.tv_in1k`) `features` up
to layer 8 (relu2_2: 128 channels at half resolution) by default, any layer 0..36 selectable; MSE between the
render's and the target's feature maps. ImageNet normalization, 256 px. Only the convolutional trunk up to the chosen
layer is built and loaded; deeper layers and the classifier in a checkpoint are ignored.
"""
from __future__ import annotations

import torch

from ..errors import MRDError
from . import checkpoints as C
from .catalogue import native_size as catalogue_size
from .torch_base import TorchObjective

N_LAYERS = 37   # torchvision vgg19().features: 16 conv + 16 ReLU + 5 max-pool


class _Trunk(torch.nn.Module):
    def __init__(self, layer: int):
        super().__init__()
        from torchvision.models.vgg import cfgs, make_layers
        self.features = make_layers(cfgs["E"])[: layer + 1]

    def forward(self, x):
        return self.features(x)


class VGGLoss(TorchObjective):
    name = "vggloss"
    native_size = catalogue_size("vggloss")

    def __init__(self, *args, layer: int = 8, **kwargs):
        if isinstance(layer, bool) or not isinstance(layer, int) or not 0 <= layer < N_LAYERS:
            raise MRDError(f"vggloss layer {layer!r} does not exist: give 0..{N_LAYERS - 1} (8 = relu2_2, the default)")
        self.layer = layer
        super().__init__(*args, **kwargs)

    def describe(self) -> dict:
        return {**super().describe(), "layer": self.layer}

    def _ignore(self, k: str) -> bool:
        if k.startswith(("classifier.", "pre_logits.", "head.")):
            return True
        parts = k.split(".")
        return parts[0] == "features" and len(parts) > 1 and parts[1].isdigit() and int(parts[1]) > self.layer

    def build(self, weights, weights_dir):
        return C.resolve(self.name, weights, lambda: _Trunk(self.layer), weights_dir, ignore=self._ignore,
                         log=self.log)

    def features(self, x):
        return self.net(self.normalize(x))

    def feature_loss(self, f, t):
        return torch.nn.functional.mse_loss(f, t)
