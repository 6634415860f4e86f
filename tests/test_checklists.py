"""The filled-in reporting checklists: every row follows the conventions, every item of each checklist is
there once, and every place in the book that a row names exists (the page, and the heading it links)."""

import json
from pathlib import Path

import pandas as pd
import pytest

from ovfkit import checklists, runner

REPO = Path(__file__).resolve().parents[1]
#: the official item numbers of each checklist
ITEMS = {
    "tripod_ai": [  # 52 items and sub-items
                  "1", "2", "3a", "3b", "3c", "4", "5a", "5b", "6a", "6b", "6c", "7", "8a", "8b", "8c", "9a", "9b",
                  "9c", "10", "11", "12a", "12b", "12c", "12d", "12e", "12f", "12g", "13", "14", "15", "16",
                  "17", "18a", "18b", "18c", "18d", "18e", "18f", "19", "20a", "20b", "20c", "21", "22", "23a", "23b",
                  "24", "25", "26", "27a", "27b", "27c"],
    "clear": [str(i) for i in range(1, 59)],
}


def _page_source(page: str) -> Path | None:
    """The source of a book page: book/<page>.md, or the notebook of a part's chapter."""
    md = REPO / "book" / f"{page}.md"
    if md.is_file():
        return md
    if "/" in page:
        part, chapter = page.split("/", 1)
        if part in runner.PARTS:
            nb = REPO / runner.PARTS[part].notebooks / f"{chapter}.ipynb"
            return nb if nb.is_file() else None
    return None


def _anchors(path: Path) -> set:
    from docutils.nodes import make_id

    if path.suffix == ".ipynb":
        cells = json.loads(path.read_text(encoding="utf-8"))["cells"]
        lines = [ln for c in cells if c["cell_type"] == "markdown" for ln in "".join(c["source"]).splitlines()]
    else:
        lines = path.read_text(encoding="utf-8").splitlines()
    return {make_id(ln.lstrip("#").strip()) for ln in lines if ln.startswith("#")}


@pytest.mark.parametrize("name", sorted(checklists.CHECKLISTS))
def test_every_item_is_there_once_in_order(name):
    table = checklists.load(name)
    assert table["item"].tolist() == ITEMS[name]
    assert (table["text"].str.len() > 10).all()


@pytest.mark.parametrize("name", sorted(checklists.CHECKLISTS))
def test_every_place_named_in_the_book_exists(name):
    table = checklists.load(name)
    generated = set(runner.SUMMARY_PAGES) - {"glossary", "references"} | {"audit"}  # written by the runner
    for row in table.itertuples():
        for page, anchor in checklists.links(row.ovfkit):
            if page in generated:
                continue
            src = _page_source(page)
            assert src is not None, f"{name} item {row.item}: page {page!r} is not in the book"
            if anchor:
                assert anchor in _anchors(src), f"{name} item {row.item}: {page} has no heading #{anchor}"


def test_coverage_counts_every_item_once_per_reporter():
    table = checklists.load("clear")
    cov = checklists.coverage(table)
    assert list(cov.index) == ["ovfkit", *checklists.PAPERS]
    assert (cov.sum(axis=1) == len(table)).all()


@pytest.mark.parametrize("cell, status", [
    ("xray/03_radiomics#extraction", "answered"), ("methods (not covered: the users)", "partly"),
    ("missing: no abstract", "missing"), ("n/a: synthetic data, no consent", "n/a"),
])
def test_ovfkit_status_reads_the_cell(cell, status):
    assert checklists.ovfkit_status(cell) == status


def test_a_bad_paper_cell_is_refused_with_the_item(tmp_path, monkeypatch):
    table = checklists.load("clear").copy()
    table.loc[3, "liu2025"] = "maybe: somewhere"
    table.to_csv(tmp_path / "clear.csv", index=False)
    monkeypatch.setattr(checklists, "DATA", tmp_path)
    with pytest.raises(ValueError, match=r"clear.csv, item 4: cell 'maybe"):
        checklists.load("clear")


def test_unknown_checklist_is_refused():
    with pytest.raises(ValueError, match="not one of"):
        checklists.load("consort")
    assert isinstance(checklists.load("tripod_ai"), pd.DataFrame)
