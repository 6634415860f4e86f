"""Reporting checklists filled in: TRIPOD+AI and CLEAR, for this book and for each seed paper.

One CSV per checklist in ``ovfkit/data/checklists/`` (columns :data:`COLUMNS`), one row per item. The
``ovfkit`` cell says where the book answers the item (``page#anchor``, several joined by ``; ``, with
``(not covered: ...)`` when the answer is partial, other notes in parentheses), or ``missing: ...`` or ``n/a: ...``; each paper's cell
starts with ``yes``, ``partly``, ``no`` or ``n/a``, followed by where or why.
"""

from __future__ import annotations

import re
from pathlib import Path

import pandas as pd

DATA = Path(__file__).parent / "data" / "checklists"
#: checklist key -> its name and reference
CHECKLISTS = {"tripod_ai": "TRIPOD+AI (Collins et al., BMJ 2024)",
              "clear": "CLEAR (Kocak et al., Insights into Imaging 2023)"}
PAPERS = ("zhang2024", "liu2025", "zhang2023", "guo2026", "li")
COLUMNS = ("item", "section", "text", "ovfkit", *PAPERS)
PAPER_STATUS = ("yes", "partly", "no", "n/a")
_LINK = re.compile(r"^([\w./-]+?)(?:#([\w-]+))?$")


def ovfkit_status(cell: str) -> str:
    """``answered``, ``partly`` (answered with a ``not covered`` part), ``missing`` or ``n/a``."""
    if cell.startswith("missing:"):
        return "missing"
    if cell.startswith("n/a:"):
        return "n/a"
    return "partly" if "(not covered:" in cell else "answered"


def paper_status(cell: str) -> str:
    """The leading word of a paper's cell: ``yes``, ``partly``, ``no`` or ``n/a``."""
    head = cell.split(":", 1)[0].strip()
    if head not in PAPER_STATUS:
        raise ValueError(f"cell {cell[:40]!r} does not start with one of {', '.join(PAPER_STATUS)}")
    return head


def links(cell: str) -> list[tuple[str, str | None]]:
    """The book places an ``ovfkit`` cell names: ``[(page, anchor or None), ...]``; none for missing or n/a."""
    if ovfkit_status(cell) in ("missing", "n/a"):
        return []
    places = re.sub(r"\([^)]*\)", "", cell.split("(not covered:", 1)[0])  # without the notes in parentheses
    out = []
    for token in filter(None, (t.strip() for t in places.split(";"))):
        m = _LINK.match(token)
        if not m:
            raise ValueError(f"{token!r} is not a book place (page or page#anchor)")
        out.append((m.group(1), m.group(2)))
    return out


def load(name: str) -> pd.DataFrame:
    """One checklist as filled in, validated.

    Raises
    ------
    ValueError
        For an unknown checklist, a missing column, or a cell that breaks the conventions above (the message
        names the file, the item and the column).
    """
    if name not in CHECKLISTS:
        raise ValueError(f"checklist {name!r} is not one of {', '.join(CHECKLISTS)}")
    path = DATA / f"{name}.csv"
    table = pd.read_csv(path, dtype=str, keep_default_na=False)
    missing = [c for c in COLUMNS if c not in table.columns]
    if missing:
        raise ValueError(f"{path.name}: columns {missing} are missing; the columns are {', '.join(COLUMNS)}")
    for row in table.itertuples(index=False):
        try:
            links(row.ovfkit)
            for paper in PAPERS:
                paper_status(getattr(row, paper))
        except ValueError as exc:
            raise ValueError(f"{path.name}, item {row.item}: {exc}") from None
    return table[list(COLUMNS)]


def coverage(table: pd.DataFrame) -> pd.DataFrame:
    """How many items each reporter answers: rows ``ovfkit`` and each paper, columns the statuses."""
    rows = {"ovfkit": table["ovfkit"].map(ovfkit_status).value_counts()}
    for paper in PAPERS:
        rows[paper] = table[paper].map(paper_status).value_counts()
    out = pd.DataFrame(rows).T.fillna(0).astype(int)
    order = ["answered", "yes", "partly", "no", "missing", "n/a"]
    return out[[c for c in order if c in out.columns]]
