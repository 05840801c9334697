"""The built-in activation zoo: one explicit entry per function.

This tuple is the single source for the registry, the CLI's choices, the
parametrised tests and the README's table. Entries are listed by hand (no
discovery) so that a reader sees the whole zoo here.
"""

from __future__ import annotations

from torch import nn

from . import community as C
from .learnable import DPReLU, DualLine
from .registry import register_activation
from .spec import ActivationSpec as S
from .torch_compat import Hardsigmoid, PReLU, RReLU

__all__ = ["BUILTIN_SPECS"]

PAPER = "Learn-able parameter guided Activation Functions, arXiv:1912.10752 (2019)"
# said of a default where the cited paper's text was out of reach when it was audited
UNCHECKED = "the paper's text could not be read from our machines, so this is unchecked"

BUILTIN_SPECS: tuple[S, ...] = (
    # ------------------------------------------------------------------ the paper
    S("dp_relu", DPReLU, "pos*x if x>=0 else neg*x; pos=1, neg=0.01 learnable",
      PAPER, True, "paper", aliases=("dprelu", "dual_parametric_relu")),
    S("dual_line", DualLine, "DPReLU(x) + m; pos=1, neg=0.01, m=-0.22 learnable",
      PAPER, True, "paper", aliases=("dualline",)),
    # ------------------------------------------------------------------ torch.nn
    S("relu", nn.ReLU, "max(0, x)",
      "Nair & Hinton, ICML 2010", False, "torch"),
    S("leaky_relu", nn.LeakyReLU, "x if x>=0 else 0.01*x",
      "Maas, Hannun, Ng, ICML 2013 workshop", False, "torch", aliases=("lrelu",)),
    S("prelu", PReLU, "x if x>=0 else a*x; a=0.25 learnable",
      "He et al., arXiv:1502.01852 (2015)", True, "torch"),
    S("rrelu", RReLU, "x if x>=0 else a*x; a~U(1/8,1/3) in training, mean in eval",
      "Xu et al., arXiv:1505.00853 (2015)", False, "torch"),
    S("relu6", nn.ReLU6, "min(max(0, x), 6)",
      "Krizhevsky 2010; Howard et al., arXiv:1704.04861 (2017)", False, "torch"),
    S("elu", nn.ELU, "x if x>0 else alpha*(exp(x)-1); alpha=1",
      "Clevert et al., arXiv:1511.07289 (2015)", False, "torch"),
    S("selu", nn.SELU, "scale*(x if x>0 else alpha*(exp(x)-1)); scale=1.0507, alpha=1.6733",
      "Klambauer et al., arXiv:1706.02515 (2017)", False, "torch"),
    S("celu", nn.CELU, "max(0,x) + min(0, alpha*(exp(x/alpha)-1)); alpha=1",
      "Barron, arXiv:1704.07483 (2017)", False, "torch"),
    S("gelu", nn.GELU, "x * Phi(x), Phi the standard normal CDF",
      "Hendrycks & Gimpel, arXiv:1606.08415 (2016)", False, "torch"),
    S("gelu_tanh", nn.GELU, "0.5x(1 + tanh(sqrt(2/pi)(x + 0.044715x^3)))",
      "Hendrycks & Gimpel, arXiv:1606.08415 (2016), tanh approximation", False, "torch",
      defaults={"approximate": "tanh"}),
    S("silu", nn.SiLU, "x * sigmoid(x)",
      "Elfwing et al., arXiv:1702.03118 (2017); Ramachandran et al., arXiv:1710.05941",
      False, "torch", aliases=("swish",)),
    S("mish", nn.Mish, "x * tanh(softplus(x))",
      "Misra, arXiv:1908.08681 (2019)", False, "torch"),
    S("softplus", nn.Softplus, "log(1 + exp(x))",
      "Dugas et al., NIPS 2000", False, "torch"),
    S("softsign", nn.Softsign, "x / (1 + |x|)",
      "Bergstra et al., 2009; Glorot & Bengio, AISTATS 2010", False, "torch"),
    S("tanh", nn.Tanh, "tanh(x)",
      "LeCun et al., Efficient BackProp (1998)", False, "torch"),
    S("sigmoid", nn.Sigmoid, "1 / (1 + exp(-x))",
      "Rumelhart, Hinton, Williams, Nature 1986", False, "torch", aliases=("logistic",)),
    S("hardtanh", nn.Hardtanh, "clamp(x, -1, 1)",
      "Collobert, PhD thesis (2004)", False, "torch", aliases=("hard_tanh",)),
    S("hardsigmoid", Hardsigmoid, "clamp(x/6 + 1/2, 0, 1)",
      "Howard et al., arXiv:1905.02244 (2019)", False, "torch", aliases=("hard_sigmoid",)),
    S("hardswish", nn.Hardswish, "x * clamp(x + 3, 0, 6) / 6",
      "Howard et al., arXiv:1905.02244 (2019)", False, "torch", aliases=("hard_swish",)),
    S("logsigmoid", nn.LogSigmoid, "log(sigmoid(x))",
      "torch.nn.LogSigmoid", False, "torch", aliases=("log_sigmoid",)),
    S("tanhshrink", nn.Tanhshrink, "x - tanh(x)",
      "torch.nn.Tanhshrink", False, "torch"),
    S("softshrink", nn.Softshrink, "x-0.5 if x>0.5, x+0.5 if x<-0.5, else 0",
      "Donoho & Johnstone soft thresholding (1994)", False, "torch"),
    S("hardshrink", nn.Hardshrink, "x if |x|>0.5 else 0",
      "hard thresholding; torch.nn.Hardshrink", False, "torch"),
    # ------------------------------------------------------------------ community, fixed
    S("aria2", C.Aria2, "x * (1 + exp(-beta*x))^(-alpha); alpha=1.5, beta=2",
      "Patwardhan et al., arXiv:1805.08878 (2018)", False, "community",
      defaults_source="alpha=1.5, beta=2: the values peer libraries carry for ARiA2; "
                      f"{UNCHECKED} against the paper's experiments"),
    S("bent_identity", C.BentIdentity, "(sqrt(x^2 + 1) - 1)/2 + x",
      "Nwankpa et al., arXiv:1811.03378 (2018)", False, "community"),
    S("elish", C.ELiSH, "x*sigmoid(x) if x>=0 else (exp(x)-1)*sigmoid(x)",
      "Basirat & Roth, arXiv:1808.00783 (2018)", False, "community"),
    S("hard_elish", C.HardELiSH,
      "x*h(x) if x>=0 else (exp(x)-1)*h(x); h = clamp((x+1)/2, 0, 1)",
      "Basirat & Roth, arXiv:1808.00783 (2018)", False, "community"),
    S("eswish", C.ESwish, "beta * x * sigmoid(x); beta=1.375",
      "Alcaide, arXiv:1801.07145 (2018)", False, "community", aliases=("e_swish",),
      defaults_source="beta=1.375: inside the 1 <= beta <= 2 range the paper proposes; "
                      "which beta it recommends per network is unchecked (the paper's text "
                      "could not be read from our machines)"),
    S("isru", C.ISRU, "x / sqrt(1 + alpha*x^2); alpha=1",
      "Carlile et al., arXiv:1710.09967 (2017)", False, "community"),
    S("isrlu", C.ISRLU, "x if x>=0 else x / sqrt(1 + alpha*x^2); alpha=1",
      "Carlile et al., arXiv:1710.09967 (2017)", False, "community"),
    S("lecun_tanh", C.LeCunTanh, "1.7159 * tanh(2x/3)",
      "LeCun et al., Efficient BackProp (1998)", False, "community"),
    S("lisht", C.LiSHT, "x * tanh(x)",
      "Roy et al., arXiv:1901.05894 (2019)", False, "community"),
    S("sine_relu", C.SineReLU, "x if x>0 else eps*(sin(x) - cos(x)); eps=0.0025",
      "W. Rodrigues (2018); keras-contrib SineReLU", False, "community",
      aliases=("sinerelu",),
      defaults_source="eps=0.0025: follows the citation, keras-contrib's SineReLU default"),
    S("soft_clipping", C.SoftClipping,
      "log((1 + exp(a*x)) / (1 + exp(a*(x-1)))) / a; a=0.5",
      "Klimek & Perelstein, arXiv:1810.11509 (2018)", False, "community",
      defaults_source="a=0.5: the value peer libraries use; the paper treats a as a "
                      f"hyperparameter, and {UNCHECKED}"),
    S("sqnl", C.SQNL, "1 if x>2; x-x^2/4 on [0,2]; x+x^2/4 on [-2,0); -1 if x<-2",
      "Wuraola & Patel, IJCNN 2018", False, "community"),
    S("weighted_tanh", C.WeightedTanh, "tanh(w*x); w=0.5",
      "Echo activation zoo (D. Misra, 2019)", False, "community"),
    S("ftswish_plus", C.FTSwishPlus, "max(0,x)*sigmoid(x) + T - m; T=-0.25, m=-0.1",
      "Chieng et al., arXiv:1812.06247 (2018); L. Wright FTSwish+ (2019)", False,
      "community", aliases=("ftswish",)),
    S("trelu", C.TReLU, "max(0, x) + T - m; T=-0.25, m=-0.03 (= relu(x) - 0.22)",
      "L. Wright, github.com/lessw2020/TRelu (2019)", False, "community"),
    S("nlrelu", C.NLReLU, "log(beta*max(0, x) + 1); beta=1",
      "Liu et al., arXiv:1908.03682 (2019)", False, "community"),
    S("penalized_tanh", C.PenalizedTanh, "tanh(x) if x>0 else a*tanh(x); a=0.25",
      "Xu et al., arXiv:1602.05980 (2016); Eger et al., EMNLP 2018", False, "community",
      aliases=("ptanh",)),
    S("probact", C.ProbAct, "max(0, x) + sigma*N(0,1) in training, max(0, x) in eval; sigma=0.05",
      "Lee et al., arXiv:1905.10761 (2019)", False, "community"),
    S("general_relu", C.GeneralReLU, "min(leaky_relu(x, 0.1) - 0.4, 6)",
      "fast.ai course v3 part 2, lesson 10 (2019)", False, "community",
      aliases=("generalrelu",)),
    # ------------------------------------------------------------------ shape-changing
    S("crelu", C.CReLU, "[max(0, x), max(0, -x)] along channels (C -> 2C channels)",
      "Shang et al., arXiv:1603.05201 (2016)", False, "community", shape_changing=True),
    S("maxout", C.Maxout, "max over groups of k channels; k=2 (kC -> C channels)",
      "Goodfellow et al., arXiv:1302.4389 (2013)", False, "community", shape_changing=True),
    # ------------------------------------------------------------------ community, learnable
    S("soft_exponential", C.SoftExponential,
      "(exp(a*x)-1)/a + a if a>0; x if a=0; -log(1-a(x+a))/a if a<0; a=0 learnable",
      "Godfrey & Gashler, arXiv:1602.01321 (2015)", True, "community"),
    S("srelu", C.SReLU,
      "tr+ar(x-tr) if x>=tr; x between; tl+al(x-tl) if x<=tl; tl=0,al=0.01,tr=1,ar=1",
      "Jin et al., arXiv:1512.07030 (2015)", True, "community",
      defaults_source="learnact's choice: starts as Leaky ReLU (tl=0, al=0.01, tr=1, ar=1). "
                      "The paper initialises from the data, which a module built before it "
                      "sees data cannot do, so this departs on purpose"),
    S("apl", C.APL, "max(0,x) + sum_s a_s*max(0, b_s - x); S=2, a=0, b=(0,-1) learnable",
      "Agostinelli et al., arXiv:1412.6830 (2014)", True, "community",
      defaults_source="learnact's choice: S=2 hinges, a=0 (starts as ReLU), b=(0, -1); the "
                      f"paper treats S as a hyperparameter, and {UNCHECKED}"),
    S("flexible_relu", C.FlexibleReLU, "max(0, x) + b; b=0 learnable",
      "Qiu, Xu, Cai, arXiv:1706.08098 (2017)", True, "community", aliases=("frelu",),
      defaults_source="b=0 (starts as ReLU): learnact's choice; peer libraries start at "
                      f"0, 1 or random values, and {UNCHECKED}"),
    S("pelu", C.PELU, "(a/b)*x if x>=0 else a*(exp(x/b)-1); a=b=1 learnable",
      "Trottier et al., arXiv:1605.09332 (2016)", True, "community"),
    S("mpelu", C.MPELU, "x if x>0 else alpha*(exp(beta*x)-1); alpha=beta=1 learnable",
      "Li et al., arXiv:1606.00305 (2016)", True, "community"),
    S("slaf", C.SLAF, "sum_i a_i x^i, i=0..k; k=2, a_i=1 learnable",
      "Goyal, Goyal, Lall, arXiv:1906.09529 (2019)", True, "community"),
    S("probact_learnable", C.ProbActLearnable,
      "max(0, x) + sigma*N(0,1) in training, max(0, x) in eval; sigma=0 learnable",
      "Lee et al., arXiv:1905.10761 (2019)", True, "community"),
    S("swish_beta", C.SwishBeta, "x * sigmoid(beta*x); beta=1 learnable",
      "Ramachandran, Zoph, Le, arXiv:1710.05941 (2017)", True, "community",
      aliases=("learnable_swish",)),
)

for _spec in BUILTIN_SPECS:  # the registry imports no activation; the catalog fills it
    register_activation(_spec)
