"""The one way this project writes a file that others may read while it runs."""
from __future__ import annotations

from pathlib import Path


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
