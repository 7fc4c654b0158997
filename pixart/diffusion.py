"""The PixArt-α training objective: improved DDPM ("IDDPM") with a learned-range variance.

PixArt-α trains with DiT's ``create_diffusion`` (itself from *Improved Denoising Diffusion
Probabilistic Models*, Nichol & Dhariwal 2021) with its defaults: ``learn_sigma=True``, the
linear noise schedule, T = 1000, ε-prediction and the plain (not rescaled) MSE loss type. This
module writes that objective down once.

Forward process
---------------
``β_t = linspace(1e-4, 0.02, T)`` (float64, t = 0 … T−1), ``α_t = 1 − β_t`` and
``ᾱ_t = ∏_{s≤t} α_s``, ``ᾱ_{−1} = 1``. Noising is a closed form::

    q(x_t | x_0) = N(√ᾱ_t x_0, (1 − ᾱ_t) I)   ⇒   x_t = √ᾱ_t x_0 + √(1 − ᾱ_t) ε,  ε ~ N(0, I)

and by Bayes the one-step posterior is Gaussian too::

    q(x_{t−1} | x_t, x_0) = N(μ̃_t, β̃_t I)
    μ̃_t = β_t √ᾱ_{t−1} / (1 − ᾱ_t) · x_0  +  (1 − ᾱ_{t−1}) √α_t / (1 − ᾱ_t) · x_t
    β̃_t = β_t (1 − ᾱ_{t−1}) / (1 − ᾱ_t)

β̃_0 = 0, so its log is "clipped": ``log β̃_clipped = log [β̃_1, β̃_1, β̃_2, …, β̃_{T−1}]``.

Model
-----
The network sees ``(x_t, t)`` and returns ``2C`` channels ``[ε_θ, v]`` (``C`` with
``learn_sigma=False``). The reverse step ``p(x_{t−1} | x_t) = N(μ_θ, Σ_θ)`` uses

* the mean of the posterior at the predicted clean image
  ``x̂_0 = (x_t − √(1 − ᾱ_t) ε_θ) / √ᾱ_t`` (not clipped): ``μ_θ = μ̃_t(x̂_0, x_t)``;
* a per-element log-variance interpolated between the two natural bounds ("learned range")::

      log Σ_θ = f · log β_t + (1 − f) · log β̃_clipped_t,   f = (v + 1) / 2.

  ``v = +1`` gives the upper bound β_t, ``v = −1`` the lower bound β̃_t; v is not clamped.

Loss (per sample, ``mean_flat`` = mean over every non-batch dimension)
--------------------------------------------------------------------
``loss = mse + vb``, with ``mse = mean_flat((ε − ε_θ)²)`` and ``vb`` one term of the
variational bound in bits per dimension, computed with the *mean frozen* (ε_θ detached), so the
bound only trains the variance and the mean is trained by the MSE alone:

* t > 0: ``vb = mean_flat(KL(q(x_{t−1} | x_t, x_0) ‖ p(x_{t−1} | x_t))) / ln 2``, the KL between
  two diagonal Gaussians ``½(−1 + log σ₂² − log σ₁² + σ₁²/σ₂² + (μ₁ − μ₂)²/σ₂²)``;
* t = 0: ``vb = −mean_flat(log p(x_0 | x_1)) / ln 2``, the decoder likelihood of data in [−1, 1]
  quantised into 256 bins of width 2/255: the Gaussian mass of ``[x − 1/255, x + 1/255]``,
  with the edge bins extended to ∓∞. The normal CDF is the usual approximation
  ``Φ(z) ≈ ½(1 + tanh(√(2/π)(z + 0.044715 z³)))`` and every log is of a value clamped at 1e-12.

Timesteps are drawn uniformly from {0, …, T−1}. (DiT would multiply ``vb`` by T/1000 only for
the "rescaled MSE" loss type, which is not PixArt's; it would be 1 at T = 1000 anyway.)

Precision: the tables are float64; each is gathered for the batch and cast to the input's dtype
and device, and the loss is computed in that dtype (DiT computes in float32).
"""

from __future__ import annotations

import math

import torch


def mean_flat(x: torch.Tensor) -> torch.Tensor:
    """Mean over every dimension but the first (batch)."""
    return x.mean(dim=tuple(range(1, x.ndim)))


def normal_kl(mean1, logvar1, mean2, logvar2) -> torch.Tensor:
    """Element-wise KL(N(mean1, exp(logvar1)) ‖ N(mean2, exp(logvar2))), in nats."""
    return 0.5 * (-1.0 + logvar2 - logvar1 + torch.exp(logvar1 - logvar2) + (mean1 - mean2) ** 2 * torch.exp(-logvar2))


def approx_standard_normal_cdf(z: torch.Tensor) -> torch.Tensor:
    """The tanh approximation of the standard normal CDF used by (I)DDPM."""
    return 0.5 * (1.0 + torch.tanh(math.sqrt(2.0 / math.pi) * (z + 0.044715 * z**3)))


def discretized_gaussian_log_likelihood(x, means, log_scales) -> torch.Tensor:
    """Element-wise log-probability of data ``x`` in [-1, 1] quantised to 256 levels (nats).

    The bin of x is ``[x - 1/255, x + 1/255]``; the lowest bin (x = -1) extends to -inf and the
    highest (x = 1) to +inf. ``log_scales`` is the log standard deviation.
    """
    centered = x - means
    inv_std = torch.exp(-log_scales)
    cdf_plus = approx_standard_normal_cdf(inv_std * (centered + 1.0 / 255.0))
    cdf_min = approx_standard_normal_cdf(inv_std * (centered - 1.0 / 255.0))
    log_cdf_plus = torch.log(cdf_plus.clamp(min=1e-12))
    log_one_minus_cdf_min = torch.log((1.0 - cdf_min).clamp(min=1e-12))
    log_cdf_delta = torch.log((cdf_plus - cdf_min).clamp(min=1e-12))
    return torch.where(x < -0.999, log_cdf_plus, torch.where(x > 0.999, log_one_minus_cdf_min, log_cdf_delta))


class GaussianDiffusion:
    """IDDPM with a linear β schedule, ε-prediction, learned-range variance and the MSE + vb loss."""

    def __init__(
        self, num_timesteps: int = 1000, beta_start: float = 1e-4, beta_end: float = 0.02, learn_sigma: bool = True
    ):
        self.num_timesteps = int(num_timesteps)
        self.learn_sigma = bool(learn_sigma)

        f64 = torch.float64
        betas = torch.linspace(beta_start, beta_end, self.num_timesteps, dtype=f64)
        alphas_cumprod = torch.cumprod(1.0 - betas, dim=0)
        alphas_cumprod_prev = torch.cat([torch.ones(1, dtype=f64), alphas_cumprod[:-1]])
        posterior_variance = betas * (1.0 - alphas_cumprod_prev) / (1.0 - alphas_cumprod)

        # Per-timestep tables [T], float64 on the CPU.
        self.betas = betas
        self.log_betas = torch.log(betas)
        self.alphas_cumprod = alphas_cumprod
        self.alphas_cumprod_prev = alphas_cumprod_prev
        self.sqrt_alphas_cumprod = torch.sqrt(alphas_cumprod)
        self.sqrt_one_minus_alphas_cumprod = torch.sqrt(1.0 - alphas_cumprod)
        self.sqrt_recip_alphas_cumprod = torch.sqrt(1.0 / alphas_cumprod)
        self.sqrt_recipm1_alphas_cumprod = torch.sqrt(1.0 / alphas_cumprod - 1.0)
        self.posterior_variance = posterior_variance
        self.posterior_log_variance_clipped = torch.log(torch.cat([posterior_variance[1:2], posterior_variance[1:]]))
        self.posterior_mean_coef1 = betas * torch.sqrt(alphas_cumprod_prev) / (1.0 - alphas_cumprod)
        self.posterior_mean_coef2 = (1.0 - alphas_cumprod_prev) * torch.sqrt(1.0 - betas) / (1.0 - alphas_cumprod)
        self._table_cache: dict = {}  # (id(table), device, dtype) -> table cast there (see _gather)

    # -- helpers --------------------------------------------------------------------------------

    def _gather(self, table: torch.Tensor, t: torch.Tensor, like: torch.Tensor) -> torch.Tensor:
        """``table[t]`` cast to ``like``'s dtype/device, shaped [B, 1, …, 1] to broadcast."""
        # The cast table is kept per (table, device, dtype): a fresh host-to-GPU copy on every call
        # is a stream synchronisation, a dozen of them per training step.
        key = (id(table), like.device, like.dtype)
        if key not in self._table_cache:
            self._table_cache[key] = table.to(device=like.device, dtype=like.dtype)
        values = self._table_cache[key][t.to(like.device)]
        return values.reshape(-1, *([1] * (like.ndim - 1)))

    def sample_timesteps(self, batch_size: int, device=None, generator: torch.Generator | None = None) -> torch.Tensor:
        """Uniform timesteps in {0, …, T−1}, int64 [B]."""
        return torch.randint(0, self.num_timesteps, (batch_size,), device=device, generator=generator)

    def q_sample(self, x0: torch.Tensor, t: torch.Tensor, noise: torch.Tensor) -> torch.Tensor:
        """``x_t = √ᾱ_t x_0 + √(1 − ᾱ_t) ε``, in x0's dtype."""
        sqrt_abar = self._gather(self.sqrt_alphas_cumprod, t, x0)
        return sqrt_abar * x0 + self._gather(self.sqrt_one_minus_alphas_cumprod, t, x0) * noise

    def q_posterior_mean(self, x0: torch.Tensor, x_t: torch.Tensor, t: torch.Tensor) -> torch.Tensor:
        """Mean μ̃_t(x_0, x_t) of q(x_{t−1} | x_t, x_0)."""
        coef1, coef2 = self._gather(self.posterior_mean_coef1, t, x_t), self._gather(self.posterior_mean_coef2, t, x_t)
        return coef1 * x0 + coef2 * x_t

    def predict_x0_from_eps(self, x_t: torch.Tensor, t: torch.Tensor, eps: torch.Tensor) -> torch.Tensor:
        """``x̂_0 = x_t / √ᾱ_t − √(1/ᾱ_t − 1) ε``."""
        recip = self._gather(self.sqrt_recip_alphas_cumprod, t, x_t)
        recipm1 = self._gather(self.sqrt_recipm1_alphas_cumprod, t, x_t)
        return recip * x_t - recipm1 * eps

    def model_log_variance(self, v: torch.Tensor, t: torch.Tensor) -> torch.Tensor:
        """Learned range: ``f · log β_t + (1 − f) · log β̃_clipped_t`` with ``f = (v + 1) / 2``."""
        frac = (v + 1.0) / 2.0
        max_log, min_log = self._gather(self.log_betas, t, v), self._gather(self.posterior_log_variance_clipped, t, v)
        return frac * max_log + (1.0 - frac) * min_log

    def vb_terms_bpd(self, eps, v, x0, x_t, t) -> torch.Tensor:
        """One variational-bound term per sample, in bits per dimension [B] (see the module docstring).

        ``eps`` (ε_θ) and ``v`` are the two halves of the model output; pass ``eps`` detached to
        freeze the mean as the training loss does.
        """
        true_mean = self.q_posterior_mean(x0, x_t, t)
        true_log_var = self._gather(self.posterior_log_variance_clipped, t, x_t)
        model_mean = self.q_posterior_mean(self.predict_x0_from_eps(x_t, t, eps), x_t, t)
        model_log_var = self.model_log_variance(v, t)

        kl = mean_flat(normal_kl(true_mean, true_log_var, model_mean, model_log_var)) / math.log(2.0)
        log_likelihood = discretized_gaussian_log_likelihood(x0, model_mean, 0.5 * model_log_var)
        decoder_nll = -mean_flat(log_likelihood) / math.log(2.0)
        return torch.where(t.to(x0.device) == 0, decoder_nll, kl)

    # -- the objective --------------------------------------------------------------------------

    def training_losses(
        self, model_fn, x0: torch.Tensor, t: torch.Tensor, noise: torch.Tensor | None = None,
        generator: torch.Generator | None = None,
    ) -> dict:
        """Per-sample losses [B]: ``{"loss", "mse", "vb"}`` (``"vb"`` only with ``learn_sigma``).

        ``model_fn(x_t, t)`` is called once and returns ``[B, 2C, …]`` (``[B, C, …]`` without
        ``learn_sigma``). ``noise`` defaults to ``randn`` drawn with ``generator``.
        """
        if noise is None:
            noise = torch.randn(x0.shape, generator=generator, device=x0.device, dtype=x0.dtype)
        x_t = self.q_sample(x0, t, noise)
        out = model_fn(x_t, t).to(x0.dtype)  # e.g. a bf16 output under autocast: the loss is in x0's dtype

        channels = x0.shape[1]
        expected = (x0.shape[0], 2 * channels if self.learn_sigma else channels, *x0.shape[2:])
        if tuple(out.shape) != expected:
            raise ValueError(
                f"model output has shape {tuple(out.shape)}, expected {expected} (learn_sigma={self.learn_sigma})"
            )

        if not self.learn_sigma:
            mse = mean_flat((noise - out) ** 2)
            return {"loss": mse, "mse": mse}

        eps, v = torch.split(out, channels, dim=1)
        mse = mean_flat((noise - eps) ** 2)
        # The bound trains only the variance: the mean it sees is built from a detached ε_θ.
        vb = self.vb_terms_bpd(eps.detach(), v, x0, x_t, t)
        return {"loss": mse + vb, "mse": mse, "vb": vb}
