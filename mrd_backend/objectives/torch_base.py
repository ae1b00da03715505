"""Networks as objectives: one preprocessing path, torch joined to Dr.Jit's autodiff with `dr.wrap`."""
from __future__ import annotations

import drjit as dr
import numpy as np
import torch

from ..errors import MRDError
from .base import Objective

IMAGENET_MEAN, IMAGENET_STD = (0.485, 0.456, 0.406), (0.229, 0.224, 0.225)


class TorchObjective(Objective):
    """Subclasses set `name`, `native_size`, mean/std and implement `build`, `features`, `feature_loss`,
    `feature_similarity`. `preprocess="research"` reproduces the research code's HWC-as-CHW reshape."""
    mean, std = IMAGENET_MEAN, IMAGENET_STD

    def __init__(self, weights: str = "pretrained", weights_dir: str | None = None, preprocess: str = "correct",
                 seed: int = 0, device: str | None = None, log=print):
        if preprocess not in ("correct", "research"):
            raise MRDError(f"unknown preprocessing {preprocess!r}: use correct or research")
        self.preprocess = preprocess
        from ..variant import choose_variant
        self.device = torch.device(device or ("cuda" if choose_variant().startswith("cuda") else "cpu"))
        self.log = log
        self._warned_resize = False
        torch.manual_seed(seed)
        self.net, self.weights_used = self.build(weights, weights_dir)
        self.net = self.net.to(self.device).eval()
        for p in self.net.parameters():
            p.requires_grad_(False)
        self._mean = torch.tensor(self.mean, device=self.device).view(1, 3, 1, 1)
        self._std = torch.tensor(self.std, device=self.device).view(1, 3, 1, 1)
        self._last = None

    # -- subclass hooks -----------------------------------------------------------------------------------------
    def build(self, weights, weights_dir):
        raise NotImplementedError

    def features(self, x):
        """x: (1, 3, S, S) in [0, 1] -> features (normalization happens here, by `normalize`)."""
        raise NotImplementedError

    def feature_loss(self, f, t):
        raise NotImplementedError

    def feature_similarity(self, f, t) -> float:
        a, b = f.flatten().double(), t.flatten().double()
        return float(torch.dot(a, b) / (a.norm() * b.norm() + 1e-12))

    # -- the shared path ------------------------------------------------------------------------------------------
    def normalize(self, x):
        return (x - self._mean) / self._std

    def to_input(self, img):
        """(H, W, 3) torch in [0, 1] -> (1, 3, S, S) at the network's native size."""
        h, w = img.shape[0], img.shape[1]
        if self.preprocess == "research":
            x = img.reshape(1, 3, h, w)  # the research code's view(): scrambled pixels, kept for comparability
        else:
            x = img.permute(2, 0, 1).unsqueeze(0)
        if self.native_size and (h, w) != (self.native_size, self.native_size):
            if not self._warned_resize:
                self.log(f"{self.name}: resizing {w}x{h} renders to the network's {self.native_size}x{self.native_size}")
                self._warned_resize = True
            x = torch.nn.functional.interpolate(x, size=(self.native_size, self.native_size), mode="bilinear",
                                                align_corners=False, antialias=False)
        return x.contiguous()

    def prepare(self, target):
        self.prepare_calls += 1
        with torch.no_grad():
            return self.features(self.to_input(_as_torch(target, self.device)))

    def loss(self, render, target_features, second_render=None):
        @dr.wrap(source="drjit", target="torch")
        def _loss(img):
            f = self.features(self.to_input(img.to(self.device)))
            self._last = f.detach()
            return self.feature_loss(f, target_features).reshape(1)
        return dr.sum(_loss(render).array)  # a Dr.Jit Float scalar that regularizers can be added to

    def similarity(self, target_features) -> float:
        return self.feature_similarity(self._last, target_features)

    def last_features(self):
        return None if self._last is None else self._last.flatten().cpu().numpy()


def _as_torch(img, device):
    if isinstance(img, torch.Tensor):
        return img.to(device)
    return torch.as_tensor(np.asarray(img), dtype=torch.float32, device=device)
