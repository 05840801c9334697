"""Process ids: whether one is alive (for the kernel build cache's and the results
store's locks and leases)."""

from __future__ import annotations

import os

__all__ = ["pid_alive"]


def pid_alive(pid: int) -> bool:
    """Whether process ``pid`` runs on this host (one we may not signal counts as alive).

    A zombie (exited, not yet reaped by its parent) is dead: in a container whose
    first process never reaps, a killed worker stays one for good, and its runs
    and locks would wait for their leases instead of being taken at once.
    """
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return not _zombie(pid)


def _zombie(pid: int) -> bool:
    """Whether ``/proc`` says ``pid`` has exited (state Z or X); ``False`` without ``/proc``."""
    try:
        with open(f"/proc/{pid}/stat", "rb") as f:
            stat = f.read()
    except OSError:
        return False
    # "pid (comm) state ...": comm may hold spaces and parentheses; the state follows the last ")"
    after = stat[stat.rfind(b")") + 1:].split()
    return bool(after) and after[0] in (b"Z", b"X")
