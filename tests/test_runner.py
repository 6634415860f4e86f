import json

import nbformat
import pytest
from nbformat.v4 import new_code_cell, new_markdown_cell, new_notebook

from ovfkit import runner


def _notebook(path, *cells, error_output=False):
    params = new_code_cell('modality = "xray"\nmanifest = ""\noutput_dir = ""\ncache_dir = ""\nseed = 0\nprofile = "quick"')
    params.metadata["tags"] = ["parameters"]
    nb = new_notebook(cells=[new_markdown_cell("# Title"), params, *cells])
    nb.metadata["kernelspec"] = {"name": "python3", "display_name": "Python 3", "language": "python"}
    if error_output:
        nb.cells[-1].outputs = [nbformat.v4.new_output("error", ename="ValueError", evalue="boom", traceback=[])]
    nbformat.write(nb, path)
    return path


def test_a_failing_cell_stops_the_run_and_names_the_cell(tmp_path, tiny_cohorts):
    nbs = tmp_path / "notebooks"
    nbs.mkdir()
    _notebook(nbs / "01_cohort.ipynb", new_code_cell("x = 1"), new_code_cell("raise ValueError('deliberately broken')"))
    with pytest.raises(runner.RunError, match=r"01_cohort.ipynb \(xray\) failed in cell \d+: ValueError: "
                                              r"deliberately broken"):
        runner.run_modality("xray", "quick", seed=0, build_dir=tmp_path / "build", notebooks_dir=nbs,
                            chapters=("01_cohort",), manifest=tiny_cohorts["xray"])
    assert not (tmp_path / "build" / "book" / "xray" / "01_cohort.ipynb").exists()


def test_raises_exception_tag_does_not_let_an_error_through(tmp_path):
    """A cell tagged raises-exception would render its traceback in the book; the run must fail instead."""
    cell = new_code_cell("raise ValueError('boom')")
    cell.metadata["tags"] = ["raises-exception"]
    src = _notebook(tmp_path / "nb.ipynb", cell)
    with pytest.raises(runner.RunError, match="ValueError: boom"):
        runner.execute_notebook(src, tmp_path / "out.ipynb", {"modality": "xray"}, cwd=tmp_path)


def test_error_outputs_are_found_in_any_cell(tmp_path):
    nb = nbformat.read(_notebook(tmp_path / "nb.ipynb", new_code_cell("1"), error_output=True), as_version=4)
    assert runner.error_outputs(nb) == ["cell 2: ValueError: boom"]


def test_render_replaces_parameter_cells_and_adds_provenance(tmp_path):
    nb = new_notebook(cells=[new_markdown_cell("# T"), new_code_cell("a = 1"), new_code_cell("a = 2"),
                             new_code_cell("print(a)")])
    nb.cells[1].metadata["tags"] = ["parameters"]
    nb.cells[2].metadata["tags"] = ["injected-parameters"]
    out = runner.render_for_book(nb, {"modality": "ct", "seed": 3}, "01_cohort", {"ovfkit": "0.1.0"}, key="k")
    sources = [c.source for c in out.cells]
    assert "a = 1" not in sources and "a = 2" not in sources
    assert "Run parameters" in sources[1] and "`ct`" in sources[1] and "-p modality ct" in sources[1]
    assert "Provenance" in sources[-1] and "0.1.0" in sources[-1]
    assert out.metadata["ovfkit"]["key"] == "k"


def test_unchanged_notebook_is_reused_and_a_change_reexecutes(tmp_path, tiny_cohorts):
    nbs = tmp_path / "notebooks"
    nbs.mkdir()
    _notebook(nbs / "01_cohort.ipynb", new_code_cell("print('hello')"))
    kw = dict(seed=0, build_dir=tmp_path / "build", notebooks_dir=nbs, chapters=("01_cohort",),
              manifest=tiny_cohorts["xray"])
    (out,) = runner.run_modality("xray", "quick", **kw)
    stamp = out.stat().st_mtime_ns
    runner.run_modality("xray", "quick", **kw)
    assert out.stat().st_mtime_ns == stamp
    _notebook(nbs / "01_cohort.ipynb", new_code_cell("print('changed')"))
    runner.run_modality("xray", "quick", **kw)
    assert "changed" in json.dumps(nbformat.read(out, as_version=4).dict())


def test_unknown_profile_and_modality_are_refused():
    with pytest.raises(ValueError, match="profile 'fast'"):
        runner.run(profile="fast")
    with pytest.raises(ValueError, match="modality 'mri'"):
        runner.run(modality="mri")


def test_atomic_output_leaves_nothing_behind_on_error(tmp_path):
    from ovfkit.atomic import atomic_output

    target = tmp_path / "table.csv"
    target.write_text("old")
    with pytest.raises(RuntimeError):
        with atomic_output(target) as tmp:
            tmp.write_text("half")
            raise RuntimeError("interrupted")
    assert target.read_text(encoding="utf-8") == "old" and list(tmp_path.iterdir()) == [target]
    with atomic_output(target) as tmp:
        tmp.write_text("new")
    assert target.read_text(encoding="utf-8") == "new" and list(tmp_path.iterdir()) == [target]


@pytest.mark.parametrize("dropped, expected", [
    ([], "No held-out vertebra dropped out"),
    ([("v9", "external", "radiomics extraction failed: empty mask")],
     "**1 held-out vertebra(e) dropped out, so the held-out scores below are on fewer vertebrae than the manifest "
     "lists:** v9 (external): radiomics extraction failed: empty mask."),
    ([("v1", "train", "no deep features from netA")], "1 training vertebra(e) dropped out"),
])
def test_results_page_says_when_a_held_out_cohort_lost_a_vertebra(tmp_path, dropped, expected):
    import pandas as pd

    from ovfkit import plots

    figures = tmp_path / "xray" / "figures"
    used = pd.DataFrame({"in manifest": [10, 5], "used": [10, 5], "dropped": [0, 0]},
                        index=pd.Index(["train", "external"], name="cohort"))
    plots.save_table(used, "vertebrae_used", figures)
    table = pd.DataFrame(dropped, columns=["vertebra_id", "cohort", "reason"]).set_index("vertebra_id")
    plots.save_table(table if len(table) else table.reset_index(drop=True), "vertebrae_dropped", figures)
    text = "\n".join(runner._vertebrae_lines(tmp_path, "xray"))
    assert expected in text
