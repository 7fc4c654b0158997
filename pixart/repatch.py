"""Grow a trained PixArt's patch size, so it draws at a higher resolution with the same token grid.

Why: a model trained at 64 px with patch 2 sees an 8 × 8 grid of tokens. Fine-tuned at 128 px with
the same patch it sees 16 × 16 tokens, and our small world model then draws ragged, fragmented
shapes (docs/world.md, "Why stage 3 loses quality"). With patch 4 at 128 px the grid is 8 × 8
again, each token covering the same part of the image as before, and a step costs what a 64 px
step costs. (PixArt-α keeps patch 2 and grows the grid; this is our route for tiny models.)

The new weights are chosen so that nothing the model knew is lost: with patch ``p·f`` at ``f``
times the latent size,

    new_model(up(x), t, y) == up(old_model(x, t, y))        up = nearest-neighbour upsampling by f

exactly (tested). That takes three changes, and every other weight is copied:
- patch embedding ``W'[o, c, k, l] = W[o, c, k // f, l // f] / f²``: each old latent pixel is now
  f × f pixels, and the sum over them, divided by f², is the old sum;
- final layer: the row for output pixel ``(k, l)`` of a patch is the old row for ``(k // f, l // f)``,
  so every old output pixel is drawn as an f × f block;
- the positional embedding's ``lewei_scale`` is set so that the token at grid position ``(i, j)``
  gets the same embedding as before (``base_size / lewei_scale`` is kept).
Fine-tuning at the new resolution then teaches the model the finer detail inside each token; at
the start it draws its old images, upsampled (the noise's statistics per token differ at first:
f² independent latent pixels per old one, which fine-tuning absorbs).

The same idea as FlexiViT's patch-embedding resize (Beyer et al. 2023), in its simplest exact form;
no library offers it for diffusion transformers, hence this module.
"""

from __future__ import annotations

import torch

from pixart.model import PixArt


def repatch(model: PixArt, factor: int, input_size: int | None = None) -> PixArt:
    """A copy of ``model`` with a ``factor`` times larger patch: it draws at ``factor`` times the
    latent size on the same token grid. ``input_size`` (the new config's base latent side, which
    only sets the default sampling size) defaults to ``factor`` times the old one."""
    if factor < 1 or int(factor) != factor:
        raise ValueError(f"factor must be a positive integer, got {factor!r}")
    c = model.config
    f = int(factor)
    config = c.replace(patch_size=c.patch_size * f, input_size=input_size or c.input_size * f)
    # A grid of g tokens gets positions arange(g) · base_size / (g · lewei_scale): keeping
    # base_size / lewei_scale gives every token its old embedding.
    config = config.replace(lewei_scale=c.lewei_scale * config.base_size / c.base_size)
    new = PixArt(config).to(next(model.parameters()).dtype)
    new.has_null_caption = model.has_null_caption
    sd = {k: v.clone() for k, v in model.state_dict().items() if k != "pos_embed"}

    w = sd["x_embedder.proj.weight"]  # [D, C_in, p, p]
    sd["x_embedder.proj.weight"] = w.repeat_interleave(f, dim=2).repeat_interleave(f, dim=3) / f**2

    p, out_c = c.patch_size, c.out_channels
    old_rows = torch.arange(p * p * out_c).reshape(p, p, out_c)  # the unpatchify layout: (k, l, channel)
    rows = old_rows.repeat_interleave(f, dim=0).repeat_interleave(f, dim=1).reshape(-1)
    sd["final_layer.linear.weight"] = sd["final_layer.linear.weight"][rows]
    sd["final_layer.linear.bias"] = sd["final_layer.linear.bias"][rows]

    sd["pos_embed"] = new.pos_embed
    new.load_state_dict(sd, strict=True)
    return new
