import json
import os

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
    out = runner.render_for_book(nb, {"modality": "ct", "seed": 3}, ["papermill a.ipynb b.ipynb -p modality ct"],
                                 {"ovfkit": "0.1.0"}, key="k")
    sources = [c.source for c in out.cells]
    assert "a = 1" not in sources and "a = 2" not in sources
    assert "Run parameters" in sources[1] and "`ct`" in sources[1]
    assert "```bash\npapermill a.ipynb b.ipynb -p modality ct\n```" in sources[1]
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


def test_notebook_parameters_reads_every_literal_of_the_parameters_cell(tmp_path):
    nb = nbformat.read(_notebook(tmp_path / "nb.ipynb"), as_version=4)
    nb.cells[1].source += '\nbackbones = ["proxy-natural"]  # a comment\nweights = {}'
    assert runner.notebook_parameters(nb) == {"modality": "xray", "manifest": "", "output_dir": "", "cache_dir": "",
                                              "seed": 0, "profile": "quick", "backbones": ["proxy-natural"],
                                              "weights": {}}
    nb.cells[1].source += "\nn = len(backbones)"
    with pytest.raises(ValueError, match="parameter 'n' .* not a literal"):
        runner.notebook_parameters(nb)


def test_reexecute_command_passes_every_parameter_with_its_type(tmp_path):
    import shlex

    defaults = {"modality": "xray", "manifest": "m.csv", "seed": 42, "backbones": ["proxy-natural"], "weights": {}}
    params = {"modality": "ct", "manifest": "/data/my manifest.csv", "seed": 7}
    synth = ["python", "-m", "ovfkit", "synth", "--modality", "ct"]
    commands = runner.reexecute_commands(tmp_path / "nb.ipynb", tmp_path / "out.ipynb", params, defaults, synth)
    assert commands[0] == shlex.join(synth)
    argv = shlex.split(commands[1])
    assert argv[1:5] == ["-m", "papermill", str(tmp_path / "nb.ipynb"), str(tmp_path / "out.ipynb")]
    assert argv[5:] == ["-p", "modality", "ct", "-p", "manifest", "/data/my manifest.csv", "-y", '{"seed": 7}',
                        "-y", '{"backbones": ["proxy-natural"]}', "-y", '{"weights": {}}']


def test_render_names_the_modality_collapses_code_and_keeps_stderr_off_the_page():
    nb = new_notebook(cells=[new_markdown_cell("Intro\n# Cohort: who\ntext"), new_markdown_cell("# Second"),
                             new_code_cell("print(1)")])
    nb.cells[2].outputs = [nbformat.v4.new_output("stream", name="stderr", text="/home/x/y.py:1: UserWarning: w"),
                           nbformat.v4.new_output("stream", name="stdout", text="1")]
    out = runner.render_for_book(nb, {"modality": "ct"}, [], {"ovfkit": "0.1.0"}, key="k")
    assert out.cells[0].source == "Intro\n# Cohort: who (CT)\ntext"
    assert out.cells[1].source == "# Second"
    assert "hide-input" in out.cells[2].metadata["tags"]
    assert [o["name"] for o in out.cells[2].outputs] == ["stdout"]
    assert "messages on stderr | `1 output(s)" in out.cells[-1].source


def test_exclusive_makes_a_second_process_wait_until_the_holder_ends(tmp_path):
    """Two side-by-side runs making the same cached file take turns; a killed holder frees the lock."""
    import subprocess
    import sys
    import threading

    from ovfkit.atomic import exclusive

    target = tmp_path / "checkpoint.pt"
    holder = subprocess.Popen([sys.executable, "-c", "import sys, time\nfrom ovfkit.atomic import exclusive\n"
                               f"with exclusive({str(target)!r}):\n    print('held', flush=True)\n    time.sleep(60)"],
                              stdout=subprocess.PIPE, text=True)
    try:
        assert holder.stdout.readline().strip() == "held"
        entered = threading.Event()

        def second():
            with exclusive(target):
                entered.set()

        t = threading.Thread(target=second, daemon=True)
        t.start()
        assert not entered.wait(1.0), "the second process got the lock while the first held it"
        holder.kill()
        assert entered.wait(10.0), "the lock of a killed holder was not freed"
    finally:
        holder.kill()
        holder.wait()


@pytest.mark.parametrize("cores, n, user, expected", [(2, 2, None, "1"), (8, 2, None, "4"), (1, 2, None, "1"),
                                                      (2, 2, "3", "3")])
def test_side_by_side_runs_share_the_cores_for_their_threads(monkeypatch, cores, n, user, expected):
    monkeypatch.setattr(runner.os, "cpu_count", lambda: cores)
    for name in runner.THREAD_VARIABLES:
        monkeypatch.delenv(name, raising=False)
    if user is not None:
        monkeypatch.setenv("OMP_NUM_THREADS", user)
    limits = runner.thread_limits(n)
    assert limits["OMP_NUM_THREADS"] == expected
    assert set(limits) == set(runner.THREAD_VARIABLES)


def test_run_groups_passes_the_environment_to_every_command(tmp_path):
    import sys

    from ovfkit import lifeline

    out = [tmp_path / f"{i}.txt" for i in range(2)]
    lifeline.run_groups([[sys.executable, "-c", f"import os; open({str(p)!r}, 'w').write(os.environ['OMP_NUM_THREADS'])"]
                         for p in out], env={"OMP_NUM_THREADS": "1"})
    assert [p.read_text() for p in out] == ["1", "1"]


def test_each_saved_figure_becomes_its_own_numbered_figure_with_caption_and_alt_text(tmp_path):
    """plots.save_figure, run in a kernel, shows each figure once; the book copy gives each a figure cell."""
    from nbclient import NotebookClient

    code = ("import matplotlib.pyplot as plt, pandas as pd\nfrom ovfkit import plots\nprint('before')\n"
            "for i in range(2):\n    fig, ax = plt.subplots()\n    ax.plot([0, 1], [0, i])\n"
            f"    plots.save_figure(fig, pd.DataFrame({{'x': [i]}}), f'f{{i}}', {str(tmp_path)!r},\n"
            "                      caption=f'Caption number {i}.', alt=f'A line plot number {i}.')\n"
            "    print(f'after {i}')")
    nb = new_notebook(cells=[new_markdown_cell("# T"), new_code_cell(code)])
    nb.metadata["kernelspec"] = {"name": "python3", "display_name": "Python 3", "language": "python"}
    NotebookClient(nb, timeout=120, resources={"metadata": {"path": str(tmp_path)}}).execute()
    images = [o for o in nb.cells[1].outputs if "image/png" in o.get("data", {})]
    assert len(images) == 2, "a saved figure is shown exactly once (closed, not shown again at the cell's end)"
    out = runner.render_for_book(nb, {"modality": "ct"}, [], {"ovfkit": "0.1.0"}, key="k")
    cells = out.cells[1:-1]
    assert [c.source for c in cells][0] == code and [o["text"] for o in cells[0].outputs] == ["before\n"]
    figures = [c for c in cells if "mystnb" in c.metadata]
    assert [c.metadata["mystnb"]["figure"] for c in figures] == [
        {"caption": "Caption number 0.", "name": "fig-ct-f0"}, {"caption": "Caption number 1.", "name": "fig-ct-f1"}]
    assert [c.metadata["mystnb"]["image"]["alt"] for c in figures] == ["A line plot number 0.", "A line plot number 1."]
    assert all(len(c.outputs) == 1 and "image/png" in c.outputs[0]["data"] for c in figures)
    order = ["fig" if "mystnb" in c.metadata else "".join(o["text"] for o in c.outputs) for c in cells[1:]]
    assert order == ["fig", "after 0\n", "fig", "after 1\n"]
    assert all("remove-input" in c.metadata["tags"] and c.source.startswith("# ") for c in cells[1:]), \
        "myst-nb skips a cell without source: each piece needs one (hidden by remove-input)"


@pytest.mark.parametrize("caption, alt, message", [
    ("Fig", "A line plot of things.", "caption must be a sentence"),
    ("A line plot of things.", "", "alt must be a sentence"),
    ("A line plot of things.", "see build/x/figures/roc.png please", "looks like a file path"),
])
def test_save_figure_refuses_a_missing_caption_or_a_path_as_alt_text(tmp_path, caption, alt, message):
    import matplotlib.pyplot as plt
    import pandas as pd

    from ovfkit import plots

    fig, _ = plt.subplots()
    with pytest.raises(ValueError, match=message):
        plots.save_figure(fig, pd.DataFrame({"x": [1]}), "f", tmp_path, caption=caption, alt=alt)
    assert not (tmp_path / "f.png").exists()
    plt.close(fig)


def test_paper_items_link_each_drawn_figure_and_say_which_are_not_drawn(tmp_path):
    page = tmp_path / "book" / "xray" / "06_model_comparison.ipynb"
    page.parent.mkdir(parents=True)
    cells = [new_code_cell("# figure", metadata={"mystnb": {"figure": {"name": f"fig-xray-{n}"}}})
             for n in ("roc_by_class_proxy-natural", "roc_by_class_proxy-medical", "confusion")]
    nbformat.write(new_notebook(cells=cells), page)
    (tmp_path / "xray" / "figures").mkdir(parents=True)  # a stale file from an older run is not on the page
    (tmp_path / "xray" / "figures" / "roc_by_class_old.png").write_bytes(b"")
    text = "\n".join(runner.paper_item_lines(tmp_path, ["xray"]))
    row = next(line for line in text.splitlines() if line.startswith("| Figure 7 "))
    assert ("{doc}`chapter 06 <xray/06_model_comparison>`, {numref}`fig-xray-roc_by_class_proxy-natural`, "
            "{numref}`fig-xray-roc_by_class_proxy-medical` |") in row
    row = next(line for line in text.splitlines() if line.startswith("| Figure 8 "))
    assert "`discordant_grad_cam` not drawn in this run" in row
    assert "### {cite:t}`zhang2024` (X-ray)" in text and "### {cite:t}`liu2025` (CT)" in text
    assert "{doc}`Methods <methods>`" in text


def test_the_book_runs_in_two_lanes_and_a_lane_runs_its_parts_one_after_another(monkeypatch, tmp_path):
    """`ovfkit run` (all parts) starts two lanes, one per modality (X-ray then fresh-vs-old; CT then
    acute-vs-chronic); a lane (`--parts`) runs its parts in order in its own process, never side by side again."""
    if (os.cpu_count() or 1) < 2:
        pytest.skip("lanes run side by side only with more than one core")
    started, ran = [], []
    monkeypatch.setattr(runner.lifeline, "run_groups", lambda commands, env=None: started.extend(commands))
    monkeypatch.setattr(runner, "run_modality", lambda modality, profile, **kw: ran.append(kw["part"]))
    monkeypatch.setattr(runner, "run_audit", lambda profile, **kw: ran.append(f"audit after {len(started)} lanes"))
    runner.run("all", "quick", build_dir=tmp_path, book=False)
    assert [c[c.index("--parts") + 1] for c in started] == ["xray,fresh-old", "ct,acute-chronic"]
    assert ran == ["audit after 2 lanes"]  # the audit reads every part's cohort, so it runs once all are done
    runner.run(parts=["ct", "acute-chronic"], profile="quick", build_dir=tmp_path, book=False)
    assert ran == ["audit after 2 lanes", "ct", "acute-chronic"] and len(started) == 2
