"""PixArtPipeline: parity with diffusers' PixArtAlphaPipeline, seeds, export, null captions, bad input."""

import numpy as np
import pytest
import torch
from diffusers import PixArtAlphaPipeline

from pixart.pipeline import PipelineError, PixArtPipeline, SampleSettings, make_scheduler
from pixart.text import FeatureCache

PROMPTS = ["a red circle to the left of a blue square", "a photo of a cat", "a green triangle", "an oil painting"]


@pytest.fixture(scope="module")
def pipe(tiny_pipeline_dir):
    return PixArtPipeline.from_pretrained(tiny_pipeline_dir)


@pytest.fixture(scope="module")
def exported(pipe, tmp_path_factory):
    folder = tmp_path_factory.mktemp("export") / "diffusers"
    pipe.export_diffusers(folder)
    return folder


def _diffusers_run(folder, sampler, prompts, seeds, output_type, steps=None):
    dp = PixArtAlphaPipeline.from_pretrained(folder)
    dp.set_progress_bar_config(disable=True)
    dp.scheduler = make_scheduler(sampler)
    gens = [torch.Generator().manual_seed(s) for s in seeds]
    return dp(prompts, generator=gens, output_type=output_type, use_resolution_binning=False,
              num_inference_steps=steps, guidance_scale=4.5).images


@pytest.mark.parametrize("sampler,steps", [("dpm-solver", 20), ("sde-dpm-solver", 50), ("sa-solver", 25)])
def test_matches_diffusers_pipeline(pipe, exported, sampler, steps):
    s = SampleSettings(sampler=sampler, null_caption="empty-string")
    ours = pipe(PROMPTS[:2], [3, 4], s, output_type="latent", progress=False)
    theirs = _diffusers_run(exported, sampler, PROMPTS[:2], [3, 4], "latent", steps)
    assert ours.shape == theirs.shape == (2, 4, 8, 8)
    assert (ours - theirs).abs().max() <= 1e-4 * max(1.0, theirs.abs().max().item())
    ours_img = np.stack([np.asarray(im) for im in pipe(PROMPTS[:2], [3, 4], s, progress=False)])
    theirs_img = np.stack([np.asarray(im) for im in _diffusers_run(exported, sampler, PROMPTS[:2], [3, 4], "pil", steps)])
    assert ours_img.shape == (2, 16, 16, 3)
    # other code (diffusers attends to all 120 text slots, we to the unpadded ones): pixels within 1/255
    assert np.abs(ours_img.astype(int) - theirs_img.astype(int)).max() <= 1


def test_exported_folder_loads_back_with_null_caption(pipe, exported):
    again = PixArtPipeline.from_pretrained(exported)
    assert again.transformer.has_null_caption
    for k, v in pipe.transformer.state_dict().items():
        assert torch.equal(v, again.transformer.state_dict()[k]), k
    s = SampleSettings(null_caption="trained", steps=5)
    assert torch.equal(pipe(PROMPTS[:1], [0], s, output_type="latent", progress=False),
                       again(PROMPTS[:1], [0], s, output_type="latent", progress=False))


def test_image_i_is_the_same_whatever_the_batch_size(pipe):
    s = SampleSettings(sampler="sa-solver", steps=10)  # stochastic sampler: noise at every step too
    batched = pipe(PROMPTS, [10, 11, 12, 13], s, batch_size=4, output_type="latent", progress=False)
    for i in range(4):
        single = pipe(PROMPTS[i : i + 1], [10 + i], s, batch_size=1, output_type="latent", progress=False)
        # batched matmuls may round differently: equal to float precision of the (large) latents
        assert (single[0] - batched[i]).abs().max() <= 1e-5 * batched.abs().max(), i
    images1 = pipe(PROMPTS, [10, 11, 12, 13], s, batch_size=1, progress=False)
    images4 = pipe(PROMPTS, [10, 11, 12, 13], s, batch_size=4, progress=False)
    for a, b in zip(images1, images4):
        assert np.abs(np.asarray(a, dtype=int) - np.asarray(b, dtype=int)).max() <= 1


def test_null_caption_modes(pipe):
    s_trained, s_empty = SampleSettings(null_caption="trained", steps=5), SampleSettings(null_caption="empty-string", steps=5)
    assert SampleSettings().resolved(pipe).null_caption == "trained"  # default when the checkpoint has one
    a = pipe(PROMPTS[:1], [0], s_trained, output_type="latent", progress=False)
    b = pipe(PROMPTS[:1], [0], s_empty, output_type="latent", progress=False)
    assert (a - b).abs().max() > 1e-3
    saved = pipe.transformer.y_embedder.y_embedding.clone()
    try:
        pipe.transformer.y_embedder.y_embedding.mul_(2.0)
        assert (pipe(PROMPTS[:1], [0], s_trained, output_type="latent", progress=False) - a).abs().max() > 1e-3
        assert torch.equal(pipe(PROMPTS[:1], [0], s_empty, output_type="latent", progress=False), b)
    finally:
        pipe.transformer.y_embedder.y_embedding.copy_(saved)


def test_iddpm_uses_the_learned_variance(tiny_pipeline_dir):
    """IDDPM samples with the model's variance output (channels 4-7); DPM-Solver ignores it."""
    scheduler = make_scheduler("iddpm")
    assert scheduler.config.variance_type == "learned_range" and not scheduler.config.clip_sample
    pipe = PixArtPipeline.from_pretrained(tiny_pipeline_dir)
    iddpm, ode = SampleSettings(sampler="iddpm", steps=10), SampleSettings(steps=5)
    before = [pipe(PROMPTS[:1], [0], s, output_type="latent", progress=False) for s in (iddpm, ode)]
    assert torch.isfinite(before[0]).all()
    assert torch.equal(before[0], pipe(PROMPTS[:1], [0], iddpm, output_type="latent", progress=False))  # seeded
    # change only the variance half of the output: the final linear layer's rows for channels 4-7
    c = pipe.transformer.config.out_channels
    assert c == 8
    rows = torch.arange(pipe.transformer.final_layer.linear.out_features) % c >= 4
    with torch.no_grad():
        pipe.transformer.final_layer.linear.bias[rows] -= 3.0
    after = [pipe(PROMPTS[:1], [0], s, output_type="latent", progress=False) for s in (iddpm, ode)]
    assert not torch.allclose(after[0], before[0], atol=1e-3)  # IDDPM's steps read the variance
    assert torch.equal(after[1], before[1])  # DPM-Solver's do not


def test_guidance_scale_one_disables_the_null_branch(pipe):
    s1 = SampleSettings(guidance_scale=1.0, steps=5, null_caption="empty-string")
    s2 = SampleSettings(guidance_scale=1.0, steps=5, null_caption="trained")
    assert torch.equal(pipe(PROMPTS[:1], [0], s1, output_type="latent", progress=False),
                       pipe(PROMPTS[:1], [0], s2, output_type="latent", progress=False))


def test_non_square_sizes(pipe):
    images = pipe(PROMPTS[:1], [0], SampleSettings(height=16, width=24, steps=3), progress=False)
    assert images[0].size == (24, 16)
    with pytest.raises(PipelineError, match="multiples of 4"):
        pipe(PROMPTS[:1], [0], SampleSettings(height=18, width=24, steps=3), progress=False)


def test_aspect_ratio_bins_for_released_sizes(pipe):
    from dataclasses import replace

    config = pipe.transformer.config
    try:
        pipe.transformer.config = replace(config, input_size=512)  # 1024 px with this test's /2 VAE
        assert pipe.generation_size(1024, 1024, True) == (1024, 1024)
        assert pipe.generation_size(768, 1360, True) == (768, 1344)
        assert pipe.generation_size(768, 1360, False) == (768, 1360)
    finally:
        pipe.transformer.config = config


def test_bad_input(pipe, tmp_path, tiny_pipeline_dir):
    with pytest.raises(PipelineError, match="unknown sampler"):
        pipe(PROMPTS[:1], [0], SampleSettings(sampler="euler"), progress=False)
    with pytest.raises(PipelineError, match="--t5 PATH"):
        PixArtPipeline.from_pretrained(tiny_pipeline_dir / "transformer")
    with pytest.raises(PipelineError, match="no T5 encoder at"):
        PixArtPipeline.from_pretrained(tiny_pipeline_dir / "transformer", t5=tmp_path, vae=tiny_pipeline_dir / "vae")
    with pytest.raises(PipelineError, match="no VAE at"):
        PixArtPipeline.from_pretrained(tiny_pipeline_dir / "transformer", t5=tiny_pipeline_dir, vae=tmp_path)
    with pytest.raises(PipelineError, match="not found|Hugging Face cache"):
        PixArtPipeline.from_pretrained(tmp_path / "missing")
    with pytest.raises(PipelineError, match="no prompts"):
        pipe([], 0)


def test_feature_cache(pipe, tmp_path):
    enc = pipe.text_encoder
    cache = FeatureCache(tmp_path / "cache")
    calls = []
    original = enc.encode
    enc.encode = lambda prompts, **kw: (calls.append(list(prompts)), original(prompts, **kw))[1]
    try:
        y1, m1 = cache.get(enc, PROMPTS[:3])
        y2, m2 = cache.get(enc, PROMPTS[1:4])
    finally:
        enc.encode = original
    assert calls == [sorted(PROMPTS[:3]), [PROMPTS[3]]]  # only the new prompt was encoded the second time
    y, m = original(PROMPTS[:4])
    # the cache's features were encoded in batches of 3 and 1, these in one of 4: equal to float rounding
    assert torch.equal(m2, m[1:4]) and y1.shape == y[:3].shape and y2.shape == y[1:4].shape
    torch.testing.assert_close(y1, y[:3], rtol=1e-5, atol=1e-6)
    torch.testing.assert_close(y2, y[1:4], rtol=1e-5, atol=1e-6)


def test_sde_dpm_solver_draws_noise_at_every_step(pipe):
    s_sde, s_ode = SampleSettings(sampler="sde-dpm-solver", steps=8), SampleSettings(sampler="dpm-solver", steps=8)
    assert make_scheduler("sde-dpm-solver").config.algorithm_type == "sde-dpmsolver++"
    a = pipe(PROMPTS[:1], [0], s_sde, output_type="latent", progress=False)
    assert torch.equal(a, pipe(PROMPTS[:1], [0], s_sde, output_type="latent", progress=False))  # seeded
    assert (a - pipe(PROMPTS[:1], [0], s_ode, output_type="latent", progress=False)).abs().max() > 1e-3


def test_steps_run_on_trimmed_text_without_a_dense_mask(pipe, monkeypatch):
    """The denoising steps see the text slots that are real in some caption, and no mask when none
    is padding; the latents are those of the full 120-slot, masked computation."""
    s = SampleSettings(steps=4, null_caption="trained")
    calls = []
    forward = pipe.transformer.forward

    def spy(x, t, y, mask=None, **kw):
        calls.append((y.shape[1], None if mask is None else mask.clone()))
        return forward(x, t, y, mask, **kw)

    monkeypatch.setattr(pipe.transformer, "forward", spy)
    trimmed = pipe(PROMPTS[:2], [5, 6], s, output_type="latent", progress=False)
    y, mask = pipe.encode_prompts(PROMPTS[:2])
    real = int(mask.sum(dim=1).max())
    assert real < mask.shape[1] and len(calls) == 4
    assert all(n == real for n, _ in calls)
    # the same denoising at full length: the model called with every slot and the mask
    monkeypatch.setattr("pixart.pipeline.trim_text_padding", lambda y, m: (y, m))
    calls.clear()
    full = pipe(PROMPTS[:2], [5, 6], s, output_type="latent", progress=False)
    assert all(n == mask.shape[1] and m is not None for n, m in calls)
    assert (trimmed - full).abs().max() <= 1e-5 * max(1.0, full.abs().max().item())  # rounding only
    # captions of equal length: nothing is padding once trimmed, so no mask at all
    calls.clear()
    monkeypatch.undo()
    monkeypatch.setattr(pipe.transformer, "forward", spy)
    pipe([PROMPTS[0]] * 2, [5, 6], s, output_type="latent", progress=False)
    assert all(m is None for _, m in calls)


def test_sdedit_start_noises_init_to_strength_and_takes_the_remaining_steps(pipe, monkeypatch):
    """``init`` + ``strength``: the run starts from init noised with the scheduler's own add_noise at
    the step ``strength`` of the way up and takes round(steps × strength) steps."""
    s = SampleSettings(sampler="dpm-solver", steps=10).resolved(pipe)
    y, mask = pipe.encode_prompts(PROMPTS[:2])
    y_null, mask_null = pipe.null_condition(mask, s.null_caption)
    h, w = s.height // pipe.vae.downsample, s.width // pipe.vae.downsample
    init = torch.randn(2, pipe.transformer.config.in_channels, h, w, generator=torch.Generator().manual_seed(3))
    calls = []
    forward = pipe.transformer.forward
    monkeypatch.setattr(pipe.transformer, "forward", lambda x, t, *a, **k: calls.append(int(t[0])) or forward(x, t, *a, **k))
    gens = [torch.Generator().manual_seed(k) for k in range(2)]
    pipe.sample_latents(y, mask, y_null, mask_null, gens, s, (s.height, s.width), init=init, strength=0.3)
    full = make_scheduler("dpm-solver")
    full.set_timesteps(10)
    assert calls == [int(t) for t in full.timesteps[7:]]  # the last 3 of the 10 steps
    # the starting point: init noised to the 8th timestep (independent computation of DDPM's q(x_t | x_0))
    abar = torch.cumprod(1 - torch.linspace(1e-4, 0.02, 1000), 0)[int(full.timesteps[7])]
    noise = torch.stack([torch.randn(init.shape[1:], generator=torch.Generator().manual_seed(k)) for k in range(2)])
    start = {}
    monkeypatch.setattr(pipe.transformer, "forward", lambda x, t, *a, **k: start.setdefault("x", x) is None or forward(x, t, *a, **k))
    pipe.sample_latents(y, mask, y_null, mask_null, [torch.Generator().manual_seed(k) for k in range(2)], s,
                        (s.height, s.width), init=init, strength=0.3)
    x0 = start["x"][2:] if start["x"].shape[0] == 4 else start["x"]  # the text half of the guided batch
    assert torch.allclose(x0, abar.sqrt() * init + (1 - abar).sqrt() * noise, atol=1e-4)
    with pytest.raises(PipelineError, match="strength"):
        pipe.sample_latents(y, mask, y_null, mask_null, gens, s, (s.height, s.width), init=init, strength=0.0)
