"""OpenAI CLIP ViT-L/14 vision tower (open_clip `ViT-L-14`, `openai`, QuickGELU) at 224 px: the patch tokens of the
last transformer block BEFORE the final LayerNorm (what Hugging Face's CLIPVisionModel.last_hidden_state holds),
CLS dropped, L2-normalized per patch; loss = mean over the 256 patches of (1 - cosine).

Accepted files: open_clip's (`open_clip_model.safetensors` / `open_clip_pytorch_model.bin` of
timm/vit_large_patch14_clip_224.openai; the text tower in it is ignored) and Hugging Face's (`model.safetensors` of
openai/clip-vit-large-patch14, the research code's; converted here). Normalization: OpenAI's constants (the
research code used them rounded to 4 decimals; --preprocess research does too).
"""
from __future__ import annotations

import torch

from . import checkpoints as C
from .catalogue import native_size as catalogue_size
from .torch_base import OPENAI_MEAN, OPENAI_STD, RESEARCH_CLIP_MEAN, RESEARCH_CLIP_STD, TorchObjective


def hf_to_open_clip(sd: dict) -> dict:
    """Hugging Face CLIPModel / CLIPVisionModel keys -> open_clip VisionTransformer keys."""
    out, qkv = {}, {}
    for k, v in sd.items():
        if k == "visual_projection.weight":
            out["proj"] = v.t().contiguous()
            continue
        if not k.startswith("vision_model."):
            continue
        k = k[len("vision_model."):]
        if k == "embeddings.class_embedding":
            out["class_embedding"] = v
        elif k == "embeddings.patch_embedding.weight":
            out["conv1.weight"] = v
        elif k == "embeddings.position_embedding.weight":
            out["positional_embedding"] = v
        elif k.startswith("pre_layrnorm."):
            out["ln_pre." + k.rsplit(".", 1)[1]] = v
        elif k.startswith("post_layernorm."):
            out["ln_post." + k.rsplit(".", 1)[1]] = v
        elif k.startswith("encoder.layers."):
            _, _, i, rest = k.split(".", 3)
            b = f"transformer.resblocks.{i}."
            kind = rest.rsplit(".", 1)[1]
            if rest.startswith("self_attn.out_proj."):
                out[b + "attn.out_proj." + kind] = v
            elif rest.startswith("self_attn."):
                qkv.setdefault((i, kind), {})[rest.split(".")[1][0]] = v      # q|k|v
            else:
                name = {"layer_norm1": "ln_1", "layer_norm2": "ln_2", "mlp.fc1": "mlp.c_fc",
                        "mlp.fc2": "mlp.c_proj"}[rest.rsplit(".", 1)[0]]
                out[b + name + "." + kind] = v
    for (i, kind), p in qkv.items():
        out[f"transformer.resblocks.{i}.attn.in_proj_{kind}"] = torch.cat([p["q"], p["k"], p["v"]], 0)
    return out


def to_visual(sd: dict, net) -> dict:
    """Any accepted CLIP checkpoint -> the keys of the vision tower `net`, position embedding resampled to its grid
    when the input size is not 224 (bicubic, no antialiasing, as Hugging Face's CLIP interpolates)."""
    if any(k.startswith("vision_model.") for k in sd):
        sd = hf_to_open_clip(sd)
    elif any(k.startswith("visual.") for k in sd):     # a whole open_clip model: keep the vision tower only
        sd = {k[len("visual."):]: v for k, v in sd.items() if k.startswith("visual.")}
    pe, own = sd.get("positional_embedding"), net.positional_embedding
    if pe is not None and getattr(pe, "ndim", 0) == 2 and pe.shape[1] == own.shape[1] and pe.shape[0] != own.shape[0]:
        from timm.layers import resample_abs_pos_embed
        g = int(round((own.shape[0] - 1) ** 0.5))
        sd = dict(sd, positional_embedding=resample_abs_pos_embed(pe[None].float(), new_size=(g, g),
                                                                  num_prefix_tokens=1, antialias=False)[0])
    return sd


class CLIPViTL14(TorchObjective):
    name = "clip"
    native_size = catalogue_size("clip")
    mean, std = OPENAI_MEAN, OPENAI_STD
    research_mean, research_std = RESEARCH_CLIP_MEAN, RESEARCH_CLIP_STD
    size_multiple = 14

    def build(self, weights, weights_dir):
        import open_clip
        from open_clip.model import CLIPVisionCfg, _build_vision_tower

        def bare():
            cfg = open_clip.get_model_config("ViT-L-14")
            vision = CLIPVisionCfg(**{**cfg["vision_cfg"], "image_size": self.native_size})
            return _build_vision_tower(cfg["embed_dim"], vision, quick_gelu=True)
        return C.resolve(self.name, weights, bare, weights_dir, convert=to_visual, log=self.log)

    def features(self, x):
        out = self.net.forward_intermediates(self.normalize(x), indices=1, stop_early=True, intermediates_only=True,
                                             normalize_intermediates=False, output_fmt="NLC")
        patches = out["image_intermediates"][-1]                       # (1, 256, 1024), CLS already dropped
        return torch.nn.functional.normalize(patches, dim=-1)

    def feature_loss(self, f, t):
        return (1.0 - (f * t).sum(dim=-1)).mean()

    def feature_similarity(self, f, t) -> float:
        return float((f.double() * t.double()).sum(dim=-1).mean())
