"""DINOv2 ViT-B/14 (`facebook/dinov2-base` = timm `vit_base_patch14_dinov2.lvd142m`) at 224 px: patch tokens after
the final norm, CLS dropped, L2-normalized per patch; loss = mean over the 256 patches of (1 - cosine).

The checkpoint's 37x37 position embedding (trained at 518 px) is resampled once at load to the 16x16 grid of a
224 px input: bicubic, align_corners=False, no antialiasing, in float32 -- what Hugging Face's Dinov2 (the research
code's transformers 4.52) does on every forward. timm's own default would antialias, which changes the features.
Accepted files: timm's (`model.safetensors` of timm/vit_base_patch14_dinov2.lvd142m), Meta's
(`dinov2_vitb14_pretrain.pth`) and Hugging Face's (`model.safetensors` of facebook/dinov2-base, the research code's;
converted here, no transformers needed).
Normalization: ImageNet constants; --preprocess research uses the CLIP constants the research code used.
"""
from __future__ import annotations

import torch

from . import checkpoints as C
from .catalogue import native_size as catalogue_size
from .torch_base import RESEARCH_CLIP_MEAN, RESEARCH_CLIP_STD, TorchObjective

ARCH = "vit_base_patch14_dinov2"


def hf_to_timm(sd: dict) -> dict:
    """Hugging Face Dinov2Model keys -> timm VisionTransformer keys (q, k, v fused into qkv)."""
    out, qkv = {}, {}
    for k, v in sd.items():
        if k.startswith("dinov2."):
            k = k[len("dinov2."):]
        if k in ("embeddings.mask_token",) or not k.startswith(("embeddings.", "encoder.", "layernorm.")):
            continue
        if k == "embeddings.cls_token":
            out["cls_token"] = v
        elif k == "embeddings.position_embeddings":
            out["pos_embed"] = v
        elif k.startswith("embeddings.patch_embeddings.projection."):
            out["patch_embed.proj." + k.rsplit(".", 1)[1]] = v
        elif k.startswith("layernorm."):
            out["norm." + k.rsplit(".", 1)[1]] = v
        else:  # encoder.layer.{i}.<rest>
            _, _, i, rest = k.split(".", 3)
            b = f"blocks.{i}."
            if rest.startswith("attention.attention."):
                which, kind = rest.split(".")[2:4]          # query|key|value, weight|bias
                qkv.setdefault((i, kind), {})[which] = v
            elif rest.startswith("attention.output.dense."):
                out[b + "attn.proj." + rest.rsplit(".", 1)[1]] = v
            elif rest.startswith("layer_scale"):
                out[b + f"ls{rest[len('layer_scale')]}.gamma"] = v
            else:                                           # norm1, norm2, mlp.fc1, mlp.fc2
                out[b + rest] = v
    for (i, kind), parts in qkv.items():
        out[f"blocks.{i}.attn.qkv.{kind}"] = torch.cat([parts["query"], parts["key"], parts["value"]], 0)
    return out


def to_timm(sd: dict, net) -> dict:
    """Any accepted DINOv2 checkpoint -> the keys of `net`, position embedding resampled to its grid."""
    from timm.models.vision_transformer import checkpoint_filter_fn
    if any(k.startswith(("embeddings.", "dinov2.embeddings.")) for k in sd):
        sd = hf_to_timm(sd)
    sd = dict(sd)
    if "pos_embed" not in sd or getattr(sd["pos_embed"], "ndim", 0) != 3:
        return sd  # not a ViT checkpoint: let the key check name what is missing
    # drops Meta's mask_token; resamples pos_embed as Hugging Face's Dinov2 does (bicubic, no antialiasing)
    return checkpoint_filter_fn(sd, net, interpolation="bicubic", antialias=False)


class DINOv2(TorchObjective):
    name = "dino"
    native_size = catalogue_size("dino")
    research_mean, research_std = RESEARCH_CLIP_MEAN, RESEARCH_CLIP_STD
    size_multiple = 14

    def build(self, weights, weights_dir):
        import timm

        def bare():
            return timm.create_model(ARCH, pretrained=False, img_size=self.native_size, num_classes=0)
        return C.resolve(self.name, weights, bare, weights_dir, convert=to_timm, log=self.log,
                         ignore=lambda k: k.startswith("head."))

    def features(self, x):
        tokens = self.net.forward_features(self.normalize(x))          # final norm included
        patches = tokens[:, self.net.num_prefix_tokens:, :]
        return torch.nn.functional.normalize(patches, dim=-1)

    def feature_loss(self, f, t):
        return (1.0 - (f * t).sum(dim=-1)).mean()

    def feature_similarity(self, f, t) -> float:
        return float((f.double() * t.double()).sum(dim=-1).mean())
