"""Text from files and databases made safe to show: terminals, one-line errors, spreadsheets.

Dataset paths, activation names and error messages can hold anything a file
name can: escape sequences that retitle or clear a terminal, newlines that
split a "one-line" error or a Markdown row, and leading ``=`` that a
spreadsheet runs as a formula. A leaf module: it imports nothing of learnact.
"""

from __future__ import annotations

from typing import Any

__all__ = ["csv_cell", "printable"]

# a spreadsheet reads a cell starting with one of these as a formula (CSV injection)
_FORMULA_STARTS = ("=", "+", "-", "@", "\t", "\r")


def printable(text: str) -> str:
    """``text`` with every non-printable character written as its escape (``\\x1b``, ``\\n``).

    Control characters (C0, DEL, C1), line and paragraph separators and
    invisible format characters (bidirectional overrides) are escaped; all
    other text, accents and CJK included, is kept as it is.
    """
    if text.isprintable():
        return text
    return "".join(c if c.isprintable() else repr(c)[1:-1] for c in text)


def csv_cell(value: Any) -> Any:
    """A value made safe for a CSV cell: text is :func:`printable`, and a leading
    ``= + - @`` is quoted with ``'`` so that a spreadsheet shows it instead of
    running it. Numbers (negative ones too) are returned unchanged.
    """
    if not isinstance(value, str):
        return value
    text = printable(value)
    return "'" + text if text.startswith(_FORMULA_STARTS) else text
