"""ResNet-50 objectives: 2048-d global-pooled features, L1 loss; the ImageNet classifier head for --classify.

- `resnet`: torchvision IMAGENET1K_V1 weights (resnet50-0676ba61.pth = timm `resnet50.tv_in1k`), eval mode.
- `resnet_sin`: the same architecture trained on Stylized-ImageNet (Geirhos et al. 2019), checkpoint
  resnet50_train_60_epochs-c8e5653e.pth.tar (a dict with 'state_dict' and DataParallel 'module.' prefixes).
  The research code left it in training mode (BatchNorm on per-image statistics); --preprocess research does too.
"""
from __future__ import annotations

from . import checkpoints as C
from .catalogue import native_size as catalogue_size
from .torch_base import TimmClassifier


class ResNet50(TimmClassifier):
    name = "resnet"
    native_size = catalogue_size("resnet")
    has_classifier = True

    def build(self, weights, weights_dir):
        import timm

        def bare():
            return timm.create_model("resnet50", pretrained=False, num_classes=1000)
        return C.resolve(self.name, weights, bare, weights_dir, log=self.log)


class ResNet50SIN(ResNet50):
    name = "resnet_sin"
    research_train_mode = True
