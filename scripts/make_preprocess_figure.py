"""Draws docs/preprocess_modes.png: what a network receives from the same render with --preprocess correct and with
--preprocess research (the research code's reshape of the (H, W, 3) buffer as (3, H, W)).

It renders Mitsuba's Cornell box at 256x256, tone-maps it like every render (Reinhard, sRGB), and takes each
network input from the objective's own preprocessing (`to_input`), before the per-channel normalization.
Run: .venv/bin/python scripts/make_preprocess_figure.py [OUT.png]
"""
from __future__ import annotations

import sys
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import torch  # noqa: E402

from mrd_backend.objectives import build_objective  # noqa: E402
from mrd_backend.render.tonemap import to_ldr  # noqa: E402
from mrd_backend.render.variant import mitsuba  # noqa: E402

ROOT = Path(__file__).resolve().parent.parent
SIZE = 256


def render() -> np.ndarray:
    mi = mitsuba()
    scene = mi.cornell_box()
    scene["sensor"]["film"]["width"] = scene["sensor"]["film"]["height"] = SIZE
    img = mi.render(mi.load_dict(scene), spp=64, seed=0)
    return np.asarray(to_ldr(img), dtype=np.float32)


def main(out: Path) -> None:
    ldr = render()
    buf = torch.from_numpy(ldr)
    shown = {}
    for mode in ("correct", "research"):
        obj = build_objective("resnet", weights="untrained", preprocess=mode, log=lambda m: None)
        shown[mode] = obj.to_input(buf)[0].numpy()          # (3, 256, 256) in [0, 1], before normalization

    fig, ax = plt.subplots(2, 4, figsize=(13, 6.8), gridspec_kw={"hspace": 0.32, "wspace": 0.06})
    for row, mode in enumerate(("correct", "research")):
        x = shown[mode]
        ax[row, 0].imshow(np.clip(x.transpose(1, 2, 0), 0, 1))
        ax[row, 0].set_title(f"--preprocess {mode}\n(channels shown as RGB)", fontsize=10)
        for c, name in enumerate("RGB"):
            ax[row, c + 1].imshow(x[c], cmap="gray", vmin=0, vmax=1)
            ax[row, c + 1].set_title(f"channel {c} (the network's '{name}')", fontsize=10)
    for a in ax.flat:
        a.set_xticks([])
        a.set_yticks([])
    fig.text(0.5, 0.015,
             "Same 256x256 render. correct: (H, W, 3) -> (1, 3, H, W) by a transpose. research: the same buffer "
             "reshaped, so channel k holds image rows [k*H/3, (k+1)*H/3) with R, G, B interleaved along x.",
             ha="center", fontsize=9)
    out.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(out, dpi=80, bbox_inches="tight")
    print(f"wrote {out}")


if __name__ == "__main__":
    main(Path(sys.argv[1]) if len(sys.argv) > 1 else ROOT / "docs" / "preprocess_modes.png")
