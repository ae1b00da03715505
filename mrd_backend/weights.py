"""Where network weights come from: `pretrained` (weights folder, then the libraries' caches), `untrained` (a seeded
random init, an explicit control condition) or a local checkpoint PATH. Never a silent fallback."""
from __future__ import annotations

import os
from pathlib import Path

from .errors import MRDError

# model -> (file names accepted in the weights folder, file names in torch hub's cache, how to fetch)
KNOWN_FILES = {
    "resnet": (["resnet50.tv_in1k.safetensors", "resnet50-0676ba61.pth"], ["resnet50-0676ba61.pth"],
               "mrd weights fetch resnet"),
}


def weights_dir(explicit: str | None = None) -> Path:
    d = explicit or os.environ.get("MRD_WEIGHTS_DIR") or str(Path.home() / ".cache" / "mrd" / "weights")
    return Path(d).expanduser()


def torch_hub_dir() -> Path:
    import torch
    return Path(torch.hub.get_dir()) / "checkpoints"


def find_pretrained(model: str, explicit_dir: str | None = None) -> Path | None:
    names, hub_names, _ = KNOWN_FILES[model]
    if explicit_dir is not None and not Path(explicit_dir).expanduser().is_dir():
        raise MRDError(f"weights folder {explicit_dir} does not exist: create it or drop --weights-dir")
    for d, files in ((weights_dir(explicit_dir), names), (torch_hub_dir(), hub_names)):
        for n in files:
            if (d / n).is_file():
                return d / n
    return None


def missing_message(model: str, explicit_dir: str | None = None) -> str:
    names, hub_names, fetch = KNOWN_FILES[model]
    return (f"no pretrained weights for {model}: looked for {', '.join(names)} in {weights_dir(explicit_dir)} and "
            f"{', '.join(hub_names)} in {torch_hub_dir()}; run `{fetch}` on a machine with internet and copy the "
            f"folder here, or use --weights untrained")


def load_state_dict(path: str | Path) -> dict:
    """Loads a checkpoint safely: safetensors, or torch.load(weights_only=True); unwraps 'state_dict'/'module.'."""
    path = Path(path)
    if not path.is_file():
        raise MRDError(f"checkpoint {path} does not exist: give the path of a .safetensors or .pth file")
    try:
        if path.suffix == ".safetensors":
            from safetensors.torch import load_file
            sd = load_file(str(path))
        else:
            import torch
            sd = torch.load(str(path), map_location="cpu", weights_only=True)
    except Exception as exc:
        raise MRDError(f"cannot read checkpoint {path} ({type(exc).__name__}): give a .safetensors file or a "
                       "torch state dict saved with torch.save") from None
    if isinstance(sd, dict) and "state_dict" in sd and isinstance(sd["state_dict"], dict):
        sd = sd["state_dict"]
    if not isinstance(sd, dict):
        raise MRDError(f"checkpoint {path} does not hold a state dict")
    return {k[7:] if k.startswith("module.") else k: v for k, v in sd.items()}


def load_into(net, state_dict: dict, model: str, source: str) -> None:
    """Loads strictly; a mismatch is a one-line error naming the first mismatching keys."""
    own = net.state_dict()
    missing = [k for k in own if k not in state_dict]
    unexpected = [k for k in state_dict if k not in own]
    wrong = [k for k in own if k in state_dict and tuple(own[k].shape) != tuple(state_dict[k].shape)]
    if missing or unexpected or wrong:
        parts = []
        for label, keys in (("missing", missing), ("unexpected", unexpected), ("wrong shape", wrong)):
            if keys:
                parts.append(f"{label}: {', '.join(keys[:3])}{' ...' if len(keys) > 3 else ''}")
        raise MRDError(f"{source} is not a {model} checkpoint ({'; '.join(parts)}): give weights of that architecture")
    net.load_state_dict(state_dict)


def resolve(model: str, choice: str, build_untrained, weights_dir_: str | None = None):
    """Returns (net, label) for choice pretrained | untrained | PATH; `build_untrained()` makes the bare network."""
    net = build_untrained()
    if choice == "untrained":
        return net, "untrained"
    if choice == "pretrained":
        path = find_pretrained(model, weights_dir_)
        if path is None:
            raise MRDError(missing_message(model, weights_dir_))
        load_into(net, load_state_dict(path), model, str(path))
        return net, "pretrained"
    load_into(net, load_state_dict(choice), model, choice)
    return net, str(choice)
