"""Figures of a run: loss/similarity curves (PNG) and the optimization as a GIF."""
from __future__ import annotations

from pathlib import Path

import numpy as np

from ..atomic import atomic_write


def save_figure(fig, path, dpi: int = 90, **savefig) -> Path:
    """Writes a matplotlib figure atomically (temporary name, then rename) and closes it; `savefig` are more
    arguments of Figure.savefig (bbox_inches, ...)."""
    import matplotlib.pyplot as plt
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    try:  # the format from the real name: the temporary one ends in .tmp
        atomic_write(path, lambda tmp: fig.savefig(tmp, dpi=dpi, format=path.suffix.lstrip(".") or "png", **savefig))
    finally:
        plt.close(fig)
    return path


def curves_png(path: Path, steps: list[dict]) -> None:
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    x = [s["step"] for s in steps]
    fig, (a, b) = plt.subplots(1, 2, figsize=(9, 3.2))
    a.plot(x, [s["loss"] for s in steps], color="C0")
    a.set(xlabel="step (epoch)", ylabel="loss", title="loss")
    if min(s["loss"] for s in steps) > 0:
        a.set_yscale("log")
    b.plot(x, [s["similarity"] for s in steps], color="C1")
    b.set(xlabel="step (epoch)", ylabel="similarity", title="similarity to the target")
    for s in steps:
        if s.get("remeshed"):
            for ax in (a, b):
                ax.axvline(s["step"], color="0.8", lw=0.8, zorder=0)
    fig.tight_layout()
    save_figure(fig, path, dpi=100)


def optimization_gif(path: Path, frames: list[Path], max_side: int = 512, max_frames: int = 100) -> None:
    import imageio.v3 as iio
    from PIL import Image
    if len(frames) > max_frames:
        frames = [frames[int(i)] for i in np.linspace(0, len(frames) - 1, max_frames)]
    imgs = []
    for f in frames:
        im = Image.open(f).convert("RGB")
        im.thumbnail((max_side, max_side))
        imgs.append(np.asarray(im))
    atomic_write(path, lambda tmp: iio.imwrite(tmp, np.stack(imgs), extension=".gif", duration=150, loop=0))
