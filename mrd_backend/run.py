"""A run folder holds everything a run produced; every write is atomic (temporary name, then rename), so a run
that fails or is cancelled keeps every result it already wrote, and `report.json` always says how it ended."""
from __future__ import annotations

import json
import time
from datetime import datetime
from pathlib import Path

import numpy as np

from .atomic import atomic_write, npz_bytes
from .meshes import save_ply
from .tonemap import to_uint8

REPORT_VERSION = 1


def default_out(cfg) -> Path:
    stamp = datetime.now().strftime("%Y%m%d-%H%M%S")
    return Path("results") / f"{Path(cfg.scene).stem}-{cfg.model}-{cfg.envmap}-{stamp}"


def _fresh(path: Path) -> Path:
    """Never reuses a folder that holds an earlier run: a suffix keeps both."""
    if not (path / "report.json").exists() and not (path / "config.json").exists():
        return path
    i = 2
    while (path.parent / f"{path.name}-{i}").exists():
        i += 1
    return path.parent / f"{path.name}-{i}"


def grid(images: list[np.ndarray], per_row: int = 5, pad: int = 2) -> np.ndarray:
    """Images (H, W, 3) in [0, 1] side by side, `per_row` a row, like the research code's render grids."""
    h, w = images[0].shape[:2]
    rows = (len(images) + per_row - 1) // per_row
    cols = min(per_row, len(images))
    out = np.ones((rows * (h + pad) + pad, cols * (w + pad) + pad, 3), np.float32)
    for k, im in enumerate(images):
        r, c = divmod(k, per_row)
        out[pad + r * (h + pad): pad + r * (h + pad) + h, pad + c * (w + pad): pad + c * (w + pad) + w] = im[..., :3]
    return out


class RunFolder:
    def __init__(self, path: str | Path, reuse: bool = False):
        """A new run folder at `path` (a suffix when it holds an earlier run), or with `reuse` the existing run
        folder itself (a resume)."""
        self.path = (Path(path) if reuse else _fresh(Path(path))).resolve()
        for sub in ("", "meshes", "renders", "textures", "forward"):
            (self.path / sub).mkdir(parents=True, exist_ok=True)
        self.files: dict[str, list | str] = {}
        self.started = time.time()

    def rel(self, p: Path) -> str:
        return str(Path(p).relative_to(self.path))

    def _record(self, kind, p, many=True):
        if many:
            lst = self.files.setdefault(kind, [])
            if self.rel(p) not in lst:  # a resumed run rewrites some files
                lst.append(self.rel(p))
        else:
            self.files[kind] = self.rel(p)
        return p

    def write_json(self, name: str, data) -> Path:
        text = json.dumps(data, indent=1, default=_plain)
        return atomic_write(self.path / name, lambda tmp: tmp.write_text(text))

    def write_png(self, name: str, image_ldr: np.ndarray, kind: str | None = None) -> Path:
        import imageio.v3 as iio
        p = atomic_write(self.path / name, lambda tmp: iio.imwrite(tmp, to_uint8(image_ldr), extension=".png"))
        return self._record(kind, p) if kind else p

    def write_exr(self, name: str, image: np.ndarray, kind: str | None = None) -> Path:
        """Linear float image, exact (via Mitsuba's bitmap writer, which every install has)."""
        from .variant import mitsuba
        mi = mitsuba()
        p = atomic_write(self.path / name, lambda tmp: mi.Bitmap(np.ascontiguousarray(image, np.float32)).write(
            str(tmp)), suffix=".exr")
        return self._record(kind, p) if kind else p

    def write_mesh(self, name: str, vertices, faces, kind: str = "meshes") -> Path:
        return self._record(kind, save_ply(self.path / name, vertices, faces))

    def write_npz(self, name: str, **arrays) -> Path:
        data = npz_bytes(arrays)
        return atomic_write(self.path / name, lambda tmp: tmp.write_bytes(data))


def _plain(x):
    if isinstance(x, np.generic):
        return x.item()
    if isinstance(x, np.ndarray):
        return x.tolist()
    if isinstance(x, Path):
        return str(x)
    raise TypeError(f"not JSON-serializable: {type(x).__name__}")
