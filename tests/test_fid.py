"""bench.fid and `pixart-bench fid folder`: parity with torch-fidelity and with a direct scipy computation,
the resize policy, the content-keyed statistics cache, .npz references, CLIP-FID, and the command.

The Inception is torch-fidelity's architecture with random weights, saved to a file and loaded through
torch-fidelity's own ``feature_extractor_weights_path`` (tests/fid_weights.py). It runs at 299 px on a
CPU, so the sets are small (a dozen 32 px images each)."""

from __future__ import annotations

import json
import shutil

import numpy as np
import pytest
import torch
from fid_weights import random_clip, random_inception
from outside import require
from PIL import Image
from scipy import linalg
from torch_fidelity.datasets import ImagesPathDataset
from torch_fidelity.utils import create_feature_extractor
from typer.testing import CliRunner

import bench.fid.extractors as extractors
from bench.cli import app
from bench.errors import BenchError
from bench.fid import compute_fid, image_set, load_statistics, reference_statistics
from bench.fid.extractors import worker_message
from bench.fid.images import center_crop_256
from bench.world.fid import register_world_extractor

torch_fidelity = require("torch_fidelity", "the FID parity tests compare with torch-fidelity (a project dependency)")
N = 12  # images per set


def blobs(folder, n: int, seed: int, gain: float = 1.0, size=(32, 32), mode: str = "RGB"):
    """``n`` smooth random images (4×4 noise upsampled), brightness × ``gain``, saved as PNG."""
    rng = np.random.default_rng(seed)
    folder.mkdir(parents=True, exist_ok=True)
    for k in range(n):
        small = (rng.random((4, 4, 3)) * 255 * gain).astype(np.uint8)
        Image.fromarray(small).resize(size, Image.Resampling.BILINEAR).convert(mode).save(folder / f"{k:03d}.png")
    return folder


@pytest.fixture(autouse=True, scope="module")
def one_blas_thread():
    """numpy's BLAS on one thread: a 2048×2048 ``eigvals`` is ~10× faster so on a busy 2-core CPU (see
    tests/test_fid_coco.py). Speed only: the figures are the same."""
    from threadpoolctl import threadpool_limits

    with threadpool_limits(limits=1, user_api="blas"):
        yield


@pytest.fixture(scope="module")
def root(tmp_path_factory):
    return tmp_path_factory.mktemp("fid")


@pytest.fixture(scope="module")
def weights(root):
    return random_inception(root / "weights-inception-random.pth")


@pytest.fixture(scope="module")
def sets(root):
    """(generated, reference): two folders of N images from different distributions."""
    return blobs(root / "gen", N, seed=1, gain=0.7), blobs(root / "ref", N, seed=2)


@pytest.fixture
def count_extractions(monkeypatch):
    """How many image sets went through the extractor (torch-fidelity's feature loop)."""
    calls = []
    real = extractors.get_featuresdict_from_dataset

    def counted(dataset, *args):
        calls.append(len(dataset))
        return real(dataset, *args)

    monkeypatch.setattr(extractors, "get_featuresdict_from_dataset", counted)
    return calls


def direct_fid(gen, ref, weights) -> float:
    """torch-fidelity's Inception features, then numpy means and scipy's SVD, without torch-fidelity's
    eigenvalues of a 2048 × 2048 product. With A, B the centred features of n1, n2 images, the covariances
    are S1 = AᵀA / (n1 - 1) and S2 = BᵀB / (n2 - 1); the nonzero eigenvalues of S1 S2 are the squared
    singular values of A Bᵀ / √((n1 - 1)(n2 - 1)), so tr √(S1 S2) is the sum of those singular values:
    exact, on an n1 × n2 matrix (scipy's sqrtm of the 2048 × 2048 product took ~20 s on 2 cores)."""
    fe = create_feature_extractor("inception-v3-compat", ["2048"], cuda=False, verbose=False,
                                  feature_extractor_weights_path=str(weights))

    def features(folder):
        ds = ImagesPathDataset(sorted(str(p) for p in folder.glob("*.png")))
        with torch.no_grad():
            return fe(torch.stack([ds[i] for i in range(len(ds))]))[0].double().numpy()

    f1, f2 = features(gen), features(ref)
    mu1, mu2 = f1.mean(axis=0), f2.mean(axis=0)
    a, b = f1 - mu1, f2 - mu2
    n1, n2 = len(f1) - 1, len(f2) - 1
    tr_covmean = linalg.svdvals(a @ b.T).sum() / np.sqrt(n1 * n2)
    return float((mu1 - mu2) @ (mu1 - mu2) + (a * a).sum() / n1 + (b * b).sum() / n2 - 2 * tr_covmean)


def test_fid_and_kid_equal_torch_fidelity_and_a_direct_computation(sets, weights):
    gen, ref = sets
    ours = compute_fid(gen, ref, weights=weights, resize="none", kid=True)
    theirs = torch_fidelity.calculate_metrics(input1=str(gen), input2=str(ref), fid=True, kid=True,
                                              kid_subset_size=ours["settings"]["kid_subset_size"],
                                              feature_extractor_weights_path=str(weights), cuda=False, verbose=False,
                                              save_cpu_ram=True)  # no DataLoader workers, as ours on a CPU
    assert ours["fid"] > 0 and ours["n_gen"] == ours["n_ref"] == N
    assert ours["fid"] == pytest.approx(theirs[torch_fidelity.KEY_METRIC_FID], rel=1e-6)
    assert ours["kid_mean"] == pytest.approx(theirs[torch_fidelity.KEY_METRIC_KID_MEAN], rel=1e-6)
    # torch-fidelity's (and our) eigenvalue route takes the square roots of ~2,000 zero eigenvalues that come
    # out as rounding noise, adding a few 1e-6 of the figure; the direct route has no such term
    assert ours["fid"] == pytest.approx(direct_fid(gen, ref, weights), rel=2e-5)
    assert ours["extractor"]["feature_dim"] == 2048 and ours["extractor"]["layer"] == "2048"
    assert ours["extractor"]["weights_sha256"] == extractors.file_sha256(weights)


def test_center_crop_256_is_the_documented_pil_call(tmp_path):
    image = Image.fromarray(np.random.default_rng(0).integers(0, 256, (50, 81, 3), dtype=np.uint8))
    (tmp_path / "s").mkdir()
    image.save(tmp_path / "s" / "wide.png")
    image.transpose(Image.Transpose.TRANSPOSE).save(tmp_path / "s" / "tall.png")
    got = image_set(tmp_path / "s", "reference").dataset()
    want = image.crop((15, 0, 65, 50)).resize((256, 256), Image.Resampling.BICUBIC)  # (81 - 50) // 2 = 15
    assert torch.equal(got[1], torch.from_numpy(np.array(want)).permute(2, 0, 1))  # "wide.png" sorts second
    assert center_crop_256(image).tobytes() == want.tobytes()
    assert got[0].shape == (3, 256, 256) and got[0].dtype == torch.uint8


def test_grayscale_and_palette_images_become_rgb(tmp_path):
    rgb = Image.fromarray(np.random.default_rng(1).integers(0, 256, (20, 20, 3), dtype=np.uint8))
    (tmp_path / "s").mkdir()
    rgb.convert("L").save(tmp_path / "s" / "gray.png")
    rgb.convert("P").save(tmp_path / "s" / "palette.png")
    got = image_set(tmp_path / "s", "generated", resize="none").dataset()
    gray = torch.from_numpy(np.array(rgb.convert("L")))
    assert torch.equal(got[0], gray.expand(3, -1, -1))  # the same value in R, G and B
    assert torch.equal(got[1], torch.from_numpy(np.array(rgb.convert("P").convert("RGB"))).permute(2, 0, 1))


def test_cache_is_keyed_by_content_resize_extractor_and_weights(tmp_path, sets, weights, count_extractions):
    _, ref = sets
    cache = tmp_path / "cache"

    def stats_of(folder, **kw):
        before = len(count_extractions)
        stats, path = reference_statistics(folder, **{"weights": weights, "resize": "none", "cache_dir": cache, **kw})
        return stats, path, len(count_extractions) > before  # computed, i.e. missed the cache

    first, path, computed = stats_of(ref)
    assert computed and path.parent == cache and path.name == first.provenance["key"] + ".npz"
    assert load_statistics(path).provenance["content_sha256"] == first.provenance["content_sha256"]
    again, path_again, computed = stats_of(ref)
    assert not computed and path_again == path and np.array_equal(again.sigma, first.sigma)
    moved = shutil.copytree(ref, tmp_path / "elsewhere")  # same content in another folder: the same entry
    assert stats_of(moved)[1:] == (path, False)

    changed = shutil.copytree(ref, tmp_path / "changed")
    Image.open(changed / "003.png").rotate(90).save(changed / "003.png")  # one image differs
    other_weights = random_inception(tmp_path / "other.pth", seed=1)
    register_world_extractor()  # the world's extractor joins torch-fidelity's registry where it is used
    misses = {"one changed image": stats_of(changed), "another resize": stats_of(ref, resize="center-crop-256"),
              "another extractor": stats_of(ref, extractor="world-cnn", weights=None),
              "other weights": stats_of(ref, weights=other_weights)}
    for why, (_, other_path, computed) in misses.items():
        assert computed and other_path != path, why
    assert len({p for _, p, _ in misses.values()}) == len(misses)
    assert misses["another extractor"][0].provenance["extractor"] == "world-cnn"


def test_npz_reference_gives_the_folders_fid_and_costs_only_the_generated_images(tmp_path, sets, weights,
                                                                                count_extractions):
    gen, ref = sets
    from_folders = compute_fid(gen, ref, weights=weights, save_stats=tmp_path / "ref.npz")
    assert count_extractions == [N, N] and from_folders["reference"]["cached"] is False
    stats = load_statistics(tmp_path / "ref.npz")
    assert stats.n == N and stats.provenance["resize"] == "center-crop-256" and stats.features is None
    from_npz = compute_fid(gen, tmp_path / "ref.npz", weights=weights)
    assert from_npz["fid"] == from_folders["fid"] and count_extractions == [N, N, N]  # only the generated side
    assert from_npz["reference"]["id"] == from_folders["reference"]["id"] and from_npz["n_ref"] == N


def test_clip_fid_through_torch_fidelity(tmp_path, sets, weights):
    gen, ref = sets
    clip = random_clip(tmp_path / "clip.pt")
    ours = compute_fid(gen, ref, extractor="clip-vit-b-32", weights=clip, resize="none", cache_dir=tmp_path / "c")
    theirs = torch_fidelity.calculate_metrics(input1=str(gen), input2=str(ref), fid=True, cuda=False, verbose=False,
                                              feature_extractor="clip-vit-b-32",
                                              feature_extractor_weights_path=str(clip), save_cpu_ram=True)
    assert ours["fid"] == pytest.approx(theirs[torch_fidelity.KEY_METRIC_FID], rel=1e-6)
    assert ours["extractor"]["feature_dim"] == 32 and ours["extractor"]["layer"] == "clip"
    with pytest.raises(BenchError, match="holds clip-vit-b-32 features .* scored with inception-v3-compat"):
        compute_fid(gen, ours["reference"]["statistics"], weights=weights, resize="none")


@pytest.mark.parametrize("cpus, cuda, workers", [(1, True, 0), (2, True, 0), (3, True, 0), (4, True, 4),
                                                 (16, True, 4), (16, False, 0)])
def test_the_feature_loader_asks_for_no_more_workers_than_cpus(sets, weights, monkeypatch, cpus, cuda, workers):
    """torch-fidelity's loop takes 4 DataLoader workers unless told to save CPU RAM (then none): on a GPU
    with fewer than 4 CPUs of ours that would be more processes than cores, and a warning on every FID.
    A pretend GPU (the loader is stopped before any tensor moves), on machines of ``cpus`` CPUs."""
    import multiprocessing
    import os

    import torch_fidelity.utils as fidelity_utils

    class Stop(Exception):
        pass

    asked = []

    def loader(*args, num_workers=0, **kwargs):
        asked.append(num_workers)
        raise Stop

    ext = extractors.Extractor(weights=weights)
    ext.module()  # made on the CPU
    ext.device = torch.device("cuda" if cuda else "cpu")
    monkeypatch.setattr(os, "sched_getaffinity", lambda pid: set(range(cpus)), raising=False)
    monkeypatch.setattr(os, "cpu_count", lambda: cpus)
    monkeypatch.setattr(multiprocessing, "cpu_count", lambda: cpus)  # what torch-fidelity counts
    monkeypatch.setattr(fidelity_utils, "DataLoader", loader)
    with pytest.raises(Stop):
        ext.features(image_set(sets[0], "generated", resize="none").dataset())
    assert asked == [workers] and workers <= cpus


def test_a_worker_process_error_keeps_its_message():
    from torch._utils import ExceptionWrapper

    try:
        raise BenchError("cannot read image /data/x.png: broken PNG file; remove or replace it")
    except BenchError:
        wrapped = ExceptionWrapper(where="in DataLoader worker process 0")
    with pytest.raises(BenchError) as caught:
        wrapped.reraise()  # what the DataLoader does in the main process
    assert "Traceback" in str(caught.value)
    assert worker_message(str(caught.value)) == "cannot read image /data/x.png: broken PNG file; remove or replace it"


runner = CliRunner()


def test_fid_folder_writes_fid_json_and_reuses_the_reference(tmp_path, sets, weights):
    gen, ref = sets
    args = ["--inception-weights", str(weights), "--cache", str(tmp_path / "cache"), "--resize", "none"]
    result = runner.invoke(app, ["fid", "folder", str(gen), str(ref), "--out", str(tmp_path / "a"), *args,
                                 "--save-stats", str(tmp_path / "ref.npz")])
    assert result.exit_code == 0, result.output
    first = json.loads((tmp_path / "a" / "fid.json").read_text())
    assert {"fid", "n_gen", "n_ref", "reference", "settings", "extractor", "versions"} <= set(first)
    assert f"FID {first['fid']:.4f}" in result.output and first["n_gen"] == first["n_ref"] == N
    assert first["reference"]["source"] == str(ref) and first["settings"]["resize"] == "none"
    assert first["extractor"]["name"] == "inception-v3-compat" and first["versions"]["torch-fidelity"] == "0.4.0"
    assert first["reference"]["id"] == load_statistics(tmp_path / "ref.npz").provenance["key"]

    result = runner.invoke(app, ["fid", "folder", str(gen), str(tmp_path / "ref.npz"), "--out", str(tmp_path / "b"),
                                 *args])
    assert result.exit_code == 0, result.output
    second = json.loads((tmp_path / "b" / "fid.json").read_text())
    assert second["fid"] == first["fid"] and second["generated"]["cached"]  # the generated side's entry, too
    assert "reference statistics cached" in result.output


def test_fid_folder_names_the_missing_inception_weights(tmp_path, sets, monkeypatch):
    monkeypatch.setenv("TORCH_HOME", str(tmp_path / "torch-home"))
    result = runner.invoke(app, ["fid", "folder", str(sets[0]), str(sets[1]), "--out", str(tmp_path / "o")])
    assert result.exit_code == 2
    for needed in ("weights-inception-2015-12-05-6726825d.pth", "--inception-weights was not given",
                   str(tmp_path / "torch-home" / "hub" / "checkpoints"), "https://github.com/toshas/torch-fidelity"):
        assert needed in result.output.replace("\n", ""), needed
    assert not (tmp_path / "o").exists()


def test_fid_folder_help_has_examples():
    result = runner.invoke(app, ["fid", "folder", "--help"])
    assert result.exit_code == 0 and "Examples" in result.output and "pixart-bench fid folder" in result.output


@pytest.mark.slow
def test_throughput_benchmark_runs(tmp_path, capsys):
    """Slow (8 s of the 2-core suite: three FIDs at 2,048 dimensions, on the smallest sets it takes): the
    benchmark script runs and writes what it returns."""
    from conftest import load_script

    report = load_script("fid_throughput").main(["--random", "--images", "2", "--device", "cpu",
                                                 "--json", str(tmp_path / "t.json")])
    assert json.loads((tmp_path / "t.json").read_text()) == report
    steps = [r["what"] for r in report["rows"]]
    assert steps[-2:] == ["second model, cached reference", "second model, REF .npz"] and len(steps) == 6
    assert all(r["seconds"] > 0 for r in report["rows"]) and "| cold run: both sides | 4 |" in capsys.readouterr().out


def test_fid_folder_reports_kid_by_default_records_the_protocol_and_warns_of_small_n(tmp_path, sets):
    gen, ref = sets
    cache = tmp_path / "cache"
    args = ["--extractor", "world-cnn", "--cache", str(cache), "--resize", "none"]  # 128-d: fast
    result = runner.invoke(app, ["fid", "folder", str(gen), str(ref), "--out", str(tmp_path / "a"), "--save-stats",
                                 str(tmp_path / "ref.npz"), *args])
    assert result.exit_code == 0, result.output
    record = json.loads((tmp_path / "a" / "fid.json").read_text())
    # KID beside FID, equal to torch-fidelity's (compute_fid's KID is checked against it above)
    direct = compute_fid(gen, ref, extractor="world-cnn", resize="none", cache_dir=cache, kid=True)
    assert record["settings"]["kid"] is True and record["kid_mean"] == pytest.approx(direct["kid_mean"], rel=1e-6)
    printed = " ".join(result.stdout.split())  # the console wraps long lines
    assert f"KID {record['kid_mean']:.6g}" in printed
    # the protocol, from what ran: a folder FID, not the standard Inception
    protocol = record["protocol"]
    assert (protocol["name"], protocol["command"]) == ("folder", "pixart-bench fid folder")
    assert protocol["standard_inception"] is False and protocol["n_gen"] == N and "protocol: folder" in printed
    # 12 images: one warning line on stderr, the strong form (N at most the 128 feature dimensions), also recorded
    lines = [line for line in result.stderr.splitlines() if line.startswith("warning: ")]
    assert len(lines) == 1 and "biased upward" in lines[0] and "the 128 feature dimensions" in lines[0]
    assert "singular" in lines[0] and record["warnings"] == [lines[0].removeprefix("warning: ")]
    assert "warning" not in result.stdout

    # the reference statistics saved with KID on hold its features: a later KID against them, even if asked for
    assert load_statistics(tmp_path / "ref.npz").features.shape[0] == N
    result = runner.invoke(app, ["fid", "folder", str(gen), str(tmp_path / "ref.npz"), "--out", str(tmp_path / "b"),
                                 "--kid", *args])
    assert result.exit_code == 0, result.output
    again = json.loads((tmp_path / "b" / "fid.json").read_text())
    assert again["kid_mean"] == pytest.approx(record["kid_mean"], rel=1e-6) and len(again["warnings"]) == 1


def test_fid_folder_no_kid_and_a_reference_npz_without_features(tmp_path, sets):
    gen, ref = sets
    args = ["--extractor", "world-cnn", "--no-cache", "--resize", "none"]
    result = runner.invoke(app, ["fid", "folder", str(gen), str(ref), "--out", str(tmp_path / "a"), "--no-kid",
                                 "--save-stats", str(tmp_path / "ref.npz"), *args])
    assert result.exit_code == 0, result.output
    record = json.loads((tmp_path / "a" / "fid.json").read_text())
    assert "kid_mean" not in record and record["settings"]["kid"] is False and "KID" not in result.stdout
    assert load_statistics(tmp_path / "ref.npz").features is None

    # KID on by default: not computed against an .npz of mean and covariance only, and said so
    result = runner.invoke(app, ["fid", "folder", str(gen), str(tmp_path / "ref.npz"), "--out", str(tmp_path / "b"),
                                 *args])
    assert result.exit_code == 0, result.output
    second = json.loads((tmp_path / "b" / "fid.json").read_text())
    assert "kid_mean" not in second and second["fid"] == pytest.approx(record["fid"], rel=1e-9)
    kid_lines = [line for line in result.stderr.splitlines() if line.startswith("warning: KID was not computed")]
    assert len(kid_lines) == 1 and "holds only the reference's mean and covariance" in kid_lines[0]
    assert second["settings"]["kid_not_computed"] in kid_lines[0] and len(second["warnings"]) == 2

    # asked for explicitly, it is refused before any work
    result = runner.invoke(app, ["fid", "folder", str(gen), str(tmp_path / "ref.npz"), "--out", str(tmp_path / "c"),
                                 "--kid", *args])
    assert result.exit_code == 2 and "--kid needs the reference's features" in result.output
    assert not (tmp_path / "c").exists()

