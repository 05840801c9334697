"""Addressable activation sites: where each activation sits in a network."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import torch
from torch import nn

__all__ = ["ActFactory", "Site", "SiteRecorder"]

ActFactory = Callable[[], nn.Module]


@dataclass(frozen=True)
class Site:
    """One activation site.

    Attributes:
        index: position from input to output (0-based).
        path: the module path inside the model, e.g. ``"groups.0.1.act1"``.
        block: index of the repeating block it belongs to, or ``None`` for
            sites outside blocks (LeNets, a WRN's final activation).
        position: 1, 2, ... for the activations of a block in order (the
            paper's A-1/A-2; XResNet's bottlenecks have a third), or ``None``
            outside blocks.
    """

    index: int
    path: str
    block: int | None
    position: int | None


class SiteRecorder:
    """Builds one activation per site and remembers its block and position.

    Activations are created on their own random stream: the model's other
    weights are the same whichever activation is used (see :meth:`__call__`).
    """

    def __init__(self, factory: ActFactory) -> None:
        if not callable(factory):
            raise TypeError(f"the activation factory must be callable, got {factory!r}")
        self.factory = factory
        self._made: list[tuple[nn.Module, int | None, int | None]] = []

    def __call__(self, block: int | None = None, position: int | None = None) -> nn.Module:
        # The activation is built on a side stream of random numbers (derived from the
        # seed and the site's index), so whatever it draws leaves the rest of the model's
        # initialisation untouched: runs of different activations with one seed start
        # from the same weights everywhere else, and paired comparisons are paired.
        with torch.random.fork_rng(devices=[]):
            torch.manual_seed((torch.initial_seed() * 1_000_003 + len(self._made)) % 2**63)
            module = self.factory()
        if not isinstance(module, nn.Module):
            raise TypeError(f"the activation factory returned {type(module).__name__}")
        if any(module is m for m, _, _ in self._made):
            raise ValueError("the activation factory must return a new module on every call")
        self._made.append((module, block, position))
        return module

    def activation_modules(self) -> set[int]:
        """``id()`` of every module inside an activation built so far (to skip in init loops)."""
        return {id(sub) for m, _, _ in self._made for sub in m.modules()}

    def sites(self, model: nn.Module) -> list[Site]:
        """Resolve the recorded modules to their paths in ``model``, in build order."""
        paths = {id(m): p for p, m in model.named_modules()}
        return [Site(i, paths[id(m)], b, pos) for i, (m, b, pos) in enumerate(self._made)]
