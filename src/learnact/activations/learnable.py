"""The paper's activations: DP ReLU, Dual Line and the general recipe.

Reference: "Learn-able parameter guided Activation Functions" (arXiv
1912.10752, 2019), sections 2 and 4. Parameters are named by meaning because
the paper's Greek letters for the two slopes are inconsistent.
"""

from __future__ import annotations

import torch
from torch import Tensor, nn

from ..errors import ConfigError
from ..kernels import dispatch
from ._base import ParametricActivation, packed_row
from .registry import get_spec, register_module_class, shape_changing_classes

__all__ = ["DPReLU", "DualLine", "Learnable"]


class DPReLU(ParametricActivation):
    r"""Dual Parametric ReLU: a learnable slope on both sides of zero.

    .. math::
        \mathrm{DPReLU}(x) = \begin{cases}
            a_+ \, x & \text{if } x \ge 0 \\
            a_- \, x & \text{if } x < 0
        \end{cases}

    where :math:`a_+` is ``pos_slope`` and :math:`a_-` is ``neg_slope``.

    Args:
        num_parameters: number of values per parameter to learn: 1 (default,
            the paper's setting) or the number of input channels ``C``.
        pos_slope_init: initial positive-side slope. Default: 1.0.
        neg_slope_init: initial negative-side slope. Default: 0.01, as in
            Leaky ReLU and the paper.
        device: device of the parameters.
        dtype: dtype of the parameters; the forward pass always returns the
            input's dtype.
        inplace: accepted and ignored, so the class works as timm's
            ``act_layer(inplace=True)``; the output is always a new tensor
            (the backward needs the unmodified input).

    Shape:
        - Input: :math:`(*)`; with ``num_parameters=C`` the channel dimension
          is dim 1 (dim 0 for 1-D inputs), as for :class:`torch.nn.PReLU`.
        - Output: :math:`(*)`, same shape as the input.

    Attributes:
        weight (Tensor): the one learnable parameter, shape
            ``(2 * num_parameters,)``: the positive-side slopes, then the
            negative-side slopes.
        pos_slope (Tensor): the positive-side slope, a live view of ``weight``
            of shape ``(num_parameters,)``. Assigning to it copies the values
            into ``weight``. Its gradient is the same part of ``weight.grad``.
        neg_slope (Tensor): the negative-side slope, likewise.

    The values share one parameter so that the fused backward feeds one
    gradient accumulator rather than two (at LeNet sizes the accumulators were
    about a quarter of a Dual Line call). State dicts with separate
    ``pos_slope``/``neg_slope`` entries (learnact 0.2) still load.

    .. note::
        Weight decay pulls the slopes towards zero; keep these parameters out
        of it (see :func:`learnact.param_groups`).

    .. note::
        In eager mode (float32/bfloat16/float16) the forward and backward run
        a fused kernel that saves only ``x`` (and the parameter): C++ on the CPU, Triton on CUDA
        when ``triton`` is installed. See :mod:`learnact.kernels.dispatch` for
        the modes and fallbacks.

    Examples::

        >>> m = learnact.DPReLU()
        >>> m(torch.tensor([-2.0, 0.0, 3.0]))
        tensor([-0.0200,  0.0000,  3.0000], grad_fn=<DualLineBackward>)
    """

    def __init__(
        self,
        num_parameters: int = 1,
        pos_slope_init: float = 1.0,
        neg_slope_init: float = 0.01,
        *,
        device: torch.device | str | None = None,
        dtype: torch.dtype | None = None,
        inplace: bool = False,
    ) -> None:
        super().__init__(
            num_parameters,
            {"pos_slope": pos_slope_init, "neg_slope": neg_slope_init},
            device=device,
            dtype=dtype,
        )

    packed = True
    pos_slope = packed_row("pos_slope", 0, "Positive-side slopes: a view of weight.")
    neg_slope = packed_row("neg_slope", 1, "Negative-side slopes: a view of weight.")

    def forward(self, x: Tensor) -> Tensor:
        # _parameters directly: nn.Module.__getattr__ costs about 1 us per call
        return dispatch.run_dual_line(x, self._parameters["weight"], 2)


class DualLine(ParametricActivation):
    r"""Dual Line: DP ReLU plus a learnable mean shift.

    .. math::
        \mathrm{DualLine}(x) = \begin{cases}
            a_+ \, x + m & \text{if } x \ge 0 \\
            a_- \, x + m & \text{if } x < 0
        \end{cases}

    where :math:`a_+` is ``pos_slope``, :math:`a_-` is ``neg_slope`` and
    :math:`m` is ``mean_shift``.

    Args:
        num_parameters: 1 (default, the paper's setting) or the number of
            input channels ``C``.
        pos_slope_init: initial positive-side slope. Default: 1.0.
        neg_slope_init: initial negative-side slope. Default: 0.01.
        mean_shift_init: initial mean shift. Default: -0.22, TReLU's constant
            shift as its code computes it: threshold (-0.25) minus mean shift
            (-0.03), as in the paper.
        device: device of the parameters.
        dtype: dtype of the parameters; the output keeps the input's dtype.
        inplace: accepted and ignored (timm's ``act_layer(inplace=True)``);
            the output is always a new tensor.

    Shape:
        - Input: :math:`(*)`; with ``num_parameters=C`` the channel dimension
          is dim 1 (dim 0 for 1-D inputs).
        - Output: :math:`(*)`, same shape as the input.

    Attributes:
        weight (Tensor): the one learnable parameter, shape
            ``(3 * num_parameters,)``: the positive-side slopes, the
            negative-side slopes, then the mean shifts.
        pos_slope (Tensor): live view of ``weight``, shape ``(num_parameters,)``
            (assigning to it copies the values into ``weight``; its gradient is
            the same part of ``weight.grad``).
        neg_slope (Tensor): likewise.
        mean_shift (Tensor): likewise.

    As in :class:`DPReLU`, the values share one parameter (one gradient
    accumulator in the backward), and state dicts with one entry per name
    (learnact 0.2) still load.

    .. note::
        Keep these parameters out of weight decay (see
        :func:`learnact.param_groups`): decay drags the mean shift to zero and
        the slopes towards a dead unit.

    .. note::
        In eager mode (float32/bfloat16/float16) the forward and backward run
        a fused kernel that saves only ``x`` (and the parameter): C++ on the CPU, Triton on CUDA
        when ``triton`` is installed. See :mod:`learnact.kernels.dispatch` for
        the modes and fallbacks.

    Examples::

        >>> m = learnact.DualLine()
        >>> m(torch.tensor([-2.0, 0.0, 3.0]))
        tensor([-0.2400, -0.2200,  2.7800], grad_fn=<DualLineBackward>)
    """

    def __init__(
        self,
        num_parameters: int = 1,
        pos_slope_init: float = 1.0,
        neg_slope_init: float = 0.01,
        mean_shift_init: float = -0.22,
        *,
        device: torch.device | str | None = None,
        dtype: torch.dtype | None = None,
        inplace: bool = False,
    ) -> None:
        super().__init__(
            num_parameters,
            {
                "pos_slope": pos_slope_init,
                "neg_slope": neg_slope_init,
                "mean_shift": mean_shift_init,
            },
            device=device,
            dtype=dtype,
        )

    packed = True
    pos_slope = packed_row("pos_slope", 0, "Positive-side slopes: a view of weight.")
    neg_slope = packed_row("neg_slope", 1, "Negative-side slopes: a view of weight.")
    mean_shift = packed_row("mean_shift", 2, "Mean shifts: a view of weight.")

    def forward(self, x: Tensor) -> Tensor:
        # as in DPReLU.forward: no nn.Module.__getattr__
        return dispatch.run_dual_line(x, self._parameters["weight"], 3)


class Learnable(ParametricActivation):
    r"""The paper's general recipe: give any activation a learnable positive slope.

    .. math::
        f(x) = \begin{cases}
            a_+ \, x & \text{if } x \ge 0 \\
            G(x) & \text{otherwise}
        \end{cases} \; + \; m

    where :math:`G` is the wrapped ``base`` activation, :math:`a_+` is
    ``pos_slope`` and the mean shift :math:`m` is present only when
    ``mean_shift=True``.

    ``Learnable(PReLU(init=0.01))`` is Dual Line and, with
    ``mean_shift=False``, DP ReLU, exactly: all three take the positive branch
    for :math:`x \ge 0` (``-0.0`` included), as the paper's DP ReLU does, so
    they agree in value and gradient at exactly 0 (the derivative there is
    :math:`a_+`).

    Args:
        base: the activation :math:`G`, as a module or a registry name (see
            :func:`learnact.list_activations`). Its own parameters, if any,
            stay learnable.
        mean_shift: add a learnable mean shift. Default: ``True``.
        num_parameters: 1 (default) or the number of input channels ``C``;
            applies to ``pos_slope`` and ``mean_shift``.
        pos_slope_init: initial positive-side slope. Default: 1.0.
        mean_shift_init: initial mean shift. Default: -0.22 (as Dual Line).
        device: device of the new parameters.
        dtype: dtype of the new parameters; the output keeps the input dtype.
        inplace: accepted and ignored (timm's ``act_layer(inplace=True)``);
            the output is always a new tensor. An in-place ``base`` is refused.

    Shape:
        - Input: :math:`(*)`; with ``num_parameters=C`` the channel dimension
          is dim 1 (dim 0 for 1-D inputs).
        - Output: :math:`(*)`, same shape as the input.

    Attributes:
        base (nn.Module): the wrapped activation :math:`G`.
        pos_slope (Tensor): shape ``(num_parameters,)``.
        mean_shift (Tensor or None): shape ``(num_parameters,)``, or ``None``
            when ``mean_shift=False``.

    Raises:
        TypeError: ``base`` is neither a module nor a string.
        ValueError: ``base`` is an unknown name, an in-place module (an
            in-place :math:`G` would overwrite the input the recipe still
            needs) or a shape-changing one (CReLU, Maxout: no element of
            :math:`G(x)` stands for an element of :math:`x`).
        TypeError: an init is not one real number (per-channel values are
            set on the parameter after construction).

    .. note::
        :math:`G` runs as itself; in eager mode the recipe around it is one
        fused sweep forward and one backward (C++ on the CPU, Triton on CUDA),
        which saves only ``x`` and passes the gradient for :math:`G(x)` back
        to autograd. See :mod:`learnact.kernels.dispatch`.

    Examples::

        >>> m = learnact.Learnable("gelu")
        >>> m(torch.tensor([-1.0, 2.0]))
        tensor([-0.3787,  1.7800], grad_fn=<RecipeInlineBackward>)
    """

    def __init__(
        self,
        base: nn.Module | str,
        *,
        mean_shift: bool = True,
        num_parameters: int = 1,
        pos_slope_init: float = 1.0,
        mean_shift_init: float = -0.22,
        device: torch.device | str | None = None,
        dtype: torch.dtype | None = None,
        inplace: bool = False,
    ) -> None:
        if isinstance(base, str):
            spec = get_spec(base)
            if spec.shape_changing:
                _refuse_shape_changing(f"{spec.name} ({spec.formula})")
            base = spec.build()
        elif not isinstance(base, nn.Module):
            raise TypeError(
                f"base must be an nn.Module or an activation name, got {type(base).__name__}"
            )
        elif isinstance(base, shape_changing_classes()):
            _refuse_shape_changing(repr(base))
        if getattr(base, "inplace", False):
            raise ValueError(
                f"base {base!r} works in place; the recipe needs the unmodified input, "
                "so build it with inplace=False"
            )
        if not isinstance(mean_shift, bool):
            raise TypeError(f"mean_shift must be a bool, got {mean_shift!r}")
        inits = {"pos_slope": pos_slope_init}
        if mean_shift:
            inits["mean_shift"] = mean_shift_init
        super().__init__(num_parameters, inits, device=device, dtype=dtype)
        self.base = base
        self.use_mean_shift = mean_shift
        if not mean_shift:
            self.register_parameter("mean_shift", None)

    def reset_parameters(self) -> None:
        """Reset ``pos_slope``, ``mean_shift`` and the base's own parameters."""
        super().reset_parameters()
        # the base is attached after the first reset, which runs inside __init__
        base = self._modules.get("base")
        if base is not None and hasattr(base, "reset_parameters"):
            base.reset_parameters()

    def forward(self, x: Tensor) -> Tensor:
        p = self._parameters  # as in DPReLU.forward: no __getattr__ per name
        shift = p["mean_shift"] if self.use_mean_shift else None
        return dispatch.run_recipe(x, self._modules["base"], p["pos_slope"], shift)

    def extra_repr(self) -> str:
        parts = [f"mean_shift={self.use_mean_shift}", f"num_parameters={self.num_parameters}"]
        parts.append(f"pos_slope_init={self._inits['pos_slope']}")
        if self.use_mean_shift:
            parts.append(f"mean_shift_init={self._inits['mean_shift']}")
        return ", ".join(parts)


def _refuse_shape_changing(what: str) -> None:
    raise ConfigError(
        f"Learnable: base {what} changes the channel count, so the recipe cannot choose "
        "between a*x and G(x) element by element; wrap an activation that keeps the shape")


register_module_class(Learnable)  # is_activation() counts the recipe too
