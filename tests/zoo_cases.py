"""Every registered activation as a test case: as registered and with the paper's recipe.

Imported by the activation tests (``from zoo_cases import VARIANTS, make``).
"""

from __future__ import annotations

import torch

import learnact

NAMES = learnact.list_activations()
LEARNABLE_NAMES = learnact.list_activations(learnable=True)
# (name, learnable) pairs: the registered function and the paper's recipe applied to it
VARIANTS = [(n, False) for n in NAMES] + [(n, True) for n in NAMES]
VARIANT_IDS = [f"{n}-{'recipe' if r else 'plain'}" for n, r in VARIANTS]
# every variant that has learnable parameters
PARAM_VARIANTS = [(n, r) for n, r in VARIANTS if r or n in LEARNABLE_NAMES]
PARAM_VARIANT_IDS = [f"{n}-{'recipe' if r else 'plain'}" for n, r in PARAM_VARIANTS]


def make(name: str, learnable: bool, **kwargs) -> torch.nn.Module:
    """Build an activation in eval mode (RReLU is random in training mode)."""
    return learnact.create_activation(name, learnable=learnable, **kwargs).eval()


def perturb_(module: torch.nn.Module, seed: int = 0, scale: float = 0.1) -> torch.nn.Module:
    """Move every parameter off its init so tests do not sit at special points."""
    gen = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for p in module.parameters():
            p.add_(scale * torch.randn(p.shape, generator=gen, dtype=p.dtype))
    return module
