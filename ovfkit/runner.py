"""Run the study: generate the cohort, execute the notebooks with papermill, build the Jupyter Book.

Layout (``build_dir`` defaults to ``build/<profile>``)::

    build/<profile>/data/<modality>/          synthetic cohort (manifest.csv, images, masks)
    build/<profile>/<modality>/executed/      notebooks as papermill wrote them
    build/<profile>/<modality>/figures/       every figure as PNG + CSV
    build/<profile>/book/                     the book's source, assembled (rendered notebooks)
    _build/html/index.html                    the book (``out_dir``)

A notebook is re-executed only when its key changes: the notebook's bytes, its parameters, the
manifest, ovfkit's source and the lock file. The rendered copy replaces the papermill parameter
cells by a "Run parameters" box and ends with a provenance box.
"""

from __future__ import annotations

import fnmatch
import functools
import hashlib
import json
import os
import shutil
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

import nbformat
import yaml

from ovfkit import findings, lifeline, provenance, synth
from ovfkit.atomic import atomic_output
from ovfkit.manifest import HELD_OUT, load_manifest
from ovfkit.settings import PROFILES, settings
from ovfkit.tables import MISSING, format_p
from ovfkit.task import get_task

REPO_ROOT = provenance.REPO_ROOT
CHAPTERS: tuple[str, ...] = ("01_cohort", "02_astlof", "03_radiomics", "04_deep_features", "05_fusion_selection",
                             "06_model_comparison", "07_delong", "08_shap", "09_clinical")
MODALITY_TITLES = {"xray": "X-ray (lateral radiograph, zhang2024 design)", "ct": "CT (liu2025 design)"}
MODALITY_NAMES = {"xray": "X-ray", "ct": "CT"}


#: The chapters of the acute-vs-chronic study (zhang2023), in ``notebooks/acute_chronic``.
AC_CHAPTERS: tuple[str, ...] = ("01_cohort", "02_features", "03_models", "04_nomogram")
#: The chapters of the fresh-vs-old study (guo2026, li), in ``notebooks/fresh_old``.
FO_CHAPTERS: tuple[str, ...] = ("01_cohort", "02_cnn_comparison", "03_readers")


@dataclass(frozen=True)
class Part:
    """One part of the book: a study on one modality, its chapters and where its notebooks are.

    ``key`` names the part's folders (``build/<profile>/<key>/``, ``book/<key>/``) and its figure labels;
    the cohort design and the task come from :func:`ovfkit.settings.settings` for ``study``.
    """

    key: str
    study: str
    modality: str
    chapters: tuple
    notebooks: str
    title: str


PARTS: dict[str, Part] = {
    "xray": Part("xray", "astlof", "xray", CHAPTERS, "notebooks", MODALITY_TITLES["xray"]),
    "ct": Part("ct", "astlof", "ct", CHAPTERS, "notebooks", MODALITY_TITLES["ct"]),
    "acute-chronic": Part("acute-chronic", "acute-chronic", "ct", AC_CHAPTERS, "notebooks/acute_chronic",
                          "Acute vs chronic (CT, zhang2023 design)"),
    "fresh-old": Part("fresh-old", "fresh-old", "xray", FO_CHAPTERS, "notebooks/fresh_old",
                      "Fresh vs old (X-ray, guo2026 and li designs)"),
}
STUDIES = ("astlof", "acute-chronic", "fresh-old")


def select_parts(modality: str = "all", study: str = "all") -> list[Part]:
    """The parts of the book that ``ovfkit run --modality M --study S`` runs, in book order."""
    if modality not in (*synth.MODALITIES, "all"):
        raise ValueError(f"modality {modality!r} is not one of xray, ct, all")
    if study not in (*STUDIES, "all"):
        raise ValueError(f"study {study!r} is not one of {', '.join(STUDIES)}, all")
    chosen = [p for p in PARTS.values() if study in ("all", p.study) and modality in ("all", p.modality)]
    if not chosen:
        have = sorted({p.modality for p in PARTS.values() if p.study == study})
        raise ValueError(f"the {study} study has no {modality} part; use --modality {' or '.join(have)} or all")
    return chosen


INTRO_PAGES = ("clinicians", "methods")
SUMMARY_PAGES = ("results", "reproducibility", "glossary", "references")


class RunError(RuntimeError):
    """A step of the run failed; the message says which and why."""


def _write_if_changed(path: Path, data: bytes) -> bool:
    """Write atomically only if the content differs (keeps mtimes, so Sphinx rebuilds only what changed)."""
    if path.exists() and path.read_bytes() == data:
        return False
    with atomic_output(path) as tmp:
        tmp.write_bytes(data)
    return True


def synth_command(modality: str, data_dir: Path, seed: int, n_patients: int | None,
                  design: str | None = None) -> list[str]:
    """The ``ovfkit synth`` command line that writes the synthetic cohort of a run into ``data_dir``
    (``--reuse``: nothing to do when ``data_dir`` holds it already)."""
    return ([sys.executable, "-m", "ovfkit", "synth", "--modality", modality, "--out", str(data_dir),
             "--seed", str(seed)] + ([] if n_patients is None else ["--n-patients", str(n_patients)])
            + ([] if design in (None, modality) else ["--design", design]) + ["--reuse"])


def ensure_cohort(modality: str, data_dir: Path, seed: int, n_patients: int | None, design: str | None = None) -> Path:
    """Generate the synthetic cohort unless ``data_dir`` already holds one made with these settings."""
    if not synth.cohort_is_current(data_dir, modality, seed, n_patients, design=design):
        print(f"[ovfkit] generating the synthetic {design or modality} cohort in {data_dir}", flush=True)
        command = synth_command(modality, data_dir, seed, n_patients, design)
        try:  # in a process group of its own, so that its workers end with it (ovfkit.lifeline)
            lifeline.run_group(command)
        except subprocess.CalledProcessError as exc:
            raise RunError(f"generating the synthetic {design or modality} cohort failed (exit {exc.returncode}): "
                           f"{' '.join(command)}") from None
    return data_dir / "manifest.csv"


def _notebook_key(nb_path: Path, params: dict, manifest: Path | dict) -> str:
    """What a chapter's rendered page is keyed by; ``manifest``: one path, or ``{name: path}`` (the audit)."""
    hashed = ({k: provenance.file_hash(v) for k, v in manifest.items()} if isinstance(manifest, dict)
              else provenance.file_hash(manifest))
    blob = json.dumps({
        "notebook": hashlib.sha256(nb_path.read_bytes()).hexdigest(),
        "params": params,
        "manifest": hashed,
        "source": provenance.source_hash(),
        "lock": provenance.file_hash(provenance.LOCK_FILE),
    }, sort_keys=True)
    return hashlib.sha256(blob.encode()).hexdigest()


def error_outputs(nb) -> list[str]:
    """Descriptions of every error output in an executed notebook."""
    found = []
    for i, cell in enumerate(nb.cells):
        for out in cell.get("outputs", []):
            if out.get("output_type") == "error":
                found.append(f"cell {i}: {out.get('ename')}: {out.get('evalue')}")
    return found


def execute_notebook(src: Path, dst: Path, params: dict, *, cwd: Path, timeout: int = 3600):
    """Execute ``src`` with papermill into ``dst``; raise :class:`RunError` naming the failing cell."""
    import papermill as pm

    dst.parent.mkdir(parents=True, exist_ok=True)
    try:
        pm.execute_notebook(str(src), str(dst), parameters=params, kernel_name="python3", cwd=str(cwd),
                            progress_bar=False, execution_timeout=timeout, log_output=False,
                            extra_arguments=list(lifeline.KERNEL_ARGUMENTS))
    except pm.PapermillExecutionError as exc:
        raise RunError(f"{src.name} ({params.get('modality')}) failed in cell {exc.exec_count}: "
                       f"{exc.ename}: {exc.evalue} (executed notebook with the traceback: {dst})") from None
    nb = nbformat.read(dst, as_version=4)
    errors = error_outputs(nb)
    if errors:
        raise RunError(f"{src.name} ({params.get('modality')}) has error outputs: {'; '.join(errors)} ({dst})")
    return nb


def _shown(value):
    """Paths inside the repository are shown relative to it (readable, and the same on every machine)."""
    if isinstance(value, str) and value.startswith(str(REPO_ROOT) + os.sep):
        return os.path.relpath(value, REPO_ROOT)
    return value


def notebook_parameters(nb) -> dict:
    """The names and default values of a notebook's papermill ``parameters`` cell (literals only).

    Raises
    ------
    ValueError
        If the cell assigns something that is not a Python literal (papermill could not pass it either).
    """
    import ast

    found = {}
    for cell in nb.cells:
        if cell.cell_type == "code" and "parameters" in cell.get("metadata", {}).get("tags", []):
            for node in ast.parse(cell.source).body:
                if isinstance(node, ast.Assign) and len(node.targets) == 1 and isinstance(node.targets[0], ast.Name):
                    try:
                        found[node.targets[0].id] = ast.literal_eval(node.value)
                    except ValueError:
                        raise ValueError(f"parameter {node.targets[0].id!r} of the parameters cell is not a literal; "
                                         "papermill parameters must be literals (str, number, list, dict)") from None
    return found


def reexecute_commands(notebook: Path, executed: Path, params: dict, defaults: dict,
                       prerequisite: list[str] | None = None) -> list[str]:
    """The shell commands, run from the repository root, that re-execute one chapter as the book did.

    Every parameter of the notebook is passed (the run's values, then the notebook's defaults for the
    rest), with the papermill of the environment that ran the book, writing where the book wrote.
    ``prerequisite`` (the ``ovfkit synth`` command of a synthetic cohort) comes first.
    """
    import shlex

    argv = [_shown(sys.executable), "-m", "papermill", _shown(str(notebook)), _shown(str(executed))]
    for name, default in defaults.items():
        value = params.get(name, default)
        if isinstance(value, str):
            argv += ["-p", name, _shown(value)]
        else:  # papermill -y takes YAML; JSON is YAML, and keeps ints, lists and dicts as they are
            argv += ["-y", json.dumps({name: value})]
    commands = [shlex.join(argv)]
    if prerequisite:
        commands.insert(0, shlex.join([_shown(a) for a in prerequisite]))
    return commands


def _param_box(params: dict, commands: list[str]) -> str:
    rows = "\n".join(f"| `{k}` | `{_shown(v)}` |" for k, v in params.items())
    how = ("the first command makes the synthetic cohort, or leaves it as it is when it is already there; "
           "the second executes the chapter" if len(commands) > 1 else "the manifest must exist")
    return (
        "````{admonition} Run parameters\n:class: note\n\n"
        "| parameter | value |\n|---|---|\n" + rows + "\n\n"
        f"Re-execute this chapter from the repository root, in the environment `make book` made ({how}); "
        "it writes this page's figures and tables where the book took them from:\n\n"
        "```bash\n" + "\n".join(commands) + "\n```\n````"
    )


def _provenance_box(rec: dict) -> str:
    rows = "\n".join(f"| {k} | `{v}` |" for k, v in rec.items())
    return "```{admonition} Provenance\n:class: tip\n\n| item | value |\n|---|---|\n" + rows + "\n```"


def _with_modality(source: str, modality: str | None) -> tuple[str, bool]:
    """The first H1 of a markdown cell with the modality's name after it; whether there was one."""
    name = MODALITY_NAMES.get(modality or "")
    lines = source.splitlines()
    for i, line in enumerate(lines):
        if line.startswith("# "):
            if name and not line.rstrip().endswith(f"({name})"):
                lines[i] = f"{line.rstrip()} ({name})"
            return "\n".join(lines), True
    return source, False


def render_for_book(nb, params: dict, commands: list[str], prov: dict, key: str, seconds: float | None = None,
                    part: str | None = None):
    """A copy of an executed notebook for the book.

    The parameter cells become a box that holds the commands re-executing it (:func:`reexecute_commands`);
    the title names the modality; code cells are collapsed (``hide-input``: a reader opens them); what a
    cell printed on stderr (library warnings with the build machine's paths) is left out of the page and
    counted in the provenance box, which ends the page; the executed notebook keeps everything.
    ``part`` (default: the modality) prefixes the figure labels (:func:`figure_label`).
    """
    nb = nbformat.from_dict(json.loads(json.dumps(nb)))
    cells, titled, stderr = [], False, 0
    for cell in nb.cells:
        tags = cell.get("metadata", {}).get("tags", [])
        if "injected-parameters" in tags:
            cells.append(nbformat.v4.new_markdown_cell(_param_box(params, commands)))
        elif "parameters" in tags:
            continue
        else:
            if cell.cell_type == "markdown" and not titled:
                cell.source, titled = _with_modality(cell.source, params.get("modality"))
            elif cell.cell_type == "code":
                cell.setdefault("metadata", {})["tags"] = [*tags, *(["hide-input"] if "hide-input" not in tags
                                                                     else [])]
                kept = [o for o in cell.get("outputs", []) if not (o.get("output_type") == "stream"
                                                                   and o.get("name") == "stderr")]
                stderr += len(cell.get("outputs", [])) - len(kept)
                cell["outputs"] = kept
                cells.extend(_figure_cells(cell, part or params.get("modality")))
                continue
            cells.append(cell)
    if stderr:
        prov = {**prov, "messages on stderr": f"{stderr} output(s), not shown; the executed notebook keeps them"}
    cells.append(nbformat.v4.new_markdown_cell(_provenance_box(prov)))
    nb.cells = cells
    nb.metadata["ovfkit"] = {"key": key, "seconds": seconds, "provenance": prov}
    # Cell ids from papermill are random; fixed ids keep the rendered file stable.
    for i, cell in enumerate(nb.cells):
        cell["id"] = f"cell-{i:03d}"
    return nb


def figure_label(modality: str | None, name: str) -> str:
    """The book's label of a figure saved as ``name`` (:func:`ovfkit.plots.save_figure`) on a modality's page."""
    return f"fig-{modality}-{name}" if modality else f"fig-{name}"


def _figure_cells(cell, modality: str | None) -> list:
    """Split a code cell so that each figure it displayed is a cell of its own, a numbered figure.

    myst-nb wraps all of a cell's outputs in one figure (cell metadata ``mystnb.figure``), so every
    output that :func:`ovfkit.plots.save_figure` displayed moves into its own output-only cell with its
    caption, label and alt text; the outputs between figures keep their order.
    """
    from ovfkit.plots import FIGURE_METADATA

    outputs, cell["outputs"] = cell.get("outputs", []), []
    pieces, text = [cell], cell  # ``text``: the cell that takes the next non-figure output
    for output in outputs:
        meta = output.get("metadata", {}).get(FIGURE_METADATA) if output.get("output_type") == "display_data" else None
        if meta is None:
            if text is None:  # myst-nb skips a cell without source, so each piece says what it is
                text = nbformat.v4.new_code_cell("# output of the cell above, continued",
                                                 metadata={"tags": ["remove-input"]})
                pieces.append(text)
            text.outputs.append(output)
            continue
        figure = nbformat.v4.new_code_cell(f"# figure {meta['figure']}: saved by plots.save_figure above", metadata={
            "tags": ["remove-input"],
            "mystnb": {"figure": {"caption": meta["caption"], "name": figure_label(modality, meta["figure"])},
                       "image": {"alt": meta["alt"]}}})
        figure.outputs.append(output)
        pieces.append(figure)
        text = None
    return pieces


def _rendered_key(path: Path) -> str | None:
    if not path.exists():
        return None
    try:
        return nbformat.read(path, as_version=4).metadata.get("ovfkit", {}).get("key")
    except Exception:  # noqa: BLE001 - a corrupt file is simply re-rendered
        return None


def run_modality(modality: str, profile: str, *, seed: int, build_dir: Path, notebooks_dir: Path,
                 chapters=CHAPTERS, manifest: Path | None = None, part: str | None = None) -> list[Path]:
    """Execute (or reuse) every chapter of one part of the book (default: the ASTLOF study on ``modality``);
    return the rendered notebooks.

    This process is the run its kernels and workers live for (:func:`ovfkit.lifeline.holding`).
    """
    with lifeline.holding():
        return _run_modality(PARTS[part or modality], profile, seed=seed, build_dir=build_dir,
                             notebooks_dir=notebooks_dir, chapters=chapters, manifest=manifest)


def _run_modality(part: Part, profile: str, *, seed: int, build_dir: Path, notebooks_dir: Path,
                  chapters, manifest: Path | None) -> list[Path]:
    modality, prerequisite = part.modality, None
    if manifest is None:
        run = settings(profile, modality, seed, study=part.study)
        data_dir = build_dir / "data" / part.key
        manifest = ensure_cohort(modality, data_dir, seed, run.n_patients, run.design)
        prerequisite = synth_command(modality, data_dir, seed, run.n_patients, run.design)
    load_manifest(manifest)  # validate once up front: a bad manifest stops here with every problem listed
    rendered = []
    for chapter in chapters:
        params = {"modality": modality, "manifest": str(manifest.resolve()),
                  "output_dir": str((build_dir / part.key / "figures").resolve()),
                  "cache_dir": str((build_dir / "cache").resolve()), "seed": seed,
                  "profile": profile}
        rendered.append(_chapter(
            notebooks_dir / f"{chapter}.ipynb", params, manifest, build_dir, part.key,
            lambda defaults: chapter_provenance(manifest, params, defaults, part.study), prerequisite))
    return rendered


def _chapter(src: Path, params: dict, manifest: Path | dict, build_dir: Path, key_name: str, provenance_of,
             prerequisite=None) -> Path:
    """Execute one chapter (unless its rendered page has the same key) and render it for the book; return the
    rendered page. ``provenance_of(defaults)`` gives its provenance box."""
    if not src.exists():
        raise RunError(f"notebook {src} not found; chapters come from {src.parent}")
    chapter = src.stem
    key = _notebook_key(src, params, manifest)
    out = build_dir / "book" / key_name / f"{chapter}.ipynb"
    if _rendered_key(out) == key:
        print(f"[ovfkit] {key_name}/{chapter}: unchanged, reusing", flush=True)
        return out
    print(f"[ovfkit] {key_name}/{chapter}: executing", flush=True)
    t0 = time.perf_counter()
    executed = build_dir / key_name / "executed" / f"{chapter}.ipynb"
    nb = execute_notebook(src, executed, params, cwd=REPO_ROOT)
    seconds = time.perf_counter() - t0
    defaults = notebook_parameters(nbformat.read(src, as_version=4))
    prov = provenance_of(defaults)
    prov["run time"] = f"{seconds:.1f} s"
    commands = reexecute_commands(src, executed, params, defaults, prerequisite)
    book_nb = render_for_book(nb, params, commands, prov, key, seconds, part=key_name)
    _write_if_changed(out, nbformat.writes(book_nb).encode())
    print(f"[ovfkit] {key_name}/{chapter}: done in {seconds:.1f} s", flush=True)
    return out


#: The chapters of the audit part, in ``notebooks/audit``; they read every study's cohort and caches.
AUDIT_CHAPTERS: tuple[str, ...] = ("01_pitfalls",)


def run_audit(profile: str, *, seed: int, build_dir: Path) -> list[Path]:
    """Execute (or reuse) the audit's chapters, after every part of :data:`PARTS` has run in ``build_dir``
    (the audit reads each part's cohort and the features its chapters cached)."""
    import datetime

    manifests = {}
    for key in PARTS:
        path = build_dir / "data" / key / "manifest.csv"
        if not path.is_file():
            raise RunError(f"the audit needs the {key} part's cohort at {path}; run every part first "
                           "(ovfkit run --modality all --study all)")
        manifests[key] = path.resolve()
    params = {"manifests": {k: str(v) for k, v in manifests.items()},
              "output_dir": str((build_dir / "audit" / "figures").resolve()),
              "cache_dir": str((build_dir / "cache").resolve()), "seed": seed, "profile": profile}

    def provenance_of(defaults):
        rec = provenance.record(None, {"seed": seed, "profile": profile})
        rec.update({f"{k} manifest sha256": provenance.file_hash(v)[:16] for k, v in manifests.items()})
        rec["executed (UTC)"] = datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%d %H:%M")
        return rec

    with lifeline.holding():
        return [_chapter(REPO_ROOT / "notebooks" / "audit" / f"{c}.ipynb", params, manifests, build_dir, "audit",
                         provenance_of) for c in AUDIT_CHAPTERS]


def chapter_provenance(manifest: Path, params: dict, defaults: dict, study: str = "astlof") -> dict:
    """The provenance box of a chapter: :func:`ovfkit.provenance.record`, the execution time (UTC), the
    code hash of the synthetic generator that made the cohort, and the hash of every stand-in checkpoint
    the chapter's backbones load."""
    import datetime

    from ovfkit.deep.proxy import PROXIES
    from ovfkit.study import stand_in_checkpoint

    rec = provenance.record(manifest, {"seed": params["seed"], "profile": params["profile"]})
    rec["executed (UTC)"] = datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%d %H:%M")
    made = Path(manifest).parent / "synth_settings.json"
    if made.is_file():
        rec["synthetic generator code"] = json.loads(made.read_text(encoding="utf-8")).get("code", "unknown")
    run = settings(params["profile"], params["modality"], params["seed"], study=study)
    weights = params.get("weights", defaults.get("weights")) or {}
    for backbone in params.get("backbones", defaults.get("backbones", [])):
        if backbone in PROXIES and backbone not in weights:
            path = stand_in_checkpoint(backbone, run, params["cache_dir"])
            rec[f"{backbone} checkpoint sha256"] = provenance.file_hash(path)[:16]
        elif backbone in weights:
            rec[f"{backbone} weights sha256"] = provenance.file_hash(weights[backbone])[:16]
    return rec


def _mathjax_dir() -> Path:
    env = os.environ.get("OVFKIT_MATHJAX_DIR")
    path = Path(env) if env else REPO_ROOT / ".vendor" / "node_modules" / "mathjax" / "es5"
    if not (path / "tex-chtml.js").is_file():
        raise RunError(f"MathJax not found at {path}; run `make vendor` (npm install mathjax@3 --prefix .vendor) "
                       "or set OVFKIT_MATHJAX_DIR to a MathJax 3 es5 folder")
    return path


FINDINGS_MARKER = "<!-- ovfkit: what we found -->"


def _findings_section(build_dir: Path, modalities, task: str = "astlof") -> str:
    """What replaces :data:`FINDINGS_MARKER` in a book page: each modality's "What we found" box."""
    return "\n\n".join(findings.box(headline_findings(build_dir / m / "figures", task),
                                     title=f"What we found: {MODALITY_TITLES[m]}") for m in modalities)


def assemble_book(build_dir: Path, modalities, chapters=CHAPTERS, parts=(), audit: bool = False) -> Path:
    """Write the book's source into ``build_dir/book``: pages, static files, _toc.yml and _config.yml.

    ``modalities`` are the ASTLOF parts (with ``chapters``); ``parts`` the other studies' (:data:`PARTS`);
    ``audit``: the audit's chapters ran (:func:`run_audit`) and open the Audit part, before its page of the
    papers' numbers and the checklists.
    """
    src = build_dir / "book"
    for page in sorted((REPO_ROOT / "book").glob("*.md")) + sorted((REPO_ROOT / "book").glob("*.bib")):
        text = page.read_bytes()
        if FINDINGS_MARKER.encode() in text:
            text = text.replace(FINDINGS_MARKER.encode(), _findings_section(build_dir, modalities).encode())
        _write_if_changed(src / page.name, text)
    static = REPO_ROOT / "book" / "_static"
    if static.is_dir():
        for f in static.rglob("*"):
            if f.is_file():
                _write_if_changed(src / "_static" / f.relative_to(static), f.read_bytes())
    # MathJax stays out of the html_static_path folders: Jupyter Book 1 adds a <script> for every .js file
    # in them (about 70 MathJax files per page). As an html_extra_path folder, _vendor/_static/mathjax is
    # copied to the same place in the HTML, and Sphinx's mathjax_path loads one file from it.
    shutil.rmtree(src / "_static" / "mathjax", ignore_errors=True)
    mj_dst = src / "_vendor" / "_static" / "mathjax"
    if not (mj_dst / "tex-chtml.js").exists():
        shutil.copytree(_mathjax_dir(), mj_dst, dirs_exist_ok=True)
    toc = {"format": "jb-book", "root": "index", "parts": [
        {"caption": "Introduction", "chapters": [{"file": p} for p in INTRO_PAGES]}]}
    for m in modalities:
        toc["parts"].append({"caption": MODALITY_TITLES[m],
                             "chapters": [{"file": f"{m}/{c}"} for c in chapters]})
    for part in parts:
        toc["parts"].append({"caption": part.title, "chapters": [{"file": f"{part.key}/{c}"} for c in part.chapters]})
    write_summary_pages(build_dir, modalities, chapters, parts=parts, audit=audit)
    toc["parts"].append({"caption": "Audit", "chapters": [{"file": f"audit/{c}"} for c in AUDIT_CHAPTERS if audit]
                         + [{"file": "audit"}]})
    toc["parts"].append({"caption": "Results and reproducibility",
                         "chapters": [{"file": p} for p in SUMMARY_PAGES]})
    _write_if_changed(src / "_toc.yml", yaml.safe_dump(toc, sort_keys=False).encode())
    with open(REPO_ROOT / "_config.yml", encoding="utf-8") as fh:
        config = yaml.safe_load(fh)
    rec = provenance.record()
    footer = " · ".join(f"{k} {v}" for k, v in rec.items() if k != "device")
    config.setdefault("html", {})["extra_footer"] = f"<p>Built with {footer}.</p>"
    config.setdefault("sphinx", {}).setdefault("config", {})["mathjax_path"] = "mathjax/tex-chtml.js"
    config["sphinx"]["config"]["html_extra_path"] = ["_vendor"]
    _write_if_changed(src / "_config.yml", yaml.safe_dump(config, sort_keys=False).encode())
    return src


def _md_table(df) -> str:
    """A table in Markdown for a summary page: numbers to 3 decimals, "–" for a missing value (never NaN)."""
    import pandas as pd

    if not len(df):
        return "_not available in this run_"
    out = df.copy()
    for c in out.columns:
        floats = pd.api.types.is_float_dtype(out[c])
        out[c] = [MISSING if v is None or (isinstance(v, float) and v != v) else f"{v:.3f}" if floats else v
                  for v in out[c]]
    return out.to_markdown(index=False, disable_numparse=True)


def _vertebrae_lines(build_dir: Path, modality: str) -> list:
    """Vertebrae used per cohort, and a warning naming every held-out vertebra that dropped out."""
    figures = build_dir / modality / "figures"
    used = findings.read(figures, "vertebrae_used")
    if used.empty:
        return []
    if not (figures / "vertebrae_dropped.csv").exists():
        return ["### Vertebrae used (chapter 05)", "", _md_table(used), ""]
    dropped = findings.read(figures, "vertebrae_dropped")
    held = dropped[dropped["cohort"].isin(HELD_OUT)] if len(dropped) else dropped
    if len(held):
        named = "; ".join(f"{r.iloc[0]} ({r['cohort']}): {r['reason']}" for _, r in held.iterrows())
        note = (f"**{len(held)} held-out vertebra(e) dropped out, so the held-out scores below are on fewer "
                f"vertebrae than the manifest lists:** {named}.")
    else:
        note = "No held-out vertebra dropped out: every held-out score below is on every vertebra of its cohort."
    if len(dropped) > len(held):
        note += f" {len(dropped) - len(held)} training vertebra(e) dropped out (chapter 05 names them)."
    return ["### Vertebrae used (chapter 05)", "", _md_table(used), "", note, ""]


def headline_findings(figures: Path, task: str = "astlof") -> list[str]:
    """The sentences of a modality's "What we found" box on the results and clinical pages, from the
    chapters' tables in ``figures`` (:mod:`ovfkit.findings`)."""
    read = functools.partial(findings.read, figures)
    out = [f"Fusion (chapter 05): {t}" for t in findings.fusion_findings(read("fusion_auc"))[:1]]
    out += [f"Chosen model (chapter 06): {t}" for t in findings.model_findings(read("versus_papers"), read("model_scores"),
                                                                             read("baseline_auc"))]
    out += [f"At the bedside (chapter 06): {t}"
            for t in findings.translation_findings(read("confusion"), **findings.bedside(get_task(task)))]
    out += findings.domain_findings(read("delong_domain_chosen"),
                                    title="Pretraining domains, each with its own chosen model (chapter 07): ")
    return out


PAPER_MODALITY = {"zhang2024": "xray", "liu2025": "ct"}


def _page_figures(rendered: Path) -> list[str]:
    """The figures a rendered chapter shows, in page order (names as :func:`ovfkit.plots.save_figure` saved them)."""
    if not rendered.exists():
        return []
    prefix = figure_label(rendered.parent.name, "")
    names = [c.metadata.get("mystnb", {}).get("figure", {}).get("name", "")
             for c in nbformat.read(rendered, as_version=4).cells]
    return [n[len(prefix):] for n in names if n.startswith(prefix)]


def _counterpart(build_dir: Path, modality: str, chapter: str, figures: str) -> str:
    """Links to a paper item's counterpart on one modality's pages: the chapter and each figure drawn."""
    if not chapter:
        return MISSING
    if chapter in INTRO_PAGES:
        return f"{{doc}}`{chapter.capitalize()} <{chapter}>`"
    links = [f"{{doc}}`chapter {chapter[:2]} <{modality}/{chapter}>`"]
    on_page = _page_figures(build_dir / "book" / modality / f"{chapter}.ipynb")
    for pattern in filter(None, figures.split(";")):
        names = [n for n in on_page if fnmatch.fnmatch(n, pattern)]
        links += [f"{{numref}}`{figure_label(modality, n)}`" for n in names]
        if not names:
            links.append(f"`{pattern}` not drawn in this run")
    return ", ".join(links)


#: The part of the book that answers each paper of another study than ASTLOF.
PAPER_PART = {"zhang2023": "acute-chronic", "guo2026": "fresh-old", "li": "fresh-old"}


def paper_item_lines(build_dir: Path, modalities, parts=()) -> list[str]:
    """The results page's section matching every table and figure of the papers to the book."""
    import pandas as pd

    from ovfkit.study import paper_items

    keys = {p.key for p in parts}
    lines = ["## Every item of the papers", "",
             "Each numbered table and figure of the papers, and each supplement that their results cite, "
             "with its counterpart in this book (the chapter, and the numbered figures where there are some) or "
             "why it has none.", ""]
    items = paper_items()
    for paper, rows in items.groupby("paper", sort=False):
        part = PAPER_PART.get(paper)
        if part is not None and part not in keys or part is None and not modalities:
            continue
        columns = {"this book": [part]} if part else {MODALITY_NAMES[m]: [m] for m in modalities}
        table = pd.DataFrame({
            "item": rows["item"], "what the paper shows": rows["content"],
            **{name: [_counterpart(build_dir, key, c, f) for c, f in zip(rows["chapter"], rows["figures"])]
               for name, (key,) in columns.items()},
            "note": rows["note"].replace("", MISSING)})
        main = PAPER_MODALITY.get(paper)
        lines += [f"### {{cite:t}}`{paper}`" + (f" ({MODALITY_NAMES[main]})" if main else ""), "",
                  table.to_markdown(index=False), ""]
    return lines


def acute_chronic_lines(build_dir: Path, part: Part) -> list[str]:
    """The results page's section of the acute-vs-chronic study: its findings and the paper side by side."""
    figures = build_dir / part.key / "figures"
    side = findings.read(figures, "side_by_side")
    return [f"## {part.title}", "",
            findings.box(findings.acute_chronic_findings(findings.read(figures, "model_aucs"),
                                                         findings.read(figures, "delong"),
                                                         findings.read(figures, "baseline_auc"))), "",
            "### Next to {cite:t}`zhang2023`", "",
            "Every AUC of the paper's abstract and Table 2 beside this study's (training: apparently in-sample in "
            "the paper, nested cross-validation here; test: the 20% of patients held out), then Table 2's threshold "
            "metrics and the paper's DeLong P values beside this study's (chapter 04; the feature counts are in "
            "chapter 02).", "", _md_table(side), "",
            _md_table(findings.read(figures, "metrics_beside_paper")), "",
            _md_table(_delong_beside_paper(findings.read(figures, "delong"))), ""]


def fresh_old_lines(build_dir: Path, part: Part) -> list[str]:
    """The results page's section of the fresh-vs-old study: the CNN comparison and the reader study."""
    from ovfkit import fresh_old

    figures = build_dir / part.key / "figures"
    pooled = findings.read(figures, "pooled_metrics")
    if len(pooled):
        from ovfkit.deep.zoo import DISPLAY

        flagged = fresh_old.degenerate(findings.read(figures, "oof"))
        pooled = pooled[(pooled["metric"] == "auc") & ~pooled["architecture"].isin(flagged)]
        pooled = pooled.assign(architecture=pooled["architecture"].map(DISPLAY))
    bands = findings.read(figures, "level_bands")
    lines = [f"## {part.title}", "",
             findings.box(findings.cnn_comparison_findings(pooled, findings.read(figures, "delong"),
                                                           findings.read(figures, "ranks"), bands,
                                                           findings.read(figures, "calibration"))), "",
             "### Next to {cite:t}`guo2026` and {cite:t}`li`", "",
             "guo2026 Table 2 (mean ± SD over five folds) beside this study's eight architectures on the same five "
             "patient-grouped folds, then li's abstract beside the same three networks' pooled out-of-fold estimates "
             "(chapter 02).", "", _md_table(findings.read(figures, "table2_beside_paper")), "",
             _md_table(findings.read(figures, "li_beside")), "", "### The reader study (simulated readers, chapter 03)", ""]
    or_table = findings.read(figures, "guo2026_or_mrmc")
    t, t_auc = findings.read(figures, "guo2026_paired_t"), findings.read(figures, "guo2026_paired_t_auc")
    if len(or_table) and len(t):
        lines += [fresh_old.reader_sentence(or_table, t.iloc[0].to_dict(),
                                            t_auc.iloc[0].to_dict() if len(t_auc) else None), "",
                  _md_table(or_table), ""]
    return lines


#: Each other study's section of the results page.
PART_LINES = {"acute-chronic": acute_chronic_lines, "fresh-old": fresh_old_lines}


def _delong_beside_paper(delong):
    """The DeLong rows of the results page: the pair, this study's p (raw, Holm) and the paper's P."""
    if not len(delong):
        return delong
    out = delong[["cohort", "a", "b", "difference", "p", "p (Holm)", "bootstrap p", "paper P"]].copy()
    for c in ("p", "p (Holm)", "bootstrap p"):
        out[c] = out[c].map(format_p)
    return out


def audit_page_lines() -> list[str]:
    """The audit page: every checkable number the seed papers print, checked (:mod:`ovfkit.consistency`), and the
    TRIPOD+AI and CLEAR checklists for this book and each paper (:mod:`ovfkit.checklists`)."""
    from ovfkit import checklists, consistency

    checks = consistency.paper_checks()
    outcomes = [consistency.CONSISTENT, consistency.INCONSISTENT, consistency.CONDITIONAL, consistency.UNCHECKABLE]
    counts = checks.groupby(["paper", "outcome"]).size().unstack(fill_value=0).reindex(columns=outcomes, fill_value=0)
    counts.insert(0, "checks", counts.sum(axis=1))
    n_bad, n_if = int(counts[consistency.INCONSISTENT].sum()), int(counts[consistency.CONDITIONAL].sum())
    lines = ["# Audit: the papers' numbers and the reporting checklists", "",
             "## The papers' numbers, checked", "",
             "Numbers of the five seed papers that arithmetic can test were transcribed as printed, each row with a "
             "verbatim quote that the test suite finds in the paper's text (after whitespace and XML tags are "
             f"normalized), {len(checks)} rows in `ovfkit/data/reported_checks/`, and checked by a function of "
             "`ovfkit.consistency` (a p-value in [0, 1], a percentage of its count, an F1 from its precision and recall, "
             "...). A printed number stands for every value that rounds to it; a row is inconsistent when no such "
             f"values satisfy the relation. {n_bad} rows are inconsistent, and {n_if} more are inconsistent only if a "
             "premise holds that the paper leaves open (how it computed the number, stated in the row). One misprint "
             "can fail several rows, and an inconsistency is a misprint or an unstated method as often as an error; "
             "each row names where to look.", "",
             _md_table(counts.reset_index()), ""]
    flagged = checks[checks["outcome"].isin([consistency.INCONSISTENT, consistency.CONDITIONAL])]
    for paper, g in flagged.groupby("paper", sort=False):
        lines += [f"### {paper}", "",
                  _md_table(g[["source", "what", "check", "outcome", "detail"]].replace("|", "/", regex=False)), ""]
    lines += ["## Reporting checklists", "",
              "TRIPOD+AI {cite}`collins2024` and CLEAR {cite}`kocak2023`, one row per item: where this book answers it "
              "(a page and section), or why it does not apply, or what is missing; and the same for each paper, from its "
              "text. Counts first: *answered* and *yes* answer the item, *partly* in part, *missing* and *no* not at all.", ""]
    for name, title in checklists.CHECKLISTS.items():
        table = checklists.load(name)
        lines += [f"### {title}", "", _md_table(checklists.coverage(table).reset_index(names="reporter")), "",
                  "```{admonition} Every item", ":class: dropdown", "", _md_table(table.replace("|", "/", regex=False)),
                  "```", ""]
    return lines


def write_summary_pages(build_dir: Path, modalities, chapters=CHAPTERS, task: str = "astlof", parts=(),
                        audit: bool = False) -> None:
    """The results summary and the reproducibility appendix, from the chapters' tables and metadata
    (``modalities``: the ASTLOF parts; ``parts``: the other studies' :class:`Part`)."""
    import importlib.metadata as md

    src = build_dir / "book"
    lines = ["# Results at a glance", "",
             "The chosen model per backbone (training nested CV) on every cohort, next to the papers' numbers,",
             "and the paired tests of the pretraining domains. Details and every other number are in the",
             "chapters; the same tables are CSV files in `build/<profile>/<modality>/figures/`.", ""]
    for m in modalities:
        figures = build_dir / m / "figures"
        domain = findings.read(figures, "delong_domain_chosen")
        lines += [f"## {MODALITY_TITLES[m]}", "", findings.box(headline_findings(figures, task)), "",
                  *_vertebrae_lines(build_dir, m), "### Next to the papers", "",
                  "Each pretraining domain's classifier chosen by training nested CV, on every cohort, next to the "
                  "paper's best model of the same domain (chapter 06).", "",
                  _md_table(findings.read(figures, "versus_papers")), "",
                  "### The two domains' chosen models, paired (chapter 07)", "",
                  "A and B are the models of the table above; macro AUC difference by paired patient bootstrap, "
                  "Holm-corrected over these rows (the training row is nested CV).", ""]
        if len(domain):
            domain = domain[domain["class"].astype(str).isin(["macro", "auc"])]
            a, b = domain["a"].iloc[0], domain["b"].iloc[0]
            domain = domain[["cohort", "auc_a", "auc_b", "diff", "ci_low", "ci_high", "p", "p_holm"]].rename(
                columns={"auc_a": f"A: {a}", "auc_b": f"B: {b}", "diff": "A - B", "ci_low": "95% CI low",
                         "ci_high": "95% CI high", "p_holm": "p (Holm)"})
            domain["p"] = domain["p"].map(format_p)
            domain["p (Holm)"] = domain["p (Holm)"].map(format_p)
        lines += [_md_table(domain), "", "### Fusion variants (logistic regression, held-out cohorts, chapter 05)", "",
                  "Held-out macro AUC of each variant with the same classifier; the `no ComBat` rows refit without "
                  "ComBat (chapter 06's sensitivity analysis).", ""]
        fus = findings.read(figures, "fusion_auc")
        if len(fus):
            fus = fus.pivot(index="variant", columns="cohort", values=findings.auc_column(fus))
            fus = fus[[c for c in HELD_OUT if c in fus.columns]].reset_index()
        lines += [_md_table(fus), ""]
    for part in parts:
        lines += PART_LINES[part.key](build_dir, part)
    lines += paper_item_lines(build_dir, modalities, parts)
    _write_if_changed(src / "results.md", "\n".join(lines).encode())
    _write_if_changed(src / "audit.md", "\n".join(audit_page_lines()).encode())

    rows = []
    for m, chs in ([(m, chapters) for m in modalities] + [(p.key, p.chapters) for p in parts]
                   + ([("audit", AUDIT_CHAPTERS)] if audit else [])):
        for c in chs:
            path = src / m / f"{c}.ipynb"
            meta = nbformat.read(path, as_version=4).metadata.get("ovfkit", {}) if path.exists() else {}
            prov = meta.get("provenance", {})
            secs = meta.get("seconds")
            rows.append({"modality": m, "chapter": c, "run time (s)": None if secs is None else round(secs, 1),
                         "manifest sha256": prov.get("manifest sha256", ""), "seed": prov.get("seed", ""),
                         "profile": prov.get("profile", ""), "git commit": prov.get("git commit", "")})
    import pandas as pd

    times = pd.DataFrame(rows)
    packages = ["ovfkit", "numpy", "scipy", "pandas", "scikit-learn", "SimpleITK", "pyradiomics", "torch",
                "torchvision", "xgboost", "lightgbm", "shap", "statsmodels", "neuroCombat", "dcurves", "papermill",
                "jupyter-book"]
    versions = pd.DataFrame([{"package": p, "version": md.version(p)} for p in packages])
    text = ["# Reproducibility", "",
            "Everything in this book is recomputed by two commands from a clean checkout: `make book` builds it",
            "(environment from `requirements.lock`, synthetic cohorts, features, notebooks, HTML) and `make test`",
            "runs the tests. A chapter is re-executed only when its notebook, parameters, manifest, ovfkit's code",
            "or the lock file change; features and models are cached by content and settings.", "",
            "## Package versions", "", _md_table(versions), "",
            "## Runs: seeds, manifests, run times", "",
            "Run time is the chapter's last execution (a reused chapter keeps the time of the run that made it).",
            "", _md_table(times), "",
            "## Backbone sources", "",
            "The default book uses the offline stand-ins `proxy-natural` (for ImageNet) and `proxy-medical` (for",
            "RadImageNet): ResNet-50s pretrained by ovfkit on small natural or medical image sets, because the",
            "real weights cannot be downloaded in the build environment. Chapter 04 of each part states the",
            "sources of its numbers; `backbones` and `weights` parameters run the chapters with the real",
            "weights files.", ""]
    _write_if_changed(src / "reproducibility.md", "\n".join(text).encode())


def build_book(book_src: Path, out_dir: Path) -> Path:
    """Build the HTML book with Jupyter Book 1 into ``out_dir/_build/html``."""
    jb = Path(sys.executable).parent / "jupyter-book"
    cmd = [str(jb) if jb.exists() else "jupyter-book", "build", str(book_src), "--path-output", str(out_dir),
           "--builder", "html"]
    print(f"[ovfkit] building the book: {' '.join(cmd)}", flush=True)
    proc = subprocess.run(cmd, capture_output=True, text=True)
    if proc.returncode != 0:
        tail = "\n".join((proc.stdout + proc.stderr).strip().splitlines()[-30:])
        raise RunError(f"jupyter-book build failed (exit {proc.returncode}):\n{tail}")
    index = out_dir / "_build" / "html" / "index.html"
    if not index.exists():
        raise RunError(f"jupyter-book finished but {index} is missing")
    return index


THREAD_VARIABLES = ("OMP_NUM_THREADS", "MKL_NUM_THREADS", "OPENBLAS_NUM_THREADS")


def thread_limits(n_processes: int) -> dict:
    """The environment that gives each of ``n_processes`` side-by-side runs its share of the cores for
    torch's and the BLAS libraries' threads (OpenMP, MKL, OpenBLAS); variables the user set are kept.

    Measured on 2 cores (``benchmarks/threads.py``): two runs training ResNet-50 layers with 2 threads
    each are several times slower per step than with 1 thread each, because their threads spin against
    each other.
    """
    share = str(max(1, (os.cpu_count() or 1) // max(1, n_processes)))
    return {name: os.environ.get(name, share) for name in THREAD_VARIABLES}


def _lanes(parts: list[Part]) -> list[list[Part]]:
    """Parts split over two side-by-side runs, one per modality, each running its parts one after another
    (the ASTLOF X-ray part and the fresh-vs-old part take about as long as the ASTLOF CT part and the
    acute-vs-chronic part together); a single modality's parts split first-alone / the rest."""
    lanes = [[p for p in parts if p.modality == m] for m in synth.MODALITIES]
    lanes = [lane for lane in lanes if lane]
    if len(lanes) == 1 and len(parts) > 1:
        lanes = [parts[:1], parts[1:]]
    return lanes


def run(modality: str = "all", profile: str = "default", *, seed: int = 42, build_dir: str | os.PathLike | None = None,
        out_dir: str | os.PathLike | None = None, notebooks_dir: str | os.PathLike | None = None,
        book: bool = True, chapters=CHAPTERS, side_by_side: bool | None = None, study: str = "all",
        parts: list[str] | None = None) -> Path | None:
    """Run the study for one or both modalities and build the book; return the book's index.html.

    ``modality`` and ``study`` choose the parts of the book (:func:`select_parts`: the ASTLOF study on
    X-ray and CT, the acute-vs-chronic study on CT); ``parts`` names them instead (keys of :data:`PARTS`).
    ``notebooks_dir`` and ``chapters`` replace the ASTLOF parts' notebooks (tests).
    Unless ``parts`` is given, parts run side by side (one ``ovfkit run --parts ... --no-book`` process per lane, :func:`_lanes`)
    when there is more than one core and the notebooks and chapters are the book's own (``side_by_side``
    None); much of a chapter runs on one core, so two runs share two cores better than one does.
    Every kernel and worker the run starts ends with it, even if it is killed (:mod:`ovfkit.lifeline`).
    """
    if profile not in PROFILES:
        raise ValueError(f"profile {profile!r} is not one of {', '.join(PROFILES)}")
    if parts is None:
        chosen = select_parts(modality, study)
    else:
        unknown = [k for k in parts if k not in PARTS]
        if unknown:
            raise ValueError(f"part(s) {unknown} are not among {', '.join(PARTS)}")
        chosen = [PARTS[k] for k in parts]
    build_dir = Path(build_dir) if build_dir else REPO_ROOT / "build" / profile
    own = notebooks_dir is None and tuple(chapters) == CHAPTERS
    if side_by_side is None:  # a lane (``parts`` given) runs its parts one after another
        side_by_side = own and parts is None and len(chosen) > 1 and (os.cpu_count() or 1) > 1
    t0 = time.perf_counter()
    if side_by_side:
        lanes = _lanes(chosen)
        commands = [[sys.executable, "-m", "ovfkit", "run", "--parts", ",".join(p.key for p in lane), "--profile",
                     profile, "--seed", str(seed), "--build-dir", str(build_dir), "--no-book"] for lane in lanes]
        try:
            with lifeline.holding():
                lifeline.run_groups(commands, env=thread_limits(len(commands)))
        except subprocess.CalledProcessError as exc:
            raise RunError(f"`{' '.join(exc.cmd[2:])}` failed (exit {exc.returncode}); its message is above") from None
    else:
        for part in chosen:
            if part.study == "astlof":
                nbs = Path(notebooks_dir) if notebooks_dir else REPO_ROOT / part.notebooks
                run_modality(part.modality, profile, seed=seed, build_dir=build_dir, notebooks_dir=nbs,
                             chapters=chapters, part=part.key)
            else:
                run_modality(part.modality, profile, seed=seed, build_dir=build_dir,
                             notebooks_dir=REPO_ROOT / part.notebooks, chapters=part.chapters, part=part.key)
    audit = own and parts is None and [p.key for p in chosen] == list(PARTS)
    if audit:  # every study ran: the audit can read them all
        run_audit(profile, seed=seed, build_dir=build_dir)
    if not book:
        return None
    astlof = [p.key for p in chosen if p.study == "astlof"]
    src = assemble_book(build_dir, astlof, chapters, parts=[p for p in chosen if p.study != "astlof"], audit=audit)
    index = build_book(src, Path(out_dir) if out_dir else REPO_ROOT)
    print(f"[ovfkit] book ready: {index} ({time.perf_counter() - t0:.0f} s)", flush=True)
    return index
