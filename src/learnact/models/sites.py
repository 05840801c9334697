"""Addressable activation sites: where each activation sits in a network."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import torch
from torch import nn

__all__ = ["ActFactory", "Site", "SiteRecorder", "per_channel_sites"]

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
            torch.manual_seed(_side_stream_seed(len(self._made)))
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


def _side_stream_seed(index: int) -> int:
    return (torch.initial_seed() * 1_000_003 + index) % 2**63


def per_channel_sites(model: nn.Module, make: Callable[[int], nn.Module],
                      sample: torch.Tensor) -> dict[str, int]:
    """Give every activation site of ``model`` one parameter set per channel.

    One forward pass of ``sample`` (in eval mode, without gradients, so batch-norm
    statistics do not move) finds the channel count ``C`` of each site's input
    (dimension 1; 1 for a 1-D input); each site's module is then replaced by
    ``make(C)``, built on the site's own random stream as :class:`SiteRecorder`
    builds it. ``model.sites`` keeps its paths.

    Returns:
        site path -> its channel count.

    Raises:
        ValueError: a site the forward pass never reached.
    """
    sites = model.sites
    seen: dict[str, int] = {}
    hooks = []
    for site in sites:
        def hook(_module, args, path=site.path):
            x = args[0]
            seen.setdefault(path, int(x.shape[1]) if x.dim() > 1 else 1)
        hooks.append(model.get_submodule(site.path).register_forward_pre_hook(hook))
    was_training = model.training
    try:
        model.eval()
        with torch.no_grad():
            model(sample)
    finally:
        for h in hooks:
            h.remove()
        model.train(was_training)
    missing = [s.path for s in sites if s.path not in seen]
    if missing:
        raise ValueError(f"per-channel parameters: the sites {', '.join(missing)} were not "
                         "reached by a forward pass")
    for site in sites:
        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(_side_stream_seed(site.index))
            module = make(seen[site.path])
        old = model.get_submodule(site.path)
        device = next(iter(old.parameters()), torch.empty(0)).device
        model.set_submodule(site.path, module.to(device))
    return seen
