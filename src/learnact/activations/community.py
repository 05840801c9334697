"""Community activation functions of the 2017-2019 era, as thin modules.

Each module's maths lives in :mod:`learnact.functional`; the module holds the
constants (fixed functions) or the learnable parameters, following the
:class:`torch.nn.PReLU` contract. Every class also takes ``inplace`` and
ignores it (timm's ``act_layer(inplace=True)``); the output is a new tensor.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
from torch import Tensor, nn

from .. import functional as LF
from ._base import FixedActivation, ParametricActivation, check_num_parameters

__all__ = [
    "APL",
    "ISRLU",
    "ISRU",
    "MPELU",
    "PELU",
    "SLAF",
    "SQNL",
    "Aria2",
    "BentIdentity",
    "CReLU",
    "ELiSH",
    "ESwish",
    "FTSwishPlus",
    "FlexibleReLU",
    "GeneralReLU",
    "HardELiSH",
    "LeCunTanh",
    "LiSHT",
    "Maxout",
    "NLReLU",
    "PenalizedTanh",
    "ProbAct",
    "ProbActLearnable",
    "SReLU",
    "SineReLU",
    "SoftClipping",
    "SoftExponential",
    "SwishBeta",
    "TReLU",
    "WeightedTanh",
]

Device = torch.device | str | None


# --------------------------------------------------------------------------- fixed


class Aria2(FixedActivation):
    r"""ARiA2, the Richards-curve activation.

    .. math::
        f(x) = x \, (1 + e^{-\beta x})^{-\alpha}

    Args:
        alpha: exponent :math:`\alpha`. Default: 1.5.
        beta: growth rate :math:`\beta`. Default: 2.0.

    Citation: Patwardhan, Ingalhalikar, Walambe, "ARiA: Utilizing Richard's
    Curve for Controlling the Non-monotonicity of the Activation Function in
    Deep Neural Nets", arXiv:1805.08878 (2018).
    """

    constants = ("alpha", "beta")

    def __init__(self, alpha: float = 1.5, beta: float = 2.0, *, inplace: bool = False) -> None:
        super().__init__(alpha=alpha, beta=beta)

    def forward(self, x: Tensor) -> Tensor:
        return LF.aria2(x, self.alpha, self.beta)


class BentIdentity(FixedActivation):
    r"""Bent identity.

    .. math::
        f(x) = \frac{\sqrt{x^2 + 1} - 1}{2} + x

    Citation: a long-standing entry of the activation-function tables, e.g.
    Nwankpa et al., arXiv:1811.03378 (2018).
    """

    def forward(self, x: Tensor) -> Tensor:
        return LF.bent_identity(x)


class ELiSH(FixedActivation):
    r"""Exponential Linear Sigmoid SquasHing.

    .. math::
        f(x) = \begin{cases} x \, \sigma(x) & x \ge 0 \\
                             (e^x - 1)\, \sigma(x) & x < 0 \end{cases}

    Citation: Basirat & Roth, "The Quest for the Golden Activation Function",
    arXiv:1808.00783 (2018).
    """

    def forward(self, x: Tensor) -> Tensor:
        return LF.elish(x)


class HardELiSH(FixedActivation):
    r"""Hard ELiSH: ELiSH with a hard sigmoid.

    .. math::
        h(x) = \max(0, \min(1, (x + 1)/2)), \quad
        f(x) = \begin{cases} x \, h(x) & x \ge 0 \\ (e^x - 1)\, h(x) & x < 0 \end{cases}

    Citation: Basirat & Roth, arXiv:1808.00783 (2018).
    """

    def forward(self, x: Tensor) -> Tensor:
        return LF.hard_elish(x)


class ESwish(FixedActivation):
    r"""E-swish.

    .. math::
        f(x) = \beta \, x \, \sigma(x)

    Args:
        beta: scale :math:`\beta`. Default: 1.375 (the paper suggests 1 to 2).

    Citation: Alcaide, "E-swish: Adjusting Activations to Different Network
    Depths", arXiv:1801.07145 (2018).
    """

    constants = ("beta",)

    def __init__(self, beta: float = 1.375, *, inplace: bool = False) -> None:
        super().__init__(beta=beta)

    def forward(self, x: Tensor) -> Tensor:
        return LF.eswish(x, self.beta)


class ISRU(FixedActivation):
    r"""Inverse square root unit.

    .. math::
        f(x) = \frac{x}{\sqrt{1 + \alpha x^2}}

    Args:
        alpha: Default: 1.0.

    Citation: Carlile et al., "Improving Deep Learning by Inverse Square Root
    Linear Units (ISRLUs)", arXiv:1710.09967 (2017).
    """

    constants = ("alpha",)

    def __init__(self, alpha: float = 1.0, *, inplace: bool = False) -> None:
        super().__init__(alpha=alpha)

    def forward(self, x: Tensor) -> Tensor:
        return LF.isru(x, self.alpha)


class ISRLU(FixedActivation):
    r"""Inverse square root linear unit.

    .. math::
        f(x) = \begin{cases} x & x \ge 0 \\ \dfrac{x}{\sqrt{1 + \alpha x^2}} & x < 0 \end{cases}

    Args:
        alpha: Default: 1.0.

    Citation: Carlile et al., arXiv:1710.09967 (2017).
    """

    constants = ("alpha",)

    def __init__(self, alpha: float = 1.0, *, inplace: bool = False) -> None:
        super().__init__(alpha=alpha)

    def forward(self, x: Tensor) -> Tensor:
        return LF.isrlu(x, self.alpha)


class LeCunTanh(FixedActivation):
    r"""LeCun's scaled hyperbolic tangent.

    .. math::
        f(x) = 1.7159 \tanh\!\left(\tfrac{2}{3} x\right)

    Citation: LeCun, Bottou, Orr, Müller, "Efficient BackProp", Neural
    Networks: Tricks of the Trade (1998).
    """

    def forward(self, x: Tensor) -> Tensor:
        return LF.lecun_tanh(x)


class LiSHT(FixedActivation):
    r"""Linearly scaled hyperbolic tangent.

    .. math::
        f(x) = x \tanh(x)

    Citation: Roy et al., "LiSHT: Non-Parametric Linearly Scaled Hyperbolic
    Tangent Activation Function for Neural Networks", arXiv:1901.05894 (2019).
    """

    def forward(self, x: Tensor) -> Tensor:
        return LF.lisht(x)


class SineReLU(FixedActivation):
    r"""SineReLU.

    .. math::
        f(x) = \begin{cases} x & x > 0 \\ \epsilon(\sin x - \cos x) & x \le 0 \end{cases}

    Args:
        epsilon: Default: 0.0025 (keras-contrib's default).

    Citation: W. Rodrigues, "SineReLU — An Alternative to the ReLU Activation
    Function" (2018); keras-contrib ``SineReLU``.
    """

    constants = ("epsilon",)

    def __init__(self, epsilon: float = 0.0025, *, inplace: bool = False) -> None:
        super().__init__(epsilon=epsilon)

    def forward(self, x: Tensor) -> Tensor:
        return LF.sine_relu(x, self.epsilon)


class SoftClipping(FixedActivation):
    r"""Soft clipping: a smooth clamp to :math:`[0, 1]`.

    .. math::
        f(x) = \frac{1}{\alpha} \log \frac{1 + e^{\alpha x}}{1 + e^{\alpha (x - 1)}}

    Args:
        alpha: sharpness. Default: 0.5.

    Citation: Klimek & Perelstein, "Neural Network-Based Approach to Phase
    Space Integration", arXiv:1810.11509 (2018).
    """

    constants = ("alpha",)

    def __init__(self, alpha: float = 0.5, *, inplace: bool = False) -> None:
        if alpha == 0:
            raise ValueError("SoftClipping needs alpha != 0")
        super().__init__(alpha=alpha)

    def forward(self, x: Tensor) -> Tensor:
        return LF.soft_clipping(x, self.alpha)


class SQNL(FixedActivation):
    r"""Square nonlinearity.

    .. math::
        f(x) = \begin{cases} 1 & x > 2 \\ x - x^2/4 & 0 \le x \le 2 \\
                             x + x^2/4 & -2 \le x < 0 \\ -1 & x < -2 \end{cases}

    Citation: Wuraola & Patel, "SQNL: A New Computationally Efficient
    Activation Function", IJCNN (2018).
    """

    def forward(self, x: Tensor) -> Tensor:
        return LF.sqnl(x)


class WeightedTanh(FixedActivation):
    r"""Weighted tanh.

    .. math::
        f(x) = \tanh(w \, x)

    Args:
        weight: input scale :math:`w`. Default: 0.5, learnact's choice. Echo's
            PyTorch module defaults to 1 (plain tanh, already in the zoo as
            ``tanh``) and its TensorFlow layer has no default; with 0.5 the
            entry differs from ``tanh`` (a slope of 0.5 at 0).

    Citation: the weighted-tanh entry of the Echo activation zoo (D. Misra,
    2019).
    """

    constants = ("weight",)

    def __init__(self, weight: float = 0.5, *, inplace: bool = False) -> None:
        super().__init__(weight=weight)

    def forward(self, x: Tensor) -> Tensor:
        return LF.weighted_tanh(x, self.weight)


class FTSwishPlus(FixedActivation):
    r"""Flatten-T Swish with a mean shift (FTSwish+).

    .. math::
        f(x) = \max(0, x)\, \sigma(x) + T - m

    Args:
        threshold: :math:`T`, the value for :math:`x \le 0`. Default: -0.25.
        mean_shift: :math:`m`, subtracted to centre the output. Default: -0.1.

    Citation: Chieng et al., "Flatten-T Swish", arXiv:1812.06247 (2018); the
    mean-shifted "+" variant is Less Wright's FTSwish+ (2019).
    """

    constants = ("threshold", "mean_shift")

    def __init__(
        self, threshold: float = -0.25, mean_shift: float = -0.1, *, inplace: bool = False
    ) -> None:
        super().__init__(threshold=threshold, mean_shift=mean_shift)

    def forward(self, x: Tensor) -> Tensor:
        return LF.ftswish_plus(x, self.threshold, self.mean_shift)


class TReLU(FixedActivation):
    r"""Threshold ReLU with a mean shift (TReLU), as its source code computes it.

    .. math::
        f(x) = \max(0, x) + T - m

    ReLU moved down by the threshold :math:`T` and then re-centred by the mean
    shift :math:`m`: with the defaults, :math:`\max(0, x) - 0.22`.

    Args:
        threshold: :math:`T`. Default: -0.25 (the source's).
        mean_shift: :math:`m`. Default: -0.03 (the source's).

    Citation: Less Wright, TRelu (2019), github.com/lessw2020/TRelu; the
    paper's Dual Line init -0.22 is :math:`T - m` with these constants.
    """

    constants = ("threshold", "mean_shift")

    def __init__(
        self, threshold: float = -0.25, mean_shift: float = -0.03, *, inplace: bool = False
    ) -> None:
        super().__init__(threshold=threshold, mean_shift=mean_shift)

    def forward(self, x: Tensor) -> Tensor:
        return LF.trelu(x, self.threshold, self.mean_shift)


class GeneralReLU(FixedActivation):
    r"""fastai's General ReLU: leaky, shifted and clamped.

    .. math::
        f(x) = \min(\mathrm{LeakyReLU}_{\text{leak}}(x) - \text{sub},\ \text{maxv})

    Args:
        leak: negative slope. Default: 0.1.
        sub: subtracted shift. Default: 0.4.
        maxv: upper clamp. Default: 6.0.

    Citation: J. Howard, fast.ai "Deep Learning from the Foundations" (2019),
    lesson 10 ``GeneralRelu``.
    """

    constants = ("leak", "sub", "maxv")

    def __init__(
        self, leak: float = 0.1, sub: float = 0.4, maxv: float = 6.0, *, inplace: bool = False
    ) -> None:
        super().__init__(leak=leak, sub=sub, maxv=maxv)

    def forward(self, x: Tensor) -> Tensor:
        return LF.general_relu(x, self.leak, self.sub, self.maxv)


# --------------------------------------------------------------------------- learnable


class SoftExponential(ParametricActivation):
    r"""Soft exponential with a learnable :math:`\alpha`.

    .. math::
        f(x) = \begin{cases}
            -\dfrac{\log(1 - \alpha(x + \alpha))}{\alpha} & \alpha < 0 \\
            x & \alpha = 0 \\
            \dfrac{e^{\alpha x} - 1}{\alpha} + \alpha & \alpha > 0
        \end{cases}

    At :math:`\alpha = 0` the gradient with respect to :math:`\alpha` is the
    true limit :math:`x^2/2 + 1`, so training can move it off its init.

    Args:
        num_parameters: 1 or the number of channels ``C``.
        alpha_init: Default: 0.0 (the identity).
        device: device of the parameters.
        dtype: dtype of the parameters.

    Attributes:
        alpha (Tensor): shape ``(num_parameters,)``.

    Citation: Godfrey & Gashler, "A continuum among logarithmic, linear, and
    exponential functions", arXiv:1602.01321 (2015).
    """

    def __init__(
        self, num_parameters: int = 1, alpha_init: float = 0.0, *, device: Device = None,
        dtype: torch.dtype | None = None, inplace: bool = False,
    ) -> None:
        super().__init__(num_parameters, {"alpha": alpha_init}, device=device, dtype=dtype)

    def forward(self, x: Tensor) -> Tensor:
        return LF.soft_exponential(x, self.param("alpha", x))


class SReLU(ParametricActivation):
    r"""S-shaped ReLU with learnable thresholds and slopes.

    .. math::
        f(x) = \begin{cases}
            t_r + a_r (x - t_r) & x \ge t_r \\
            x & t_l < x < t_r \\
            t_l + a_l (x - t_l) & x \le t_l
        \end{cases}

    Args:
        num_parameters: 1 or the number of channels ``C``.
        t_left_init: Default: 0.0.
        a_left_init: Default: 0.01.
        t_right_init: Default: 1.0.
        a_right_init: Default: 1.0. With these defaults SReLU starts as
            Leaky ReLU (learnact's choice; the paper initialises from data).
        device: device of the parameters.
        dtype: dtype of the parameters.

    Attributes:
        t_left, a_left, t_right, a_right (Tensor): shape ``(num_parameters,)``.

    Citation: Jin et al., "Deep Learning with S-shaped Rectified Linear
    Activation Units", arXiv:1512.07030 (2015).
    """

    def __init__(
        self,
        num_parameters: int = 1,
        t_left_init: float = 0.0,
        a_left_init: float = 0.01,
        t_right_init: float = 1.0,
        a_right_init: float = 1.0,
        *,
        device: Device = None,
        dtype: torch.dtype | None = None,
        inplace: bool = False,
    ) -> None:
        inits = {
            "t_left": t_left_init,
            "a_left": a_left_init,
            "t_right": t_right_init,
            "a_right": a_right_init,
        }
        super().__init__(num_parameters, inits, device=device, dtype=dtype)

    def forward(self, x: Tensor) -> Tensor:
        p = self.param
        return LF.srelu(x, p("t_left", x), p("a_left", x), p("t_right", x), p("a_right", x))


class APL(ParametricActivation):
    r"""Adaptive piecewise linear unit with :math:`S` learnable hinges.

    .. math::
        f(x) = \max(0, x) + \sum_{s=1}^{S} a_s \max(0, -x + b_s)

    Args:
        num_parameters: 1 or the number of channels ``C``.
        num_hinges: :math:`S`. Default: 2.
        a_init: initial hinge slopes, one number for all or one per hinge.
            Default: 0.0 (start as ReLU).
        b_init: initial hinge positions, one per hinge. Default: ``None``,
            meaning evenly spaced from 0 down to -1 (just 0 when ``S = 1``).
        device: device of the parameters.
        dtype: dtype of the parameters.

    Attributes:
        a (Tensor): shape ``(S, num_parameters)``.
        b (Tensor): shape ``(S, num_parameters)``.

    Citation: Agostinelli et al., "Learning Activation Functions to Improve
    Deep Neural Networks", arXiv:1412.6830 (2014).
    """

    row_parameters = ("a", "b")

    def __init__(
        self,
        num_parameters: int = 1,
        num_hinges: int = 2,
        a_init: float | Sequence[float] = 0.0,
        b_init: Sequence[float] | None = None,
        *,
        device: Device = None,
        dtype: torch.dtype | None = None,
        inplace: bool = False,
    ) -> None:
        num_hinges = check_num_parameters(num_hinges)
        a = tuple(a_init) if isinstance(a_init, Sequence) else (a_init,) * num_hinges
        if b_init is None:
            b = tuple(-s / max(num_hinges - 1, 1) for s in range(num_hinges))
        else:
            b = tuple(b_init)
        if len(a) != num_hinges or len(b) != num_hinges:
            raise ValueError(
                f"a_init and b_init need {num_hinges} values (num_hinges), "
                f"got {len(a)} and {len(b)}"
            )
        self.num_hinges = num_hinges
        super().__init__(num_parameters, {"a": a, "b": b}, device=device, dtype=dtype)

    def forward(self, x: Tensor) -> Tensor:
        return LF.apl(x, self.param("a", x), self.param("b", x))

    def extra_repr(self) -> str:
        return f"num_hinges={self.num_hinges}, " + super().extra_repr()


class FlexibleReLU(ParametricActivation):
    r"""Flexible ReLU (FReLU): ReLU with a learnable output shift.

    .. math::
        f(x) = \max(0, x) + b

    Args:
        num_parameters: 1 or the number of channels ``C``.
        bias_init: Default: 0.0.
        device: device of the parameters.
        dtype: dtype of the parameters.

    Attributes:
        bias (Tensor): shape ``(num_parameters,)``.

    Citation: Qiu, Xu, Cai, "FReLU: Flexible Rectified Linear Units for
    Improving Convolutional Neural Networks", arXiv:1706.08098 (2017).
    """

    def __init__(
        self, num_parameters: int = 1, bias_init: float = 0.0, *, device: Device = None,
        dtype: torch.dtype | None = None, inplace: bool = False,
    ) -> None:
        super().__init__(num_parameters, {"bias": bias_init}, device=device, dtype=dtype)

    def forward(self, x: Tensor) -> Tensor:
        return LF.flexible_relu(x, self.param("bias", x))


class PELU(ParametricActivation):
    r"""Parametric exponential linear unit.

    .. math::
        f(x) = \begin{cases} \dfrac{a}{b} x & x \ge 0 \\ a\,(e^{x/b} - 1) & x < 0 \end{cases}

    :math:`a` and :math:`b` are clamped to at least ``min_value`` in the
    forward pass; the paper keeps them positive the same way.

    Args:
        num_parameters: 1 or the number of channels ``C``.
        a_init: Default: 1.0.
        b_init: Default: 1.0.
        min_value: lower clamp of :math:`a, b`. Default: 0.1.
        device: device of the parameters.
        dtype: dtype of the parameters.

    Attributes:
        a, b (Tensor): shape ``(num_parameters,)``.

    Citation: Trottier, Giguère, Chaib-draa, "Parametric Exponential Linear
    Unit for Deep Convolutional Neural Networks", arXiv:1605.09332 (2016).
    """

    def __init__(
        self,
        num_parameters: int = 1,
        a_init: float = 1.0,
        b_init: float = 1.0,
        min_value: float = 0.1,
        *,
        device: Device = None,
        dtype: torch.dtype | None = None,
        inplace: bool = False,
    ) -> None:
        if not min_value > 0:
            raise ValueError(f"min_value must be > 0, got {min_value}")
        self.min_value = float(min_value)
        super().__init__(num_parameters, {"a": a_init, "b": b_init}, device=device, dtype=dtype)

    def forward(self, x: Tensor) -> Tensor:
        return LF.pelu(x, self.param("a", x), self.param("b", x), self.min_value)

    def extra_repr(self) -> str:
        return super().extra_repr() + f", min_value={self.min_value}"


class SwishBeta(ParametricActivation):
    r"""Swish with a learnable :math:`\beta`.

    .. math::
        f(x) = x \, \sigma(\beta x)

    Args:
        num_parameters: 1 or the number of channels ``C``.
        beta_init: Default: 1.0 (SiLU).
        device: device of the parameters.
        dtype: dtype of the parameters.

    Attributes:
        beta (Tensor): shape ``(num_parameters,)``.

    Citation: Ramachandran, Zoph, Le, "Searching for Activation Functions",
    arXiv:1710.05941 (2017).
    """

    def __init__(
        self, num_parameters: int = 1, beta_init: float = 1.0, *, device: Device = None,
        dtype: torch.dtype | None = None, inplace: bool = False,
    ) -> None:
        super().__init__(num_parameters, {"beta": beta_init}, device=device, dtype=dtype)

    def forward(self, x: Tensor) -> Tensor:
        return LF.swish_beta(x, self.param("beta", x))


class NLReLU(FixedActivation):
    r"""Natural-logarithm ReLU.

    .. math::
        f(x) = \ln(\beta \max(0, x) + 1)

    Args:
        beta: :math:`\beta`. Default: 1.0 (the paper's).

    Citation: Liu, Liu, Cheng, Lin, "Natural-Logarithm-Rectified Activation
    Function in Convolutional Neural Networks", arXiv:1908.03682 (2019).
    """

    constants = ("beta",)

    def __init__(self, beta: float = 1.0, *, inplace: bool = False) -> None:
        super().__init__(beta=beta)

    def forward(self, x: Tensor) -> Tensor:
        return LF.nlrelu(x, self.beta)


class PenalizedTanh(FixedActivation):
    r"""Penalized tanh: tanh with its negative side scaled down.

    .. math::
        f(x) = \begin{cases} \tanh(x) & x > 0 \\ a \tanh(x) & x \le 0 \end{cases}

    Args:
        a: the penalty on the negative side. Default: 0.25 (the papers').

    Citation: Xu, Huang, Li, "Revise Saturated Activation Functions",
    arXiv:1602.05980 (2016); Eger, Youssef, Gurevych, "Is it Time to Swish?",
    EMNLP 2018.
    """

    constants = ("a",)

    def __init__(self, a: float = 0.25, *, inplace: bool = False) -> None:
        super().__init__(a=a)

    def forward(self, x: Tensor) -> Tensor:
        return LF.penalized_tanh(x, self.a)


class MPELU(ParametricActivation):
    r"""Multiple parametric exponential linear unit.

    .. math::
        f(x) = \begin{cases} x & x > 0 \\ \alpha\,(e^{\beta x} - 1) & x \le 0 \end{cases}

    It covers ReLU (:math:`\alpha = 0`), PReLU (small :math:`\beta`, slope
    :math:`\alpha\beta`) and ELU (:math:`\alpha = \beta = 1`).

    Args:
        num_parameters: 1 or the number of channels ``C``.
        alpha_init: Default: 1.0 (the authors' code; their best CIFAR runs
            also used 0.25).
        beta_init: Default: 1.0 (the authors' code).
        device: device of the parameters.
        dtype: dtype of the parameters.

    Attributes:
        alpha, beta (Tensor): shape ``(num_parameters,)``.

    Citation: Li, Fan, Li, Wu, Ming, "Improving deep neural network with Multiple
    Parametric Exponential Linear Units", arXiv:1606.00305 (2016); code at
    github.com/Coldmooon/Code-for-MPELU.
    """

    def __init__(
        self, num_parameters: int = 1, alpha_init: float = 1.0, beta_init: float = 1.0, *,
        device: Device = None, dtype: torch.dtype | None = None, inplace: bool = False,
    ) -> None:
        super().__init__(num_parameters, {"alpha": alpha_init, "beta": beta_init},
                         device=device, dtype=dtype)

    def forward(self, x: Tensor) -> Tensor:
        return LF.mpelu(x, self.param("alpha", x), self.param("beta", x))


class SLAF(ParametricActivation):
    r"""Self-learnable activation function: a learnable polynomial.

    .. math::
        f(x) = \sum_{i=0}^{k} a_i x^i

    Args:
        num_parameters: 1 or the number of channels ``C``.
        degree: :math:`k`, at least 1. Default: 2.
        coeffs_init: :math:`a_0, \dots, a_k`, one number for all or one per
            power. Default: 1.0 for every power (the paper fixes no init; 1 is
            what the widely used PyTorch port starts from).
        device: device of the parameters.
        dtype: dtype of the parameters.

    Attributes:
        coeffs (Tensor): shape ``(k + 1, num_parameters)``, :math:`a_0` first.

    A polynomial grows as :math:`|x|^k`: in float16 it overflows for
    :math:`|x|` beyond about :math:`65504^{1/k}`.

    Citation: Goyal, Goyal, Lall, "Learning Activation Functions: A new
    paradigm for understanding Neural Networks", arXiv:1906.09529 (2019).
    """

    row_parameters = ("coeffs",)

    def __init__(
        self, num_parameters: int = 1, degree: int = 2,
        coeffs_init: float | Sequence[float] = 1.0, *, device: Device = None,
        dtype: torch.dtype | None = None, inplace: bool = False,
    ) -> None:
        if isinstance(degree, bool) or not isinstance(degree, int) or degree < 1:
            raise ValueError(f"degree must be an integer >= 1, got {degree!r}")
        init = (tuple(coeffs_init) if isinstance(coeffs_init, Sequence)
                else (coeffs_init,) * (degree + 1))
        if len(init) != degree + 1:
            raise ValueError(f"coeffs_init needs {degree + 1} values (degree + 1), "
                             f"got {len(init)}")
        self.degree = degree
        super().__init__(num_parameters, {"coeffs": init}, device=device, dtype=dtype)

    def forward(self, x: Tensor) -> Tensor:
        return LF.slaf(x, self.param("coeffs", x))

    def extra_repr(self) -> str:
        return f"degree={self.degree}, " + super().extra_repr()


class ProbAct(FixedActivation):
    r"""ProbAct with a fixed :math:`\sigma`: ReLU plus Gaussian noise while training.

    .. math::
        f(x) = \max(0, x) + \sigma \epsilon, \quad \epsilon \sim N(0, 1)

    In training mode each element draws its own :math:`\epsilon` (from torch's
    global generator, so a seeded run repeats); in eval mode :math:`f` is its
    mean, ReLU. ``inplace``-free and shape-preserving.

    Args:
        sigma: :math:`\sigma \ge 0`. Default: 0.05, the smallest of the fixed
            values (0.05-0.3) the authors report.

    Citation: Lee, Shridhar, Hayashi, Iwana, Kang, Uchida, "ProbAct: A
    Probabilistic Activation Function for Deep Neural Networks",
    arXiv:1905.10761 (2019); code at
    github.com/kumar-shridhar/ProbAct-Probabilistic-Activation-Function.
    """

    constants = ("sigma",)

    def __init__(self, sigma: float = 0.05, *, inplace: bool = False) -> None:
        super().__init__(sigma=sigma)
        if self.sigma < 0:
            raise ValueError(f"sigma must be >= 0, got {sigma}")

    def forward(self, x: Tensor) -> Tensor:
        return LF.probact(x, self.sigma, self.training)


class ProbActLearnable(ParametricActivation):
    r"""ProbAct with a learnable :math:`\sigma` (one per instance, or per channel).

    .. math::
        f(x) = \max(0, x) + \sigma \epsilon, \quad \epsilon \sim N(0, 1)

    Noise in training mode only; ReLU in eval mode, where :math:`\sigma` gets
    no gradient.

    Args:
        num_parameters: 1 (the paper's single trainable sigma) or the number of
            channels ``C``.
        sigma_init: Default: 0.0, as the authors' ``TrainableSigma``.
        device: device of the parameters.
        dtype: dtype of the parameters.

    Attributes:
        sigma (Tensor): shape ``(num_parameters,)``.

    Citation: Lee et al., "ProbAct", arXiv:1905.10761 (2019).
    """

    def __init__(
        self, num_parameters: int = 1, sigma_init: float = 0.0, *, device: Device = None,
        dtype: torch.dtype | None = None, inplace: bool = False,
    ) -> None:
        super().__init__(num_parameters, {"sigma": sigma_init}, device=device, dtype=dtype)

    def forward(self, x: Tensor) -> Tensor:
        return LF.probact(x, self.param("sigma", x), self.training)


class CReLU(nn.Module):
    r"""Concatenated ReLU: the positive and the negated negative part, side by side.

    .. math::
        f(x) = \big[\max(0, x),\ \max(0, -x)\big] \quad \text{along the channel dim}

    It doubles the channel count, so it is *shape-changing*: it cannot replace
    an activation in place (:func:`learnact.swap_activations` and the study
    refuse it); build it into a model whose next layer takes ``2C`` channels.

    Args:
        dim: the channel dimension. Default: 1.

    Shape:
        ``(N, C, *)`` -> ``(N, 2C, *)``.

    Citation: Shang, Sohn, Almeida, Lee, "Understanding and Improving
    Convolutional Neural Networks via Concatenated Rectified Linear Units",
    ICML 2016 (arXiv:1603.05201).
    """

    def __init__(self, dim: int = 1, *, inplace: bool = False) -> None:
        super().__init__()
        if isinstance(dim, bool) or not isinstance(dim, int):
            raise TypeError(f"dim must be an int, got {dim!r}")
        self.dim = dim

    def forward(self, x: Tensor) -> Tensor:
        return LF.crelu(x, self.dim)

    def extra_repr(self) -> str:
        return f"dim={self.dim}"


class Maxout(nn.Module):
    r"""Maxout: the maximum over groups of ``pieces`` consecutive channels.

    .. math::
        f(x)_c = \max_{0 \le j < k} x_{ck + j}

    With :math:`k` pieces it divides the channel count by :math:`k`, so it is
    *shape-changing*: it cannot replace an activation in place
    (:func:`learnact.swap_activations` and the study refuse it). The
    learnable part of a maxout unit is the layer before it, which must
    produce :math:`kC` channels.

    Args:
        pieces: :math:`k`, channels per group. Default: 2.
        dim: the channel dimension. Default: 1.

    Shape:
        ``(N, kC, *)`` -> ``(N, C, *)``.

    Citation: Goodfellow, Warde-Farley, Mirza, Courville, Bengio, "Maxout
    Networks", ICML 2013 (arXiv:1302.4389).
    """

    def __init__(self, pieces: int = 2, dim: int = 1, *, inplace: bool = False) -> None:
        super().__init__()
        if isinstance(pieces, bool) or not isinstance(pieces, int) or pieces < 1:
            raise ValueError(f"pieces must be a positive integer, got {pieces!r}")
        if isinstance(dim, bool) or not isinstance(dim, int):
            raise TypeError(f"dim must be an int, got {dim!r}")
        self.pieces, self.dim = pieces, dim

    def forward(self, x: Tensor) -> Tensor:
        return LF.maxout(x, self.pieces, self.dim)

    def extra_repr(self) -> str:
        return f"pieces={self.pieces}, dim={self.dim}"
