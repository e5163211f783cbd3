"""Read back the markdown tables the assets put in their metadata (``engine.report``)."""

from __future__ import annotations

import re
from dataclasses import dataclass

_SEPARATOR = re.compile(r"^\|(\s*:?-{3,}:?\s*\|)+$")
_UNESCAPED_PIPE = re.compile(r"(?<!\\)\|")


@dataclass(frozen=True)
class Table:
    header: tuple[str, ...]  # lower-cased
    rows: tuple[dict[str, str], ...]

    def column(self, *candidates: str, containing: str | None = None) -> str | None:
        """The first header equal to one of ``candidates``, else the first containing
        ``containing``; None if neither is there."""
        for name in candidates:
            if name in self.header:
                return name
        if containing is not None:
            return next((h for h in self.header if containing in h), None)
        return None


def _cells(line: str) -> list[str]:
    inner = line.strip().removeprefix("|")
    if inner.endswith("|") and not inner.endswith("\\|"):
        inner = inner[:-1]
    return [c.strip().replace("\\|", "|") for c in _UNESCAPED_PIPE.split(inner)]


def parse_tables(markdown: str) -> list[Table]:
    """Every pipe table in ``markdown``: a header line, a ``|---|`` separator and the
    ``|``-lines that follow. Anything else (titles, "_3 more rows not shown_") is skipped, and
    a row with the wrong number of cells is dropped rather than guessed."""
    lines = [line.strip() for line in markdown.splitlines()]
    tables: list[Table] = []
    i = 0
    while i < len(lines) - 1:
        if not (lines[i].startswith("|") and _SEPARATOR.match(lines[i + 1])):
            i += 1
            continue
        header = tuple(h.lower() for h in _cells(lines[i]))
        rows = []
        i += 2
        while i < len(lines) and lines[i].startswith("|"):
            cells = _cells(lines[i])
            if len(cells) == len(header):
                rows.append(dict(zip(header, cells, strict=True)))
            i += 1
        tables.append(Table(header, tuple(rows)))
    return tables


def table_with(markdown: str, column: str) -> Table | None:
    """The first table in ``markdown`` that has a header named ``column``."""
    return next((t for t in parse_tables(markdown) if column in t.header), None)
