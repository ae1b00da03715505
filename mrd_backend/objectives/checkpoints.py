"""Network weights from a checkpoint: `pretrained` (located by weights.py), `untrained` (a seeded random init, an
explicit control condition) or a local checkpoint PATH. Every checkpoint is read safely (safetensors, or
`torch.load(weights_only=True)`); a checkpoint of another architecture is reported with the keys that do not match.
"""
from __future__ import annotations

from pathlib import Path
from typing import Callable

from ..errors import MRDError
from .weights import check_weights_dir, locate


def load_state_dict(path: str | Path) -> dict:
    """Loads a checkpoint safely: safetensors, or torch.load(weights_only=True); unwraps 'state_dict'/'model' and
    DataParallel's 'module.' prefixes."""
    path = Path(path).expanduser()
    if not path.is_file():
        raise MRDError(f"checkpoint {path} does not exist: give the path of a .safetensors or .pth file, "
                       "or use --weights pretrained|untrained")
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
    for key in ("state_dict", "model"):
        if isinstance(sd, dict) and isinstance(sd.get(key), dict):
            sd = sd[key]
    if not isinstance(sd, dict) or not sd:
        raise MRDError(f"checkpoint {path} does not hold a state dict: give a .safetensors file or a torch state dict")
    return {k[7:] if k.startswith("module.") else k: v for k, v in sd.items()}


def mismatch(own: dict, state_dict: dict, ignore: Callable[[str], bool] = lambda k: False) -> str:
    """'' when state_dict fits the network's own state dict, else a short description of the mismatching keys."""
    missing = [k for k in own if k not in state_dict]
    unexpected = [k for k in state_dict if k not in own and not ignore(k)]
    wrong = [f"{k} {tuple(state_dict[k].shape)} vs {tuple(own[k].shape)}" for k in own
             if k in state_dict and tuple(own[k].shape) != tuple(getattr(state_dict[k], "shape", ()))]
    parts = []
    for label, keys in (("missing", missing), ("unexpected", unexpected), ("wrong shape", wrong)):
        if keys:
            parts.append(f"{len(keys)} {label}: {', '.join(keys[:3])}{' ...' if len(keys) > 3 else ''}")
    return "; ".join(parts)


def load_into(net, state_dict: dict, model: str, source: str, ignore: Callable[[str], bool] = lambda k: False,
              skip_own: Callable[[str], bool] = lambda k: False) -> None:
    """Loads strictly (up to keys `ignore`d in the checkpoint and aliases `skip_own`ed in the network); a mismatch
    is a one-line error naming the first mismatching keys. Tensors take the network's dtypes. A network built on
    the meta device (no wasted random init) gets the checkpoint's tensors assigned."""
    own = {k: v for k, v in net.state_dict().items() if not skip_own(k)}
    bad = mismatch(own, state_dict, ignore)
    if bad:
        raise MRDError(f"{source} is not a {model} checkpoint ({bad}): give weights of that architecture")
    sd = {k: v.to(own[k].dtype).contiguous() for k, v in state_dict.items() if k in own}
    net.load_state_dict(sd, strict=False, assign=any(v.is_meta for v in own.values()))


def _on_meta(net) -> bool:
    return any(t.is_meta for t in list(net.parameters()) + list(net.buffers()))


def _load_built(build_untrained, sd_loader, model, source, convert, ignore):
    """Builds the network without its random init (meta device) and loads the checkpoint into it; falls back to a
    normal build when something stays unloaded (a buffer that no checkpoint holds)."""
    import torch
    sd = sd_loader()
    try:
        with torch.device("meta"):
            net = build_untrained()
    except Exception:
        net = None
    if net is not None:
        load_into(net, convert(sd, net), model, source, ignore)
        if not _on_meta(net):
            return net
    net = build_untrained()
    load_into(net, convert(sd, net), model, source, ignore)
    return net


def resolve(model: str, choice: str, build_untrained, weights_dir_: str | None = None, convert=None, ignore=None,
            log=print):
    """Returns (net, label) for choice pretrained | untrained | PATH, for a model whose weights are one file.
    `build_untrained()` makes the bare (seeded) network; `convert(sd, net)` maps other checkpoint formats onto the
    network's keys; `ignore(key)` names checkpoint keys that may be present but are not used (e.g. a text tower)."""
    convert = convert or (lambda sd, net: sd)
    ignore = ignore or (lambda k: False)
    if choice == "untrained":
        return build_untrained(), "untrained"
    check_weights_dir(weights_dir_)
    if choice == "pretrained":
        paths = locate(model, weights_dir_, log)   # raises before the network is even built
        return _load_built(build_untrained, lambda: load_state_dict(paths[0]), model, str(paths[0]), convert,
                           ignore), "pretrained"
    sd = load_state_dict(choice)
    return _load_built(build_untrained, lambda: sd, model, str(choice), convert, ignore), str(choice)
