"""The ``learnact`` command line. It prints; library code logs and warns (the one
exception is the image decoder's progress line, which is for the user of a long decode).

Exit codes: 0 success; 2 a user error (any :class:`learnact.LearnactError`),
printed as one line on stderr; 1 a study whose runs partly failed, or a bug in
learnact (which keeps its traceback); 130 after Ctrl-C.
"""

from __future__ import annotations

import argparse
import math
import os
import sqlite3
import sys
import time
from collections.abc import Sequence
from pathlib import Path

from . import __version__
from ._text import csv_cell, printable
from .activations.factory import create_activation
from .activations.registry import get_spec, list_activations
from .errors import LearnactError
from .model_tools import activation_values

__all__ = ["main", "ranking_table", "zoo_table"]


class CLIError(LearnactError):
    """A user error found by the command line itself: printed as one line, exit code 2."""


class _Parser(argparse.ArgumentParser):
    """argparse with one-line errors: the message and where to read more, exit code 2.

    argparse's own errors print the whole usage block first (a dozen lines for
    ``study``); a user needs the one line that says what is wrong.
    """

    def error(self, message: str) -> None:  # type: ignore[override]
        self.exit(2, f"{self.prog}: error: {message} (see {self.prog} --help)\n")


def zoo_table(names: Sequence[str], *, markdown: bool = False) -> str:
    """The zoo as a text or Markdown table: name, learnable, parameters, formula."""
    rows = []
    for name in names:
        spec = get_spec(name)
        params = ", ".join(n for _, n, _ in activation_values(create_activation(name))) or "-"
        aliases = f" ({', '.join(spec.aliases)})" if spec.aliases else ""
        formula = spec.formula + (" [shape-changing: not a drop-in]" if spec.shape_changing
                                  else "")
        rows.append((name + aliases, "yes" if spec.learnable else "no", params, formula))
    header = ("name", "learnable", "parameters", "formula")
    if markdown:
        lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
        lines += ["| " + " | ".join(c.replace("|", "\\|") for c in r) + " |" for r in rows]
        return "\n".join(lines)
    widths = [max(len(r[i]) for r in [header, *rows]) for i in range(3)]
    fmt = "  ".join(f"{{:<{w}}}" for w in widths) + "  {}"
    lines = [fmt.format(*header), fmt.format(*("-" * w for w in widths), "-------")]
    lines += [fmt.format(*r) for r in rows]
    return "\n".join(lines)


def _cmd_list(args: argparse.Namespace) -> int:
    learnable, shaped = {"all": (None, None), "learnable": (True, None),
                         "fixed": (False, None), "shape-changing": (None, True)}[args.kind]
    names = list_activations(args.pattern or None, learnable=learnable, shape_changing=shaped)
    if not names:
        raise CLIError(f"no activation matches {' '.join(args.pattern)!r}")
    print(zoo_table(names, markdown=args.format == "markdown"))
    if args.format == "table":
        print(f"\n{len(names)} activation(s)")
    return 0


def _cmd_plot(args: argparse.Namespace) -> int:
    names = []
    for item in args.names:
        matched = list_activations(item) if any(c in item for c in "*?[") else None
        if matched == []:
            raise CLIError(f"no activation matches {item!r}")
        names += matched if matched else [get_spec(item).name]
    from .report.curves import response_curves

    if not (math.isfinite(args.xmin) and math.isfinite(args.xmax)):
        raise CLIError(f"--xmin and --xmax must be finite, got {args.xmin} and {args.xmax}")
    if args.xmin >= args.xmax:
        raise CLIError(f"--xmin ({args.xmin}) must be below --xmax ({args.xmax})")
    out = Path(args.out)
    if out.suffix.lower() not in (".png", ".svg", ".pdf"):
        raise CLIError(f"--out must end in .png, .svg or .pdf, got {out.name!r}")
    try:
        import matplotlib  # noqa: F401
    except ImportError as exc:
        raise CLIError("plotting needs matplotlib: pip install 'learnact[plot]'") from exc
    fig = response_curves(names, x_range=(args.xmin, args.xmax), learnable=not args.no_learnable)
    out.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(out, dpi=args.dpi)
    print(f"wrote {out} ({len(names)} activation(s))")
    return 0


def _fmt_time(seconds: float) -> str:
    seconds = round(seconds)
    return f"{seconds // 60}m{seconds % 60:02d}s" if seconds >= 60 else f"{seconds}s"


def _say(text: str) -> None:
    """Print a progress line; when stdout's reader is gone (`learnact study | head`),
    send the rest of the output to /dev/null: the study goes on and stores every run,
    where the closed pipe would otherwise fail the run it was reporting on."""
    try:
        print(text, flush=True)
    except BrokenPipeError:
        try:
            devnull = os.open(os.devnull, os.O_WRONLY)
            os.dup2(devnull, sys.stdout.fileno())
            os.close(devnull)
        except (AttributeError, OSError, ValueError):  # no real file behind sys.stdout
            pass


class _Progress:
    """A progress line over runs with an ETA, plus one line per epoch."""

    def __init__(self, total: int, already: int) -> None:
        self.total, self.done, self.start = total, already, time.perf_counter()
        self.new = 0

    def bar(self) -> str:
        frac = self.done / self.total if self.total else 1.0
        filled = int(frac * 24)
        elapsed = time.perf_counter() - self.start
        eta = ""
        if self.new and self.done < self.total:
            eta = f" ETA {_fmt_time(elapsed / self.new * (self.total - self.done))}"
        return f"[{'#' * filled}{'.' * (24 - filled)}] {self.done}/{self.total} runs{eta}"

    def __call__(self, event) -> None:
        run = event.run
        label = f"{run.activation} seed {run.seed}"
        if event.kind == "start":
            _say(f"{self.bar()}  start {label}")
        elif event.kind == "resume":
            _say(f"{self.bar()}  resume {label} from its checkpoint after epoch "
                 f"{event.data['epoch'] + 1}")
        elif event.kind == "epoch":
            d = event.data
            _say(f"  {label} epoch {d['epoch'] + 1}: train_loss {d['train_loss']:.4f} "
                 f"test_loss {d['test_loss']:.4f} acc {d['test_accuracy']:.4f} "
                 f"top5 {d['test_top5']:.4f} lr {d['lr']:.2e} ({d['seconds']:.1f}s)")
        else:
            self.done += 1
            self.new += 1
            extra = f" ({event.data['error']})" if event.kind == "failed" else ""
            _say(f"{self.bar()}  {event.kind} {label}{extra}")

    def poll(self, finished: int, total: int) -> None:
        if finished != self.done:
            self.new += finished - self.done
            self.done = finished
            _say(self.bar())


def ranking_table(rows: list[dict]) -> str:
    """Activations ranked by mean test accuracy over their ordinary runs, per task.

    ``rows`` are :meth:`Store.results` rows; the numbers come from
    :func:`learnact.study.summary.summarize`, as the report's do. Activations
    with a diverged or at-chance run get no rank (``-``) and a note; each task
    ends with :func:`learnact.study.summary.certainty`'s sentences and how
    the learning rates were chosen.
    """
    from .study.summary import certainty, summarize, unranked_note

    lines = []
    summaries = summarize(rows)
    # as wide as the longest label: learnable(mish, mean_shift=false) is 33 characters
    width = max([18, *(len(s["activation"]) for s in summaries)])
    header = (f"{'rank':>4}  {'activation':<{width}} {'mean acc':>8} {'max acc':>8} "
              f"{'runs':>4}  lr chosen by / note")
    current = None
    rank = 0
    sure = certainty(rows)

    def close(task) -> None:
        if task is not None:
            lines.extend(f"  * {line}" for line in sure.get(task, []))

    for s in summaries:
        if (s["dataset"], s["model"]) != current:
            close(current)
            current, rank = (s["dataset"], s["model"]), 0
            lines += ["", f"{s['dataset']} / {s['model']}", header]
        notes = [s["lr_paths"]] if s["lr_paths"] else []
        if s["ranked"]:
            rank += 1
            shown = str(rank)
        else:
            shown = "-"
            notes.append(unranked_note(s))
        other = s["failed"] + s["unfinished"]
        if other:
            notes.append(f"{other} failed or unfinished")
        lines.append(f"{shown:>4}  {s['activation']:<{width}} {s['mean_accuracy']:>8.4f} "
                     f"{s['max_accuracy']:>8.4f} {s['n']:>4}  {'; '.join(notes)}")
    close(current)
    return "\n".join(lines).strip("\n")


# first-class flags of `study`: (config key, flag); help and type come from the key's field
STUDY_FLAGS = (("dataset", "--dataset"), ("image_size", "--image-size"), ("model", "--model"),
               ("swap", "--swap"), ("activations", "--activations"), ("seeds", "--seeds"),
               ("epochs", "--epochs"), ("lr", "--lr"), ("lr_method", "--lr-method"),
               ("batch_size", "--batch-size"), ("weight_decay", "--weight-decay"),
               ("mixup_alpha", "--mixup"), ("label_smoothing", "--label-smoothing"),
               ("augment", "--augment"), ("precision", "--precision"),
               ("train_limit", "--train-limit"), ("device", "--device"))


def _study_config(args: argparse.Namespace):
    """The study's configuration: the file (or preset), then the flags, then ``--set``,
    then ``--learnable``. Parsing only: the configuration checks every value."""
    from .study.config import load_preset, parse_setting

    if args.preset is not None and args.config is not None:
        raise CLIError("give --preset or --config, not both")
    cfg = load_preset(args.config or args.preset or "quick")
    flags = {key: parse_setting(key, raw) for key, _ in STUDY_FLAGS
             if (raw := getattr(args, key)) is not None}
    if args.keep_models:
        flags["keep_models"] = True
    cfg = cfg.replace_settings(flags, where="flags")
    pairs = {}
    for item in args.set:
        key, eq, raw = item.partition("=")
        if not eq:
            raise CLIError(f"--set {item!r}: expected KEY=VALUE")
        pairs[key.strip()] = parse_setting(key.strip(), raw)
    cfg = cfg.replace_settings(pairs, where="--set")
    return cfg.with_learnable_variants() if args.learnable else cfg


def _cmd_study(args: argparse.Namespace) -> int:
    from .study.driver import prepare_study, run_study
    from .study.executors import LocalExecutor, RayExecutor, RayMissing, WorkersDied
    from .study.store import Store

    cfg = _study_config(args)
    if args.print_config:
        from .study.config import config_toml

        print(config_toml(cfg), end="")
        return 0
    if args.executor == "ray":
        try:
            RayExecutor.import_ray()
        except RayMissing as exc:
            raise CLIError(str(exc)) from None
        executor = RayExecutor(address=args.address, num_cpus=args.jobs if args.jobs > 1 else None,
                               cpus_per_run=args.cpus_per_run, gpus_per_run=args.gpus_per_run)
    else:
        if args.address or args.gpus_per_run:
            raise CLIError("--address and --gpus-per-run need --executor ray")
        executor = LocalExecutor(args.jobs)
    tensorboard = None
    if args.tensorboard:  # before the database: a missing package leaves no trace
        from .report.tensorboard import TensorBoardLogger

        tensorboard = TensorBoardLogger(args.tensorboard)
    db = Path(args.db)
    plan = prepare_study(cfg, db, data_dir=args.data_dir, executor=executor)
    runs = plan.runs
    print(printable(f"study {cfg.name}: {cfg.data.dataset} / {cfg.model.name}, "
                    f"{len(runs) // cfg.seeds} activation(s) x {cfg.seeds} seed(s) = "
                    f"{len(runs)} runs, {plan.already} already finished; results in {db}"),
          flush=True)
    progress = _Progress(len(runs), plan.already)

    def emit(event) -> None:
        progress(event)
        if tensorboard is not None:
            tensorboard(event)

    start = time.perf_counter()
    try:
        counts = run_study(cfg, db, data_dir=args.data_dir, emit=emit, executor=executor)
    except WorkersDied as exc:  # not a user error, and not a finished study either
        print(f"learnact study: error: {exc}", file=sys.stderr)
        return 1
    finally:
        if tensorboard is not None:
            tensorboard.close()
    store = Store(db, readonly=True)
    ids = {r.run_id for r in runs}
    rows = [r for r in store.results() if r["run_id"] in ids]
    store.close()
    print()
    print(ranking_table(_printable_rows(rows)))
    summary = ", ".join(f"{v} {k}" for k, v in counts.items() if k != "total")
    wall = _fmt_time(time.perf_counter() - start)
    print(f"\n{counts['total']} runs: {summary}. Wall time {wall}.")
    print(f"All results: learnact results --db {db}")
    if args.report:
        _cmd_report(argparse.Namespace(db=str(db), out=args.report_dir, format="png"))
    else:
        print(f"Make the report: learnact report --db {db} --out {args.report_dir}")
    return 1 if counts.get("failed") else 0


def _cmd_kernels(args: argparse.Namespace) -> int:
    from .kernels import cpu

    if args.action == "info":
        info = cpu.info()
        print(f"CPU capability (ATen): {info['aten_cpu_capability']}; this CPU runs: "
              f"{', '.join(info['cpu_can_run'])}")
        print(f"selected variant:      {info['selected']} (by {info['selected_by']})")
        print(f"compiler:              {info['compiler']}")
        print(f"torch:                 {info['torch']}")
        print(f"cache:                 {info['cache']} (build lock timeout "
              f"{info['build_timeout_s']:g} s)")
        print(f"cache check:           {info['cache_check']}")
        for isa, row in info["variants"].items():
            runs = "" if row["cpu_can_run"] else " [this CPU cannot run it]"
            print(f"  {isa:<9} {row['status']}{runs}")
            print(f"  {'':<9} flags: {row['flags']}")
        return 0
    isas = list(cpu.ISAS) if args.isa == "all" else [args.isa] if args.isa else None
    failed = 0
    for res in cpu.build(isas, force=args.force):
        if res.ok:
            print(f"{res.isa:<9} {res.status} in {res.seconds:.1f} s: {res.path}")
        else:
            failed += 1
            print(f"{res.isa:<9} failed: {res.detail}")
    if failed and args.isa != "all":
        raise CLIError(f"{failed} variant(s) could not be built; the pure-PyTorch path will run")
    return 0


def _cmd_lr_find(args: argparse.Namespace) -> int:
    """One LR-finder sweep, as a study run does it; prints every suggestion and plots them."""
    import torch

    from .data import load_dataset
    from .models import build_model
    from .report.plots import lr_finder_figure
    from .study import load_preset
    from .study.config import parse_setting
    from .study.driver import check_model_fits
    from .train.lr_choice import finder_sweep
    from .train.lr_find import SUGGESTIONS

    out = Path(args.out)
    if out.suffix.lower() not in (".png", ".svg", ".pdf"):
        raise CLIError(f"--out must end in .png, .svg or .pdf, got {out.name!r}")
    cfg = load_preset(args.preset).replace_settings(
        {key: parse_setting(key, str(raw)) for key in
         ("dataset", "model", "batch_size", "train_limit", "image_size")
         if (raw := getattr(args, key)) is not None}, where="flags")
    spec = get_spec(args.activation)  # one line, with suggestions, for an unknown name
    data = load_dataset(cfg.data.dataset, data_dir=args.data_dir,
                        train_limit=cfg.data.train_limit, image_size=cfg.data.image_size)
    check_model_fits(cfg.model.name, data, cfg.model.swap)
    torch.manual_seed(args.seed)
    c, h, _ = data.image_shape
    model = build_model(cfg.model.name,
                        lambda: create_activation(spec.name, learnable=args.learnable),
                        in_channels=c, num_classes=data.num_classes, image_size=h)
    method = cfg.lr_choice.method
    result, check = finder_sweep(model, data, cfg.training, seed=args.seed, method=method)
    if len(result.lrs) < 2:
        raise CLIError("the LR finder diverged at once; no curve to suggest from")
    picks = {name: rule(result.lrs, result.losses) for name, rule in SUGGESTIONS.items()}
    label = f"{'Learnable(' + spec.name + ')' if args.learnable else spec.name}"
    where = f"{cfg.data.dataset} / {cfg.model.name}"
    print(f"LR finder: {label} on {where}, batch {cfg.training.batch_size}, "
          f"{len(result.lrs)} steps")
    for name, lr in picks.items():
        default = "  (the study's rule)" if name == method else ""
        print(f"  {name:<8} {lr:.3g}{default}")
    if not check.problems:
        print("curve check: passed; a study run would train at the rule's pick")
    for reason in check.reasons:
        print(f"curve check: {reason}")
    if set(check.problems) - {"unstable"}:
        print("a study run would not trust this curve: it tunes the rate instead (--lr tune)")
    elif check.problems:
        print(f"a study run would use the median pick over perturbed curves, "
              f"{check.stable_pick:.3g}")
    lr_finder_figure(result, picks, f"LR finder: {label}, {where}", out)
    print(f"wrote {out}")
    return 0


def _cmd_report(args: argparse.Namespace) -> int:
    try:
        from .report import ReportError, make_report
    except ImportError as exc:  # pragma: no cover - depends on the environment
        raise CLIError(f"reports need pandas and matplotlib: pip install 'learnact[plot]' "
                       f"({exc})") from exc
    start = time.perf_counter()
    try:
        # study --report passes no embed_figures: the default, figures linked
        result = make_report(args.db, args.out, args.format,
                             embed_figures=getattr(args, "embed_figures", False))
    except ReportError as exc:
        raise CLIError(str(exc)) from exc
    print(f"report: {len(result.files)} files for {len(result.tasks)} task(s) in "
          f"{_fmt_time(time.perf_counter() - start)}; open {result.index}")
    return 0


RESULT_COLUMNS = ("activation", "model", "dataset", "seed", "status", "flags", "epochs", "lr",
                  "lr_path", "test_accuracy", "test_top5", "test_loss", "train_loss",
                  "epoch_seconds", "lr_reason", "error")


def _cmd_results(args: argparse.Namespace) -> int:
    import csv

    from .study.store import Store, StoreError

    export = args.export or ("epochs" if args.per_epoch else None)
    try:
        store = Store(args.db, readonly=True)
        try:
            rows = store.results()
            if export is not None and rows:
                cols, data = store.export(export)
        finally:
            store.close()
    except StoreError as exc:
        raise CLIError(str(exc)) from exc
    except sqlite3.DatabaseError as exc:  # damage past the header: found while reading
        raise CLIError(f"{args.db} is corrupt ({exc})") from exc
    if not rows:
        raise CLIError(f"{args.db} holds no runs")
    if export is not None:  # always CSV: one row per run and epoch, parameter or site
        writer = csv.writer(sys.stdout, lineterminator="\n")
        writer.writerow(cols)
        writer.writerows([csv_cell(v) for v in row] for row in data)
    elif args.format == "csv":
        writer = csv.DictWriter(sys.stdout, fieldnames=RESULT_COLUMNS, extrasaction="ignore",
                                lineterminator="\n")
        writer.writeheader()
        writer.writerows({k: csv_cell(v) for k, v in row.items()} for row in rows)
    else:
        print(ranking_table(_printable_rows(rows)))
    return 0


def _printable_rows(rows: list[dict]) -> list[dict]:
    """``rows`` with control characters in text values escaped (names come from files)."""
    return [{k: printable(v) if isinstance(v, str) else v for k, v in row.items()}
            for row in rows]


def build_parser() -> argparse.ArgumentParser:
    """The argument parser for ``learnact``."""
    parser = _Parser(
        prog="learnact",
        description="Learnable-parameter activation functions: list, plot and study them.",
    )
    parser.add_argument("--version", action="version", version=f"learnact {__version__}")
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    p = sub.add_parser("list", help="print the activation zoo as a table")
    p.add_argument("pattern", nargs="*", help="fnmatch patterns, e.g. '*relu*' (default: all)")
    p.add_argument("--kind", choices=("all", "learnable", "fixed", "shape-changing"),
                   default="all", help="only learnable, fixed, or channel-count-changing "
                                       "activations (default: all)")
    p.add_argument("--format", choices=("table", "markdown"), default="table",
                   help="plain text table or Markdown (default: table)")
    p.set_defaults(func=_cmd_list)

    p = sub.add_parser("plot", help="draw response curves, with the learnable variants at init")
    p.add_argument("names", nargs="+", metavar="NAME",
                   help="activation names or fnmatch patterns ('all' for every one)")
    p.add_argument("--out", required=True, help="output file (.png, .svg or .pdf)")
    p.add_argument("--xmin", type=float, default=-4.0, help="left end of the x axis")
    p.add_argument("--xmax", type=float, default=4.0, help="right end of the x axis")
    p.add_argument("--dpi", type=int, default=120, help="resolution of raster output")
    p.add_argument("--no-learnable", action="store_true",
                   help="draw only the registered functions, not the recipe variants")
    p.set_defaults(func=_cmd_plot)

    from .data.loader import DATASETS
    from .models import MODELS
    from .study.config import StudyConfig, list_presets

    presets = list_presets()
    p = sub.add_parser("study", help="train activations x seeds and store the results",
                       description="Presets: " + "; ".join(f"{k}: {v}" for k, v in presets.items()))
    p.add_argument("--preset", default=None, metavar="NAME|FILE",
                   help=f"one of {', '.join(sorted(presets))} (default: quick), or a .toml "
                        "or .json config file")
    p.add_argument("--config", metavar="FILE",
                   help="a .toml or .json config file (the presets' keys); flags override it")
    p.add_argument("--set", action="append", default=[], metavar="KEY=VALUE",
                   help="set any configuration key, after the file and the flags "
                        "(repeatable), e.g. --set pct_start=0.3; --print-config lists them")
    p.add_argument("--print-config", action="store_true",
                   help="print the resolved configuration as TOML (which --config reads "
                        "back to the same runs) and exit")
    fields_by_key = StudyConfig.fields_by_key()
    for key, flag in STUDY_FLAGS:
        help_text = fields_by_key[key][1].metadata["help"]
        p.add_argument(flag, dest=key, metavar=key.upper(), help=help_text)
    p.add_argument("--learnable", action="store_true",
                   help="also study the paper's recipe over every listed activation "
                        "(learnable(NAME) beside NAME)")
    p.add_argument("--keep-models", action="store_true",
                   help="keep each finished run's final weights in DB.models/<run_id>.pt")
    p.add_argument("--db", default="learnact-results/results.db", help="results database")
    p.add_argument("--jobs", type=int, default=1,
                   help="parallel worker processes (local), or the CPUs of a local Ray")
    p.add_argument("--executor", choices=("local", "ray"), default="local",
                   help="local processes (default) or Ray tasks")
    p.add_argument("--address", help="Ray cluster: auto, HOST:PORT or ray://HOST:PORT "
                   "(default: start a local Ray)")
    p.add_argument("--cpus-per-run", type=int, default=1, help="Ray CPUs (and threads) per run")
    p.add_argument("--gpus-per-run", type=float, default=0.0,
                   help="Ray GPUs per run; fractions share a GPU")
    p.add_argument("--data-dir", help="directory searched first for datasets "
                   "(also $LEARNACT_DATA)")
    p.add_argument("--tensorboard", metavar="DIR",
                   help="also log every run's epoch scalars for TensorBoard under DIR "
                        "(pip install 'learnact[tensorboard]'); works with --jobs and Ray")
    p.add_argument("--report", action="store_true", help="make the report when done")
    p.add_argument("--report-dir", default="learnact-results/report",
                   help="where --report writes (default: learnact-results/report)")
    p.set_defaults(func=_cmd_study)

    p = sub.add_parser("report", help="figures, tables and index.html from a results database")
    p.add_argument("--db", default="learnact-results/results.db", help="results database")
    p.add_argument("--out", default="learnact-results/report", help="output directory")
    p.add_argument("--format", choices=("png", "svg"), default="png", help="figure format")
    p.add_argument("--embed-figures", action="store_true",
                   help="put every figure inside index.html (one self-contained file, tens of "
                   "times larger) instead of linking the files beside it")
    p.set_defaults(func=_cmd_report)

    p = sub.add_parser("lr-find", help="run the LR finder for one activation and plot its "
                       "curve with every suggestion marked")
    p.add_argument("activation", help="registry name, e.g. dual_line")
    p.add_argument("--learnable", action="store_true", help="apply the paper's recipe to it")
    p.add_argument("--preset", default="quick", metavar="NAME|FILE",
                   help="settings to start from: a preset (default: quick) or a .toml or "
                        ".json config file")
    p.add_argument("--dataset", help=f"{', '.join(DATASETS)}, a path to a .npz file, or a "
                   "folder with train/ and val/ holding one folder of images per class")
    p.add_argument("--image-size", type=int,
                   help="image folders: the side images are resized and cropped to (default 128)")
    p.add_argument("--model", choices=sorted(MODELS), help="network")
    p.add_argument("--batch-size", type=int)
    p.add_argument("--train-limit", type=int, help="use only the first N training images")
    p.add_argument("--seed", type=int, default=0, help="model init and batch order (default 0)")
    p.add_argument("--data-dir", help="searched first for datasets")
    p.add_argument("--out", default="learnact-plots/lr-find.png",
                   help="the figure (.png, .svg or .pdf; default learnact-plots/lr-find.png)")
    p.set_defaults(func=_cmd_lr_find)

    p = sub.add_parser("kernels", help="build the fused CPU kernels ahead of time, or say "
                       "what will run")
    p.add_argument("action", choices=("build", "info"),
                   help="build: compile (once per machine); info: what will run, and why")
    p.add_argument("--isa", choices=("baseline", "avx2", "avx512", "all"), default=None,
                   help="variant(s) to build (default: the one this CPU uses; 'all' also "
                   "builds those it cannot run, and does not fail when the compiler "
                   "rejects one)")
    p.add_argument("--force", action="store_true",
                   help="rebuild, even a verified build, and retry builds that failed before")
    p.set_defaults(func=_cmd_kernels)

    p = sub.add_parser("results", help="print the runs stored in a results database")
    p.add_argument("--db", default="learnact-results/results.db", help="results database")
    p.add_argument("--format", choices=("table", "csv"), default="table",
                   help="a ranking per task, or CSV with one row per run (last epoch)")
    which = p.add_mutually_exclusive_group()
    which.add_argument("--per-epoch", action="store_true",
                       help="CSV with one row per run and epoch")
    which.add_argument("--export", choices=("epochs", "params", "stats"),
                       help="CSV of every epoch, every learned parameter value (epoch -1: "
                            "the end of the run) or the activation statistics per epoch "
                            "and site")
    p.set_defaults(func=_cmd_results)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Run the CLI; returns the exit code (0 ok, 1 some runs failed, 2 user error, 130 Ctrl-C)."""
    parser = build_parser()
    args, extra = parser.parse_known_args(argv)
    if extra:  # argparse would blame the top-level command; name the subcommand's help
        prog = f"{parser.prog} {args.command}"
        parser.exit(2, f"{prog}: error: unrecognized arguments: {' '.join(extra)} "
                       f"(see {prog} --help)\n")
    if getattr(args, "names", None) == ["all"]:
        args.names = ["*"]
    try:
        return args.func(args)
    except KeyboardInterrupt:
        print(f"learnact {args.command}: interrupted; finished runs are saved, rerun the same "
              "command to resume", file=sys.stderr)
        return 130
    except BrokenPipeError:  # e.g. `learnact results | head`
        sys.stderr.close()
        return 0
    except LearnactError as exc:  # only user errors; a bug keeps its traceback (exit 1)
        print(f"learnact {args.command}: error: {printable(str(exc))}", file=sys.stderr)
        return 2


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
