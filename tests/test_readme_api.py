"""The README's Python API example runs verbatim in a fresh interpreter (as a user pastes it)."""
import re
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]


def _example() -> str:
    text = (ROOT / "README.md").read_text()
    section = text.split("## Python API", 1)[1]
    return re.search(r"```python\n(.*?)```", section, re.S).group(1)


@pytest.mark.slow
def test_the_readme_api_example_runs_verbatim(tmp_path):
    code = _example()
    assert "from mrd_backend import RunConfig, optimize, load_scene" in code
    p = subprocess.run([sys.executable, "-c", code], cwd=tmp_path, capture_output=True, text=True, timeout=600)
    assert p.returncode == 0, p.stderr[-3000:]
    last = p.stdout.strip().splitlines()[-1].split()
    assert last[0] == "done" and Path(last[1]).is_absolute() and Path(last[1]).is_dir()
    assert Path(last[1]).name.startswith("knot-mae-sky-")  # named after the target it was given


def test_public_names_are_the_functions_whatever_was_imported_first():
    code = ("import mrd_backend.optimization.loop, mrd_backend.config\n"
            "from mrd_backend import optimize, RunConfig, load_scene, SceneSpec\n"
            "assert callable(optimize) and optimize.__name__ == 'optimize', optimize\n"
            "import mrd_backend; assert mrd_backend.optimize is optimize\n"
            "assert RunConfig.__name__ == 'RunConfig' and load_scene.__name__ == 'load_scene'\n")
    p = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert p.returncode == 0, p.stderr[-3000:]
