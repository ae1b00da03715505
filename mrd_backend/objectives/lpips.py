"""LPIPS v0.1 with its VGG-16 trunk (the `lpips` package), and that trunk without the learned heads.

- `lpips`: five VGG-16 stages (relu1_2 .. relu5_3), channel-unit-normalized, squared difference, learned 1x1 linear
  heads, spatial mean, summed over the stages (= lpips.LPIPS(net="vgg")(render, target, normalize=True)).
- `vgg` (the research code's "lpipsvgg"): the same trunk and normalization, no heads: per stage the spatial mean of
  the channel sum of squared differences, then the MEAN over the five stages (the lpips package would sum them).

Input: [0, 1] mapped to [-1, 1], then LPIPS' own ScalingLayer. Weights: the trunk is torchvision's VGG-16
(vgg16-397923af.pth); the heads ship inside the lpips package (weights/v0.1/vgg.pth; a `lpips_vgg_v0.1.pth` in the
weights folder takes precedence). `--weights untrained`: BOTH the trunk (torchvision's VGG init rule: Kaiming normal,
fan_out, zero biases) and the heads are random, seeded by --seed; the heads are the absolute values of PyTorch's
default 1x1-conv init, so they are non-negative like trained LPIPS heads and the distance stays a sum of
non-negative terms.
`--weights PATH`: a state dict of the whole lpips.LPIPS module, or a torchvision VGG-16 checkpoint (trunk only; the
heads then come from the package).
"""
from __future__ import annotations

import warnings

import torch

from ..errors import MRDError
from . import checkpoints as C
from . import weights as W
from .catalogue import native_size as catalogue_size
from .torch_base import TorchObjective

# torchvision vgg16().features index -> LPIPS slice (relu1_2 | relu2_2 | relu3_3 | relu4_3 | relu5_3)
_SLICES = ((1, 0, 4), (2, 4, 9), (3, 9, 16), (4, 16, 23), (5, 23, 30))


def torchvision_to_lpips(sd: dict) -> dict:
    out = {}
    for k, v in sd.items():
        parts = k.split(".")
        if parts[0] != "features" or len(parts) != 3 or not parts[1].isdigit():
            continue
        i = int(parts[1])
        for s, lo, hi in _SLICES:
            if lo <= i < hi:
                out[f"net.slice{s}.{i}.{parts[2]}"] = v
    return out


def lpips_to_torchvision(sd: dict) -> dict:
    """The trunk of an lpips.LPIPS state dict in torchvision's `features.N` keys (for tests and exports)."""
    return {"features." + k.split(".", 2)[2]: v for k, v in sd.items() if k.startswith("net.slice")}


class LPIPS(TorchObjective):
    name = "lpips"
    native_size = catalogue_size("lpips")
    learned_heads = True
    keep_features = False   # five full-resolution maps per render: too big to keep per view (research: none kept)

    def _bare(self):
        """The lpips module with seeded random weights: torchvision's VGG rule for the trunk (Kaiming normal,
        fan_out, zero biases), |PyTorch's default 1x1-conv init| for the heads. Built on the meta device first, so
        that torchvision's 120M-parameter classifier, which LPIPS discards, is never initialized (seconds)."""
        import lpips
        from lpips.lpips import ScalingLayer
        with warnings.catch_warnings(), torch.device("meta"):
            warnings.simplefilter("ignore")
            net = lpips.LPIPS(pretrained=False, net="vgg", lpips=self.learned_heads, pnet_rand=True, verbose=False)
        net = net.to_empty(device="cpu")
        net.scaling_layer = ScalingLayer()
        with torch.no_grad():
            for m in net.net.modules():
                if isinstance(m, torch.nn.Conv2d):
                    torch.nn.init.kaiming_normal_(m.weight, mode="fan_out", nonlinearity="relu")
                    torch.nn.init.zeros_(m.bias)
            if self.learned_heads:
                for lin in net.lins:
                    lin.model[-1].reset_parameters()
                    lin.model[-1].weight.abs_()
        return net

    @staticmethod
    def _alias(k: str) -> bool:       # lpips registers the heads twice (lin0.. and lins.0..)
        return k.startswith("lins.")

    def _assemble(self, net, trunk: dict, heads: dict | None, source: str) -> None:
        own = net.state_dict()
        sd = dict(trunk)
        if any(k.startswith("features.") for k in sd) and not any(k.startswith("net.") for k in sd):
            sd = torchvision_to_lpips(sd) or sd
        if heads is not None:
            sd.update({k: v for k, v in heads.items() if k.startswith("lin")})
        for k in ("scaling_layer.shift", "scaling_layer.scale"):
            sd.setdefault(k, own[k])
        ignore = (lambda k: k.startswith(("lin", "classifier."))) if not self.learned_heads else \
            (lambda k: k.startswith("classifier.") or self._alias(k))
        C.load_into(net, sd, self.name, source, ignore=ignore, skip_own=self._alias)

    def build(self, weights, weights_dir):
        if weights == "untrained":
            return self._bare(), "untrained"
        W.check_weights_dir(weights_dir)
        if weights == "pretrained":
            paths = W.locate(self.name, weights_dir, self.log)
            net = self._bare()
            heads = C.load_state_dict(paths[1]) if self.learned_heads else None
            self._assemble(net, C.load_state_dict(paths[0]), heads, f"{paths[0]}")
            return net, "pretrained"
        sd = C.load_state_dict(weights)
        net = self._bare()
        heads = None
        if self.learned_heads and not any(k.startswith("lin") for k in sd):
            heads_path = W.find_part(W.SPECS["lpips"][1], weights_dir)
            if heads_path is None:
                raise MRDError("the LPIPS heads (weights/v0.1/vgg.pth of the lpips package) are missing: "
                               "pip install lpips, or give a checkpoint of the whole LPIPS module")
            heads = C.load_state_dict(heads_path)
        self._assemble(net, sd, heads, str(weights))
        return net, str(weights)

    def normalize(self, x):
        return self.net.scaling_layer(2.0 * x - 1.0)

    def features(self, x):
        import lpips
        return [lpips.normalize_tensor(o) for o in self.net.net(self.normalize(x))]

    def per_stage(self, f, t):
        if self.learned_heads:
            return [self.net.lins[k]((a - b) ** 2).mean(dim=(2, 3)) for k, (a, b) in enumerate(zip(f, t))]
        return [((a - b) ** 2).sum(dim=1, keepdim=True).mean(dim=(2, 3)) for a, b in zip(f, t)]

    def feature_loss(self, f, t):
        stages = self.per_stage(f, t)
        return (sum(stages) if self.learned_heads else sum(stages) / len(stages)).reshape(())

    def feature_similarity(self, f, t) -> float:
        with torch.no_grad():
            return 1.0 - float(self.feature_loss(f, t))


class LPIPSVGG(LPIPS):
    name = "vgg"
    learned_heads = False
