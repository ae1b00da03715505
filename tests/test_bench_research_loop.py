"""scripts/bench_research_loop.py: the research code's shape loop driven from outside, beside ours (issue 20). The
research checkout lives outside this repository; without it the script says how to make one, and the run test is
skipped (MRD_RESEARCH_CHECKOUT points at another checkout)."""
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
SCRIPT = ROOT / "scripts" / "bench_research_loop.py"
CHECKOUT = os.environ.get("MRD_RESEARCH_CHECKOUT", "/work/scratch/research-mrd")


def _run(*args, timeout=120):
    return subprocess.run([sys.executable, str(SCRIPT), *args], capture_output=True, text=True, timeout=timeout,
                          env={**os.environ, "PYTHONPATH": str(ROOT)})


def test_setup_prints_the_clone_and_the_commit():
    p = _run("setup")
    assert p.returncode == 0
    assert "git clone https://github.com/ag-perception-wallis-lab/MRD" in p.stdout
    assert "checkout 89297efce76671a8a5f7f045af68318d4b73d18d" in p.stdout and "pip install" in p.stdout


def test_missing_checkout_says_how_to_make_one(tmp_path):
    p = _run("--research", str(tmp_path / "none"), "step")
    assert p.returncode != 0 and "no research checkout" in p.stderr and "git clone" in p.stderr
    assert "Traceback" not in p.stderr


@pytest.mark.slow
@pytest.mark.skipif(not (Path(CHECKOUT) / "src" / "shape.py").is_file(), reason="no research checkout here")
def test_research_loop_runs_and_is_timed():
    p = _run("--research", CHECKOUT, "step", "blob", "constant", "mae", "-n", "1", "-d", "16", "--spp", "2",
             "-e", "2", "--json", timeout=300)
    assert p.returncode == 0, p.stderr[-2000:]
    d = json.loads(p.stdout)
    assert len(d["epoch_seconds"]) == 2 and all(s > 0 for s in d["epoch_seconds"])
    assert d["research_commit"] and d["machine"]["usable_cpus"] >= 1
    assert d["loop_peak_rss_mb"] > 100 and d["peak_rss_mb"] >= d["loop_peak_rss_mb"]
    assert d["loss"][-1] < d["loss"][0]       # its loop optimized our target
    assert 0 < d["chamfer"]["end"] < 1 and "backward/render_backward/guiding_setup" in d["parts_median"]
