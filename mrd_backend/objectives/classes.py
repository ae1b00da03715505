"""The 1000 ImageNet class names (index = line number in data/imagenet_classes.txt, generated from timm's ImageNet
info by scripts/make_imagenet_classes.py)."""
from __future__ import annotations

from functools import lru_cache
from pathlib import Path

DATA = Path(__file__).resolve().parent.parent / "data" / "imagenet_classes.txt"


@lru_cache(maxsize=1)
def imagenet_classes() -> tuple[str, ...]:
    names = tuple(line.rstrip("\n") for line in DATA.read_text(encoding="utf-8").splitlines())
    assert len(names) == 1000, f"{DATA} must hold 1000 lines"
    return names


def class_name(index: int) -> str:
    return imagenet_classes()[int(index)]
