"""Where learnact keeps downloaded and decoded data (a leaf: imports nothing of learnact)."""

from __future__ import annotations

import os
from pathlib import Path

__all__ = ["cache_dir"]


def cache_dir() -> Path:
    """The user cache: ``$XDG_CACHE_HOME/learnact`` or ``~/.cache/learnact``."""
    base = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(base) / "learnact"
