"""The --threads and --clock flags the speed benchmarks share."""

from __future__ import annotations

import argparse
import time
from collections.abc import Callable

import torch


def add_timing_args(parser: argparse.ArgumentParser) -> None:
    """Add ``--threads`` and ``--clock`` to ``parser``."""
    parser.add_argument("--threads", type=int, default=0,
                        help="torch threads (default: torch's own choice)")
    parser.add_argument("--clock", choices=("wall", "cpu"), default="wall",
                        help="cpu: this thread's CPU time, which a busy machine does not inflate "
                             "(with --threads 1, where all the work runs on this thread)")


def timing_clock(parser: argparse.ArgumentParser, args: argparse.Namespace
                 ) -> Callable[[], float]:
    """Set torch's thread count from ``args`` and return the clock they ask for."""
    if args.threads:
        torch.set_num_threads(args.threads)
    if args.clock == "cpu":
        if torch.get_num_threads() != 1:
            parser.error("--clock cpu needs --threads 1 (other threads' work would not count)")
        return time.thread_time
    return time.perf_counter
