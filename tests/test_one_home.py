"""Facts that have one home, read the same way by every user: the Bayes-factor text, inline --config JSON, the
remesh schedule, the run-folder suffix and the model catalogue (which the Blender add-on's menu is built from)."""
from __future__ import annotations

import pytest

from mrd_backend import cli
from mrd_backend.config import parse_remesh, read_config
from mrd_backend.errors import MRDError
from mrd_backend.evidence.compare import cell_text
from mrd_backend.evidence.stats import bf_text
from mrd_backend.objectives import REGISTRY, objective_class
from mrd_backend.objectives.catalogue import MODELS
from mrd_backend.outputs.folder import choose_run_folder
from mrd_backend.outputs.naming import unused_name


def test_one_bayes_factor_text_for_sentence_page_and_table():
    # 5e4 was "10^4.7" in the verdict's sentence but "5e+04" in the page and the compare table
    b = {"bf_plus0": 5e4, "log10_bf_plus0": 4.69897}
    assert bf_text(b) == "5e+04"
    assert bf_text({"bf_plus0": 2e5, "log10_bf_plus0": 5.30103}) == "10^5.3"
    assert bf_text({"bf_plus0": None, "log10_bf_plus0": 812.4}) == "10^812.4"   # overflowed a double
    assert bf_text({"bf_plus0": 3.21, "log10_bf_plus0": 0.5065}) == "3.21"
    assert bf_text(None) == "—" and bf_text({}, "undefined") == "undefined"
    rec = {"similarity": 0.5, "outcome": "supported", **b}
    assert "research BF+0=5e+04" in cell_text(rec)


def test_config_is_a_file_or_inline_json(tmp_path):
    f = tmp_path / "c.json"
    f.write_text('{"evidence": false}')
    assert read_config(str(f)) == read_config('{"evidence": false}') == {"evidence": False}
    args = cli.build_parser().parse_args(["optimize", "suzanne", "studio", "mae", "--config", '{"evidence": false}',
                                          "-e", "3"])
    cfg = cli.config_from_args(args)
    assert cfg.evidence is False and cfg.epochs == 3
    (tmp_path / "l.json").write_text("[1]")
    with pytest.raises(MRDError, match="holds a JSON list"):
        read_config(str(tmp_path / "l.json"))


def test_remesh_schedule_parsed_once_for_cli_and_addon():
    assert parse_remesh(["5", "25,50"]) == parse_remesh("50, 25 5") == [5, 25, 50]
    assert parse_remesh("auto") is None and parse_remesh("") == [] and parse_remesh("none") == []
    with pytest.raises(MRDError, match="the Remesh field takes whole epoch numbers.*not a list of epochs"):
        parse_remesh("25, x", "the Remesh field")


def test_run_folder_suffix_rule(tmp_path):
    a = tmp_path / "run"
    assert unused_name(a) == a
    a.mkdir()
    (tmp_path / "run-2").mkdir()
    assert unused_name(a) == tmp_path / "run-3"
    (a / "config.json").write_text("{}")  # the backend's rule: only a folder holding a run is taken
    assert choose_run_folder(a) == tmp_path / "run-3"


def test_catalogue_is_the_registry_and_the_native_sizes():
    assert list(REGISTRY) == [m.name for m in MODELS]
    for m in MODELS:
        assert objective_class(m.name).native_size == m.native_size, m.name
