"""Reading the markdown tables the benchmark sections write (shared by the benchmark tests)."""

from __future__ import annotations


def table_rows(markdown: str, header_start: str) -> list[list[str]]:
    """The cells of the rows of the table whose header line starts with ``header_start``."""
    lines = markdown.splitlines()
    start = next(i for i, line in enumerate(lines) if line.startswith(header_start))
    rows = []
    for line in lines[start + 2 :]:
        if not line.startswith("|"):
            break
        rows.append([cell.strip() for cell in line.strip("|").split("|")])
    return rows
