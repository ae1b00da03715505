"""The set-up's system dependencies, checked where they are used: Blender's own Python (not the first python3 on
PATH) and Dr.Jit's LLVM. On a fresh machine `make test` installs them (scripts/setup.sh); these tests say which one
is missing instead of letting the Blender tests fail with an import error."""
import os
import shutil
import subprocess

import pytest


@pytest.mark.skipif(not shutil.which("blender"), reason="no blender binary: `make test` installs Debian's blender")
def test_blenders_own_python_imports_numpy():
    p = subprocess.run(["blender", "-b", "--factory-startup", "--python-exit-code", "3", "--python-expr",
                        "import sys, numpy; print('MRD-PY', sys.executable, numpy.__version__)"],
                       capture_output=True, text=True, timeout=120)
    assert p.returncode == 0 and "MRD-PY" in p.stdout, (
        "Blender's own Python cannot import numpy: run `bash scripts/setup.sh --system-test-deps` as root "
        f"(installs python3-numpy)\n{p.stdout[-1500:]}\n{p.stderr[-1500:]}")


def test_setup_asks_blender_itself_for_numpy():
    """The regression of a fresh machine: the check must not ask whatever python3 is first on PATH."""
    text = open(os.path.join(os.path.dirname(__file__), "..", "scripts", "setup.sh")).read()
    assert "blender -b --factory-startup --python-exit-code 3 --python-expr 'import numpy'" in text
    assert "python3 -c 'import numpy'" not in text


def test_drjit_runs_on_this_machines_backend():
    """libLLVM 15 (Debian 12's) crashes Dr.Jit 1.5 on min/max kernels: setup.sh installs libllvm19."""
    import drjit as dr

    from mrd_backend.render.variant import mitsuba
    mi = mitsuba()
    x = mi.Float([1.0, 2.0, 3.0])
    assert bool(dr.all(dr.minimum(x, 2.0) == mi.Float([1.0, 2.0, 2.0])))
