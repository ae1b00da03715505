"""The grid of a sweep: scenes x envmaps x models x seeds x modes, from flags or a sweep file (YAML or JSON).

Every cell is one `mrd optimize` command. Flags given to `mrd sweep` that `mrd optimize` knows apply to every cell;
a sweep file adds per-cell overrides:

    scenes: [blob, knot]
    envmaps: [constant]
    models: [mae, resnet]
    seeds: [1, 2]                      # optional; one run per seed
    flags: {epochs: 2, dims: 32, spp: 2, nviews: 2, no-evidence: true}
    overrides:                         # flags for the cells that match every given key
      - match: {model: resnet}
        flags: {spp: 4}
    cells:                             # extra cells outside the product (name optional)
      - {scene: suzanne, envmap: studio, model: mae, flags: {nviews: 8}}

Flag names are `mrd optimize`'s long options without the dashes (`nviews`, `no-evidence`, `reg-edge`).
"""
from __future__ import annotations

import argparse
import hashlib
import json
import re
from dataclasses import dataclass, field
from pathlib import Path

from ..errors import MRDError

GRID_KEYS = ("scenes", "envmaps", "models", "seeds", "modes")
# `mrd optimize` flags that a sweep sets per cell itself and so refuses as a flag for every cell.
CELL_OWNED = {"out", "seed", "mode"}


@dataclass
class Cell:
    scene: str
    envmap: str
    model: str
    seed: int | None = None
    mode: str | None = None
    flags: dict = field(default_factory=dict)     # long option name -> value (True for a switch)
    name: str = ""

    def argv(self, out: str | Path) -> list[str]:
        """The `mrd optimize` arguments of this cell, writing into `out`."""
        args = [self.scene, self.envmap, self.model, "--out", str(out)]
        if self.seed is not None:
            args += ["--seed", str(self.seed)]
        if self.mode is not None:
            args += ["--mode", self.mode]
        return args + flags_argv(self.flags)

    def to_dict(self) -> dict:
        return {"name": self.name, "scene": self.scene, "envmap": self.envmap, "model": self.model,
                "seed": self.seed, "mode": self.mode, "flags": dict(self.flags)}


def _run_flag_actions() -> dict:
    """Option name (long name, or the letter of a short-only one like `l`) -> argparse action of every
    `mrd optimize` flag, read from the CLI's own definition."""
    from ..cli.flags import add_run_flags
    p = argparse.ArgumentParser(add_help=False)
    add_run_flags(p)
    out = {}
    for act in p._actions:
        longs = [s for s in act.option_strings if s.startswith("--")]
        if act.option_strings:
            out[(longs[0] if longs else act.option_strings[0]).lstrip("-")] = act
    return out


def _option(name: str) -> str:
    return f"-{name}" if len(name) == 1 else f"--{name}"


def flags_argv(flags: dict) -> list[str]:
    out = []
    for name, value in flags.items():
        if value is None or value is False:
            continue
        out.append(_option(name))
        if value is True:
            continue
        out += [str(v) for v in value] if isinstance(value, (list, tuple)) else [str(value)]
    return out


def check_flags(flags: dict, where: str) -> dict:
    """Normalizes flag names (underscores -> dashes) and refuses names `mrd optimize` does not know."""
    actions = _run_flag_actions()
    by_dest = {a.dest.replace("_", "-"): n for n, a in actions.items()}
    out = {}
    for k, v in (flags or {}).items():
        name = str(k).replace("_", "-")
        name = name if name in actions else by_dest.get(name, name)   # RunConfig names work too (views, step-lambda)
        if name not in actions:
            raise MRDError(f"{where}: unknown flag {k!r}; use `mrd optimize` long options without dashes, e.g. "
                           f"epochs, dims, nviews, spp, no-evidence")
        if name in CELL_OWNED:
            raise MRDError(f"{where}: {k!r} is set per cell by the sweep; use seeds/modes (or --seeds/--modes)")
        if name == "config" and v:
            v = str(Path(v).resolve())
        out[name] = v
    return out


def flags_from_args(args) -> dict:
    """The `mrd optimize` flags given on the `mrd sweep` command line (every one defaults to None)."""
    flags = {}
    for name, act in _run_flag_actions().items():
        v = getattr(args, act.dest, None)
        if name in CELL_OWNED or v is None:
            continue
        if act.nargs == 0:          # a switch (store_true, or --no-evidence's store_false): given = not None
            flags[name] = True
        else:
            flags[name] = str(Path(v).resolve()) if name == "config" else v
    return flags


def _slug(s) -> str:
    s = Path(str(s)).stem if ("/" in str(s) or "." in str(s)) else str(s)
    return re.sub(r"[^A-Za-z0-9_.+-]+", "_", s).strip("_") or "x"


def cell_name(c: Cell, with_seed: bool, with_mode: bool) -> str:
    parts = [_slug(c.scene), _slug(c.envmap), _slug(c.model)]
    if with_mode and c.mode:
        parts.append(c.mode)
    if with_seed and c.seed is not None:
        parts.append(f"s{c.seed}")
    return "-".join(parts)


def _list(v, key) -> list:
    if v is None:
        return []
    if isinstance(v, (str, int, float)):
        return [v]
    if isinstance(v, (list, tuple)):
        return list(v)
    raise MRDError(f"sweep key {key!r} must be a list (got {type(v).__name__})")


def read_sweep_file(path: str | Path) -> dict:
    p = Path(path)
    if not p.is_file():
        raise MRDError(f"sweep file {p} does not exist")
    text = p.read_text()
    try:
        if p.suffix.lower() in (".yaml", ".yml"):
            import yaml
            data = yaml.safe_load(text)
        else:
            data = json.loads(text)
    except Exception as exc:  # yaml.YAMLError / JSONDecodeError: one line for the user
        raise MRDError(f"sweep file {p} cannot be read ({type(exc).__name__}: {str(exc).splitlines()[0]})") from None
    if not isinstance(data, dict):
        raise MRDError(f"sweep file {p} must hold a mapping with scenes, envmaps, models (and optional seeds, "
                       "modes, flags, overrides, cells)")
    unknown = sorted(set(data) - set(GRID_KEYS) - {"flags", "overrides", "cells"})
    if unknown:
        raise MRDError(f"sweep file {p}: unknown keys {', '.join(unknown)} (valid: {', '.join(GRID_KEYS)}, flags, "
                       "overrides, cells)")
    return data


def _matches(c: Cell, match: dict) -> bool:
    for k, want in match.items():
        if k not in ("scene", "envmap", "model", "seed", "mode"):
            raise MRDError(f"sweep override: cannot match on {k!r} (use scene, envmap, model, seed, mode)")
        wants = want if isinstance(want, list) else [want]
        if getattr(c, k) not in wants and str(getattr(c, k)) not in [str(w) for w in wants]:
            return False
    return True


def expand(spec: dict, cli_flags: dict | None = None) -> list[Cell]:
    """The cells of a sweep spec ({scenes, envmaps, models, seeds, modes, flags, overrides, cells}); flags given on
    the command line override the file's flags. Names are unique; the order is the product's."""
    base = check_flags(spec.get("flags") or {}, "sweep flags")
    base.update(cli_flags or {})
    scenes, envmaps, models = (_list(spec.get(k), k) for k in ("scenes", "envmaps", "models"))
    seeds = [int(s) for s in _list(spec.get("seeds"), "seeds")] or [None]
    modes = _list(spec.get("modes"), "modes") or [None]
    for m in modes:
        if m not in (None, "shape", "material"):
            raise MRDError(f"unknown mode {m!r} in the sweep: use shape or material")
    cells = []
    if scenes or envmaps or models:
        missing = [k for k, v in (("scenes", scenes), ("envmaps", envmaps), ("models", models)) if not v]
        if missing:
            raise MRDError(f"the sweep needs {', '.join(missing)} too (--{' --'.join(missing)} or in the sweep file)")
        for scene in scenes:
            for envmap in envmaps:
                for model in models:
                    for mode in modes:
                        for seed in seeds:
                            cells.append(Cell(str(scene), str(envmap), str(model), seed, mode, dict(base)))
    for i, o in enumerate(spec.get("overrides") or []):
        if not isinstance(o, dict) or not isinstance(o.get("match", {}), dict):
            raise MRDError(f"sweep override {i + 1} must be {{match: {{...}}, flags: {{...}}}}")
        fl = check_flags(o.get("flags") or {}, f"sweep override {i + 1}")
        for c in cells:
            if _matches(c, o.get("match") or {}):
                c.flags.update(fl)
    with_seed = len(seeds) > 1 or seeds != [None]
    with_mode = len(modes) > 1 or modes != [None]
    for c in cells:
        c.name = cell_name(c, with_seed, with_mode)
    for i, e in enumerate(spec.get("cells") or []):
        if not isinstance(e, dict) or not all(k in e for k in ("scene", "envmap", "model")):
            raise MRDError(f"sweep cell {i + 1} needs scene, envmap and model")
        c = Cell(str(e["scene"]), str(e["envmap"]), str(e["model"]),
                 None if e.get("seed") is None else int(e["seed"]), e.get("mode"), dict(base))
        c.flags.update(check_flags(e.get("flags") or {}, f"sweep cell {i + 1}"))
        c.name = _slug(e["name"]) if e.get("name") else cell_name(c, c.seed is not None, c.mode is not None)
        cells.append(c)
    if not cells:
        raise MRDError("the sweep has no cells: give --scenes, --envmaps and --models (or a sweep file)")
    names = [c.name for c in cells]
    dup = sorted({n for n in names if names.count(n) > 1})
    if dup:
        raise MRDError(f"two sweep cells share the name {dup[0]}: give the extra cell a `name`")
    return cells


def grid_id(cells: list[Cell]) -> str:
    """A short hash of the grid: the default sweep folder, so that the same command finds the same folder."""
    blob = json.dumps([c.to_dict() for c in cells], sort_keys=True)
    return hashlib.sha1(blob.encode()).hexdigest()[:8]


def check_names(cells: list[Cell]) -> None:
    """Refuses unknown scene, environment and model names before any cell starts (paths are taken as given)."""
    from ..scenes import materials as material_scenes
    from .. import scenes
    from ..objectives import objective_names
    known_scenes = set(scenes.shape_scene_names()) | set(material_scenes.names())
    known_env = set(scenes.environment_names())
    known_models = set(objective_names())
    for c in cells:
        if c.scene not in known_scenes and not Path(c.scene).is_file():
            raise MRDError(f"cell {c.name}: unknown scene {c.scene!r} (`mrd scenes` lists them, or give a mesh path)")
        if c.envmap not in known_env and not Path(c.envmap).is_file():
            raise MRDError(f"cell {c.name}: unknown environment {c.envmap!r} (`mrd scenes` lists them)")
        if c.model not in known_models:
            raise MRDError(f"cell {c.name}: unknown model {c.model!r}: use one of {', '.join(sorted(known_models))}")
