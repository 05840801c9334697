"""Rewrite the zoo table in README.md from the registry (`make readme-table`)."""

from __future__ import annotations

from pathlib import Path

import learnact
from learnact.cli import zoo_table

START, END = "<!-- zoo-table:start -->", "<!-- zoo-table:end -->"


def main() -> None:
    """Replace the text between the zoo-table markers with a fresh table."""
    readme = Path(__file__).resolve().parents[1] / "README.md"
    text = readme.read_text()
    head, rest = text.split(START, 1)
    _, tail = rest.split(END, 1)
    table = zoo_table(learnact.list_activations(shape_changing=None), markdown=True)
    readme.write_text(f"{head}{START}\n{table}\n{END}{tail}")


if __name__ == "__main__":
    main()
