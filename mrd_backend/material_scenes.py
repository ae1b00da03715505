"""Material scenes (filled in by the material-metamer work). Until then: none."""
from __future__ import annotations


def names() -> list[str]:
    return []


def load(name: str, size: int = 256):
    raise KeyError(name)
