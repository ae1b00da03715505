"""`--replicates N`: N runs of one configuration with other seeds and start perturbations, pooled.

One run's held-out views are not independent draws (one optimization, one seed, one start). Replicate k (k >= 1)
runs with --seed SEED + 1000 k and, for an icosphere start, the icosphere turned by a random rotation and moved by
2 % of the target's bounding radius (seeded by k), so that the runs differ in start, render noise and
initialization. Each run is a complete run folder OUT/replicate_KK; OUT/replicates.json holds every replicate's
outcome and the pooled verdict (evidence/metamer.py: `pool`).
"""
from __future__ import annotations

import json
from pathlib import Path

import numpy as np

from .config import RunConfig
from .evidence.metamer import pool
from .optimization.loop import optimize
from .outputs.folder import default_out
from .scene.meshes import bounding_sphere, icosphere
from .scenes import load_target_mesh

SEED_STRIDE = 1000


def perturbed_start(cfg: RunConfig, k: int):
    """The icosphere start of replicate k: randomly rotated and shifted (None for k = 0 or another start)."""
    if k == 0 or cfg.start != "icosphere" or cfg.mode == "material":
        return None
    from scipy.spatial.transform import Rotation

    try:
        tv, _ = load_target_mesh(cfg.scene)
    except Exception:
        return None  # a material scene or an unreadable mesh: the run says what is wrong
    center, radius = bounding_sphere(tv)
    rng = np.random.default_rng(k)
    v, f = icosphere(cfg.start_subdivisions)
    v = Rotation.random(random_state=k).apply(np.asarray(v, np.float64))
    shift = rng.standard_normal(3)
    shift *= 0.02 * radius / max(np.linalg.norm(shift), 1e-12)
    return (v * 0.7 * radius + center + shift).astype(np.float32), np.asarray(f, np.int32)


def run_replicates(cfg: RunConfig, log=print, progress: bool = True) -> int:
    base = Path(cfg.out) if cfg.out else default_out(cfg)
    base.mkdir(parents=True, exist_ok=True)
    rows, verdicts = [], []
    for k in range(int(cfg.replicates)):
        c = RunConfig(**cfg.to_dict())
        c.replicates, c.seed, c.out = 1, int(cfg.seed) + SEED_STRIDE * k, str(base / f"replicate_{k:02d}")
        log(f"replicate {k + 1} of {cfg.replicates}: seed {c.seed}" + (", perturbed start" if k else ""))
        r = optimize(c, start=perturbed_start(c, k), progress=progress, log=log)
        v = (r.report.get("evidence") or {}).get("verdict") or {}
        verdicts.append(v)
        rows.append({"run_dir": str(r.out), "seed": c.seed, "status": r.status, "outcome": v.get("outcome"),
                     "sentence": v.get("sentence")})
        log(f"  replicate {k}: {v.get('outcome')}: {v.get('sentence')}")
    pooled = pool(verdicts)
    eq = pooled["equivalence"] or {}
    summary = {"kind": "mrd-replicates", "replicates": rows, "pooled": pooled}
    (base / "replicates.json").write_text(json.dumps(summary, indent=1, default=float))
    ci = eq.get("ci")
    log(f"\npooled over {len(rows)} replicates: {pooled['outcome']} ({pooled['reason']})"
        + (f"; difference from the ceiling {eq['mean']:.3g}, 90% CI [{ci[0]:.3g}, {ci[1]:.3g}], margin "
           f"+-{eq['margin']:.3g}; n = {eq['n']} {eq['n_counts']}" if ci else ""))
    log(f"  per replicate: {', '.join(str(r['outcome']) for r in rows)}; summary in {base / 'replicates.json'}")
    return 0
