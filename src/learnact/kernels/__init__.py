"""Fused kernels and the dispatch that picks them (see :mod:`learnact.kernels.dispatch`)."""

from .dispatch import MODES, get_mode, kernel_mode

__all__ = ["MODES", "get_mode", "kernel_mode"]
