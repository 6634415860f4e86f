"""End to end: both notebooks for both modalities on a tiny cohort, the book, and the page in Chromium."""

import re
import shutil
import subprocess

import numpy as np
import pytest

from ovfkit import runner

SEED = 42  # the default of every README command


@pytest.fixture(scope="module")
def built_book(tmp_path_factory):
    root = tmp_path_factory.mktemp("book")
    index = runner.run("all", "quick", seed=SEED, build_dir=root / "build", out_dir=root)
    return index


FIGURES = {"01_cohort": 2, "02_astlof": 3, "03_radiomics": 3, "04_deep_features": 3, "05_fusion_selection": 3,
           "06_model_comparison": 5, "07_delong": 0, "08_shap": 5, "09_clinical": 4}
AC_FIGURES = {"01_cohort": 1, "02_features": 7, "03_models": 1, "04_nomogram": 4}  # the acute-vs-chronic part
FO_FIGURES = {"01_cohort": 1, "02_cnn_comparison": 2, "03_readers": 0}  # the fresh-vs-old part


@pytest.mark.slow
def test_book_holds_every_chapter_for_both_modalities_with_figures(built_book):
    assert tuple(FIGURES) == runner.CHAPTERS
    html = built_book.parent
    for modality in ("xray", "ct"):
        for chapter, figures in FIGURES.items():
            page = (html / modality / f"{chapter}.html").read_text(encoding="utf-8")
            assert "Run parameters" in page and "Provenance" in page
            assert f"<code class=\"docutils literal notranslate\"><span class=\"pre\">{modality}</span></code>" in page
            imgs = re.findall(r'<img[^>]+src="([^"]+\.png)"', page)
            assert len(imgs) >= figures, (modality, chapter, imgs)
            for src in imgs:
                assert (html / modality / src).resolve().is_file()
            assert "Traceback" not in page
    assert tuple(AC_FIGURES) == runner.AC_CHAPTERS and tuple(FO_FIGURES) == runner.FO_CHAPTERS
    for part, expected in (("acute-chronic", AC_FIGURES), ("fresh-old", FO_FIGURES)):
        for chapter, figures in expected.items():
            page = (html / part / f"{chapter}.html").read_text(encoding="utf-8")
            assert "Run parameters" in page and "Provenance" in page and "Traceback" not in page
            imgs = re.findall(r'<img[^>]+src="([^"]+\.png)"', page)
            assert len(imgs) >= figures, (part, chapter, imgs)
    audit = (html / "audit" / "01_pitfalls.html").read_text(encoding="utf-8")
    assert "Run parameters" in audit and "Provenance" in audit and "Traceback" not in audit
    assert "What we found" in audit and "fine-tuning without cross-fitting" in audit
    assert len(re.findall(r'<img[^>]+src="([^"]+\.png)"', audit)) >= 1 and audit.count("<table") >= 6
    assert (html / "_static" / "mathjax" / "tex-chtml.js").is_file()
    index = built_book.read_text(encoding="utf-8")
    assert "mathjax/tex-chtml.js" in index and "cdn.jsdelivr" not in index
    for page in [built_book, *html.glob("*/0*.html")]:  # one MathJax build on a page with formulas, none without
        text = page.read_text(encoding="utf-8")
        scripts = re.findall(r"<script[^>]*mathjax[^>]*>", text, re.I)
        assert len(scripts) == ("math notranslate" in text or page == built_book), (page.name, scripts[:5])


@pytest.mark.slow
def test_summary_pages_gather_results_versions_and_references(built_book):
    html = built_book.parent
    results = (html / "results.html").read_text(encoding="utf-8")
    assert "Next to the papers" in results and results.count("<table") >= 4
    clinicians = (html / "clinicians.html").read_text(encoding="utf-8")
    for page in (results, clinicians):
        assert page.count("What we found") >= 2 and "ovfkit: what we found" not in page
        assert "Chosen model (chapter 06)" in page and "Pretraining domains, each with its own chosen model" in page
    assert "glossary.html" in clinicians
    assert "zhang2024" in results and "liu2025" in results and "zhang2023" in results
    assert "Acute vs chronic (CT, zhang2023 design)" in results and "paper AUC (95% CI)" in results
    audit = (html / "audit.html").read_text(encoding="utf-8")
    assert "inconsistent if the premise holds" in audit and "TRIPOD+AI" in audit and "CLEAR" in audit and audit.count("<table") >= 8
    repro = (html / "reproducibility.html").read_text(encoding="utf-8")
    assert "Package versions" in repro and "scikit-learn" in repro and "09_clinical" in repro
    refs = (html / "references.html").read_text(encoding="utf-8")
    assert "DeLong" in refs and "Biometrics" in refs
    methods = (html / "methods.html").read_text(encoding="utf-8")
    assert "pipeline.svg" in methods
    assert (html / "_images" / "pipeline.svg").is_file() or (html / "_static" / "pipeline.svg").is_file()
    assert "Sun" in methods  # author-year citation rendered, not a raw {cite} role


@pytest.mark.slow
def test_every_figure_has_its_data_beside_it(built_book):
    figures = built_book.parents[2] / "build" / "xray" / "figures"
    for png in figures.glob("*.png"):
        assert png.with_suffix(".csv").is_file(), png.name


@pytest.mark.slow
def test_baseline_auc_is_measured_in_the_chapter(built_book):
    page = (built_book.parent / "xray" / "01_cohort.html").read_text(encoding="utf-8")
    assert re.search(r"reaches a macro AUC of (<strong>)?0\.\d{3}", page)


def _chromium():
    return shutil.which("chromium") or shutil.which("chromium-browser")


def _headless(*args, url, tmp):
    cmd = [_chromium(), "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
           "--disable-background-networking", "--disable-component-update", "--disable-sync",
           f"--user-data-dir={tmp}", "--hide-scrollbars", "--virtual-time-budget=15000", *args, url]
    return subprocess.run(cmd, capture_output=True, encoding="utf-8", errors="replace", timeout=120)


@pytest.mark.slow
@pytest.mark.browser
@pytest.mark.skipif(_chromium() is None, reason="Debian's chromium is not installed (.ci/run installs it)")
@pytest.mark.parametrize("page", ["index.html", "xray/01_cohort.html", "ct/07_delong.html"])
def test_page_renders_in_chromium_with_typeset_formulas(built_book, tmp_path, page):
    from PIL import Image

    url = (built_book.parent / page).as_uri()
    dom = _headless("--dump-dom", url=url, tmp=tmp_path / "dom").stdout
    assert dom.count("<mjx-container") >= 1, "MathJax did not typeset the formulas offline"
    assert "<mjx-merror" not in dom, "a formula failed to typeset"
    shot = tmp_path / "page.png"
    _headless(f"--screenshot={shot}", "--window-size=1200,1600", url=url, tmp=tmp_path / "shot")
    pixels = np.asarray(Image.open(shot).convert("L"), dtype=float)
    assert pixels.std() > 20, "the page looks blank"
    assert (pixels < 128).mean() > 0.01, "no text or figures drawn"


@pytest.mark.slow
@pytest.mark.parametrize("modality, chapter, n_figures", [("xray", "02_astlof", FIGURES["02_astlof"]),
                                                           ("ct", "02_astlof", FIGURES["02_astlof"]),
                                                           ("acute-chronic", "01_cohort", AC_FIGURES["01_cohort"])])
def test_printed_reexecute_command_reproduces_the_chapter_and_nothing_else(built_book, modality, chapter, n_figures):
    """The commands in a page's "Run parameters" box, run as printed, write that chapter's figures and
    tables byte for byte as the book has them, into its own part's folder only."""
    import nbformat

    build = built_book.parents[2] / "build"
    page = nbformat.read(build / "book" / modality / f"{chapter}.ipynb", as_version=4)
    box = next(c.source for c in page.cells if "Re-execute this chapter" in c.source)
    commands = re.search(r"```bash\n(.*?)\n```", box, re.S).group(1).splitlines()
    assert len(commands) == 2 and " synth " in commands[0] and " papermill " in commands[1]
    figures = build / modality / "figures"
    other = build / ("ct" if modality == "xray" else "xray") / "figures"
    other_before = {p.name: p.read_bytes() for p in other.iterdir()}
    kept = figures.with_name("figures-of-the-book")
    figures.rename(kept)
    try:
        for command in commands:
            proc = subprocess.run(command, shell=True, cwd=runner.REPO_ROOT, capture_output=True, encoding="utf-8",
                                  errors="replace")  # papermill's progress bar is UTF-8 whatever the locale
            assert proc.returncode == 0, (command, proc.stderr[-2000:])
        written = sorted(p.name for p in figures.iterdir())
        assert sum(name.endswith(".png") for name in written) >= n_figures, written
        for name in written:
            assert (figures / name).read_bytes() == (kept / name).read_bytes(), name
        assert {p.name: p.read_bytes() for p in other.iterdir()} == other_before
    finally:
        shutil.rmtree(figures, ignore_errors=True)
        kept.rename(figures)


def _reader_text(page_html: str) -> str:
    """What a reader sees of a chapter without opening its collapsed code: the page less its cells' inputs."""
    from bs4 import BeautifulSoup

    soup = BeautifulSoup(page_html, "html.parser")
    for hidden in soup.select("div.cell_input, script, style"):
        hidden.decompose()
    return soup.select_one("main, article, body").get_text(" ")


@pytest.mark.slow
@pytest.mark.parametrize("modality, name", [("xray", "X-ray"), ("ct", "CT"), ("acute-chronic", "CT"),
                                            ("fresh-old", "X-ray")])
def test_chapter_pages_name_their_modality_collapse_code_and_show_no_raw_values(built_book, modality, name):
    for chapter in runner.PARTS[modality].chapters:
        page = (built_book.parent / modality / f"{chapter}.html").read_text(encoding="utf-8")
        title = re.search(r"<title>(.*?)</title>", page, re.S).group(1)
        assert f"({name})" in title, (chapter, title)
        assert re.search(r"<h1>[^<]*\(" + re.escape(name) + r"\)", page), chapter
        assert "hide-input" in page and "tag_hide-input" in page, chapter
        text = _reader_text(page)
        for raw in (r"\bNaN\b", r"\bnan\b", r"\bNone\b", r"Traceback", r"Warning\b", r"site-packages"):
            found = re.search(raw, text)
            assert found is None, (chapter, text[max(0, found.start() - 200): found.end() + 100])


@pytest.mark.slow
@pytest.mark.parametrize("modality", ["xray", "ct", "acute-chronic", "fresh-old"])
def test_every_chapter_image_is_a_numbered_figure_with_a_caption_and_descriptive_alt_text(built_book, modality):
    from bs4 import BeautifulSoup

    n_figures = 0
    for chapter in runner.PARTS[modality].chapters:
        soup = BeautifulSoup((built_book.parent / modality / f"{chapter}.html").read_text(encoding="utf-8"),
                             "html.parser")
        for img in soup.select("main img, article img"):
            figure = img.find_parent("figure")
            assert figure is not None, (chapter, img.get("src"))
            caption = figure.find("figcaption")
            assert caption is not None and re.match(r"\s*Fig\. \d+", caption.get_text(" ")), (chapter, img.get("src"))
            assert figure.get("id", "").startswith(f"fig-{modality}-"), (chapter, figure.get("id"))
            alt = img.get("alt", "")
            assert len(alt.split()) >= 5 and not re.search(r"\.png|/|[0-9a-f]{16}", alt), (chapter, alt)
            n_figures += 1
    assert n_figures >= {"acute-chronic": 13, "fresh-old": 3}.get(modality, 20)


@pytest.mark.slow
def test_results_page_matches_every_paper_item_to_a_page_or_figure_that_exists(built_book):
    from bs4 import BeautifulSoup

    html = built_book.parent
    section = BeautifulSoup((html / "results.html").read_text(encoding="utf-8"), "html.parser").find(
        id="every-item-of-the-papers")
    assert section is not None
    rows = section.select("table tbody tr")
    assert len(rows) >= 30
    checked = 0
    for a in section.select("table a"):
        href = a.get("href", "")
        if "references.html" in href:
            continue
        page, _, anchor = href.partition("#")
        target = html / page
        assert target.exists(), href
        if anchor:
            assert BeautifulSoup(target.read_text(encoding="utf-8"), "html.parser").find(id=anchor), href
        checked += 1
    assert checked >= 40
    for page in ("results.html", "clinicians.html"):
        text = _reader_text((html / page).read_text(encoding="utf-8"))
        for raw in (r"\bNaN\b", r"\bnan\b", r"\bNone\b", r"p_Holm"):
            found = re.search(raw, text)
            assert found is None, (page, text[max(0, found.start() - 200): found.end() + 100])
