#!/usr/bin/env python3
"""Builds the Blender add-on archives into dist/:

  dist/mrd_blender_addon-<version>-legacy.zip     Blender 3.4 and newer: Edit > Preferences > Add-ons > Install...
                                                  (a folder mrd_blender_addon/ with bl_info)
  dist/mrd_blender_addon-<version>-extension.zip  Blender 4.2 and newer: Get Extensions > Install from Disk...
                                                  (blender_manifest.toml at the top)

Both carry mrd_backend's source inside the add-on folder, so the worker (`python -m mrd_backend.worker`) runs from
the installed archive with whatever backend Python the preferences name, plus requirements.txt (the backend's
packages, from pyproject.toml) and constraints.txt for the preferences' "Create backend environment" button.
Only the standard library is used; the archives are reproducible (fixed timestamps, sorted entries).

    python build_addon.py [--out dist]
"""
from __future__ import annotations

import argparse
import ast
import re
import sys
import zipfile
from pathlib import Path

ROOT = Path(__file__).resolve().parent
ADDON = ROOT / "mrd_blender_addon"
BACKEND = ROOT / "mrd_backend"
SKIP_DIRS = {"__pycache__", ".pytest_cache", ".mypy_cache"}
SKIP_SUFFIXES = {".pyc", ".pyo", ".zip", ".tmp"}
EPOCH = (2024, 1, 1, 0, 0, 0)


def addon_version() -> str:
    tree = ast.parse((ADDON / "__init__.py").read_text())
    for node in tree.body:
        if isinstance(node, ast.Assign) and any(getattr(t, "id", "") == "bl_info" for t in node.targets):
            info = ast.literal_eval(node.value)
            return ".".join(str(x) for x in info["version"])
    raise SystemExit("mrd_blender_addon/__init__.py has no bl_info")


def manifest_version() -> str:
    m = re.search(r'^version\s*=\s*"([^"]+)"', (ADDON / "blender_manifest.toml").read_text(), re.M)
    if not m:
        raise SystemExit("blender_manifest.toml has no version")
    return m.group(1)


def requirements() -> str:
    text = (ROOT / "pyproject.toml").read_text()
    m = re.search(r"^dependencies\s*=\s*\[(.*?)\]", text, re.S | re.M)
    deps = re.findall(r'"([^"]+)"', m.group(1)) if m else []
    if not deps:
        raise SystemExit("pyproject.toml lists no dependencies")
    return "# The backend's packages (from pyproject.toml), installed into a separate environment\n" + \
        "\n".join(deps) + "\n"


def _files(folder: Path):
    for p in sorted(folder.rglob("*")):
        rel = p.relative_to(folder)
        if p.is_dir() or any(part in SKIP_DIRS or part.startswith(".") for part in rel.parts):
            continue
        if p.suffix in SKIP_SUFFIXES:
            continue
        yield p, rel


def contents(legacy: bool) -> dict[str, bytes]:
    """Archive path (inside the add-on folder) -> bytes."""
    out: dict[str, bytes] = {}
    for p, rel in _files(ADDON):
        if legacy and rel.name == "blender_manifest.toml":
            continue  # a legacy install must not look like an extension
        if rel.parts[0] == "mrd_backend":
            continue  # never nest a stale copy: the backend comes from the source tree below
        out[rel.as_posix()] = p.read_bytes()
    for p, rel in _files(BACKEND):
        out[f"mrd_backend/{rel.as_posix()}"] = p.read_bytes()
    out["requirements.txt"] = requirements().encode()
    cons = ROOT / "scripts" / "constraints.txt"
    if cons.is_file():
        out["constraints.txt"] = cons.read_bytes()
    doc = ROOT / "docs" / "blender.md"
    if doc.is_file():
        out["README.md"] = doc.read_bytes()
    return out


def write_zip(path: Path, files: dict[str, bytes], prefix: str = ""):
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(path.name + ".tmp")
    with zipfile.ZipFile(tmp, "w", zipfile.ZIP_DEFLATED) as z:
        for name in sorted(files):
            info = zipfile.ZipInfo(prefix + name, EPOCH)
            info.compress_type = zipfile.ZIP_DEFLATED
            info.external_attr = 0o644 << 16
            z.writestr(info, files[name])
    tmp.replace(path)


def build(out: Path) -> tuple[Path, Path]:
    version = addon_version()
    if manifest_version() != version:
        raise SystemExit(f"bl_info version {version} and blender_manifest.toml version {manifest_version()} differ")
    legacy = out / f"mrd_blender_addon-{version}-legacy.zip"
    extension = out / f"mrd_blender_addon-{version}-extension.zip"
    write_zip(legacy, contents(legacy=True), prefix="mrd_blender_addon/")
    write_zip(extension, contents(legacy=False))
    return legacy, extension


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--out", default=str(ROOT / "dist"), help="output folder (default: dist/)")
    args = p.parse_args(argv)
    for path in build(Path(args.out)):
        print(f"{path}  ({path.stat().st_size / 1024:.0f} KiB)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
