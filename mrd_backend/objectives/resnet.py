"""ResNet-50 (torchvision IMAGENET1K_V1 weights = timm `resnet50.tv_in1k`): 2048-d pooled features, L1 loss."""
from __future__ import annotations

import torch

from .. import weights as W
from .torch_base import TorchObjective


class ResNet50(TorchObjective):
    name = "resnet"
    native_size = 256

    def build(self, weights, weights_dir):
        import timm

        def bare():
            return timm.create_model("resnet50", pretrained=False, num_classes=1000)
        return W.resolve(self.name, weights, bare, weights_dir)

    def features(self, x):
        return self.net.forward_head(self.net.forward_features(self.normalize(x)), pre_logits=True)

    def feature_loss(self, f, t):
        return torch.nn.functional.l1_loss(f, t)
