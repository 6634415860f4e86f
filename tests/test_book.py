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
    assert (html / "_static" / "mathjax" / "tex-chtml.js").is_file()
    index = built_book.read_text(encoding="utf-8")
    assert "mathjax/tex-chtml.js" in index and "cdn.jsdelivr" not in index


@pytest.mark.slow
def test_summary_pages_gather_results_versions_and_references(built_book):
    html = built_book.parent
    results = (html / "results.html").read_text(encoding="utf-8")
    assert "Next to the papers" in results and results.count("<table") >= 4
    assert "zhang2024" in results and "liu2025" in results
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
    assert re.search(r"reaches a macro AUC of <strong>0\.\d{3}</strong>", page)


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
