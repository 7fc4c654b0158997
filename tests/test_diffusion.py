"""The IDDPM training objective (pixart/diffusion.py) against an independent float64 computation.

The reference below is written from the definitions, not from the module's formulas: ᾱ_t as an
explicit product, the posterior q(x_{t−1} | x_t, x_0) by Gaussian conditioning (precisions add),
the KL between two Gaussians in its standard-deviation form, and the decoder likelihood as the
mass of each pixel's bin.
"""

import math

import numpy as np
import pytest
import torch
from diffusers import DDPMScheduler

from pixart.diffusion import GaussianDiffusion

T = 1000
TIMESTEPS = [0, 1, 500, 999, 0, 250]
B, C, H, W = len(TIMESTEPS), 3, 5, 4  # non-square on purpose


# -- independent float64 reference ----------------------------------------------------------------


def ref_beta(t: int) -> float:
    return 1e-4 + (0.02 - 1e-4) * t / (T - 1)


def ref_alpha_bar(t: int) -> float:
    """ᾱ_t = ∏_{s≤t} (1 − β_s); ᾱ_{−1} = 1."""
    return math.prod(1.0 - ref_beta(s) for s in range(t + 1))


def ref_posterior(x0, x_t, t: int):
    """q(x_{t−1} | x_t, x_0) for t ≥ 1, from prior N(√ᾱ_{t−1} x0, 1 − ᾱ_{t−1}) and likelihood N(√α_t x_{t−1}, β_t)."""
    abar_prev, beta = ref_alpha_bar(t - 1), ref_beta(t)
    prior_var = 1.0 - abar_prev
    var = 1.0 / (1.0 / prior_var + (1.0 - beta) / beta)
    mean = var * (math.sqrt(abar_prev) * x0 / prior_var + math.sqrt(1.0 - beta) * x_t / beta)
    return mean, var


def ref_cdf(z):
    """The tanh approximation of Φ used by (I)DDPM."""
    return 0.5 * (1.0 + np.tanh(math.sqrt(2.0 / math.pi) * (z + 0.044715 * z**3)))


def ref_bin_log_prob(x0, mean, std):
    """log of the N(mean, std²) mass of x0's bin [x0 − 1/255, x0 + 1/255]; the edge bins reach ∓∞."""
    upper = np.where(x0 >= 1.0, 1.0, ref_cdf((x0 + 1 / 255 - mean) / std))
    lower = np.where(x0 <= -1.0, 0.0, ref_cdf((x0 - 1 / 255 - mean) / std))
    return np.log(np.maximum(upper - lower, 1e-12))


def ref_losses(x0, noise, t_list, model_np):
    """Per-sample {"mse", "vb", "loss"} in float64 for x0/noise [B, C, H, W] (numpy)."""
    out = {"mse": [], "vb": [], "loss": []}
    for i, t in enumerate(t_list):
        abar = ref_alpha_bar(t)
        x_t = math.sqrt(abar) * x0[i] + math.sqrt(1.0 - abar) * noise[i]
        model_out = model_np(x_t, t)
        eps, v = model_out[:C], model_out[C:]
        x0_hat = (x_t - math.sqrt(1.0 - abar) * eps) / math.sqrt(abar)

        # Learned range between β_t and the posterior variance (at t = 0 that of t = 1).
        lower_var = ref_posterior(0.0, 0.0, max(t, 1))[1]
        frac = (v + 1.0) / 2.0
        model_var = np.exp(frac * math.log(ref_beta(t)) + (1.0 - frac) * math.log(lower_var))

        if t == 0:
            model_mean = x0_hat  # the t → 0 limit of the posterior mean at x̂_0: q(x_{−1} | x_0) is a point mass
            vb = -np.mean(ref_bin_log_prob(x0[i], model_mean, np.sqrt(model_var))) / math.log(2)
        else:
            true_mean, true_var = ref_posterior(x0[i], x_t, t)
            model_mean, _ = ref_posterior(x0_hat, x_t, t)
            s1, s2 = math.sqrt(true_var), np.sqrt(model_var)
            kl = np.log(s2 / s1) + (s1**2 + (true_mean - model_mean) ** 2) / (2 * s2**2) - 0.5
            vb = np.mean(kl) / math.log(2)
        mse = np.mean((noise[i] - eps) ** 2)
        out["mse"].append(mse)
        out["vb"].append(vb)
        out["loss"].append(mse + vb)
    return {k: np.array(v) for k, v in out.items()}


# -- fixtures -------------------------------------------------------------------------------------


def quantised_images(seed: int = 0) -> np.ndarray:
    """Data as PixArt sees it: 8-bit pixels mapped to [-1, 1], with both edge values present."""
    rng = np.random.default_rng(seed)
    k = rng.integers(0, 256, size=(B, C, H, W))
    k[:, 0, 0, 0], k[:, 1, 0, 0] = 0, 255
    return k / 127.5 - 1.0


def linear_model(seed: int = 1):
    """A fixed map (x_t, t) → [ε_θ, v]: a 1x1 channel mix of x_t plus a t-dependent bias, as numpy and torch."""
    rng = np.random.default_rng(seed)
    weight = np.concatenate([0.6 * np.eye(C) + 0.2 * rng.standard_normal((C, C)), 0.4 * rng.standard_normal((C, C))])
    bias = np.concatenate([0.1 * rng.standard_normal(C), 0.2 * rng.standard_normal(C)])

    def model_np(x_t, t):  # x_t [C, H, W]
        return np.einsum("oc,chw->ohw", weight, x_t) + bias[:, None, None] + 1e-4 * t

    def model_fn(x_t, t):  # x_t [B, C, H, W]
        w, b = torch.from_numpy(weight).to(x_t.dtype), torch.from_numpy(bias).to(x_t.dtype)
        return torch.einsum("oc,bchw->bohw", w, x_t) + b[:, None, None] + 1e-4 * t.to(x_t.dtype)[:, None, None, None]

    return model_np, model_fn


def loss_inputs():
    """The fixed case of the dtype / device tests: (x0, noise, the torch linear model, timesteps)."""
    x0 = torch.from_numpy(quantised_images()).float()
    noise = torch.from_numpy(np.random.default_rng(2).standard_normal((B, C, H, W))).float()
    return x0, noise, linear_model()[1], torch.tensor(TIMESTEPS)


def max_rel(a: torch.Tensor, b: np.ndarray) -> float:
    return float(np.max(np.abs(a.detach().double().numpy() - b) / np.abs(b)))


# -- 1. the loss against the reference ------------------------------------------------------------


@pytest.mark.parametrize("dtype, rtol", [(torch.float64, 1e-5), (torch.float32, 2e-4)])
def test_training_losses_match_reference(dtype, rtol):
    x0 = quantised_images()
    noise = np.random.default_rng(2).standard_normal((B, C, H, W))
    model_np, model_fn = linear_model()
    x0_t, noise_t = torch.from_numpy(x0).to(dtype), torch.from_numpy(noise).to(dtype)
    t = torch.tensor(TIMESTEPS)

    calls = []
    losses = GaussianDiffusion().training_losses(lambda x, s: calls.append(1) or model_fn(x, s), x0_t, t, noise_t)
    # The reference starts from the same (rounded) inputs, so only the computation's precision differs.
    ref = ref_losses(x0_t.double().numpy(), noise_t.double().numpy(), TIMESTEPS, model_np)

    assert len(calls) == 1
    assert set(losses) == {"loss", "mse", "vb"}
    for key in ("mse", "vb", "loss"):
        assert losses[key].shape == (B,) and losses[key].dtype == dtype
        rel = max_rel(losses[key], ref[key])
        print(f"{dtype} {key}: max relative difference {rel:.2e}")
        assert rel < rtol, (key, rel)
    # Each term is compared on its own, relative to its size; none is negligible.
    assert np.all(ref["vb"] > 1e-4) and np.all(ref["mse"] > 1e-2)


def test_vb_is_zero_for_the_true_posterior():
    """The KL vanishes when ε_θ is the true noise and v = −1 (Σ_θ = β̃_t); not at t = 0 (a likelihood)."""
    diffusion = GaussianDiffusion()
    g = torch.Generator().manual_seed(3)
    x0, noise = (torch.randn(B, C, H, W, generator=g, dtype=torch.float64) for _ in range(2))
    t = torch.tensor(TIMESTEPS)
    perfect = lambda x_t, s: torch.cat([noise, -torch.ones_like(noise)], dim=1)  # noqa: E731
    losses = diffusion.training_losses(perfect, x0, t, noise)
    positive = t > 0
    assert torch.all(losses["vb"][positive].abs() < 1e-9) and torch.all(losses["mse"] == 0)
    assert torch.all(losses["vb"][~positive] > 0.1)
    # With v = +1 (Σ_θ = β_t) it is the KL of two centred Gaussians: ½(r − 1 − ln r) / ln 2, r = β̃_t / β_t.
    wider = lambda x_t, s: torch.cat([noise, torch.ones_like(noise)], dim=1)  # noqa: E731
    vb = diffusion.training_losses(wider, x0, t, noise)["vb"]
    for i, s in enumerate(TIMESTEPS):
        if s > 0:
            r = ref_posterior(0.0, 0.0, s)[1] / ref_beta(s)
            assert vb[i].item() == pytest.approx(0.5 * (r - 1 - math.log(r)) / math.log(2), rel=1e-6, abs=1e-12)
    assert vb[TIMESTEPS.index(1)] > 0.1


# -- 2. forward process, tables and parity with diffusers -----------------------------------------


def test_q_sample_formula_and_dtype():
    diffusion = GaussianDiffusion()
    x0 = torch.from_numpy(quantised_images())
    noise = torch.from_numpy(np.random.default_rng(4).standard_normal((B, C, H, W)))
    t = torch.tensor(TIMESTEPS)
    expected = torch.stack([math.sqrt(ref_alpha_bar(s)) * x0[i] + math.sqrt(1 - ref_alpha_bar(s)) * noise[i]
                            for i, s in enumerate(TIMESTEPS)])
    torch.testing.assert_close(diffusion.q_sample(x0, t, noise), expected, rtol=1e-12, atol=1e-12)
    for dtype in (torch.float32, torch.bfloat16):
        x_t = diffusion.q_sample(x0.to(dtype), t, noise.to(dtype))
        assert x_t.dtype == dtype
        tol = 1e-2 if dtype == torch.bfloat16 else 1e-6
        torch.testing.assert_close(x_t.double(), expected, rtol=tol, atol=tol)


def test_q_sample_statistics():
    diffusion = GaussianDiffusion()
    g = torch.Generator().manual_seed(5)
    n = 100_000
    x0 = torch.full((4, 1, n, 1), 0.7)
    t = torch.tensor([0, 100, 500, 999])
    x_t = diffusion.q_sample(x0, t, torch.randn(x0.shape, generator=g))
    for i, s in enumerate(t.tolist()):
        abar = ref_alpha_bar(s)
        std = math.sqrt(1 - abar)
        assert abs(x_t[i].mean().item() - 0.7 * math.sqrt(abar)) < 5 * std / math.sqrt(n)
        assert abs(x_t[i].std().item() / std - 1) < 5 / math.sqrt(2 * n)


def test_tables_match_diffusers_and_reference():
    diffusion = GaussianDiffusion()
    scheduler = DDPMScheduler(num_train_timesteps=T, beta_schedule="linear", beta_start=1e-4, beta_end=0.02)
    assert diffusion.num_timesteps == T
    assert diffusion.alphas_cumprod.dtype == torch.float64
    torch.testing.assert_close(diffusion.alphas_cumprod.float(), scheduler.alphas_cumprod, rtol=0, atol=1e-6)
    torch.testing.assert_close(diffusion.betas.float(), scheduler.betas, rtol=0, atol=1e-8)
    ref = torch.tensor([ref_alpha_bar(s) for s in range(T)], dtype=torch.float64)
    torch.testing.assert_close(diffusion.alphas_cumprod, ref, rtol=1e-12, atol=0)


def test_learned_range_extremes_match_diffusers():
    """v = +1 → log β_t and v = −1 → log β̃_t, as diffusers' ``variance_type="learned_range"``."""
    diffusion = GaussianDiffusion()
    scheduler = DDPMScheduler(beta_schedule="linear", beta_start=1e-4, beta_end=0.02, variance_type="learned_range")
    for s in (1, 2, 10, 500, 999):
        for v in (1.0, -1.0, 0.3):
            ours = diffusion.model_log_variance(torch.tensor([v], dtype=torch.float64), torch.tensor([s]))
            theirs = scheduler._get_variance(s, predicted_variance=torch.tensor(v))
            assert abs(ours.item() - theirs.item()) < 2e-4 * abs(theirs.item()), (s, v, ours.item(), theirs.item())
    # At t = 0 the upper end agrees; the lower end is the clipped β̃_1 (diffusers clamps β̃_0 = 0 to 1e-20).
    upper0 = diffusion.model_log_variance(torch.tensor([1.0]), torch.tensor([0]))
    theirs0 = scheduler._get_variance(0, predicted_variance=torch.tensor(1.0)).item()  # float32 1 − ᾱ_0: ~2e-5 off
    assert abs(upper0.item() - theirs0) < 2e-4 * abs(theirs0)
    lower = diffusion.model_log_variance(torch.tensor([-1.0, -1.0], dtype=torch.float64), torch.tensor([0, 1]))
    assert lower[0] == lower[1] and abs(lower[0].item() - math.log(ref_posterior(0.0, 0.0, 1)[1])) < 1e-12


# -- 3. the bound trains the variance only ---------------------------------------------------------


def test_vb_gradient_flows_only_into_the_variance():
    diffusion = GaussianDiffusion()
    g = torch.Generator().manual_seed(6)
    x0 = torch.from_numpy(quantised_images()).float()
    out = (0.5 * torch.randn(B, 2 * C, H, W, generator=g)).requires_grad_()
    losses = diffusion.training_losses(lambda x_t, s: out, x0, torch.tensor(TIMESTEPS), generator=g)

    (grad_vb,) = torch.autograd.grad(losses["vb"].sum(), out, retain_graph=True)
    (grad_mse,) = torch.autograd.grad(losses["mse"].sum(), out, retain_graph=True)
    (grad_loss,) = torch.autograd.grad(losses["loss"].sum(), out)
    assert torch.all(grad_vb[:, :C] == 0)
    assert torch.all(grad_vb[:, C:].abs().flatten(1).amax(1) > 0)  # every sample, t = 0 included
    assert torch.all(grad_mse[:, C:] == 0)
    assert torch.all(grad_mse[:, :C].abs().flatten(1).amax(1) > 0)
    torch.testing.assert_close(grad_loss, grad_vb + grad_mse)


# -- 4. fixed variance -----------------------------------------------------------------------------


def test_learn_sigma_false_is_mse_only():
    diffusion = GaussianDiffusion(learn_sigma=False)
    x0 = torch.from_numpy(quantised_images())
    noise = torch.from_numpy(np.random.default_rng(7).standard_normal((B, C, H, W)))
    t = torch.tensor(TIMESTEPS)
    model_np, model_fn = linear_model()
    mse_only = lambda x_t, s: model_fn(x_t, s)[:, :C]  # noqa: E731
    losses = diffusion.training_losses(mse_only, x0, t, noise)
    ref = ref_losses(x0.numpy(), noise.numpy(), TIMESTEPS, model_np)["mse"]

    assert set(losses) == {"loss", "mse"}
    torch.testing.assert_close(losses["loss"], losses["mse"])
    assert max_rel(losses["mse"], ref) < 1e-12
    with pytest.raises(ValueError, match="expected"):
        diffusion.training_losses(model_fn, x0, t, noise)  # 2C channels without learn_sigma
    with pytest.raises(ValueError, match="expected"):
        GaussianDiffusion().training_losses(mse_only, x0, t, noise)  # C channels with learn_sigma


def test_noise_from_generator_is_reproducible():
    diffusion = GaussianDiffusion()
    x0 = torch.from_numpy(quantised_images()).float()
    _, model_fn = linear_model()
    t = torch.tensor(TIMESTEPS)

    def run(seed):
        return diffusion.training_losses(model_fn, x0, t, generator=torch.Generator().manual_seed(seed))

    torch.testing.assert_close(run(0), run(0), rtol=0, atol=0)
    assert not torch.allclose(run(0)["mse"], run(1)["mse"])


def test_low_precision_model_output_is_computed_in_x0_dtype():
    """A bf16 output (autocast) is cast up first: the loss equals that of the same values in float32."""
    diffusion = GaussianDiffusion()
    x0, noise, model_fn, t = loss_inputs()
    low = diffusion.training_losses(lambda x_t, s: model_fn(x_t, s).bfloat16(), x0, t, noise)
    ref = diffusion.training_losses(lambda x_t, s: model_fn(x_t, s).bfloat16().float(), x0, t, noise)
    for key in ref:
        assert low[key].dtype == torch.float32
        torch.testing.assert_close(low[key], ref[key], rtol=0, atol=0)


# -- 5. timestep sampling --------------------------------------------------------------------------


def test_sample_timesteps_uniform_and_reproducible():
    diffusion = GaussianDiffusion()
    n = 200_000
    t = diffusion.sample_timesteps(n, "cpu", generator=torch.Generator().manual_seed(8))
    assert t.dtype == torch.int64 and t.shape == (n,)
    assert t.min() == 0 and t.max() == T - 1
    counts = torch.bincount(t, minlength=T).double()
    chi2 = ((counts - n / T) ** 2 / (n / T)).sum().item()  # ~ χ²(999): mean 999, sd ≈ 44.7
    assert chi2 < 999 + 6 * 44.7
    assert abs(t.double().mean().item() - (T - 1) / 2) < 5 * math.sqrt((T**2 - 1) / 12 / n)

    again = diffusion.sample_timesteps(16, "cpu", generator=torch.Generator().manual_seed(9))
    assert torch.equal(again, diffusion.sample_timesteps(16, "cpu", generator=torch.Generator().manual_seed(9)))
    assert not torch.equal(again, diffusion.sample_timesteps(16, "cpu", generator=torch.Generator().manual_seed(10)))


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a GPU")
def test_cuda_matches_cpu():
    diffusion = GaussianDiffusion()
    x0, noise, model_fn, t = loss_inputs()
    cpu = diffusion.training_losses(model_fn, x0, t, noise)
    gpu = diffusion.training_losses(model_fn, x0.cuda(), t.cuda(), noise.cuda())
    for key in cpu:
        assert gpu[key].device.type == "cuda"
        torch.testing.assert_close(gpu[key].cpu(), cpu[key], rtol=1e-4, atol=1e-6)
