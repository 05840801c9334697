"""What each activation site outputs: statistics on a fixed probe batch.

The paper (§3.4) says Dual Line's mean shift pushes mean activations towards
zero. Learned parameters cannot show that; the activations themselves can.
:func:`site_stats` runs the model once, in eval mode and without gradients to
the weights, on a probe batch and records per site:

- ``mean`` and ``std`` of the site's output;
- ``frac_neg``: the share of outputs below zero;
- ``frac_zero_grad``: the share of inputs where the gradient of the site's
  summed output is exactly zero (dead units: ReLU's negative side, a clamp's
  flat parts); for an elementwise activation that is its own derivative;
- ``hist``: counts of outputs in :data:`HIST_EDGES`' 16 bins over [-4, 4],
  with one count below and one above (18 numbers).

The probe batch is the same test images for every run of a seed
(:func:`probe_indices`), so runs of different activations are paired.
"""

from __future__ import annotations

import torch
from torch import Tensor, nn

__all__ = ["HIST_EDGES", "PROBE_SIZE", "probe_indices", "site_stats"]

PROBE_SIZE = 256
HIST_EDGES = tuple(-4.0 + 0.5 * i for i in range(17))


def probe_indices(n: int, seed: int, size: int = PROBE_SIZE) -> Tensor:
    """``min(size, n)`` indices into ``n`` images, the same for every run of ``seed``."""
    gen = torch.Generator().manual_seed(7_919 + seed)
    return torch.randperm(n, generator=gen)[:min(size, n)]


def _hist(y: Tensor) -> list[int]:
    edges = torch.tensor(HIST_EDGES, dtype=y.dtype, device=y.device)
    flat = y.flatten()
    inner = torch.histc(flat, bins=len(HIST_EDGES) - 1, min=HIST_EDGES[0], max=HIST_EDGES[-1])
    below = int((flat < edges[0]).sum())
    above = int((flat > edges[-1]).sum())
    return [below, *[int(v) for v in inner.tolist()], above]


def site_stats(model: nn.Module, x: Tensor) -> list[tuple]:
    """One row per site of ``model.sites``: ``(site_index, mean, std, frac_neg,
    frac_zero_grad, hist)``, from one forward pass over ``x`` in eval mode.

    The model's mode and parameters are left as they were; no parameter gets a
    gradient. A model without ``sites`` gives no rows.
    """
    sites = getattr(model, "sites", [])
    if not sites:
        return []
    modules = dict(model.named_modules())
    captured: dict[int, tuple[Tensor, Tensor]] = {}
    hooks = [modules[s.path].register_forward_hook(
        lambda _m, inp, out, i=s.index: captured.__setitem__(i, (inp[0].detach(),
                                                                 out.detach())))
        for s in sites]
    was = model.training
    model.eval()
    try:
        with torch.no_grad():
            model(x)
    finally:
        for h in hooks:
            h.remove()
    rows = []
    try:
        for s in sites:
            inp, out = captured[s.index]
            y = out.float()
            xg = inp.detach().clone().requires_grad_(True)
            with torch.enable_grad():
                (g,) = torch.autograd.grad(modules[s.path](xg).sum(), xg)
            rows.append((s.index, float(y.mean()), float(y.std()) if y.numel() > 1 else 0.0,
                         float((y < 0).float().mean()), float((g == 0).float().mean()),
                         _hist(y)))
    finally:
        model.train(was)
    return rows
