"""The ``learnact`` command line. The only module that prints.

Errors are one line on stderr with exit code 2.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence
from pathlib import Path

from . import __version__
from .registry import create_activation, get_spec, list_activations

__all__ = ["main", "zoo_table"]


class CLIError(Exception):
    """A user error: printed as one line, exit code 2."""


def zoo_table(names: Sequence[str], *, markdown: bool = False) -> str:
    """The zoo as a text or Markdown table: name, learnable, parameters, formula."""
    rows = []
    for name in names:
        spec = get_spec(name)
        params = ", ".join(n for n, _ in create_activation(name).named_parameters()) or "-"
        aliases = f" ({', '.join(spec.aliases)})" if spec.aliases else ""
        rows.append((name + aliases, "yes" if spec.learnable else "no", params, spec.formula))
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
    learnable = {"all": None, "learnable": True, "fixed": False}[args.kind]
    names = list_activations(args.pattern or None, learnable=learnable)
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
    try:
        from .report.curves import response_curves
    except ImportError as exc:  # pragma: no cover - depends on the environment
        raise CLIError(f"plotting needs matplotlib: pip install 'learnact[plot]' ({exc})") from exc
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


def build_parser() -> argparse.ArgumentParser:
    """The argument parser for ``learnact``."""
    parser = argparse.ArgumentParser(
        prog="learnact",
        description="Learnable-parameter activation functions: list, plot and study them.",
    )
    parser.add_argument("--version", action="version", version=f"learnact {__version__}")
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    p = sub.add_parser("list", help="print the activation zoo as a table")
    p.add_argument("pattern", nargs="*", help="fnmatch patterns, e.g. '*relu*' (default: all)")
    p.add_argument("--kind", choices=("all", "learnable", "fixed"), default="all",
                   help="only learnable or only fixed activations (default: all)")
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
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Run the CLI; returns the exit code (0 ok, 2 user error)."""
    parser = build_parser()
    args = parser.parse_args(argv)
    if getattr(args, "names", None) == ["all"]:
        args.names = ["*"]
    try:
        return args.func(args)
    except (CLIError, ValueError, TypeError) as exc:
        print(f"learnact {args.command}: error: {exc}", file=sys.stderr)
        return 2


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
