"""Picks and imports the Mitsuba variant once: `cuda_ad_rgb` with a CUDA device, else `llvm_ad_rgb`.

`MRD_VARIANT` overrides the choice. On the CPU, Dr.Jit needs libLLVM >= 16; when `DRJIT_LIBLLVM_PATH` is not set
we point it at the newest one we find, because Dr.Jit's own search may pick an older, crashing one first.
"""
from __future__ import annotations

import glob
import os

from ..errors import MRDError

_LLVM_GLOBS = [
    "/usr/lib/llvm-{v}/lib/libLLVM.so.1", "/usr/lib/llvm-{v}/lib/libLLVM-{v}.so",
    "/usr/lib/*-linux-gnu/libLLVM-{v}.so.1", "/usr/lib/*-linux-gnu/libLLVM.so.{v}.1",
    "/usr/lib/*-linux-gnu/libLLVM-{v}.so", "/opt/homebrew/opt/llvm/lib/libLLVM.dylib",
    "/usr/local/opt/llvm/lib/libLLVM.dylib",
]


def find_libllvm(min_version: int = 16) -> str | None:
    for v in range(21, min_version - 1, -1):
        for pattern in _LLVM_GLOBS:
            hits = sorted(glob.glob(pattern.format(v=v)))
            if hits:
                return hits[0]
    return None


def _cuda_available() -> bool:
    try:
        import torch  # torch is a dependency anyway; it answers without initialising Dr.Jit
        return bool(torch.cuda.is_available())
    except Exception:
        return False


def choose_variant() -> str:
    forced = os.environ.get("MRD_VARIANT")
    if forced:
        return forced
    return "cuda_ad_rgb" if _cuda_available() else "llvm_ad_rgb"


_mi = None


def mitsuba():
    """The mitsuba module with our variant set (imported lazily so that `mrd --help` stays fast)."""
    global _mi
    if _mi is not None:
        return _mi
    name = choose_variant()
    if name.startswith("llvm") and not os.environ.get("DRJIT_LIBLLVM_PATH"):
        lib = find_libllvm()
        if lib:
            os.environ["DRJIT_LIBLLVM_PATH"] = lib
    try:
        import mitsuba as mi
    except ImportError as exc:
        raise MRDError(f"mitsuba is not installed ({exc}): run `make setup` or `pip install -e .`") from None
    try:
        mi.set_variant(name)
    except Exception as exc:
        hint = ("install libLLVM 16 or newer (Debian/Ubuntu: apt-get install libllvm19) or set DRJIT_LIBLLVM_PATH"
                if name.startswith("llvm") else "check the CUDA driver, or set MRD_VARIANT=llvm_ad_rgb")
        raise MRDError(f"Mitsuba variant {name!r} is not usable ({exc}): {hint}") from None
    _mi = mi
    return mi


def variant_name() -> str:
    return mitsuba().variant()
