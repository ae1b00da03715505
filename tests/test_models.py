"""The vision-model zoo: every objective, the preprocessing modes, weight loading, --classify. CPU, untrained
networks, tiny inputs (the networks' `input_size` option; native sizes only where the test is about them).
Tests that compare with pretrained reference weights are skipped, with the reason, when the weights are absent."""
from __future__ import annotations

import numpy as np
import pytest
import torch

from mrd_backend.objectives import checkpoints as C
from mrd_backend.objectives import weights as W
from mrd_backend.errors import MRDError
from mrd_backend.objectives import REGISTRY, build_objective

# tiny input sizes that every network still takes (ViTs: 2x2 patches of 14 px)
SMALL = {"resnet": 64, "resnet_sin": 64, "dino": 28, "clip": 28, "vggloss": 32, "lpips": 32, "vgg": 32}
NETS = list(SMALL)


@pytest.fixture(scope="module", autouse=True)
def one_torch_thread():
    """These tiny networks run fastest on one thread; on a shared machine torch's OpenMP threads spin-wait on each
    other and a 64 px ResNet forward goes from 0.06 s to seconds."""
    n = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(n)


@pytest.fixture(scope="module")
def mi():
    from mrd_backend.render.variant import mitsuba
    return mitsuba()


@pytest.fixture(scope="module")
def dr(mi):
    import drjit
    return drjit


_CACHE: dict = {}


def small(name, preprocess="correct", **kw):
    """Objectives at tiny sizes, built once per test module (ViT-L/14 takes seconds to initialize)."""
    key = (name, preprocess, tuple(sorted(kw.items())))
    if key not in _CACHE:
        opts = dict(weights="untrained", preprocess=preprocess, seed=0, log=lambda m: None, **kw)
        if name in SMALL:
            opts["input_size"] = SMALL[name]
        _CACHE[key] = build_objective(name, **opts)
    return _CACHE[key]


def image(mi, size, seed=0, grad=False):
    rng = np.random.default_rng(seed)
    t = mi.TensorXf(rng.random((size, size, 3), dtype=np.float32))
    if grad:
        import drjit
        drjit.enable_grad(t)
    return t


def scalar(x) -> float:
    return float(np.asarray(x.numpy()).reshape(-1)[0])


def size_of(name):
    return SMALL.get(name, 16)


@pytest.fixture
def isolated(tmp_path, monkeypatch):
    """An empty weights folder, empty library caches, no downloads."""
    wd = tmp_path / "weights"
    wd.mkdir()
    hub = tmp_path / "hub"
    hub.mkdir()
    monkeypatch.setenv("MRD_WEIGHTS_DIR", str(wd))
    monkeypatch.setenv("MRD_OFFLINE", "1")
    monkeypatch.setattr(W, "torch_hub_dir", lambda: hub)
    monkeypatch.setattr(W, "_hf_cached", lambda repo, file: None)
    return wd


# -- the registry and the objectives' gradients ---------------------------------------------------------------------
def test_registry_has_the_nine_research_objectives():
    assert set(REGISTRY) == {"mae", "dual_buffer", "resnet", "resnet_sin", "dino", "clip", "vggloss", "lpips", "vgg",
                             "effnet", "effnet_lite2"}   # + the trained classifiers any machine gets (issue 15)


def test_unknown_model_lists_the_known_ones():
    with pytest.raises(MRDError) as e:
        build_objective("alexnet")
    msg = str(e.value)
    assert "alexnet" in msg and all(n in msg for n in REGISTRY) and "\n" not in msg


@pytest.mark.parametrize("name", list(REGISTRY))
def test_gradient_reaches_the_render_through_dr_wrap(mi, dr, name):
    obj = small(name)
    s = size_of(name)
    tf = obj.prepare(image(mi, s, seed=1))
    render = image(mi, s, seed=2, grad=True)
    second = image(mi, s, seed=3, grad=True) if obj.renders_per_view == 2 else None
    loss = obj.loss(render, tf, second_render=second)
    assert dr.width(loss) == 1
    dr.backward(loss)
    g = dr.grad(render).numpy()
    assert g.shape == (s, s, 3)
    assert np.isfinite(g).all() and np.abs(g).max() > 0
    assert np.isfinite(obj.similarity(tf))


@pytest.mark.slow
@pytest.mark.parametrize("name", list(REGISTRY))
def test_a_short_metamer_run_lowers_the_loss(mi, dr, name):
    obj = small(name)
    s = size_of(name)
    tf = obj.prepare(image(mi, s, seed=1))
    opt = mi.ad.Adam(lr=0.03)
    opt["img"] = image(mi, s, seed=2)
    losses = []
    for i in range(6):
        x = dr.clip(opt["img"], 0.0, 1.0)
        second = x if obj.renders_per_view == 2 else None
        loss = obj.loss(x, tf, second_render=second)
        dr.backward(loss)
        opt.step()
        losses.append(scalar(loss))
    assert losses[-1] < losses[0], losses


def test_target_features_are_prepared_once_per_view(mi):
    obj = build_objective("resnet", weights="untrained", input_size=64, log=lambda m: None)
    targets = [obj.prepare(image(mi, 64, seed=v)) for v in range(3)]
    for step in range(2):
        for v, tf in enumerate(targets):
            obj.loss(image(mi, 64, seed=10 + v), tf)
    assert obj.prepare_calls == 3
    assert obj.forward_calls == 3 + 6          # one network pass per step, none for the cached targets


def test_similarity_and_features_come_from_the_last_loss_pass(mi):
    obj = small("dino")
    tf = obj.prepare(image(mi, 28, seed=1))
    obj.loss(image(mi, 28, seed=1), tf)        # the render equals the target
    assert obj.similarity(tf) == pytest.approx(1.0, abs=1e-5)
    np.testing.assert_allclose(obj.last_features(), tf.flatten().numpy(), atol=1e-6)
    obj.loss(image(mi, 28, seed=2), tf)
    assert obj.similarity(tf) < 0.999


# -- preprocessing: correct vs research ------------------------------------------------------------------------------
def _known_image(h, w):
    return np.arange(h * w * 3, dtype=np.float32).reshape(h, w, 3) / (h * w * 3)


def test_correct_mode_transposes_and_research_mode_reshapes():
    buf = torch.from_numpy(_known_image(64, 64))
    correct, research = small("resnet"), small("resnet", "research")
    x_c, x_r = correct.to_input(buf), research.to_input(buf)
    assert torch.equal(x_c, buf.permute(2, 0, 1)[None])           # channel planes = R, G, B
    assert torch.equal(x_r, buf.reshape(1, 3, 64, 64))            # the HWC buffer read as CHW
    assert not torch.equal(x_c, x_r)
    # research plane k holds rows [k*H/3, (k+1)*H/3) of the flattened HWC buffer: row 0 of plane 0 is the RGB
    # interleaving of the first third of image row 0
    assert torch.equal(x_r[0, 0, 0, :], buf[0].reshape(-1)[:64])


def test_research_mode_input_is_what_the_network_receives(mi):
    obj = small("resnet", "research")
    seen = {}
    h = obj.net.conv1.register_forward_pre_hook(lambda m, a: seen.__setitem__("x", a[0].detach().clone()))
    try:
        buf = _known_image(64, 64)
        obj.prepare(mi.TensorXf(buf))
    finally:
        h.remove()
    expected = (torch.from_numpy(buf).reshape(1, 3, 64, 64) - obj._mean) / obj._std
    assert torch.allclose(seen["x"], expected, atol=1e-6)


def test_research_mode_normalization_and_batchnorm_differ_as_described():
    from mrd_backend.objectives.torch_base import (IMAGENET_MEAN, IMAGENET_STD, OPENAI_MEAN, RESEARCH_CLIP_MEAN,
                                                   RESEARCH_CLIP_STD)
    d_c, d_r = small("dino"), small("dino", "research")
    assert torch.allclose(d_c._mean.flatten(), torch.tensor(IMAGENET_MEAN))
    assert torch.allclose(d_c._std.flatten(), torch.tensor(IMAGENET_STD))
    assert torch.allclose(d_r._mean.flatten(), torch.tensor(RESEARCH_CLIP_MEAN))     # CLIP's, as in the paper
    assert torch.allclose(d_r._std.flatten(), torch.tensor(RESEARCH_CLIP_STD))
    assert torch.allclose(small("clip")._mean.flatten(), torch.tensor(OPENAI_MEAN))
    from mrd_backend.objectives.clip import CLIPViTL14
    assert CLIPViTL14.research_mean == RESEARCH_CLIP_MEAN
    # ResNet-50-SIN: training-mode BatchNorm (per-image statistics) only in research mode; running stats untouched
    sin_c, sin_r = small("resnet_sin"), small("resnet_sin", "research")
    assert not sin_c.net.training and sin_r.net.training
    assert not small("resnet", "research").net.training
    before = sin_r.net.bn1.running_mean.clone()
    x = torch.rand(64, 64, 3)
    f1 = sin_r.prepare(x)
    assert torch.equal(sin_r.net.bn1.running_mean, before)
    assert not torch.allclose(f1, sin_c.prepare(x))


def test_resize_only_when_not_native_and_logged_once():
    logs = []
    obj = build_objective("vggloss", weights="untrained", input_size=32, log=logs.append)
    assert obj.to_input(torch.rand(32, 32, 3)).shape == (1, 3, 32, 32) and not logs
    assert obj.to_input(torch.rand(64, 64, 3)).shape == (1, 3, 32, 32)
    obj.to_input(torch.rand(64, 64, 3))
    assert len(logs) == 1 and "64x64" in logs[0] and "32x32" in logs[0]


@pytest.mark.parametrize("kw, words", [
    (dict(render_size=(64, 48)), ["square", "64x48"]),
    (dict(render_size=(8, 8)), ["8x8", "at least"]),
    (dict(render_size=(48, 48), preprocess="research"), ["research", "64x64", "48x48"]),
    (dict(preprocess="paper"), ["paper", "correct", "research"]),
    (dict(input_size=30, name="dino"), ["multiple", "14"]),
])
def test_render_sizes_the_network_cannot_take(kw, words):
    kw = dict(kw)
    name = kw.pop("name", "resnet")
    kw.setdefault("input_size", 64 if name == "resnet" else None)
    if kw["input_size"] is None:
        kw.pop("input_size")
    with pytest.raises(MRDError) as e:
        build_objective(name, weights="untrained", log=lambda m: None, **kw)
    msg = str(e.value)
    assert all(w in msg for w in words) and "\n" not in msg, msg


def test_research_mode_rejects_small_renders_at_loss_time_too():
    with pytest.raises(MRDError, match="research"):
        small("resnet", "research").to_input(torch.rand(32, 32, 3))


def test_research_mode_center_crops_larger_renders_like_the_research_baseline_panel():
    """The research code's baseline panel fed 256 px renders to DINO/CLIP: view(1, 3, 256, 256), CenterCrop(224)."""
    import torchvision
    buf = torch.rand(80, 80, 3)
    x = small("resnet", "research").to_input(buf)
    expected = torchvision.transforms.CenterCrop(64)(buf.reshape(1, 3, 80, 80))
    assert torch.equal(x, expected)


# -- weights -----------------------------------------------------------------------------------------------------------
@pytest.mark.parametrize("name", NETS)
def test_missing_pretrained_weights_name_model_files_and_fetch_command(isolated, name):
    with pytest.raises(MRDError) as e:
        build_objective(name, weights="pretrained", log=lambda m: None)
    msg = str(e.value)
    assert "\n" not in msg
    assert f"no pretrained weights for {name}" in msg
    assert W.SPECS[name][0].files[0] in msg and str(isolated) in msg
    assert f"mrd weights fetch {name}" in msg and "untrained" in msg


def test_missing_weights_without_network_fails_fast_without_offline_flag(isolated, monkeypatch):
    monkeypatch.delenv("MRD_OFFLINE")
    monkeypatch.delenv("HF_HUB_OFFLINE", raising=False)
    monkeypatch.setattr(W, "reachable", lambda url, timeout=3.0: False)
    with pytest.raises(MRDError, match="no network"):
        build_objective("resnet", log=lambda m: None)


def test_weights_folder_that_does_not_exist(tmp_path):
    with pytest.raises(MRDError) as e:
        build_objective("resnet", weights="untrained", weights_dir=str(tmp_path / "nope"))
    assert "does not exist" in str(e.value) and "nope" in str(e.value)


def test_missing_checkpoint_path(tmp_path):
    with pytest.raises(MRDError, match="does not exist"):
        build_objective("resnet", weights=str(tmp_path / "x.pth"))


def test_wrong_architecture_names_the_mismatching_keys(tmp_path):
    path = tmp_path / "resnet.safetensors"
    from safetensors.torch import save_file
    save_file({k: v.contiguous() for k, v in small("resnet").net.state_dict().items()}, str(path))
    with pytest.raises(MRDError) as e:
        build_objective("vggloss", weights=str(path))
    msg = str(e.value)
    assert "not a vggloss checkpoint" in msg and "missing: features.0.weight" in msg and "unexpected" in msg
    assert "\n" not in msg
    # same keys, other shapes: a ResNet-50 with a 10-class head
    sd = dict(small("resnet").net.state_dict())
    sd["fc.weight"], sd["fc.bias"] = torch.zeros(10, 2048), torch.zeros(10)
    torch.save(sd, tmp_path / "r10.pth")
    with pytest.raises(MRDError, match=r"wrong shape: fc\.weight \(10, 2048\)"):
        build_objective("resnet", weights=str(tmp_path / "r10.pth"))


class NotATensor:
    pass


def test_a_pickled_non_tensor_checkpoint_is_refused(tmp_path):
    torch.save({"x": NotATensor()}, tmp_path / "evil.pth")     # torch.load(weights_only=True) refuses to unpickle it
    with pytest.raises(MRDError, match="cannot read checkpoint"):
        build_objective("resnet", weights=str(tmp_path / "evil.pth"))


def _same_features(a, b, x):
    fa, fb = a.prepare(x), b.prepare(x)
    if isinstance(fa, list):
        return all(torch.equal(p, q) for p, q in zip(fa, fb))
    return torch.equal(fa, fb)


@pytest.mark.parametrize("name", ["resnet", "resnet_sin", "dino", "vggloss", "vgg", "lpips"])
def test_checkpoint_round_trip_through_the_weights_folder(isolated, name):
    ref = small(name)
    sd = {k: v.clone() for k, v in ref.net.state_dict().items()}
    fname = W.SPECS[name][0].files[0]
    if name == "resnet_sin":     # the Geirhos checkpoint: {'state_dict': {'module.' + key: ...}, 'epoch', 'arch'}
        torch.save({"epoch": 60, "arch": "resnet50", "state_dict": {"module." + k: v for k, v in sd.items()}},
                   isolated / fname)
    elif name in ("lpips", "vgg"):
        from mrd_backend.objectives.lpips import lpips_to_torchvision
        torch.save(lpips_to_torchvision(sd), isolated / fname)                # torchvision's VGG-16 layout
        if name == "lpips":
            torch.save({k: v for k, v in sd.items() if k.startswith("lin") and not k.startswith("lins")},
                       isolated / "lpips_vgg_v0.1.pth")                        # the package's heads layout
    elif fname.endswith(".safetensors"):
        from safetensors.torch import save_file
        save_file({k: v.contiguous() for k, v in sd.items()}, str(isolated / fname))
    else:
        torch.save(sd, isolated / fname)
    loaded = build_objective(name, weights="pretrained", input_size=SMALL[name], log=lambda m: None)
    assert loaded.weights_used == "pretrained"
    assert _same_features(ref, loaded, torch.rand(SMALL[name], SMALL[name], 3))


@pytest.mark.slow
def test_clip_checkpoint_round_trip_open_clip_and_hugging_face_layouts(isolated):
    ref = small("clip")
    sd = ref.net.state_dict()
    from safetensors.torch import save_file
    # a whole open_clip model (its text tower's keys share names with the vision tower's and must be dropped)
    full = {"visual." + k: v.contiguous() for k, v in sd.items()}
    full["transformer.resblocks.0.ln_1.weight"] = torch.zeros(768)
    full["logit_scale"] = torch.ones(())
    path = isolated / W.SPECS["clip"][0].files[0]
    save_file(full, str(path))
    del full
    try:
        loaded = build_objective("clip", input_size=28, log=lambda m: None)
    finally:
        path.unlink()                                     # 1.2 GB: do not leave it in pytest's kept tmp dirs
    assert loaded.weights_used == "pretrained"
    assert _same_features(ref, loaded, torch.rand(28, 28, 3))
    # Hugging Face's CLIPModel layout (the research code's file), written by an independent inverse mapping
    # (converted in memory: writing another 1.2 GB file adds nothing to the test)
    from mrd_backend.objectives.clip import to_visual
    back = to_visual(_open_clip_to_hf(sd), ref.net)
    assert set(back) == set(sd) and all(torch.equal(back[k], sd[k]) for k in sd)


def _open_clip_to_hf(sd):
    out = {"vision_model.embeddings.class_embedding": sd["class_embedding"],
           "vision_model.embeddings.patch_embedding.weight": sd["conv1.weight"],
           "vision_model.embeddings.position_embedding.weight": sd["positional_embedding"],
           "vision_model.pre_layrnorm.weight": sd["ln_pre.weight"], "vision_model.pre_layrnorm.bias": sd["ln_pre.bias"],
           "vision_model.post_layernorm.weight": sd["ln_post.weight"],
           "vision_model.post_layernorm.bias": sd["ln_post.bias"],
           "visual_projection.weight": sd["proj"].t(), "text_model.embeddings.token_embedding.weight": torch.zeros(3),
           "logit_scale": torch.ones(())}
    n = len({k.split(".")[2] for k in sd if k.startswith("transformer.resblocks.")})
    for i in range(n):
        a, b = f"transformer.resblocks.{i}.", f"vision_model.encoder.layers.{i}."
        for kind in ("weight", "bias"):
            q, k, v = sd[a + f"attn.in_proj_{kind}"].chunk(3)
            out.update({b + f"self_attn.q_proj.{kind}": q, b + f"self_attn.k_proj.{kind}": k,
                        b + f"self_attn.v_proj.{kind}": v,
                        b + f"self_attn.out_proj.{kind}": sd[a + f"attn.out_proj.{kind}"],
                        b + f"layer_norm1.{kind}": sd[a + f"ln_1.{kind}"],
                        b + f"layer_norm2.{kind}": sd[a + f"ln_2.{kind}"],
                        b + f"mlp.fc1.{kind}": sd[a + f"mlp.c_fc.{kind}"],
                        b + f"mlp.fc2.{kind}": sd[a + f"mlp.c_proj.{kind}"]})
    return out


def test_dino_hugging_face_layout_loads_with_identical_features(tmp_path):
    ref = small("dino")
    sd = ref.net.state_dict()
    hf = {"embeddings.cls_token": sd["cls_token"], "embeddings.mask_token": torch.zeros(1, 768),
          "embeddings.position_embeddings": sd["pos_embed"],
          "embeddings.patch_embeddings.projection.weight": sd["patch_embed.proj.weight"],
          "embeddings.patch_embeddings.projection.bias": sd["patch_embed.proj.bias"],
          "layernorm.weight": sd["norm.weight"], "layernorm.bias": sd["norm.bias"]}
    for i in range(12):
        a, b = f"blocks.{i}.", f"encoder.layer.{i}."
        for kind in ("weight", "bias"):
            q, k, v = sd[a + f"attn.qkv.{kind}"].chunk(3)
            hf.update({b + f"attention.attention.query.{kind}": q, b + f"attention.attention.key.{kind}": k,
                       b + f"attention.attention.value.{kind}": v,
                       b + f"attention.output.dense.{kind}": sd[a + f"attn.proj.{kind}"],
                       b + f"norm1.{kind}": sd[a + f"norm1.{kind}"], b + f"norm2.{kind}": sd[a + f"norm2.{kind}"],
                       b + f"mlp.fc1.{kind}": sd[a + f"mlp.fc1.{kind}"],
                       b + f"mlp.fc2.{kind}": sd[a + f"mlp.fc2.{kind}"]})
        hf[b + "layer_scale1.lambda1"], hf[b + "layer_scale2.lambda1"] = sd[a + "ls1.gamma"], sd[a + "ls2.gamma"]
    from safetensors.torch import save_file
    save_file({k: v.contiguous() for k, v in hf.items()}, str(tmp_path / "model.safetensors"))
    loaded = build_objective("dino", weights=str(tmp_path / "model.safetensors"), input_size=28)
    assert _same_features(ref, loaded, torch.rand(28, 28, 3))


def test_dino_position_embedding_is_resampled_like_hugging_face():
    """The checkpoint's 37x37 grid (518 px) meets a 224 px input: resampled once at load to 16x16 as Hugging Face's
    Dinov2 (transformers 4.52, the research code's) does on every forward: bicubic, align_corners=False, no
    antialiasing, float32 (re-implemented here from that definition). timm's default (antialias) would differ."""
    import timm
    from mrd_backend.objectives.dino import ARCH, to_timm
    with torch.device("meta"):
        net224 = timm.create_model(ARCH, pretrained=False, img_size=224, num_classes=0)
    sd = {k: torch.zeros(v.shape) for k, v in net224.state_dict().items()}
    pe = torch.randn(1, 1 + 37 * 37, 768)
    sd["pos_embed"] = pe
    sd["mask_token"] = torch.zeros(1, 768)          # Meta's layout
    out = to_timm(sd, net224)
    assert "mask_token" not in out and out["pos_embed"].shape == (1, 257, 768)
    grid = pe[:, 1:].reshape(1, 37, 37, 768).permute(0, 3, 1, 2)
    hf = torch.nn.functional.interpolate(grid, size=(16, 16), mode="bicubic", align_corners=False)
    expected = torch.cat([pe[:, :1], hf.permute(0, 2, 3, 1).reshape(1, 256, 768)], dim=1)
    torch.testing.assert_close(out["pos_embed"], expected, atol=1e-6, rtol=1e-6)
    aa = torch.nn.functional.interpolate(grid, size=(16, 16), mode="bicubic", align_corners=False, antialias=True)
    assert not torch.allclose(out["pos_embed"][:, 1:], aa.permute(0, 2, 3, 1).reshape(1, 256, 768), atol=1e-3)


# -- library swaps: the same networks as the research code's definitions ------------------------------------------
def test_timm_resnet50_equals_torchvision_resnet50(tmp_path):
    import torchvision
    torch.manual_seed(0)
    tv = torchvision.models.resnet50().eval()
    torch.save(tv.state_dict(), tmp_path / "resnet50-0676ba61.pth")       # torchvision's file layout
    obj = build_objective("resnet", weights=str(tmp_path / "resnet50-0676ba61.pth"), input_size=64)
    x = torch.rand(64, 64, 3)
    tv.fc = torch.nn.Identity()
    with torch.no_grad():
        expected = tv((x.permute(2, 0, 1)[None] - obj._mean) / obj._std)
    torch.testing.assert_close(obj.prepare(x), expected, atol=1e-5, rtol=1e-4)


def test_vggloss_equals_torchvision_vgg19_features_to_relu2_2(tmp_path):
    import torchvision
    with torch.device("meta"):
        tv = torchvision.models.vgg19()
    tv.features = tv.features.to_empty(device="cpu")
    torch.manual_seed(0)
    for p in tv.features.parameters():
        torch.nn.init.normal_(p, std=0.05)
    sd = {k: v for k, v in tv.state_dict().items() if k.startswith("features.")}
    sd.update({f"classifier.{i}.{kind}": torch.zeros(1) for i in (0, 3, 6) for kind in ("weight", "bias")})
    torch.save(sd, tmp_path / "vgg19-dcbb9e9d.pth")        # torchvision's layout; deeper layers + classifier ignored
    obj = build_objective("vggloss", weights=str(tmp_path / "vgg19-dcbb9e9d.pth"), input_size=32)
    x = torch.rand(32, 32, 3)
    with torch.no_grad():
        expected = tv.features[:9]((x.permute(2, 0, 1)[None] - obj._mean) / obj._std)
    assert expected.shape[1] == 128
    torch.testing.assert_close(obj.prepare(x), expected)


@pytest.mark.parametrize("name", ["lpips", "vgg"])
def test_lpips_and_vgg_equal_the_lpips_package(mi, name):
    import lpips
    obj = small(name)
    with torch.device("meta"):                            # the package's own module, our (random) weights
        pkg = lpips.LPIPS(pretrained=False, net="vgg", lpips=(name == "lpips"), pnet_rand=True, verbose=False)
    pkg.load_state_dict(obj.net.state_dict(), assign=True)
    pkg.eval()
    a, b = np.random.default_rng(1).random((2, 32, 32, 3), dtype=np.float32)
    ours = scalar(obj.loss(mi.TensorXf(a), obj.prepare(mi.TensorXf(b))))
    ta, tb = (torch.from_numpy(v).permute(2, 0, 1)[None] for v in (a, b))
    with torch.no_grad():
        val, per_layer = pkg(ta, tb, retPerLayer=True, normalize=True)
    expected = float(val) if name == "lpips" else float(sum(per_layer) / len(per_layer))   # research: mean of 5
    assert ours == pytest.approx(expected, rel=1e-5)


def test_untrained_lpips_is_seeded_with_nonnegative_heads():
    a = build_objective("lpips", weights="untrained", seed=3, input_size=32)
    b = build_objective("lpips", weights="untrained", seed=3, input_size=32)
    c = build_objective("lpips", weights="untrained", seed=4, input_size=32)
    sa, sb, sc = a.net.state_dict(), b.net.state_dict(), c.net.state_dict()
    assert all(torch.equal(sa[k], sb[k]) for k in sa)
    assert not torch.equal(sa["net.slice1.0.weight"], sc["net.slice1.0.weight"])      # trunk random
    assert not torch.equal(sa["lin0.model.1.weight"], sc["lin0.model.1.weight"])      # heads random
    assert all((a.net.lins[k].model[-1].weight >= 0).all() for k in range(5))


def test_clip_features_are_the_last_block_before_the_final_layernorm():
    obj = small("clip")
    x = obj.normalize(torch.rand(1, 3, 28, 28))
    with torch.no_grad():
        raw = obj.net.forward_intermediates(x, indices=1, intermediates_only=True, output_fmt="NLC")
        raw = raw["image_intermediates"][-1]
        obj.net.output_tokens = True
        try:
            _, tokens = obj.net(x)              # open_clip's own tokens come AFTER ln_post
        finally:
            obj.net.output_tokens = False
        torch.testing.assert_close(obj.net.ln_post(raw), tokens)
        torch.testing.assert_close(obj.features(obj.to_input(x[0].permute(1, 2, 0) * obj._std[0].permute(1, 2, 0)
                                                             + obj._mean[0].permute(1, 2, 0))),
                                   torch.nn.functional.normalize(raw, dim=-1), atol=1e-4, rtol=1e-4)


# -- --classify -----------------------------------------------------------------------------------------------------
def test_classify_needs_a_classifier_head():
    for name in ("dino", "clip", "lpips", "vgg", "vggloss", "mae", "dual_buffer"):
        with pytest.raises(MRDError) as e:
            build_objective(name, weights="untrained", classify=291)
        assert "no classifier head" in str(e.value) and "resnet" in str(e.value)


@pytest.mark.parametrize("bad", [1000, -1, "lion", 2.5, True])
def test_classify_rejects_bad_class_indices(bad):
    with pytest.raises(MRDError, match="ImageNet class"):
        build_objective("resnet", weights="untrained", classify=bad, input_size=64)


@pytest.mark.slow
def test_classify_lowers_the_cross_entropy_of_the_chosen_class(mi, dr):
    obj = small("resnet", classify=291)
    tf = obj.prepare(image(mi, 64, seed=1))
    opt = mi.ad.Adam(lr=0.05)
    opt["img"] = image(mi, 64, seed=2)
    ces = []
    for _ in range(6):
        loss = obj.loss(opt["img"], tf)
        info = obj.step_info()
        ces.append(info["ce"])
        assert scalar(loss) == pytest.approx(0.2 * info["ce"] + 0.8 * info["metamer_loss"], rel=1e-4)
        dr.backward(loss)
        opt.step()
    assert ces[-1] < ces[0], ces
    assert info["class_index"] == 291 and info["class_name"].startswith("lion")
    assert len(info["top5"]) == 5 and all({"index", "name", "prob"} <= set(t) for t in info["top5"])
    probs = [t["prob"] for t in info["top5"]]
    assert probs == sorted(probs, reverse=True) and 0 < sum(probs) <= 1 + 1e-9
    assert obj.metamer_weight == pytest.approx(0.8) and obj.describe()["classify"] == 291


def test_step_info_is_empty_without_classify(mi):
    obj = small("vggloss")
    obj.loss(image(mi, 32), obj.prepare(image(mi, 32, seed=1)))
    assert obj.step_info() == {} and obj.metamer_weight == 1.0


def test_imagenet_class_names():
    from mrd_backend.objectives.classes import class_name, imagenet_classes
    assert len(imagenet_classes()) == 1000
    assert class_name(291).startswith("lion") and class_name(286).startswith("cougar")
    assert class_name(235).startswith("German shepherd") and class_name(372) == "baboon"


# -- equivalence with pretrained reference weights (skipped when absent) ---------------------------------------------
def _pretrained_or_skip(name):
    missing = [p for p in W.SPECS[name] if W.find_part(p) is None]
    if missing:
        pytest.skip(f"pretrained {name} weights are not here ({', '.join(p.files[0] for p in missing)}): "
                    f"run `mrd weights fetch {name}` on a machine with internet")


def test_pretrained_resnet_equals_torchvision_imagenet1k_v1(real_weights):
    _pretrained_or_skip("resnet")
    import torchvision
    hub = W.torch_hub_dir() / "resnet50-0676ba61.pth"
    if not hub.is_file():
        pytest.skip("torchvision's resnet50-0676ba61.pth is not in torch hub's cache")
    tv = torchvision.models.resnet50()
    tv.load_state_dict(torch.load(hub, weights_only=True))
    tv.fc = torch.nn.Identity()
    obj = build_objective("resnet")
    x = torch.rand(256, 256, 3)
    with torch.no_grad():
        torch.testing.assert_close(obj.prepare(x), tv.eval()((x.permute(2, 0, 1)[None] - obj._mean) / obj._std))


def test_pretrained_dino_equals_hugging_face_dinov2_base(real_weights):
    _pretrained_or_skip("dino")
    transformers = pytest.importorskip("transformers", reason="the reference definition (transformers' Dinov2Model) "
                                                              "is not installed")
    if W._hf_cached("facebook/dinov2-base", "model.safetensors") is None:
        pytest.skip("facebook/dinov2-base is not in the Hugging Face cache")
    ref = transformers.AutoModel.from_pretrained("facebook/dinov2-base").eval()
    obj = build_objective("dino")
    x = torch.rand(224, 224, 3)
    with torch.no_grad():
        t = ref(pixel_values=obj.normalize(x.permute(2, 0, 1)[None])).last_hidden_state[:, 1:]
    torch.testing.assert_close(obj.prepare(x), torch.nn.functional.normalize(t, dim=-1), atol=1e-4, rtol=1e-3)


def test_pretrained_clip_equals_hugging_face_clip_vision_model(real_weights):
    _pretrained_or_skip("clip")
    transformers = pytest.importorskip("transformers", reason="the reference definition (transformers' "
                                                              "CLIPVisionModel) is not installed")
    if W._hf_cached("openai/clip-vit-large-patch14", "model.safetensors") is None:
        pytest.skip("openai/clip-vit-large-patch14 is not in the Hugging Face cache")
    ref = transformers.CLIPVisionModel.from_pretrained("openai/clip-vit-large-patch14").eval()
    obj = build_objective("clip")
    x = torch.rand(224, 224, 3)
    with torch.no_grad():
        t = ref(pixel_values=obj.normalize(x.permute(2, 0, 1)[None])).last_hidden_state[:, 1:]
    torch.testing.assert_close(obj.prepare(x), torch.nn.functional.normalize(t, dim=-1), atol=1e-4, rtol=1e-3)


def test_pretrained_lpips_equals_the_lpips_package(mi, real_weights):
    _pretrained_or_skip("lpips")
    import lpips
    from mrd_backend.objectives.lpips import torchvision_to_lpips
    pkg = lpips.LPIPS(net="vgg", pnet_rand=True, verbose=False).eval()   # the package's heads, our trunk file
    trunk = torchvision_to_lpips(C.load_state_dict(W.find_part(W.SPECS["lpips"][0])))
    pkg.load_state_dict({**pkg.state_dict(), **trunk})
    obj = build_objective("lpips")
    a, b = np.random.default_rng(1).random((2, 256, 256, 3), dtype=np.float32)
    ta, tb = (torch.from_numpy(v).permute(2, 0, 1)[None] for v in (a, b))
    with torch.no_grad():
        expected = float(pkg(ta, tb, normalize=True))
    assert scalar(obj.loss(mi.TensorXf(a), obj.prepare(mi.TensorXf(b)))) == pytest.approx(expected, rel=1e-5)


# -- mrd weights list / fetch, mrd bench models ----------------------------------------------------------------------
def _parse(argv):
    import argparse
    from mrd_backend.cli.bench_models import add_bench_models_parser
    from mrd_backend.cli.weights import add_weights_parser
    ap = argparse.ArgumentParser(prog="mrd")
    sub = ap.add_subparsers(dest="command")
    add_weights_parser(sub)
    bench = sub.add_parser("bench").add_subparsers(dest="bench_command")
    add_bench_models_parser(bench)
    return ap.parse_args(argv)


def test_weights_list_shows_every_model(isolated, capsys):
    (isolated / "resnet50-0676ba61.pth").write_bytes(b"not really weights")
    args = _parse(["weights", "list"])
    assert args.func(args) == 0
    out = capsys.readouterr().out
    for name in NETS:
        assert name in out
    assert "resnet50-0676ba61.pth" in out and "present" in out and "MISMATCH" in out      # sha256 prefix 0676ba61
    assert "missing" in out and "mrd weights fetch" in out
    assert "lpips_vgg_v0.1.pth" in out or "vgg.pth" in out


def test_weights_fetch_offline_and_unknown_models(isolated, tmp_path, capsys):
    args = _parse(["weights", "fetch", "resnet", "--dir", str(tmp_path / "new")])
    with pytest.raises(MRDError, match="machine with internet"):
        args.func(args)
    with pytest.raises(MRDError, match="unknown model"):
        args = _parse(["weights", "fetch", "alexnet"])
        args.func(args)
    with pytest.raises(MRDError, match="no weights to fetch"):
        args = _parse(["weights", "fetch", "mae"])
        args.func(args)


def test_weights_fetch_copies_from_caches(isolated, tmp_path):
    hub = W.torch_hub_dir()
    (hub / "vgg16-397923af.pth").write_bytes(b"x")
    args = _parse(["weights", "fetch", "lpips", "--dir", str(tmp_path / "w2")])
    assert args.func(args) == 0
    assert (tmp_path / "w2" / "vgg16-397923af.pth").read_bytes() == b"x"
    assert (tmp_path / "w2" / "lpips_vgg_v0.1.pth").stat().st_size > 0            # copied from the lpips package


def test_bench_models_measures_one_step(monkeypatch):
    from mrd_backend.cli.bench_models import bench_one, format_table
    r = bench_one("vggloss", repeats=2, size=32)
    assert r["size"] == 32 and r["step_median_s"] > 0 and r["forward_per_step"] == 1.0
    assert r["backward_per_step"] == 1.0 and r["target_forwards"] == 1 and r["peak_rss_mb"] > 0
    assert "vggloss" in format_table([r, {"model": "clip", "error": "boom"}])
    assert bench_one("mae", repeats=1)["forward_per_step"] == 0
