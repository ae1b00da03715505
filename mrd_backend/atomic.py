"""The one way this project writes a file that others may read while it runs."""
from __future__ import annotations

import io
from pathlib import Path

import numpy as np


def atomic_write(path: Path, write, suffix: str = "") -> Path:
    """Calls `write(tmp)` on a temporary name beside `path`, then renames it into place: readers never see half a
    file, and a failed write (a full disk) leaves neither a truncated file nor the temporary one behind."""
    path = Path(path)
    tmp = path.with_name(f".{path.name}.tmp{suffix}")
    try:
        write(tmp)
        tmp.replace(path)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
    return path


def npz_bytes(arrays: dict) -> bytes:
    """An .npz in memory: np.savez on a file leaves its zip writer open when the disk fills, and the writer's
    finalizer then prints a traceback at exit."""
    buf = io.BytesIO()
    np.savez(buf, **arrays)
    return buf.getvalue()
