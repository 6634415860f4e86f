"""The results page's table of the papers' items: every table and figure of the papers has a row, and every
row points at a chapter and figures that exist."""
import fnmatch
import re
from pathlib import Path

import nbformat
import pytest

from ovfkit import runner, study

PAPERS = Path(__file__).resolve().parents[2] / "shared" / "papers"
SOURCES = {"zhang2024": "zhang2024_xray_dlr_astlof.txt", "liu2025": "liu2025_ct_dlr_astlof.jats.xml",
           "zhang2023": "zhang2023_ct_acute_vs_chronic_vcf.txt", "guo2026": "guo2026_xray_fresh_vs_old_cnn_zoo.txt"}


def _part(paper: str) -> runner.Part:
    """The part of the book that answers ``paper`` (the ASTLOF parts share notebooks and chapters)."""
    return runner.PARTS[runner.PAPER_PART.get(paper, "xray")]


def _saved_figures(paper: str, chapter: str) -> list[str]:
    """Names a chapter's notebook saves figures under, f-string fields as ``*``."""
    nb = nbformat.read(Path(runner.REPO_ROOT) / _part(paper).notebooks / f"{chapter}.ipynb", as_version=4)
    names = re.findall(r'f?"([^"]+)",\s*output_dir', "\n".join(c.source for c in nb.cells if "save_figure" in c.source))
    return [re.sub(r"\{[^}]*\}", "*", n) for n in names]


@pytest.mark.parametrize("paper", sorted(SOURCES))
def test_every_numbered_table_and_figure_of_the_paper_has_a_row(paper):
    path = PAPERS / SOURCES[paper]
    if not path.exists():
        pytest.skip(f"{path} is not beside the checkout (../shared/papers)")
    text = path.read_text(encoding="utf-8")
    found = re.findall(r"(?:<label>|^)(?:\*\*)?((?:Table|Figure|Fig\.)[ \u00a0]\d+)[.|  \u00a0]", text, flags=re.M)
    numbered = {n.replace("\u00a0", " ").replace("Fig. ", "Figure ") for n in found}
    assert len(numbered) >= 8, numbered  # the parse found the captions
    items = set(study.paper_items(paper)["item"])
    assert numbered <= items, sorted(numbered - items)


@pytest.mark.parametrize("row", study.paper_items().to_dict("records"), ids=lambda r: f"{r['paper']}-{r['item']}")
def test_each_row_points_at_a_chapter_and_figures_that_exist_or_says_why_not(row):
    if not row["chapter"]:
        assert row["note"].startswith("No counterpart:"), row
        return
    assert row["chapter"] in _part(row["paper"]).chapters + runner.INTRO_PAGES, row["chapter"]
    if row["note"].startswith(("No counterpart", "Partial")):
        assert len(row["note"].split()) >= 6, "say what is missing and why"
    if row["chapter"] in runner.INTRO_PAGES:
        assert (Path(runner.REPO_ROOT) / "book" / f"{row['chapter']}.md").exists()
        return
    saved = _saved_figures(row["paper"], row["chapter"])
    for pattern in filter(None, row["figures"].split(";")):
        assert any(fnmatch.fnmatch(s, pattern) or fnmatch.fnmatch(pattern, s) for s in saved), (pattern, saved)
