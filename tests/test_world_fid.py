"""World-FID: torch-fidelity with the world-trained "world-cnn" extractor (bench/world/fid/)."""

from __future__ import annotations

import random
import socket
import urllib.request
from dataclasses import replace

import numpy as np
import pytest
import torch
from outside import require
from PIL import Image, ImageFilter
from scipy import linalg
from threadpoolctl import threadpool_limits
from torch_fidelity.registry import FEATURE_EXTRACTORS_REGISTRY

from bench.fid import load_statistics
from bench.world import fid as wf
from bench.world.render import render
from bench.world.scene import Scene

torch_fidelity = require("torch_fidelity", "World-FID runs through torch-fidelity (a project dependency)")
N = 400  # images per set for the separation test (FID's small-sample bias falls as 1/N)
N_PARITY = 200  # > the 128-d feature, so every covariance has full rank


@pytest.fixture(scope="module", autouse=True)
def one_thread():
    """One intra-op thread: the network is small, and on a busy CPU with few cores threads fight."""
    old = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(old)


def render_set(seed: int, n: int = N, size: int = 64, scene_fn=None) -> list[Image.Image]:
    rng = random.Random(seed)
    images = []
    for i in range(n):
        scene = wf.sample_scene_retry(rng)
        if scene_fn is not None:
            scene = scene_fn(scene)
        images.append(render(scene, size, seed=seed * 100_003 + i))
    return images


def as_circles(scene: Scene) -> Scene:
    return Scene(tuple(replace(o, shape="circle") for o in scene.objects), scene.background, scene.noise,
                 scene.relation)


def swap_channels(im: Image.Image) -> Image.Image:  # RGB → BRG
    r, g, b = im.split()
    return Image.merge("RGB", (b, r, g))


def blur(images, radius=2.0):
    return [im.filter(ImageFilter.GaussianBlur(radius)) for im in images]


@pytest.fixture(scope="module")
def real_a():
    return render_set(1)


@pytest.fixture(scope="module")
def real_b():
    return render_set(2)


@pytest.fixture(scope="module")
def cache_dir(tmp_path_factory):
    return tmp_path_factory.mktemp("fid-cache")


def direct_fid(images_1, images_2) -> float:
    """Features from the same extractor, then the textbook Fréchet distance with scipy's sqrtm."""
    fe = wf.WorldFeatureExtractor(wf.EXTRACTOR_NAME, [wf.FEATURE_LAYER]).eval()

    def features(images):
        x = torch.stack([wf.pil_to_uint8(im) for im in images])
        with torch.no_grad():
            return fe(x)[0].double().numpy()

    f1, f2 = features(images_1), features(images_2)
    mu1, mu2 = f1.mean(axis=0), f2.mean(axis=0)
    s1, s2 = np.cov(f1, rowvar=False), np.cov(f2, rowvar=False)
    with threadpool_limits(limits=1, user_api="blas"):  # see bench.fid.metric.blas_limit
        covmean = linalg.sqrtm(s1 @ s2).real
    return float((mu1 - mu2) @ (mu1 - mu2) + np.trace(s1) + np.trace(s2) - 2 * np.trace(covmean))


def test_parity_with_direct_frechet_distance(real_a, real_b):
    a, b = real_a[:N_PARITY], blur(real_b[:N_PARITY], 1.0)
    got = wf.world_fid(a, b)
    assert got["fid"] == pytest.approx(direct_fid(a, b), rel=1e-3)
    assert got["n_real"] == got["n_generated"] == N_PARITY and got["feature_dim"] == 128
    assert got["feature_extractor"] == "world-cnn" and len(got["weights_sha256"]) == 64


def test_same_distribution_far_below_corrupted(real_a, real_b, cache_dir):
    def score(images):  # real_a's features are extracted once, then read from the (content-keyed) cache
        return wf.world_fid(real_a, images, kid=True, cache=True, cache_root=cache_dir)

    same = score(real_b)
    corrupted = {
        "heavy blur": blur(real_b, 2.0),
        "colour channels swapped": [swap_channels(im) for im in real_b],
        "shapes replaced by circles": render_set(2, scene_fn=as_circles),
    }
    for name, images in corrupted.items():
        got = score(images)
        assert got["fid"] > 4 * same["fid"], (name, got["fid"], same["fid"])
        assert got["kid_mean"] > 10 * max(same["kid_mean"], same["kid_std"]), (name, got, same)


def test_folders_equal_in_memory_and_other_sizes_are_resized(tmp_path, real_a, real_b):
    a, b = real_a[:150], real_b[:150]
    for name, images in (("a", a), ("b", b)):
        (tmp_path / name).mkdir()
        for i, im in enumerate(images):
            im.save(tmp_path / name / f"{i:04d}.png")
    from_folders = wf.world_fid(tmp_path / "a", str(tmp_path / "b"))
    assert from_folders["n_real"] == from_folders["n_generated"] == 150
    assert from_folders["fid"] == pytest.approx(wf.world_fid(a, b)["fid"], rel=1e-6)
    # real_b's first scenes rendered at 128 px: the extractor resizes them to 64, close to real_b's 64 px renders
    big = render_set(2, n=64, size=128)
    assert wf.world_fid(real_b[:64], big)["fid"] < 0.5 * wf.world_fid(real_a[:64], real_b[:64])["fid"]
    with pytest.raises(ValueError, match="share a size"):
        wf.world_fid(a[:4], b[:2] + big[:2])
    big[0].save(tmp_path / "b" / "zz-128px.png")
    with pytest.raises(ValueError, match="share a size"):
        wf.world_fid(tmp_path / "a", tmp_path / "b")


def test_cache_is_keyed_by_content(tmp_path, real_a, real_b):
    a, b = real_a[:60], real_b[:60]
    kwargs = dict(cache=True, cache_root=tmp_path)
    first = wf.world_fid(a, b, **kwargs)
    entries = sorted(tmp_path.glob("*.npz"))  # bench.fid's cache: one entry per set, named by its key
    assert len(entries) == 2
    for entry in entries:  # the key covers the extractor and its weights: retrained weights → new entries
        provenance = load_statistics(entry, "cache entry").provenance
        assert provenance["extractor"] == "world-cnn" and provenance["weights_sha256"] == first["weights_sha256"]
    assert wf.world_fid(a, b, **kwargs)["fid"] == first["fid"]
    blurred = blur(b)  # same sizes and count, new content: must not hit b's entry
    cached = wf.world_fid(a, blurred, **kwargs)["fid"]
    assert cached != first["fid"] and cached == pytest.approx(wf.world_fid(a, blurred)["fid"], rel=1e-9)


def test_extractor_loads_from_the_package_without_network(tmp_path, monkeypatch):
    def no_network(*args, **kwargs):
        raise AssertionError("network access attempted")

    monkeypatch.setenv("TORCH_HOME", str(tmp_path / "torch-home"))  # an empty hub/cache
    monkeypatch.setattr(socket.socket, "connect", no_network)
    monkeypatch.setattr(socket, "create_connection", no_network)
    monkeypatch.setattr(urllib.request, "urlopen", no_network)
    monkeypatch.setattr(torch.hub, "load_state_dict_from_url", no_network)
    monkeypatch.setattr(torch.hub, "download_url_to_file", no_network)

    assert wf.DEFAULT_WEIGHTS.is_file() and wf.DEFAULT_WEIGHTS.stat().st_size < 1_000_000
    assert wf.DEFAULT_WEIGHTS.parent == wf.REFERENCE_DIR and wf.REFERENCE_DIR.parent.name == "world"
    net, config = wf.load_world_cnn()
    assert config["arch"] == wf.ARCH and config["feat_dim"] == 128
    assert config["training"]["heldout_accuracy"]["shape"] > 0.9
    fe = wf.WorldFeatureExtractor(wf.EXTRACTOR_NAME, [wf.FEATURE_LAYER])
    assert fe.weights_path == wf.DEFAULT_WEIGHTS
    images = render_set(5, n=8)
    assert np.isfinite(wf.world_fid(images[:4], images[4:])["fid"])
    assert not (tmp_path / "torch-home").exists() or not any((tmp_path / "torch-home").rglob("*.pth"))


def test_registration_is_idempotent(monkeypatch):
    assert wf.register_world_extractor() == "world-cnn"
    assert wf.register_world_extractor() == "world-cnn"
    assert FEATURE_EXTRACTORS_REGISTRY["world-cnn"] is wf.WorldFeatureExtractor
    with pytest.raises(ValueError, match="already registered"):  # torch-fidelity itself refuses a second time
        torch_fidelity.register_feature_extractor("world-cnn", wf.WorldFeatureExtractor)

    class Impostor(torch_fidelity.FeatureExtractorBase):
        pass

    monkeypatch.setitem(FEATURE_EXTRACTORS_REGISTRY, "world-cnn", Impostor)
    with pytest.raises(RuntimeError, match="different feature extractor"):
        wf.register_world_extractor()


def test_extractor_follows_torch_fidelity_conventions():
    fe = wf.WorldFeatureExtractor(wf.EXTRACTOR_NAME, [wf.LOGITS_LAYER, wf.FEATURE_LAYER]).eval()
    x = torch.stack([wf.pil_to_uint8(im) for im in render_set(7, n=6)])
    with torch.no_grad():
        out = fe(x)
        one_by_one = torch.cat([fe(x[i : i + 1])[1] for i in range(len(x))])
    assert isinstance(out, tuple) and out[0].shape == (6, wf.NUM_LOGITS) and out[1].shape == (6, 128)
    assert out[1].dtype == torch.float32
    torch.testing.assert_close(out[1], one_by_one, rtol=1e-5, atol=1e-5)  # eval: no batch dependence
    assert set(fe.convert_features_tuple_to_dict(out)) == {"feat", "attr_logits"}
    with pytest.raises(TypeError, match="uint8"):
        fe(x.float())
    assert wf.WorldFeatureExtractor.get_default_feature_layer_for_metric("fid") == "feat"
    with pytest.raises(ValueError, match="ISC"):
        wf.WorldFeatureExtractor.get_default_feature_layer_for_metric("isc")
    fe64 = wf.WorldFeatureExtractor(wf.EXTRACTOR_NAME, [wf.FEATURE_LAYER],
                                    feature_extractor_internal_dtype="float64").eval()
    with torch.no_grad():
        torch.testing.assert_close(fe64(x)[0], out[1], rtol=1e-4, atol=1e-4)


def test_training_smoke(tmp_path):
    """A few steps on a handful of images: the function writes loadable weights and a config."""
    config = wf.train_feature_extractor(tmp_path / "fe.safetensors", n_images=48, steps=3, batch_size=16,
                                        n_heldout=16, frac_128=0.1, verbose=False)
    assert (tmp_path / "fe.json").is_file() and set(config["training"]["heldout_accuracy"]) == set(wf.HEADS)
    net, loaded = wf.load_world_cnn(tmp_path / "fe.safetensors")
    assert loaded["training"]["steps"] == 3
    images = render_set(9, n=6)
    assert np.isfinite(wf.world_fid(images[:3], images[3:], weights_path=tmp_path / "fe.safetensors")["fid"])
