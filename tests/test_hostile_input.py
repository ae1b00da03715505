"""Hostile input: each case is one line on stderr ("mrd: error: ..."), exit status 2, nothing of the user's touched,
and (for errors found before set-up) no run folder left behind."""
import json
import math
import os
import sys

import numpy as np
import pytest

from mrd_backend import cli
from mrd_backend.config import RunConfig
from mrd_backend.errors import MRDError
from mrd_backend.outputs.folder import RunFolder, choose_run_folder, default_out, strict_json

BASE = ["optimize", "blob", "studio", "mae", "-e", "1", "-n", "1", "-d", "16", "--spp", "1", "--no-evidence"]


def _write_inputs(d):
    """Files the cases point at; the user's files are written with known contents to check they survive."""
    (d / "list.json").write_text("[1, 2]")
    (d / "typed.json").write_text(json.dumps({"epochs": "ten"}))
    (d / "confdir").mkdir()
    (d / "a_file").write_text("the user's file")
    (d / "open.ply").write_text("ply\nformat ascii 1.0\nelement vertex 3\nproperty float x\nproperty float y\n"
                                "property float z\nelement face 1\nproperty list uchar int vertex_indices\n"
                                "end_header\n0 0 0\n1 0 0\n0 1 0\n3 0 1 2\n")
    (d / "garbage.ply").write_bytes(b"\x00\x01 not a mesh")


CASES = [  # (id, extra argv, words the one line must hold)
    ("remesh-word", ["--remesh", "foo"], "--remesh takes whole epoch numbers"),
    ("remesh-fraction", ["--remesh", "1.5"], "--remesh takes whole epoch numbers"),
    ("config-list", ["--config", "{d}/list.json"], "holds a JSON list"),
    ("config-typed", ["--config", "{d}/typed.json"], "setting epochs must be a whole number"),
    ("config-folder", ["--config", "{d}/confdir"], "is a folder"),
    ("config-missing", ["--config", "{d}/nope.json"], "does not exist"),
    ("config-inline-bad", ["--config", '{{"epochs": }}'], "the --config text is not valid JSON"),
    ("config-inline-typed", ["--config", '{{"epochs": "ten"}}'], "setting epochs must be a whole number"),
    ("lr-nan", ["--lr", "nan"], "setting lr must be a finite number"),
    ("lr-inf", ["--lr", "inf"], "setting lr must be a finite number"),
    ("lr-negative", ["--lr", "-1"], "learning rate must be positive"),
    ("lambda-negative", ["-l", "-5"], "Large Steps lambda (-l) must be 0 or more"),
    ("dims-zero", ["-d", "0"], "setting width must be at least 1"),
    ("nviews-zero", ["-n", "0"], "setting views must be at least 1"),
    ("epochs-zero", ["-e", "0"], "setting epochs must be at least 1"),
    ("envmap-missing", ["ENV={d}/nowhere.hdr"], "unknown environment"),
    ("envmap-folder", ["ENV={d}/confdir"], "is a folder"),
    ("start-missing", ["--start", "{d}/nope.ply"], "does not exist"),
    ("start-open", ["--start", "{d}/open.ply"], "start mesh is not a closed manifold"),
    ("start-garbage", ["--start", "{d}/garbage.ply"], "cannot read mesh"),
    ("out-is-file", ["--out", "{d}/a_file"], "is a file, not a folder"),
    ("out-below-file", ["--out", "{d}/a_file/run"], "is below the file"),
    ("model-unknown", ["MODEL=nomodel"], "unknown model 'nomodel'"),
    ("scene-missing", ["SCENE={d}/missing.obj"], "does not exist"),
]


@pytest.mark.parametrize("case", CASES, ids=[c[0] for c in CASES])
def test_bad_input_is_one_line_exit_2_and_leaves_nothing(case, tmp_path, monkeypatch, capsys):
    _, extra, words = case
    _write_inputs(tmp_path)
    monkeypatch.chdir(tmp_path)
    argv = list(BASE)
    for a in extra:
        a = a.format(d=tmp_path)
        for key, pos in (("SCENE=", 1), ("ENV=", 2), ("MODEL=", 3)):
            if a.startswith(key):
                argv[pos] = a[len(key):]
                break
        else:
            argv.append(a)
    before = sorted(p.name for p in tmp_path.iterdir())
    assert cli.main(argv) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith("mrd: error: ") and words in err[0], err
    assert sorted(p.name for p in tmp_path.iterdir()) == before  # no results/ and no run folder
    assert (tmp_path / "a_file").read_text() == "the user's file"


def test_out_that_cannot_be_written_is_one_line(tmp_path, monkeypatch, capsys):
    # The tests run as root, for whom nothing is read-only: the permission check is what is tested.
    monkeypatch.setattr("mrd_backend.outputs.folder.os.access", lambda *a: False)
    monkeypatch.chdir(tmp_path)
    assert cli.main(BASE + ["--out", str(tmp_path / "ro" / "run")]) == 2
    err = capsys.readouterr().err
    assert "is not writable" in err and err.count("\n") == 1
    assert not (tmp_path / "ro").exists()


@pytest.mark.parametrize("kw, words", [
    (dict(epochs="10"), "epochs must be a whole number"),
    (dict(lr="0.1"), "lr must be a number"),
    (dict(classify="yes"), "classify must be true or false"),
    (dict(remesh=5), "remesh must be a list"),
    (dict(remesh=[1, "x"]), "remesh must be a whole number"),
    (dict(scene=3), "scene must be a path"),
    (dict(views=0), "views must be at least 1"),
    (dict(step_lambda=-1e-3), "Large Steps lambda"),
    (dict(mode="both"), "unknown mode"),
    (dict(up="x"), "unknown up"),
    (dict(texture_size=[8]), "texture_size must be two"),
])
def test_runconfig_rejects_wrong_types_from_the_api(kw, words):
    with pytest.raises(MRDError, match=words):
        RunConfig(**kw)


def test_runconfig_accepts_what_json_and_paths_give():
    c = RunConfig(epochs=10.0, lr=1, out=__import__("pathlib").Path("/tmp/x"))
    assert c.epochs == 10 and isinstance(c.epochs, int) and c.lr == 1.0 and c.out == "/tmp/x"
    with pytest.raises(MRDError, match="JSON object"):
        RunConfig.from_dict([1, 2])


def test_default_run_folder_name_is_one_safe_name():
    for env in ("/abs/path/to/sky.hdr", "../../up/there.exr", "C:\\maps\\hall.hdr"):
        p = default_out(RunConfig(scene="/home/u/models/spot.obj", envmap=env))
        assert p.parent.as_posix() == "results" and ".." not in p.name and "/" not in p.name, p
        assert p.name.startswith("spot-mae-") and env.replace("\\", "/").rsplit("/", 1)[1].split(".")[0] in p.name


def test_out_folder_choice_never_overwrites(tmp_path):
    new = tmp_path / "new"
    assert choose_run_folder(new) == new and not new.exists()
    (tmp_path / "empty").mkdir()
    assert choose_run_folder(tmp_path / "empty") == tmp_path / "empty"
    user = tmp_path / "user"
    user.mkdir()
    (user / "report.html").write_text("mine")
    chosen = choose_run_folder(user)
    assert chosen.parent == user and chosen.name.startswith("mrd-run-")
    run = tmp_path / "run"
    RunFolder(run).write_json("report.json", {"status": "done"})
    assert choose_run_folder(run) == tmp_path / "run-2"


def test_report_json_is_strict_json_without_nan(tmp_path):
    f = RunFolder(tmp_path / "r")
    f.write_json("report.json", {"loss": math.nan, "steps": [{"loss": math.inf}], "ok": 1.5})

    def no_constants(name):
        raise ValueError(f"non-standard JSON constant {name}")
    r = json.loads((tmp_path / "r" / "report.json").read_text(), parse_constant=no_constants)
    assert r == {"loss": None, "steps": [{"loss": None}], "ok": 1.5}
    assert strict_json({"a": [1, 2]}) == json.dumps({"a": [1, 2]}, indent=1)


def test_help_lists_models_scenes_and_environments(capsys):
    with pytest.raises(SystemExit):
        cli.main(["optimize", "--help"])
    out = capsys.readouterr().out
    for name in ("mae", "resnet_sin", "dino", "clip", "suzanne", "studio", "--up", "--deterministic"):
        assert name in out


def _fake_run(d):
    from test_evidence_report import minimal_report
    d.mkdir(parents=True)
    (d / "report.json").write_text(json.dumps(minimal_report()))
    return d


def test_compare_out_existing_folder_gets_files_inside(tmp_path, capsys):
    run = _fake_run(tmp_path / "runs" / "a")
    target = tmp_path / "x" / "runs.1"
    target.mkdir(parents=True)
    assert cli.main(["compare", str(run), "--out", str(target)]) == 0
    assert (target / "compare.csv").is_file() and (target / "compare.html").is_file()
    assert sorted(p.name for p in (tmp_path / "x").iterdir()) == ["runs.1"]  # nothing written beside it
    assert cli.main(["compare", str(run), "--out", str(tmp_path / "x" / "table.v2")]) == 0
    assert (tmp_path / "x" / "table.v2.csv").is_file()  # a prefix keeps its dots


def test_a_real_run_into_the_users_folder_and_a_rerun_keep_everything(tmp_path):
    """The one test here that renders (tiny): --out on a folder of the user's files, then twice into a run."""
    from conftest import tiny_config
    from mrd_backend import optimize
    user = tmp_path / "mine"
    (user / "meshes").mkdir(parents=True)
    (user / "report.html").write_text("my report")
    (user / "meshes" / "final.ply").write_text("my mesh")
    cfg = dict(views=1, width=16, height=16, spp=1, epochs=1, start_subdivisions=1, mesh_every=1)
    r1 = optimize(tiny_config(out=str(user), **cfg), log=lambda *a: None)
    assert (user / "report.html").read_text() == "my report"
    assert (user / "meshes" / "final.ply").read_text() == "my mesh"
    assert r1.out.parent == user and (r1.out / "meshes" / "final.ply").is_file()
    r2 = optimize(tiny_config(out=str(r1.out), **cfg), log=lambda *a: None)
    assert r2.out == r1.out.parent / (r1.out.name + "-2") and r2.status == "done"
    assert json.loads((r1.out / "report.json").read_text())["status"] == "done"


# -- the worker --------------------------------------------------------------------------------------------------

def _worker(tmp_path, monkeypatch, config, stdin=b"", **extra_env):
    """Runs the worker with the fast stand-in optimizer; stdin stays open (the client alive) until it ends."""
    import subprocess

    from addon_helpers import FAKE, ROOT, env
    from mrd_backend.scene.spec import SceneSpec
    from mrd_backend.scene.io import save_spec
    v = np.array([[0, 0, 0], [1, 0, 0], [0, 1, 0], [0, 0, 1]], np.float32)
    f = np.array([[0, 2, 1], [0, 1, 3], [0, 3, 2], [1, 2, 3]], np.int32)
    save_spec(SceneSpec(v, f, name="tet"), tmp_path / "scene.npz")
    (tmp_path / "config.json").write_text(json.dumps(config))
    e = env(MRD_WORKER_OPTIMIZER=FAKE, **extra_env)
    e["PYTHONPATH"] = os.pathsep.join([str(ROOT), str(ROOT / "tests")])
    p = subprocess.Popen([sys.executable, "-m", "mrd_backend.worker", "--scene", str(tmp_path / "scene.npz"),
                          "--config", str(tmp_path / "config.json"), "--exit-on-eof"], stdin=subprocess.PIPE,
                         stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, env=e)
    p.stdin.write(stdin)
    p.stdin.flush()
    events = []
    for line in p.stdout:
        events.append(json.loads(line))
        if events[-1]["event"] in ("done", "error"):
            break
    p.stdin.close()
    return p.wait(60), events


def test_worker_rerun_into_a_run_folder_keeps_the_first_runs_steps(tmp_path, monkeypatch):
    out = tmp_path / "run"
    cfg = {"scene": "blender", "model": "mae", "mode": "shape", "epochs": 2, "out": str(out)}
    rc, ev = _worker(tmp_path, monkeypatch, cfg)
    assert rc == 0 and ev[0]["out"] == str(out.resolve())
    first = {p.name: p.read_bytes() for p in (out / "steps").iterdir()}
    rc, ev = _worker(tmp_path, monkeypatch, {**cfg, "epochs": 3})
    second = out.parent / "run-2"
    assert rc == 0 and ev[0]["out"] == str(second.resolve()) and ev[-1]["out"] == str(second.resolve())
    assert {p.name: p.read_bytes() for p in (out / "steps").iterdir()} == first
    assert len(list((second / "steps").glob("*.npz"))) == 3  # one folder for all of the second run's files


def test_worker_non_utf8_stdin_line_does_not_cancel(tmp_path, monkeypatch):
    cfg = {"scene": "blender", "model": "mae", "mode": "shape", "epochs": 3, "out": str(tmp_path / "run")}
    rc, ev = _worker(tmp_path, monkeypatch, cfg, stdin=b"\xff\xfe garbage\n", MRD_FAKE_STEP_SECONDS="0.2")
    assert rc == 0 and ev[-1]["event"] == "done" and ev[-1]["status"] == "done"  # the client is still there
    rc, ev = _worker(tmp_path, monkeypatch, {**cfg, "out": str(tmp_path / "run2")},
                     stdin=b"\xff\xfe garbage\nstop\n", MRD_FAKE_STEP_SECONDS="0.2")
    assert ev[-1]["status"] == "cancelled"
    assert "stop requested on stdin" in " ".join(e.get("message", "") for e in ev if e["event"] == "log")


@pytest.mark.parametrize("bad, words", [({"epochs": "3"}, "epochs must be a whole number"),
                                        ({"out": 5}, "out must be a path"),
                                        ({"lr": None, "spp": [1]}, "spp must be a whole number")])
def test_worker_wrong_types_are_a_clear_error(tmp_path, monkeypatch, bad, words):
    cfg = {"scene": "blender", "model": "mae", "mode": "shape", "epochs": 2, "out": str(tmp_path / "run"), **bad}
    rc, ev = _worker(tmp_path, monkeypatch, cfg)
    assert rc == 1 and ev[-1]["event"] == "error" and words in ev[-1]["message"]
    assert "internal error" not in ev[-1]["message"]
    assert not (tmp_path / "run").exists()


def test_deterministic_runs_repeat_exactly(tmp_path):
    """--deterministic: one Dr.Jit thread, so two runs with the same seed give the same losses to the last bit."""
    import drjit as dr
    from conftest import tiny_config
    from mrd_backend import optimize
    threads = dr.thread_count()
    try:
        cfg = dict(views=1, width=16, height=16, spp=2, epochs=3, start_subdivisions=1, deterministic=True)
        a, b = (optimize(tiny_config(**cfg, out=str(tmp_path / "run")), log=lambda *x: None) for _ in range(2))
    finally:
        dr.set_thread_count(threads)
    la, lb = ([s["loss"] for s in r.report["steps"]] for r in (a, b))
    assert la == lb and len(la) == 3
    assert np.array_equal(a.vertices, b.vertices)


def test_api_config_changed_after_construction_is_checked_before_set_up(tmp_path):
    from mrd_backend import optimize
    cfg = RunConfig(scene="blob", out=str(tmp_path / "run"))
    cfg.out = 5
    with pytest.raises(MRDError, match="setting out must be a path"):
        optimize(cfg, log=lambda *a: None)
    assert list(tmp_path.iterdir()) == []
