"""How a run folder gets a name that keeps an earlier run: the one rule the backend (outputs/folder.py) and the
Blender add-on (run_folder.py, through client.backend()) share. Standard library only: Blender's Python imports it."""
from __future__ import annotations

from pathlib import Path


def unused_name(path: Path, taken=None) -> Path:
    """`path` itself unless `taken(path)` (default: it exists); else the first sibling `NAME-2`, `NAME-3`, ... that
    does not exist, so both the earlier folder and the new one are kept."""
    path = Path(path)
    if not (taken or Path.exists)(path):
        return path
    i = 2
    while (path.parent / f"{path.name}-{i}").exists():
        i += 1
    return path.parent / f"{path.name}-{i}"
