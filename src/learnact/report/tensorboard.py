"""TensorBoard logging of a study's progress, in the process that runs the study.

:class:`TensorBoardLogger` is a progress callback for
:func:`learnact.study.run_study`'s ``emit``. Every run's events reach that
callback in the driver (``--jobs`` workers send theirs through pipes, Ray
sends each result's epochs when it arrives), so one logger sees the whole
study whatever the executor, and only one process writes the event files.

Each run gets its own folder, ``<logdir>/<activation>/seed<k>-<run_id[:8]>``,
so TensorBoard's run filter can pick an activation or a seed. Steps are the
number of finished epochs (1 after the first epoch, as ``learnact study``
prints them). Needs the ``tensorboard`` extra (``pip install
'learnact[tensorboard]'``).
"""

from __future__ import annotations

import math
import re
from pathlib import Path
from typing import TYPE_CHECKING, Any

from ..errors import ConfigError
from ..study.types import Event, RunSpec

if TYPE_CHECKING:
    from torch.utils.tensorboard import SummaryWriter

__all__ = ["SCALARS", "TensorBoardLogger", "run_folder"]

# epoch metric -> TensorBoard tag; the shared prefixes put train and test loss in one section
SCALARS = {
    "train_loss": "loss/train",
    "test_loss": "loss/test",
    "test_accuracy": "accuracy/test",
    "test_top5": "accuracy/test_top5",
    "seconds": "time/epoch_seconds",
    "lr": "lr",
}


def run_folder(run: RunSpec) -> str:
    """``<activation>/seed<k>-<run_id[:8]>``, the activation label made safe as a folder name.

    Labels such as ``learnable(gelu, mean_shift=false)`` keep their letters,
    digits and ``=``; anything else becomes ``_``, so no label can climb out of
    the log folder.
    """
    name = re.sub(r"[^A-Za-z0-9_=.-]+", "_", run.activation).strip("._") or "activation"
    return f"{name}/seed{run.seed}-{run.run_id[:8]}"


class TensorBoardLogger:
    """Writes each run's epoch metrics as TensorBoard scalars; call it with study events.

    Args:
        logdir: the folder TensorBoard reads (``tensorboard --logdir DIR``);
            created if needed.

    A run's writer opens at its first event and closes when the run ends
    (``done``, ``diverged``, ``failed``), with the end recorded as a ``status``
    text. Each epoch is flushed at once, so a running TensorBoard shows it.
    ``start`` and ``resume`` mark a restart: scalars a killed attempt wrote
    beyond the point the run restarts from are hidden, so a resumed run shows
    one curve. :meth:`close` closes writers left open (runs that never ended,
    e.g. after Ctrl-C); the logger is also a context manager.

    Raises:
        ConfigError: the ``tensorboard`` package is not installed, or
            ``logdir`` is a file.

    Example::

        with TensorBoardLogger("runs/tb") as tb:
            run_study(cfg, "results.db", jobs=2, emit=tb)
    """

    def __init__(self, logdir: str | Path) -> None:
        try:
            from torch.utils.tensorboard import SummaryWriter
        except ImportError:
            raise ConfigError("TensorBoard logging needs the tensorboard package: "
                              "pip install 'learnact[tensorboard]'") from None
        self.logdir = Path(logdir)
        try:
            self.logdir.mkdir(parents=True, exist_ok=True)
        except (FileExistsError, NotADirectoryError):
            raise ConfigError(f"--tensorboard {self.logdir}: not a folder (a file is in the "
                              "way)") from None
        self._writer_class = SummaryWriter
        self._writers: dict[str, SummaryWriter] = {}

    def _writer(self, run: RunSpec, purge_step: int | None = None) -> SummaryWriter:
        writer = self._writers.get(run.run_id)
        if writer is None or purge_step is not None:
            if writer is not None:
                writer.close()
            writer = self._writer_class(str(self.logdir / run_folder(run)),
                                        purge_step=purge_step)
            self._writers[run.run_id] = writer
        return writer

    def __call__(self, event: Event) -> None:
        """Log one progress event (see :class:`learnact.study.types.Event`)."""
        if event.kind == "start":
            self._writer(event.run, purge_step=1)  # a new attempt replaces any earlier one
        elif event.kind == "resume":
            # the checkpoint holds epochs up to data["epoch"] (0-based): what follows is new
            self._writer(event.run, purge_step=int(event.data["epoch"]) + 2)
        elif event.kind == "epoch":
            writer = self._writer(event.run)
            step = int(event.data["epoch"]) + 1
            for key, tag in SCALARS.items():
                value = _number(event.data.get(key))
                if value is not None:
                    writer.add_scalar(tag, value, step)
            writer.flush()
        elif event.kind in ("done", "diverged", "failed"):
            writer = self._writer(event.run)
            error = event.data.get("error") or ""
            writer.add_text("status", event.kind + (f": {error}" if error else ""))
            writer.close()
            del self._writers[event.run.run_id]

    def close(self) -> None:
        """Flush and close every writer still open. Safe to call more than once."""
        while self._writers:
            _, writer = self._writers.popitem()
            writer.close()

    def __enter__(self) -> TensorBoardLogger:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def _number(value: Any) -> float | None:
    """``value`` as a finite float, or ``None`` (missing, not a number, or NaN/inf)."""
    try:
        number = float(value)
    except (TypeError, ValueError):
        return None
    return number if math.isfinite(number) else None
