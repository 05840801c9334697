"""The training loop: Adam with decoupled weight decay under fastai's one-cycle schedule.

fastai's ``fit_one_cycle`` anneals the learning rate from ``lr/div`` up to
``lr`` over ``pct_start`` of the steps and down to ``lr/div_final`` with
cosine curves, while Adam's beta1 moves the opposite way between 0.95 and
0.85. ``torch.optim.lr_scheduler.OneCycleLR`` implements exactly that.
"""

from __future__ import annotations

import copy
import itertools
import math
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, replace

import numpy as np
import torch
import torch.nn.functional as F
from torch import Tensor, nn

from ..data.loader import AUGMENTS, TensorData, iterate_batches, mixup, train_batches
from ..model_tools import param_groups
from ..settings import (
    at_least,
    boolean,
    check_fields,
    choice,
    nonnegative,
    optional,
    positive_int,
    positive_number,
    setting,
    unit_interval,
)

__all__ = ["DIVERGED_LOSS_FACTOR", "WARMUP_STEPS", "Diverged", "EpochMetrics", "TrainSettings",
           "evaluate", "fit", "make_optimizer"]


class Diverged(Exception):
    """Training blew up: the loss became NaN or infinite, or it ended above a guess's.

    Attributes:
        epoch, step: where it was noticed.
        reason: one sentence, stored with the run.
    """

    def __init__(self, epoch: int, step: int, reason: str | None = None) -> None:
        self.reason = reason or f"loss is not finite at epoch {epoch}, step {step}"
        super().__init__(self.reason)
        self.epoch, self.step = epoch, step


# A run whose last epoch's mean training loss is above this many times ln K (the
# cross-entropy of a uniform guess over K classes) has diverged: it ends worse
# than knowing nothing, where every run starts. Mixup and label smoothing raise
# the loss of a model that learns, but not above ln K.
DIVERGED_LOSS_FACTOR = 1.5


@dataclass(frozen=True)
class TrainSettings:
    """Everything :func:`fit` needs besides the model and data; the ``training`` section
    of a study's :class:`~learnact.study.config.StudyConfig`.

    Each field is declared with :func:`learnact.settings.setting`: its check runs
    when the settings are made (a bad value is a :class:`~learnact.errors.ConfigError`),
    and a study reads its key, help and part in a run's identity from there.
    """

    epochs: int = setting(1, help="training epochs", check=positive_int)
    lr: float = setting(1e-3, help="peak learning rate of the one-cycle schedule",
                        check=positive_number, identity=None, in_config=False)
    batch_size: int = setting(128, help="training batch size", check=positive_int)
    weight_decay: float = setting(0.01, check=nonnegative,
                                  help="decoupled weight decay (AdamW); activation "
                                       "parameters get none")
    div_factor: float = setting(25.0, check=at_least(1.0),
                                help="one-cycle start lr = lr / div_factor")
    final_div: float = setting(1e5, check=at_least(1.0),
                               help="one-cycle final lr = lr / final_div (fastai's div_final)")
    pct_start: float = setting(0.25, check=unit_interval(closed_low=False, closed_high=False),
                               help="share of the steps spent warming up")
    mixup_alpha: float = setting(0.0, check=nonnegative, help="mixup alpha; 0 disables mixup")
    augment: str = setting("none", check=choice(*AUGMENTS),
                           help="none, flip_crop, or rrc_flip (random-resized crop + flip)")
    label_smoothing: float = setting(
        0.0, check=unit_interval(closed_low=True, closed_high=False), identity="changed",
        help="cross-entropy label smoothing, in [0, 1)")
    precision: str = setting("fp32", check=choice("auto", "fp32", "bf16", "fp16"),
                             help="auto (fp16 on CUDA, fp32 on the CPU), fp32, bf16 or fp16 "
                                  "(fp16 on CUDA only)")
    channels_last: bool = setting(False, check=boolean,
                                  help="train in channels-last memory format")
    eval_batch_size: int = setting(1024, check=positive_int, identity=None,
                                   help="evaluation batch size (does not change results)")
    grad_clip: float | None = setting(None, check=optional(positive_number), identity="changed",
                                      help="clip the gradients' global norm at this value "
                                           "(after unscaling); none: no clipping")

    def __post_init__(self) -> None:
        check_fields(self)


@dataclass
class EpochMetrics:
    """Metrics after one epoch.

    ``seconds`` is the epoch's training time at its steady pace: the median
    step time times the number of steps, where the first steps of each epoch
    (a quarter of them, at most :data:`WARMUP_STEPS`) are left out of the
    median. One-time costs (first calls, allocator growth, a kernel build) and
    brief stalls of a busy machine do not count against an activation; CUDA
    steps are timed with events. Evaluation is not included.
    """

    epoch: int
    train_loss: float
    test_loss: float
    test_accuracy: float
    test_top5: float
    seconds: float

    def as_dict(self) -> dict[str, float]:
        """The fields as a plain dict."""
        return asdict(self)


def make_optimizer(model: nn.Module, lr: float, weight_decay: float) -> torch.optim.Optimizer:
    """AdamW with betas (0.9, 0.99) as fastai, activation parameters out of decay.

    Uses torch's fused AdamW (one kernel per step for all tensors) when every
    parameter is a floating-point CPU or CUDA tensor: on a LeNet5 CPU step it
    took the optimizer from 0.46 to 0.12 ms with ReLU, and from 0.74 to 0.17 ms
    with Dual Line at four sites (then twelve one-value parameters; now four packed ones).
    """
    groups = param_groups(model, weight_decay)
    fused = all(p.device.type in ("cpu", "cuda") and p.is_floating_point()
                for group in groups for p in group["params"])
    return torch.optim.AdamW(groups, lr=lr, betas=(0.9, 0.99), fused=fused or None)


# steps at the start of each epoch left out of EpochMetrics.seconds
WARMUP_STEPS = 5


class _StepClock:
    """Per-step durations: host clock on the CPU, CUDA events (no sync per step) on GPUs."""

    def __init__(self, cuda: bool) -> None:
        self.cuda = cuda
        self.marks: list = []
        self.mark()

    def mark(self) -> None:
        if self.cuda:
            event = torch.cuda.Event(enable_timing=True)
            event.record()
            self.marks.append(event)
        else:
            self.marks.append(time.perf_counter())

    def median_step(self, skip: int) -> float:
        """The median duration in seconds of the steps after the first ``skip``."""
        if self.cuda:  # the caller has synchronised
            steps = [a.elapsed_time(b) / 1000 for a, b in itertools.pairwise(self.marks)]
        else:
            steps = [b - a for a, b in itertools.pairwise(self.marks)]
        steps = steps[skip:] or steps
        return float(np.median(steps)) if steps else 0.0


def _autocast(device: torch.device, precision: str):
    if precision == "fp32":
        return torch.autocast(device.type, enabled=False)
    if precision == "bf16":
        return torch.autocast(device.type, dtype=torch.bfloat16)
    if precision == "fp16":
        if device.type != "cuda":
            raise ValueError("fp16 mixed precision needs CUDA; use bf16 on the CPU")
        return torch.autocast("cuda", dtype=torch.float16)
    raise ValueError(f"precision must be fp32, bf16 or fp16, got {precision!r}")


def _plain(state: dict) -> dict:
    """numpy's bit-generator state with its big integers as strings (``weights_only`` loads
    only machine-size ints)."""
    return {k: _plain(v) if isinstance(v, dict) else (str(v) if isinstance(v, int) else v)
            for k, v in state.items()}


def _numpy_state(state: dict) -> dict:
    """The inverse of :func:`_plain`."""
    return {k: _numpy_state(v) if isinstance(v, dict) else (
        int(v) if isinstance(v, str) and v.lstrip("-").isdigit() else v)
        for k, v in state.items()}


@torch.no_grad()
def evaluate(model: nn.Module, x: Tensor, y: Tensor, batch_size: int = 1024,
             precision: str = "fp32") -> tuple[float, float, float]:
    """``(loss, accuracy, top-5 accuracy)`` of ``model`` on ``(x, y)`` in eval mode."""
    was = model.training
    model.eval()
    total_loss = torch.zeros((), device=x.device, dtype=torch.float64)
    correct = torch.zeros((), device=x.device, dtype=torch.int64)
    correct5 = torch.zeros((), device=x.device, dtype=torch.int64)
    for xb, yb in iterate_batches(x, y, batch_size):
        with _autocast(x.device, precision):
            logits = model(xb)
        logits = logits.float()
        total_loss += F.cross_entropy(logits, yb, reduction="sum").double()
        k = min(5, logits.shape[1])
        top = logits.topk(k, dim=1).indices
        correct += (top[:, 0] == yb).sum()
        correct5 += (top == yb[:, None]).any(dim=1).sum()
    model.train(was)
    n = max(len(y), 1)
    return float(total_loss) / n, int(correct) / n, int(correct5) / n


def fit(
    model: nn.Module,
    data: TensorData,
    settings: TrainSettings,
    *,
    seed: int,
    on_epoch: Callable[[EpochMetrics], None] | None = None,
    checkpoint: Callable[[dict], None] | None = None,
    resume: dict | None = None,
) -> list[EpochMetrics]:
    """Train with the one-cycle recipe; return one :class:`EpochMetrics` per epoch.

    Args:
        model, data, settings: what to train, on what, how.
        seed: the batch order, augmentation and mixup draws.
        on_epoch: called with each epoch's metrics.
        checkpoint: called after each epoch but the last (after ``on_epoch``)
            with everything training needs to continue: the epoch, the model,
            optimizer, scheduler and scaler states, every random stream and the
            metrics so far, as tensors and plain values (safe for
            ``torch.load(weights_only=True)``).
        resume: such a dict; training continues after its epoch. On the CPU, with
            the same thread count, the result equals an uninterrupted run's exactly.

    Raises:
        Diverged: the loss became NaN or infinite, or the last epoch's mean
            training loss is above :data:`DIVERGED_LOSS_FACTOR` x ln K (K
            classes). Epochs finished before are passed to ``on_epoch`` first.
    """
    device = data.x_train.device
    if settings.precision == "auto":  # fp16 with a gradient scaler on CUDA, fp32 elsewhere
        settings = replace(settings, precision="fp16" if device.type == "cuda" else "fp32")
    if settings.channels_last:
        model = model.to(memory_format=torch.channels_last)
    steps_per_epoch = math.ceil(len(data.y_train) / settings.batch_size)
    opt = make_optimizer(model, settings.lr, settings.weight_decay)
    total = settings.epochs * steps_per_epoch
    if total >= 2:
        # OneCycleLR needs at least one step in each phase (it divides by their lengths)
        pct = min(max(settings.pct_start, 1.5 / total), 1 - 0.5 / total)
        sched = torch.optim.lr_scheduler.OneCycleLR(
            opt, max_lr=settings.lr, total_steps=total, pct_start=pct,
            div_factor=settings.div_factor,
            final_div_factor=settings.final_div / settings.div_factor,
            base_momentum=0.85, max_momentum=0.95,
        )
    else:  # a single step: nothing to schedule
        sched = torch.optim.lr_scheduler.LambdaLR(opt, lambda _: 1.0)
    scaler = torch.amp.GradScaler("cuda", enabled=settings.precision == "fp16")
    gen = torch.Generator(device="cpu").manual_seed(seed)
    dev_gen = gen if device.type == "cpu" else torch.Generator(device).manual_seed(seed)
    rng = np.random.default_rng(seed)
    history: list[EpochMetrics] = []
    start = 0
    if resume is not None:
        model.load_state_dict(resume["model"])
        opt.load_state_dict(resume["optimizer"])
        sched.load_state_dict(resume["scheduler"])
        scaler.load_state_dict(resume["scaler"])
        gen.set_state(resume["generator"])
        if dev_gen is not gen and resume.get("device_generator") is not None:
            dev_gen.set_state(resume["device_generator"])
        rng.bit_generator.state = _numpy_state(resume["numpy"])
        torch.set_rng_state(resume["torch_rng"])
        if device.type == "cuda" and resume.get("cuda_rng") is not None:
            torch.cuda.set_rng_state(resume["cuda_rng"], device)
        history = [EpochMetrics(**m) for m in resume["history"]]
        start = int(resume["epoch"]) + 1
    ls = settings.label_smoothing
    warm = min(WARMUP_STEPS, steps_per_epoch // 4)  # 0 for tiny epochs: time them whole
    cuda = device.type == "cuda"
    for epoch in range(start, settings.epochs):
        model.train()
        clock = _StepClock(cuda)
        running = torch.zeros((), device=device, dtype=torch.float64)
        count = 0
        batches = train_batches(data, settings.batch_size, generator=gen,
                                augment=settings.augment, device_generator=dev_gen)
        for step, (xb, yb) in enumerate(batches):
            if settings.channels_last:
                xb = xb.contiguous(memory_format=torch.channels_last)
            with _autocast(device, settings.precision):
                if settings.mixup_alpha > 0:
                    xm, ya, yb2, lam = mixup(xb, yb, settings.mixup_alpha, rng)
                    logits = model(xm).float()
                    loss = (lam * F.cross_entropy(logits, ya, reduction="none", label_smoothing=ls)
                            + (1 - lam) * F.cross_entropy(logits, yb2, reduction="none",
                                                          label_smoothing=ls)).mean()
                else:
                    loss = F.cross_entropy(model(xb).float(), yb, label_smoothing=ls)
            opt.zero_grad(set_to_none=True)
            scaler.scale(loss).backward()
            if settings.grad_clip is not None:
                scaler.unscale_(opt)
                nn.utils.clip_grad_norm_(model.parameters(), settings.grad_clip)
            scaler.step(opt)
            scaler.update()
            sched.step()
            running += loss.detach().double() * len(yb)
            count += len(yb)
            clock.mark()
            # one host sync every 50 steps keeps divergence checks cheap on GPUs
            if step % 50 == 49 and not torch.isfinite(running):
                raise Diverged(epoch, step)
        if not torch.isfinite(running):
            raise Diverged(epoch, steps_per_epoch - 1)
        if cuda:
            torch.cuda.synchronize(device)
        seconds = clock.median_step(skip=warm) * steps_per_epoch
        test_loss, acc, top5 = evaluate(model, data.x_test, data.y_test,
                                        settings.eval_batch_size, settings.precision)
        metrics = EpochMetrics(epoch, float(running) / count, test_loss, acc, top5, seconds)
        history.append(metrics)
        if on_epoch is not None:
            on_epoch(metrics)
        if checkpoint is not None and epoch < settings.epochs - 1:
            checkpoint(copy.deepcopy({  # a snapshot: state dicts alias the live tensors
                "epoch": epoch, "model": model.state_dict(), "optimizer": opt.state_dict(),
                "scheduler": sched.state_dict(), "scaler": scaler.state_dict(),
                "generator": gen.get_state(),
                "device_generator": dev_gen.get_state() if dev_gen is not gen else None,
                "numpy": _plain(rng.bit_generator.state), "torch_rng": torch.get_rng_state(),
                "cuda_rng": torch.cuda.get_rng_state(device) if cuda else None,
                "history": [m.as_dict() for m in history]}))
    limit = DIVERGED_LOSS_FACTOR * math.log(max(data.num_classes, 2))
    if history and history[-1].train_loss > limit:
        raise Diverged(settings.epochs - 1, steps_per_epoch - 1,
                       f"the last epoch's training loss {history[-1].train_loss:.4g} is above "
                       f"{DIVERGED_LOSS_FACTOR} x ln {data.num_classes} = {limit:.3g}, worse "
                       "than a uniform guess")
    return history
