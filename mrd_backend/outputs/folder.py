"""A run folder holds everything a run produced; every write is atomic (temporary name, then rename), so a run
that fails or is cancelled keeps every result it already wrote, and `report.json` always says how it ended."""
from __future__ import annotations

import json
import os
import re
import time
from datetime import datetime
from pathlib import Path

import numpy as np

from ..atomic import atomic_write, npz_bytes
from ..determinism import enough_threads_for_io
from ..errors import MRDError
from ..protocol import no_nan
from ..render.tonemap import to_uint8
from ..render.variant import mitsuba
from ..scene.meshes import save_ply
from .naming import unused_name

REPORT_VERSION = 1


# Sub-folders a run creates: a folder holding only these (empty) is one a run was about to use.
RUN_SUBFOLDERS = ("meshes", "renders", "textures", "forward", "steps")
# What a client (the Blender add-on) puts into a run folder before it starts the worker; no run writes these names.
CLIENT_ENTRIES = ("input", "worker.log", "STOP", "events.jsonl")  # the add-on's, made just before the run


def name_part(text: str) -> str:
    """A scene, model or envmap argument as one safe piece of a folder name: a path gives its file's stem (an
    absolute .hdr path must not nest folders, `..` must not climb out of results/)."""
    text = str(text)
    if "/" in text or "\\" in text or Path(text).suffix:
        text = Path(text.replace("\\", "/")).stem
    return re.sub(r"[^A-Za-z0-9_+.-]+", "_", text).strip("._") or "x"


def default_out(cfg) -> Path:
    stamp = datetime.now().strftime("%Y%m%d-%H%M%S")
    return Path("results") / f"{name_part(cfg.scene)}-{name_part(cfg.model)}-{name_part(cfg.envmap)}-{stamp}"


def is_run_folder(path: Path) -> bool:
    return (path / "report.json").exists() or (path / "config.json").exists()


def _unused(path: Path) -> bool:
    """Missing, empty, or holding only a run's empty sub-folders and a client's inputs (made just before the run)."""
    if not path.exists():
        return True
    for entry in path.iterdir():
        if entry.name in CLIENT_ENTRIES:
            continue
        if entry.name not in RUN_SUBFOLDERS or not entry.is_dir() or any(entry.iterdir()):
            return False
    return True


def _fresh(path: Path) -> Path:
    """Never reuses a folder that holds an earlier run: a suffix keeps both."""
    return unused_name(path, taken=is_run_folder)


def choose_run_folder(path: str | Path) -> Path:
    """The folder a run asked to write into `path` will use; checks it and creates nothing.

    - a new or empty folder: that folder;
    - a folder with an earlier run (report.json / config.json): a sibling `NAME-2`, `NAME-3`, ... (both runs kept);
    - a folder with anything else (the user's files): a fresh sub-folder `mrd-run-TIME` inside it, so that nothing
      of the user's is overwritten;
    - a file, a path below a file, or a folder that cannot be written: MRDError (one line, exit status 2)."""
    p = Path(os.path.expanduser(str(path)))
    existing = next((a for a in (p, *p.parents) if a.exists()), Path("."))
    if not existing.is_dir():
        if existing == p:
            raise MRDError(f"--out {path} is a file, not a folder: give a new folder for the run")
        raise MRDError(f"--out {path} is below the file {existing}: give a folder that is not inside a file")
    if not os.access(existing, os.W_OK | os.X_OK):
        raise MRDError(f"--out {path} cannot be created: {existing} is not writable (read-only or permission "
                       "denied); give a folder you can write to")
    if p.is_dir() and not is_run_folder(p) and not _unused(p):
        p = p / f"mrd-run-{datetime.now().strftime('%Y%m%d-%H%M%S')}"
    return _fresh(p)


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
        """A new run folder for `path` (see choose_run_folder), or with `reuse` the existing run folder itself
        (a resume)."""
        self.path = (Path(path) if reuse else choose_run_folder(path)).resolve()
        try:
            for sub in ("", "meshes", "renders", "textures", "forward"):
                (self.path / sub).mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            raise MRDError(f"cannot create the run folder {self.path} ({exc.strerror or exc}): "
                           "give --out a folder you can write to") from None
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
        text = strict_json(data)
        return atomic_write(self.path / name, lambda tmp: tmp.write_text(text))

    def write_png(self, name: str, image_ldr: np.ndarray, kind: str | None = None) -> Path:
        import imageio.v3 as iio
        p = atomic_write(self.path / name, lambda tmp: iio.imwrite(tmp, to_uint8(image_ldr), extension=".png"))
        return self._record(kind, p) if kind else p

    def write_exr(self, name: str, image: np.ndarray, kind: str | None = None) -> Path:
        """Linear float image, exact (via Mitsuba's bitmap writer, which every install has)."""
        mi = mitsuba()
        with enough_threads_for_io():
            p = atomic_write(self.path / name, lambda tmp: mi.Bitmap(np.ascontiguousarray(image, np.float32)).write(
                str(tmp)), suffix=".exr")
        return self._record(kind, p) if kind else p

    def write_mesh(self, name: str, vertices, faces, kind: str = "meshes") -> Path:
        return self._record(kind, save_ply(self.path / name, vertices, faces))

    def write_npz(self, name: str, **arrays) -> Path:
        data = npz_bytes(arrays)
        return atomic_write(self.path / name, lambda tmp: tmp.write_bytes(data))


def strict_json(data) -> str:
    """JSON that strict parsers read: NaN and infinities (a diverged loss) become null."""
    try:
        return json.dumps(data, indent=1, default=_plain, allow_nan=False)
    except ValueError:
        return json.dumps(no_nan(json.loads(json.dumps(data, default=_plain))), indent=1, allow_nan=False)


def _plain(x):
    if isinstance(x, np.generic):
        return x.item()
    if isinstance(x, np.ndarray):
        return x.tolist()
    if isinstance(x, Path):
        return str(x)
    raise TypeError(f"not JSON-serializable: {type(x).__name__}")
