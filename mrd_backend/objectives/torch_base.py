"""Networks as objectives: one preprocessing path, torch joined to Dr.Jit's autodiff with `dr.wrap`.

The path, for renders and targets alike: tone-mapped (H, W, 3) render -> (1, 3, H, W) by a real transpose (or, with
preprocess="research", the research code's reshape of the same buffer) -> resized to the network's native size only
when it differs (logged once) -> the network's own normalization -> features. Target features are computed once per
view by `prepare` and cached by the caller.
"""
from __future__ import annotations

import drjit as dr
import numpy as np
import torch

from ..errors import MRDError
from . import weights as W
from .base import Objective
from .classes import imagenet_classes
from .weights import check_weights_dir

IMAGENET_MEAN, IMAGENET_STD = (0.485, 0.456, 0.406), (0.229, 0.224, 0.225)
OPENAI_MEAN, OPENAI_STD = (0.48145466, 0.4578275, 0.40821073), (0.26862954, 0.26130258, 0.27577711)
# the rounded CLIP constants the research code normalizes DINOv2 and CLIP inputs with
RESEARCH_CLIP_MEAN, RESEARCH_CLIP_STD = (0.4815, 0.4578, 0.4082), (0.2686, 0.2613, 0.2758)
MIN_RENDER = 16


class TorchObjective(Objective):
    """Subclasses set `name`, `native_size`, mean/std and implement `build`, `features`, `feature_loss` (and
    optionally `feature_similarity`, `logits`). `preprocess="research"` reproduces the research code's input:
    the HWC buffer reshaped as CHW, plus `research_mean/std` and `research_train_mode` where it differed."""
    mean, std = IMAGENET_MEAN, IMAGENET_STD
    research_mean = research_std = None   # normalization the research code used instead, if different
    research_train_mode = False           # the research code left the network in training mode (BatchNorm)
    keep_features = True                  # last_features() returns the render's features
    size_multiple = 1                     # ViTs: the input size must be a multiple of the patch size

    def __init__(self, weights: str = "pretrained", weights_dir: str | None = None, preprocess: str = "correct",
                 seed: int = 0, device: str | None = None, log=print, render_size=None, classify: int | None = None,
                 alpha: float = 0.8, input_size: int | None = None):
        """input_size overrides the network's native input size (tests, experiments); pretrained ViTs then get their
        position embedding resampled. Renders of another size are resized to it."""
        self._check_common(preprocess, classify, alpha)
        if input_size is not None:
            m = self.size_multiple
            if isinstance(input_size, bool) or not isinstance(input_size, int) or input_size < MIN_RENDER \
                    or input_size % m:
                raise MRDError(f"{self.name} cannot take {input_size!r} px inputs: give an integer >= {MIN_RENDER}"
                               + (f" that is a multiple of the patch size {m}" if m > 1 else "")
                               + f" (native {self.native_size})")
            self.native_size = int(input_size)
        self.preprocess = preprocess
        self.classify = None if classify is None else int(classify)
        self.alpha = float(alpha)
        self.log = log
        if render_size is not None:
            self.check_render_size(*render_size)
        if not isinstance(weights, str) or not weights:
            raise MRDError(f"--weights {weights!r}: use pretrained, untrained or the path of a checkpoint")
        if weights_dir is not None:
            check_weights_dir(weights_dir)
        if device is None:
            from ..render.variant import choose_variant
            device = "cuda" if choose_variant().startswith("cuda") and torch.cuda.is_available() else "cpu"
        self.device = torch.device(device)
        self._warned_resize = False
        self.seed = int(seed)
        with torch.random.fork_rng(devices=[]):   # a seeded init that leaves the caller's torch RNG alone
            torch.manual_seed(self.seed)
            self.net, self.weights_used = self.build(weights, weights_dir)
        self._weight_files = self._files_used(weights, weights_dir)
        self.net = self.net.to(self.device)
        for p in self.net.parameters():
            p.requires_grad_(False)
        self.net.eval()
        if self.research_train_mode and preprocess == "research":
            self._research_train_mode()
        mean, std = self.mean, self.std
        if preprocess == "research" and self.research_mean is not None:
            mean, std = self.research_mean, self.research_std
        self._mean = torch.tensor(mean, device=self.device).view(1, 3, 1, 1)
        self._std = torch.tensor(std, device=self.device).view(1, 3, 1, 1)
        self._last = None
        self._info = {}

    def _research_train_mode(self):
        """BatchNorm on per-image statistics, as the research code ran it. Its running statistics do not enter the
        output in this mode; momentum 0 keeps them from drifting (they would be updated on every forward)."""
        self.net.train()
        for m in self.net.modules():
            if isinstance(m, torch.nn.modules.batchnorm._BatchNorm):
                m.momentum = 0.0

    def _files_used(self, weights, weights_dir) -> list:
        """(path, Part) of every weight file the network was built from (what `locate` found), for the report."""
        if weights == "untrained":
            return []
        if weights != "pretrained":
            return [(weights, None)]
        parts = W.SPECS.get(getattr(self, "weights_spec", self.name), ())
        return [(p, part) for part in parts if (p := W.find_part(part, weights_dir)) is not None]

    def describe(self) -> dict:
        d = super().describe()
        d["weights_provenance"] = [W.provenance(p, part) for p, part in self._weight_files]
        return d

    # -- subclass hooks -----------------------------------------------------------------------------------------
    def build(self, weights, weights_dir):
        """-> (network, weights label) for weights = pretrained | untrained | PATH (raise MRDError when missing)."""
        raise NotImplementedError

    def features(self, x):
        """x: (1, 3, S, S) in [0, 1] -> features (normalization happens here, by `normalize`)."""
        raise NotImplementedError

    def feature_loss(self, f, t):
        raise NotImplementedError

    def feature_similarity(self, f, t) -> float:
        a, b = f.flatten().double(), t.flatten().double()
        return float(torch.dot(a, b) / (a.norm() * b.norm() + 1e-12))

    def logits(self, f):
        raise MRDError(f"{self.name} has no classifier head")

    # -- the shared path ------------------------------------------------------------------------------------------
    def normalize(self, x):
        return (x - self._mean) / self._std

    def check_render_size(self, width: int, height: int) -> None:
        super().check_render_size(width, height)
        w, h, n = int(width), int(height), self.native_size
        if self.preprocess == "research" and (w != h or w < n):
            raise MRDError(f"{self.name} with --preprocess research needs {n}x{n} renders (the research code never "
                           f"resizes; larger square renders are center-cropped as its baseline panel did), not "
                           f"{w}x{h}: render at {n}x{n} or use --preprocess correct")
        if w != h:
            raise MRDError(f"{self.name} takes square images, not {w}x{h}: render with equal width and height "
                           f"(native {n}x{n}; other square sizes are resized)")
        if w < MIN_RENDER:
            raise MRDError(f"{self.name} cannot use {w}x{h} renders: render at least {MIN_RENDER}x{MIN_RENDER} "
                           f"(native {n}x{n})")

    def to_input(self, img):
        """(H, W, 3) torch in [0, 1] -> (1, 3, S, S) at the network's native size."""
        if img.ndim != 3 or img.shape[2] != 3:
            raise MRDError(f"{self.name} needs (height, width, 3) RGB renders, got shape {tuple(img.shape)}: "
                           "render RGB (pixel_format rgb)")
        h, w = int(img.shape[0]), int(img.shape[1])
        self.check_render_size(w, h)
        n = self.native_size
        if self.preprocess == "research":
            x = img.reshape(1, 3, h, w)  # the research code's view(): scrambled pixels, kept for comparability
            if h > n:                    # its baseline panel: torchvision CenterCrop(224) of the 256 px input
                if not self._warned_resize:
                    self.log(f"{self.name}: center-cropping {w}x{h} inputs to {n}x{n} (research mode)")
                    self._warned_resize = True
                top = int(round((h - n) / 2.0))
                x = x[:, :, top:top + n, top:top + n]
            return x.contiguous()
        x = img.permute(2, 0, 1).unsqueeze(0)
        if (h, w) != (n, n):
            if not self._warned_resize:
                self.log(f"{self.name}: resizing {w}x{h} renders to the network's native {n}x{n}")
                self._warned_resize = True
            x = torch.nn.functional.interpolate(x, size=(n, n), mode="bilinear", align_corners=False,
                                                antialias=n < h)
        return x.contiguous()

    def _forward(self, img):
        self.forward_calls += 1
        return self.features(self.to_input(img))

    def prepare(self, target):
        self.prepare_calls += 1
        with torch.no_grad():
            return self._forward(_as_torch(target, self.device))

    def loss(self, render, target_features, second_render=None):
        @dr.wrap(source="drjit", target="torch")
        def _loss(img):
            f = self._forward(img.to(self.device))
            self._last = _detach(f)
            metamer = self.feature_loss(f, target_features)
            if self.classify is None:
                return metamer.reshape(1)
            logits = self.logits(f)
            ce = torch.nn.functional.cross_entropy(logits, torch.tensor([self.classify], device=logits.device))
            self._record(logits.detach(), ce.detach(), metamer.detach())
            return ((1.0 - self.alpha) * ce + self.alpha * metamer).reshape(1)
        return dr.sum(_loss(render).array)  # a Dr.Jit Float scalar that regularizers can be added to

    def _record(self, logits, ce, metamer):
        names = imagenet_classes()
        probs = torch.softmax(logits.double(), dim=-1)[0]
        p, i = torch.topk(probs, 5)
        self._info = {
            "class_index": self.classify, "class_name": names[self.classify],
            "class_prob": float(probs[self.classify]), "ce": float(ce), "metamer_loss": float(metamer),
            "alpha": self.alpha,
            "top5": [{"index": int(k), "name": names[int(k)], "prob": float(v)} for v, k in zip(p, i)],
        }

    def step_info(self) -> dict:
        return dict(self._info)

    def similarity(self, target_features) -> float:
        return self.feature_similarity(self._last, target_features)

    def last_features(self):
        if self._last is None or not self.keep_features:
            return None
        return self._last.flatten().cpu().numpy()


class TimmClassifier(TorchObjective):
    """A timm ImageNet classifier as an objective: the pooled features its classifier reads (`pre_logits`), an L1
    loss between them (the research code's ResNet-50 loss), and the classifier head for --classify."""

    def features(self, x):
        return self.net.forward_head(self.net.forward_features(self.normalize(x)), pre_logits=True)

    def feature_loss(self, f, t):
        return torch.nn.functional.l1_loss(f, t)

    def logits(self, f):
        return self.net.get_classifier()(f)


def _detach(f):
    return [t.detach() for t in f] if isinstance(f, (list, tuple)) else f.detach()


def _as_torch(img, device):
    if isinstance(img, torch.Tensor):
        return img.to(device)
    return torch.as_tensor(np.asarray(img), dtype=torch.float32, device=device)
