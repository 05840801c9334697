r"""Reference maths for every activation learnact defines itself.

These pure functions are the oracle: modules call them, kernels are tested
against them. Parameters arrive already shaped to broadcast against ``x``
(see :func:`channel_view`), so every function here is shape-agnostic.

The functions never branch in Python on tensor values. Where a formula has
branches, both sides are computed with arguments that stay finite, so that
the branch *not* taken can never inject ``inf``/``nan`` into a gradient.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor

__all__ = [
    "apl",
    "aria2",
    "bent_identity",
    "channel_dim",
    "channel_view",
    "crelu",
    "dp_relu",
    "dual_line",
    "elish",
    "eswish",
    "expm1",
    "flexible_relu",
    "ftswish_plus",
    "general_relu",
    "hard_elish",
    "isrlu",
    "isru",
    "learnable_recipe",
    "lecun_tanh",
    "lisht",
    "maxout",
    "mpelu",
    "nlrelu",
    "pelu",
    "penalized_tanh",
    "probact",
    "require_floating",
    "sine_relu",
    "slaf",
    "soft_clipping",
    "soft_exponential",
    "sqnl",
    "srelu",
    "swish_beta",
    "trelu",
    "weighted_tanh",
]


def channel_dim(num: int, x: Tensor) -> int:
    """The dim of ``x`` that a ``num``-channel parameter runs along, or ``ValueError``.

    Dim 1 for inputs with two or more dimensions, dim 0 for 1-D inputs (as
    :class:`torch.nn.PReLU`); call only with ``num > 1``.
    """
    if x.dim() == 0:
        raise ValueError(
            f"a per-channel activation with num_parameters={num} needs an input with a "
            "channel dimension, got a 0-d tensor"
        )
    ch = 1 if x.dim() >= 2 else 0
    if x.shape[ch] != num:
        raise ValueError(
            f"activation has num_parameters={num} but the input has {x.shape[ch]} "
            f"channels on dim {ch} (input shape {tuple(x.shape)})"
        )
    return ch


def require_floating(x: Tensor) -> None:
    """``TypeError`` unless ``x`` is a floating-point tensor.

    Learnable parameters cast to an integer input's dtype would be truncated
    (a slope of 0.01 becomes 0), so integer and bool inputs are refused, as
    :class:`torch.nn.PReLU` refuses them.
    """
    if not x.is_floating_point():
        raise TypeError(f"a learnable activation needs a floating-point input, got {x.dtype}; "
                        "convert it first (x.float())")


def channel_view(param: Tensor, x: Tensor) -> Tensor:
    """Reshape a ``(C,)`` parameter so it broadcasts over ``x`` on dim 1.

    Follows :class:`torch.nn.PReLU`: a single-value parameter is a scalar for
    any input; with ``C > 1`` the channel dimension is dim 1 for inputs with
    two or more dimensions and dim 0 for 1-D inputs. The result is a view
    cast to ``x``'s dtype so that low-precision inputs stay low precision.
    An integer or bool ``x`` raises ``TypeError``.
    """
    require_floating(x)
    num = param.shape[-1]
    lead = param.shape[:-1]  # e.g. APL's hinge axis
    if num == 1:
        out = param.reshape(*lead) if lead else param.reshape(())
        if lead:
            out = out.reshape(*lead, *([1] * x.dim()))
        return out.to(x.dtype)
    ch = channel_dim(num, x)
    shape = [1] * x.dim()
    shape[ch] = num
    return param.reshape(*lead, *shape).to(x.dtype)


def expm1(x: Tensor) -> Tensor:
    """``exp(x) - 1``: :func:`torch.expm1`, except while exporting to ONNX.

    ONNX has no ``Expm1`` operator and the TorchScript exporter rejects
    ``aten::expm1``; exported graphs use ``exp(x) - 1``, which differs only by
    rounding near 0 (an absolute error of about one float32 epsilon).
    """
    if torch.onnx.is_in_onnx_export():
        return torch.exp(x) - 1.0
    return torch.expm1(x)


# --------------------------------------------------------------------------- paper


def dp_relu(x: Tensor, pos_slope: Tensor, neg_slope: Tensor) -> Tensor:
    r"""DP ReLU: :math:`f(x) = a_+ x` for :math:`x \ge 0`, :math:`a_- x` otherwise.

    The slope is selected, then multiplied: each element's ``g*x`` reaches only
    the gradient of the slope its branch uses, so ``x = ±inf`` cannot put
    ``0 * inf = nan`` into the other slope's gradient. NaN fails ``x >= 0`` and
    takes the negative branch. The fused kernels follow the same rule.
    """
    return x * torch.where(x >= 0, pos_slope, neg_slope)


def dual_line(x: Tensor, pos_slope: Tensor, neg_slope: Tensor, mean_shift: Tensor) -> Tensor:
    r"""Dual Line: :math:`f(x) = \mathrm{DPReLU}(x) + m`."""
    return dp_relu(x, pos_slope, neg_slope) + mean_shift


def learnable_recipe(
    x: Tensor, gx: Tensor, pos_slope: Tensor, mean_shift: Tensor | None = None
) -> Tensor:
    r"""The paper's general recipe (section 4) applied to precomputed ``gx = G(x)``.

    :math:`f(x) = a_+ x` for :math:`x \ge 0`, :math:`G(x)` elsewhere, plus
    :math:`m` when ``mean_shift`` is given. The positive branch includes 0 (and
    ``-0.0``), as in :func:`dp_relu`, so the recipe around PReLU is DP ReLU
    exactly, at 0 too. NaN fails ``x >= 0`` and takes ``G``'s branch, and
    ``a_+``'s gradient sums ``g*x`` over the positive branch only (``x`` is
    zeroed elsewhere before the product, so ``-inf`` and NaN cannot leak into
    it). For the same rule in ``G``'s own gradient, ``G`` must see no
    ``+inf``: :class:`learnact.Learnable` computes ``G`` on ``x`` with
    ``+inf`` set to 0 when gradients are recorded, which changes no output.
    """
    pos = x >= 0
    out = torch.where(pos, pos_slope * torch.where(pos, x, 0.0), gx)
    return out if mean_shift is None else out + mean_shift


# --------------------------------------------------------------------------- fixed zoo


def aria2(x: Tensor, alpha: float = 1.5, beta: float = 2.0) -> Tensor:
    r"""ARiA2: :math:`x\,(1 + e^{-\beta x})^{-\alpha} = x\,\sigma(\beta x)^{\alpha}`."""
    # exp(alpha * logsigmoid) is the stable form of sigmoid**alpha
    return x * torch.exp(alpha * F.logsigmoid(beta * x))


def bent_identity(x: Tensor) -> Tensor:
    r"""Bent identity: :math:`(\sqrt{x^2 + 1} - 1)/2 + x`."""
    return (torch.sqrt(x * x + 1.0) - 1.0) * 0.5 + x


def elish(x: Tensor) -> Tensor:
    r"""ELiSH: :math:`x\sigma(x)` for :math:`x \ge 0`, :math:`(e^x - 1)\sigma(x)` otherwise."""
    s = torch.sigmoid(x)
    return torch.where(x >= 0, x * s, expm1(x.clamp(max=0)) * s)


def hard_elish(x: Tensor) -> Tensor:
    r"""Hard ELiSH: ELiSH with the hard sigmoid :math:`\max(0, \min(1, (x+1)/2))`."""
    h = ((x + 1.0) * 0.5).clamp(0.0, 1.0)
    return torch.where(x >= 0, x * h, expm1(x.clamp(max=0)) * h)


def eswish(x: Tensor, beta: float = 1.375) -> Tensor:
    r"""E-swish: :math:`\beta x \sigma(x)`."""
    return beta * x * torch.sigmoid(x)


def isru(x: Tensor, alpha: float = 1.0) -> Tensor:
    r"""ISRU: :math:`x / \sqrt{1 + \alpha x^2}`."""
    return x * torch.rsqrt(1.0 + alpha * x * x)


def isrlu(x: Tensor, alpha: float = 1.0) -> Tensor:
    r"""ISRLU: :math:`x` for :math:`x \ge 0`, :math:`x / \sqrt{1 + \alpha x^2}` otherwise."""
    return torch.where(x >= 0, x, x * torch.rsqrt(1.0 + alpha * x * x))


def lecun_tanh(x: Tensor) -> Tensor:
    r"""LeCun's scaled tanh: :math:`1.7159 \tanh(2x/3)`."""
    return 1.7159 * torch.tanh(x * (2.0 / 3.0))


def lisht(x: Tensor) -> Tensor:
    r"""LiSHT: :math:`x \tanh(x)`."""
    return x * torch.tanh(x)


def sine_relu(x: Tensor, epsilon: float = 0.0025) -> Tensor:
    r"""SineReLU: :math:`x` for :math:`x > 0`, :math:`\epsilon(\sin x - \cos x)` otherwise."""
    return torch.where(x > 0, x, epsilon * (torch.sin(x) - torch.cos(x)))


def soft_clipping(x: Tensor, alpha: float = 0.5) -> Tensor:
    r"""Soft clipping: :math:`\frac{1}{\alpha}\log\frac{1 + e^{\alpha x}}{1 + e^{\alpha(x-1)}}`."""
    # difference of softplus terms: the stable form of the log ratio
    return (F.softplus(alpha * x) - F.softplus(alpha * (x - 1.0))) / alpha


def sqnl(x: Tensor) -> Tensor:
    r"""SQNL: :math:`x - x|x|/4` on :math:`[-2, 2]`, saturating at :math:`\pm 1` outside."""
    c = x.clamp(-2.0, 2.0)
    return c - c * c.abs() * 0.25


def weighted_tanh(x: Tensor, weight: float = 0.5) -> Tensor:
    r"""Weighted tanh: :math:`\tanh(w x)`."""
    return torch.tanh(weight * x)


def ftswish_plus(x: Tensor, threshold: float = -0.25, mean_shift: float = -0.1) -> Tensor:
    r"""FTSwish+: :math:`\max(0, x)\,\sigma(x) + T - m`."""
    return F.relu(x) * torch.sigmoid(x) + (threshold - mean_shift)


def trelu(x: Tensor, threshold: float = -0.25, mean_shift: float = -0.03) -> Tensor:
    r"""TReLU as its source computes it: :math:`\max(0, x) + T - m`.

    With the defaults :math:`T = -0.25, m = -0.03` this is :math:`\max(0, x) - 0.22`,
    whose constant is Dual Line's initial mean shift.
    """
    return F.relu(x) + (threshold - mean_shift)

def general_relu(x: Tensor, leak: float = 0.1, sub: float = 0.4, maxv: float = 6.0) -> Tensor:
    r"""fastai's General ReLU: :math:`\min(\mathrm{LeakyReLU}_{leak}(x) - sub,\ maxv)`."""
    return (F.leaky_relu(x, leak) - sub).clamp(max=maxv)


# --------------------------------------------------------------------------- learnable zoo


def soft_exponential(x: Tensor, alpha: Tensor) -> Tensor:
    r"""Soft exponential, continuous in its learnable :math:`\alpha`.

    .. math::
        f(x) = \begin{cases}
            -\log(1 - \alpha(x + \alpha))/\alpha & \alpha < 0 \\
            x & \alpha = 0 \\
            (e^{\alpha x} - 1)/\alpha + \alpha & \alpha > 0
        \end{cases}

    At exactly :math:`\alpha = 0` the value is :math:`x` but the first-order
    term :math:`\alpha(x^2/2 + 1)` is kept, so that :math:`\partial f/\partial\alpha`
    is the true one-sided limit rather than 0; a naive ``where`` would leave an
    :math:`\alpha` initialised at 0 stuck there forever. (The function is not
    twice differentiable in :math:`\alpha` at 0.)

    For :math:`\alpha < 0` the log is only defined for
    :math:`x > |\alpha| - 1/|\alpha|`; below that its argument is clamped to a
    floor of ``1e-6`` so that outputs stay finite.
    """
    pos = alpha > 0
    neg = alpha < 0
    a = torch.where(alpha == 0, 1.0, alpha)
    exp_arg = torch.where(pos, a * x, 0.0)
    exp_branch = expm1(exp_arg) / a + alpha
    # log of 1 - a(x + a), floored at 1e-6 (outside the domain) in every dtype
    log_arg = torch.where(neg, 1.0 - a * (x + a), 1.0)
    log_branch = -torch.log(log_arg.clamp(min=1e-6)) / a
    zero_branch = x + alpha * (0.5 * x * x + 1.0)
    return torch.where(pos, exp_branch, torch.where(neg, log_branch, zero_branch))


def srelu(
    x: Tensor, t_left: Tensor, a_left: Tensor, t_right: Tensor, a_right: Tensor
) -> Tensor:
    r"""S-shaped ReLU with learnable thresholds and slopes.

    :math:`t_r + a_r(x - t_r)` for :math:`x \ge t_r`, :math:`x` between the
    thresholds, :math:`t_l + a_l(x - t_l)` for :math:`x \le t_l`.
    """
    right = t_right + a_right * (x - t_right)
    left = t_left + a_left * (x - t_left)
    return torch.where(x >= t_right, right, torch.where(x <= t_left, left, x))


def apl(x: Tensor, a: Tensor, b: Tensor) -> Tensor:
    r"""Adaptive piecewise linear: :math:`\max(0,x) + \sum_s a_s \max(0, -x + b_s)`.

    ``a`` and ``b`` carry the hinge index as their leading dimension.
    """
    return F.relu(x) + (a * F.relu(b - x.unsqueeze(0))).sum(0)


def flexible_relu(x: Tensor, bias: Tensor) -> Tensor:
    r"""Flexible ReLU (FReLU): :math:`\max(0, x) + b` with a learnable :math:`b`."""
    return F.relu(x) + bias


def pelu(x: Tensor, a: Tensor, b: Tensor, min_value: float = 0.1) -> Tensor:
    r"""Parametric ELU.

    :math:`(a/b)\,x` for :math:`x \ge 0`, :math:`a(e^{x/b} - 1)` otherwise, with
    :math:`a, b` clamped to at least ``min_value`` (the paper keeps them positive).
    """
    a = a.clamp(min=min_value)
    b = b.clamp(min=min_value)
    return torch.where(x >= 0, (a / b) * x, a * expm1(x.clamp(max=0) / b))


def swish_beta(x: Tensor, beta: Tensor) -> Tensor:
    r"""Swish with a learnable :math:`\beta`: :math:`x\,\sigma(\beta x)`."""
    return x * torch.sigmoid(beta * x)


def nlrelu(x: Tensor, beta: float = 1.0) -> Tensor:
    r"""Natural-logarithm ReLU: :math:`\ln(\beta \max(0, x) + 1)`."""
    return torch.log1p(beta * F.relu(x))


def penalized_tanh(x: Tensor, a: float = 0.25) -> Tensor:
    r"""Penalized tanh: :math:`\tanh(x)` for :math:`x > 0`, :math:`a \tanh(x)` otherwise."""
    t = torch.tanh(x)
    return torch.where(x > 0, t, a * t)


def mpelu(x: Tensor, alpha: Tensor, beta: Tensor) -> Tensor:
    r"""MPELU: :math:`x` for :math:`x > 0`, :math:`\alpha(e^{\beta x} - 1)` otherwise."""
    return torch.where(x > 0, x, alpha * expm1(beta * x.clamp(max=0)))


def slaf(x: Tensor, coeffs: Tensor) -> Tensor:
    r"""SLAF polynomial: :math:`\sum_{i=0}^{k} a_i x^i`, by Horner's rule.

    ``coeffs`` carries the power index as its leading dimension (``a_0`` first)
    and holds at least two rows (degree >= 1).
    """
    out = coeffs[-1] * x + coeffs[-2]
    for i in range(coeffs.shape[0] - 3, -1, -1):
        out = out * x + coeffs[i]
    return out


def probact(x: Tensor, sigma: Tensor | float, training: bool,
            generator: torch.Generator | None = None) -> Tensor:
    r"""ProbAct: :math:`\max(0, x) + \sigma \epsilon`, :math:`\epsilon \sim N(0, 1)` per element.

    The noise is drawn only when ``training``; otherwise this is ReLU (the mean),
    and a tensor ``sigma`` still gets its (zero) gradient rather than none.
    """
    out = F.relu(x)
    if not training:
        return out + sigma * 0.0 if isinstance(sigma, Tensor) else out
    eps = torch.randn(x.shape, dtype=x.dtype, device=x.device, generator=generator)
    return out + sigma * eps


def crelu(x: Tensor, dim: int = 1) -> Tensor:
    r"""Concatenated ReLU: :math:`[\max(0, x), \max(0, -x)]` along ``dim`` (twice the channels)."""
    return torch.cat((F.relu(x), F.relu(-x)), dim=dim)


def maxout(x: Tensor, pieces: int = 2, dim: int = 1) -> Tensor:
    r"""Maxout over channel groups: output channel :math:`c` is :math:`\max_{j<k} x_{ck+j}`.

    ``x.shape[dim]`` must be a multiple of ``pieces`` (:math:`k`); the output
    has ``x.shape[dim] // pieces`` channels there.
    """
    dim = dim % x.dim()
    channels = x.shape[dim]
    if channels % pieces:
        raise ValueError(f"maxout with {pieces} pieces needs a channel count divisible by "
                         f"{pieces}, got {channels}")
    grouped = x.unflatten(dim, (channels // pieces, pieces))
    return grouped.amax(dim=dim + 1)
