"""Command line: ``ovfkit synth``, ``ovfkit validate``, ``ovfkit run``, ``ovfkit schema``, ``ovfkit features``,
``ovfkit manifest from-labelmap``."""

from __future__ import annotations

from enum import Enum
from pathlib import Path
from typing import Optional

import typer

app = typer.Typer(
    help="ovfkit: reproducible deep-learning radiomics for osteoporotic vertebral fractures (ASTLOF grading).",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)


class Modality(str, Enum):
    xray = "xray"
    ct = "ct"


class RunModality(str, Enum):
    xray = "xray"
    ct = "ct"
    all = "all"


class Study(str, Enum):
    astlof = "astlof"
    acute_chronic = "acute-chronic"
    fresh_old = "fresh-old"
    all = "all"


class Design(str, Enum):
    xray = "xray"
    ct = "ct"
    zhang2023 = "zhang2023"
    guo2026 = "guo2026"


class ProfileName(str, Enum):
    quick = "quick"
    default = "default"
    paper = "paper"


def _fail(lines, code: int = 2) -> None:
    for line in lines:
        typer.echo(line, err=True)
    raise typer.Exit(code)


@app.command()
def synth(
    modality: Modality = typer.Option(..., help="Which images to generate: lateral X-ray patches or CT volumes."),
    out: Path = typer.Option(..., help="Folder to write (replaced if it exists): manifest.csv, images/, masks/."),
    seed: int = typer.Option(42, help="Random seed; the same seed gives byte-identical files."),
    n_patients: Optional[int] = typer.Option(
        None, help="Total patients over all cohorts (default: the paper's cohort, 942 X-ray / 981 CT)."),
    jobs: int = typer.Option(-1, help="Worker processes (-1: all cores)."),
    reuse: bool = typer.Option(False, help="Leave OUT as it is when it already holds the cohort these settings "
                                           "and this generator's code make."),
    design: Optional[Design] = typer.Option(
        None, help="Cohort design: the modality's ASTLOF study (default; xray = zhang2024, ct = liu2025) or "
                   "zhang2023 (CT, acute vs chronic: one center, 365 patients, 520 fractures)."),
) -> None:
    """Generate the synthetic multicenter cohort (digital phantoms with known truth)."""
    from ovfkit import synth as _synth

    chosen = design.value if design else None
    try:
        if reuse and _synth.cohort_is_current(out, modality.value, seed, n_patients, design=chosen):
            typer.echo(f"{out / 'manifest.csv'} is current (same settings and generator code): left as it is")
            return
        path = _synth.synth(modality.value, out, seed=seed, n_patients=n_patients, n_jobs=jobs, design=chosen)
    except ValueError as exc:
        _fail([f"ovfkit synth: {exc}"])
    typer.echo(f"wrote {path}")


@app.command()
def validate(
    manifest: Path = typer.Argument(..., help="Manifest CSV to check."),
    no_files: bool = typer.Option(False, "--no-files", help="Check the table only, do not open images."),
) -> None:
    """Check a manifest: columns, values, ids, files, hashes, geometry, masks and ASTLOF consistency.

    Prints every problem on its own line and exits with status 2 if there is any.
    """
    from ovfkit.manifest import validate_manifest

    df, problems = validate_manifest(manifest, check_files=not no_files)
    if problems:
        _fail(problems + [f"{len(problems)} problem(s) in {manifest}"])
    typer.echo(f"{manifest}: OK ({len(df)} vertebrae, {df['patient_id'].nunique()} patients)")


@app.command()
def run(
    modality: RunModality = typer.Option(RunModality.all, help="Which modality's parts of the book to run."),
    study: Study = typer.Option(Study.all, help="Which study: astlof (zhang2024 X-ray, liu2025 CT), acute-chronic "
                                                "(zhang2023, CT) or all."),
    profile: ProfileName = typer.Option(ProfileName.default, help="quick (tests), default (the book), paper."),
    seed: int = typer.Option(42, help="Seed of the synthetic cohort and of every model."),
    build_dir: Optional[Path] = typer.Option(None, help="Working folder (default: build/<profile>)."),
    out_dir: Optional[Path] = typer.Option(None, help="Where _build/html goes (default: the repository root)."),
    book: bool = typer.Option(True, help="Build the Jupyter Book after executing the notebooks."),
    parts: Optional[str] = typer.Option(None, hidden=True, help="Comma-separated part keys, one after another "
                                                                "(the side-by-side lanes of a run)."),
) -> None:
    """Generate the cohort if missing, execute the notebooks with papermill and build the book."""
    from ovfkit.manifest import ManifestError
    try:
        from ovfkit.runner import RunError
        from ovfkit.runner import run as _run
    except ImportError as exc:
        _fail([f"ovfkit run needs the book tool chain ({exc.name} is missing): pip install 'ovfkit[book]', "
               "or use `make book`"])

    try:
        _run(modality.value, profile.value, seed=seed, build_dir=build_dir, out_dir=out_dir, book=book,
             study=study.value, parts=parts.split(",") if parts else None)
    except ManifestError as exc:
        _fail(exc.problems + [f"{len(exc.problems)} problem(s) in {exc.path}"])
    except RunError as exc:
        _fail([f"ovfkit run: {exc}"], code=1)
    except ValueError as exc:
        _fail([f"ovfkit run: {exc}"])


features_app = typer.Typer(help="Extract features for every vertebra of a manifest.", no_args_is_help=True)
app.add_typer(features_app, name="features")


class Backbone(str, Enum):
    imagenet = "imagenet"
    radimagenet = "radimagenet"
    random = "random"
    proxy_natural = "proxy-natural"
    proxy_medical = "proxy-medical"


class TaskName(str, Enum):
    astlof = "astlof"
    acuity = "acuity"


class TrainingRows(str, Enum):
    cross_fitted = "cross-fitted"
    in_sample = "in-sample"


def _load_for_features(manifest: Path, command: str, allow_mixed: bool = False):
    """Validate and load a manifest for a features command; exit 2 listing every problem."""
    from ovfkit.manifest import ManifestError, load_manifest

    try:
        m = load_manifest(manifest)
    except ManifestError as exc:
        _fail(exc.problems + [f"{len(exc.problems)} problem(s) in {exc.path}"])
    modalities = sorted(m["modality"].unique())
    if len(modalities) != 1 and not allow_mixed:
        _fail([f"ovfkit features {command}: the manifest mixes modalities {modalities}; give one per run "
               "(or pass --params)"])
    return m, modalities


def _write_parquet(table, out: Path) -> None:
    """Write a table to Parquet atomically."""
    from ovfkit.atomic import atomic_output

    table.attrs = {}
    with atomic_output(out) as tmp:
        table.to_parquet(tmp)


class MaskColumn(str, Enum):
    mask = "mask"
    mask_reader2 = "mask_reader2"
    mask_reader1_repeat = "mask_reader1_repeat"


#: ``ovfkit features radiomics --help``: what the default settings assume, and when to harmonize.
RADIOMICS_HELP = (
    "PyRadiomics features; failed cases are listed and skipped, all failing exits 1.\n\n"
    "The defaults assume: on X-ray, uncalibrated grey values (xray: z-scored per image, resampled to 0.3 mm, "
    "bin width 25 on the z-score x100 scale); on CT, calibrated HU and slices up to about 1.5 mm (ct_volume: the "
    "3-D vertebral body resampled to 2 mm isotropic voxels with linear interpolation, 32 bins per ROI, "
    "-200..1500 HU, no normalization). On the book's synthetic CT centers, coarse voxels and a fixed bin count move "
    "texture less at the noisiest center than finer voxels or a fixed bin width (the radiomics chapter's "
    "sensitivity study); benchmarks/peer.py compares ct_volume with AutoRadiomics' CT defaults.\n\n"
    "Multicenter data: no setting removes every center's calibration offset, kernel or noise from every "
    "feature. Before pooling centers, compare each center's features with the training center's within a class "
    "(the chapter's shift, ovfkit.transport.center_shift), and harmonize (ComBat fitted on the training rows) "
    "when a center differs in scanner, kernel, calibration or noise; the wavelet bands move most at the noisiest "
    "CT center and at both held-out X-ray centers. ct_volume_1mm (zhang2023) and ct_sagittal (liu2025) repeat the "
    "papers and scored a lower pooled AUC across the synthetic centers without harmonization (benchmarks/peer.py, "
    "seed 42)."
)


@features_app.command("radiomics", help=RADIOMICS_HELP)
def features_radiomics(
    manifest: Path = typer.Option(..., help="Manifest CSV (validated first)."),
    out: Path = typer.Option(..., help="Parquet file to write: one row per vertebra, PyRadiomics' feature names."),
    params: Optional[str] = typer.Option(
        None, help="PyRadiomics parameter YAML, or a shipped name (xray, ct_volume, ct_volume_1mm, ct_sagittal); "
                   "default: xray on X-ray, ct_volume on CT."),
    jobs: int = typer.Option(-1, help="Local worker processes (-1: all cores)."),
    scheduler: Optional[str] = typer.Option(None, help="Dask scheduler address (tcp://host:8786) instead of local workers."),
    cache_dir: Optional[Path] = typer.Option(None, help="Per-case cache folder (keyed by content and settings)."),
    mask_column: MaskColumn = typer.Option(
        MaskColumn.mask, help="Whose outline: reader 1's (mask), reader 2's (mask_reader2) or reader 1's repeat "
                              "outline drawn weeks later (mask_reader1_repeat)."),
) -> None:
    """PyRadiomics features; failed cases are listed and skipped, all failing exits 1 (help: RADIOMICS_HELP)."""
    from ovfkit import radiomics

    m, modalities = _load_for_features(manifest, "radiomics", allow_mixed=params is not None)
    if mask_column.value not in m.columns or not (m[mask_column.value].astype(str) != "").any():
        _fail([f"ovfkit features radiomics: {manifest} lists no mask in column '{mask_column.value}'; fill it in "
               "or choose another --mask-column"])
    try:
        table = radiomics.extract_manifest(m, params or radiomics.default_params(modalities[0]), n_jobs=jobs,
                                           cache_dir=cache_dir, scheduler=scheduler, mask_column=mask_column.value)
    except (ValueError, TypeError) as exc:
        _fail([f"ovfkit features radiomics: {exc}"])
    except RuntimeError as exc:
        _fail([f"ovfkit features radiomics: {exc}"], code=1)
    for f in table.attrs["failures"]:
        typer.echo(f"failed: {f['vertebra_id']}: {f['reason']}", err=True)
    _write_parquet(table, out)
    typer.echo(f"wrote {out}: {table.shape[0]} vertebrae x {table.shape[1]} features")


@features_app.command("deep")
def features_deep(
    manifest: Path = typer.Option(..., help="Manifest CSV (validated first); one modality."),
    backbone: Backbone = typer.Option(..., help="Pretrained source of the ResNet-50."),
    out: Path = typer.Option(..., help="Parquet file to write: 2048 avgpool features per vertebra (deep_0000...)."),
    weights: Optional[Path] = typer.Option(None, help="Weights file (imagenet: torchvision state dict; "
                                                      "radimagenet: the authors' checkpoint)."),
    profile: ProfileName = typer.Option(ProfileName.default, help="quick, default (CPU budget) or paper (full recipe)."),
    seed: int = typer.Option(42, help="Seed of fine-tuning (deterministic on CPU)."),
    cache_dir: Path = typer.Option(Path("build/cache/deep"), help="Inputs, proxy backbones, checkpoints, features."),
    task: TaskName = typer.Option(TaskName.astlof, help="The label the networks learn: astlof (three ASTLOF "
                                                         "classes) or acuity (acute vs chronic)."),
    training_rows: TrainingRows = typer.Option(
        TrainingRows.cross_fitted, help="cross-fitted: each training vertebra's features come from a network that "
                                        "never saw its label. in-sample: LEAKY, one network for all rows; only "
                                        "to measure the leak."),
) -> None:
    """Fine-tune ResNet-50s on the training cohort (cross-fitted) and extract 2048-D features for every vertebra."""
    from ovfkit import deep
    from ovfkit.settings import settings

    m, modalities = _load_for_features(manifest, "deep")
    try:
        recipe = settings(profile.value, modalities[0], seed).deep
        result = deep.deep_features(m, backbone.value, recipe, weights=weights, cache_dir=cache_dir, task=task.value,
                                    training_rows=training_rows.value)
    except ValueError as exc:
        _fail([f"ovfkit features deep: {exc}"])
    _write_parquet(result.features, out)
    typer.echo(f"wrote {out}: {result.features.shape[0]} vertebrae x {result.features.shape[1]} features "
               f"({backbone.value}, {profile.value} profile, {training_rows.value})")


@app.command()
def cnn(
    manifest: Path = typer.Option(..., help="X-ray manifest CSV with an acuity column (validated first)."),
    out: Path = typer.Option(..., help="CSV to write: each architecture's out-of-fold P(fresh) per vertebra."),
    weights: Optional[Path] = typer.Option(None, help="Folder of torchvision's ImageNet files, under torchvision's "
                                                      "names (default: torch's hub cache)."),
    source: str = typer.Option("auto", help="auto (ImageNet file where present, else the offline stand-in), "
                                            "imagenet, proxy-natural or random."),
    profile: ProfileName = typer.Option(ProfileName.default, help="quick, default (CPU budget) or paper "
                                                                  "(guo2026's recipe, on a GPU)."),
    seed: int = typer.Option(42, help="Seed of the folds and the networks."),
    cache_dir: Path = typer.Option(Path("build/cache/cnn"), help="Inputs, stand-ins and each architecture's result."),
) -> None:
    """Train guo2026's and li's eight CNNs on the same patient-grouped folds (fresh vs old); out-of-fold predictions."""
    from ovfkit.deep import prepare_manifest, zoo
    from ovfkit.fresh_old import input_recipe
    from ovfkit.settings import settings

    m, modalities = _load_for_features(manifest, "cnn")
    try:
        recipe = settings(profile.value, modalities[0], seed, study="fresh-old").zoo
        if "acuity" not in m.columns:
            raise ValueError(f"{manifest}: no acuity column; the CNN comparison learns fresh (acute) vs old (chronic)")
        inputs = prepare_manifest(m.reset_index(), input_recipe(recipe), cache_dir=cache_dir)
        y = (m["acuity"] == "acute").astype(int).loc[inputs.index]
        result = zoo.cross_validate(inputs, y, m.loc[inputs.index, "patient_id"], recipe, source=source,
                                    weights_dir=weights, cache_dir=cache_dir)
    except ValueError as exc:
        _fail([f"ovfkit cnn: {exc}"])
    from ovfkit.manifest import write_csv_atomic

    write_csv_atomic(result.oof, out)
    typer.echo(f"wrote {out}: {result.oof['vertebra_id'].nunique()} vertebrae x "
               f"{result.oof['architecture'].nunique()} architectures ({', '.join(result.sources['source'].unique())} "
               f"weights, {profile.value} profile)")


manifest_app = typer.Typer(help="Write a manifest from segmentations.", no_args_is_help=True)
app.add_typer(manifest_app, name="manifest")


class Convention(str, Enum):
    totalsegmentator = "totalsegmentator"
    verse = "verse"


@manifest_app.command("from-labelmap")
def manifest_from_labelmap(
    image: Path = typer.Option(..., help="The scan: a file SimpleITK reads or a DICOM series folder."),
    labels: Path = typer.Option(..., help="Label map with one label per vertebra, on the image's grid."),
    convention: Convention = typer.Option(..., help="Label numbering: totalsegmentator (v2, 27=L5 ... 43=T1) "
                                                    "or verse (8=T1 ... 24=L5)."),
    patient_id: str = typer.Option(..., help="Pseudonymous patient id (names the mask files)."),
    out: Path = typer.Option(..., help="Folder to write: manifest.csv and masks/."),
) -> None:
    """One manifest row and one binary mask per thoracic or lumbar vertebra of a label map.

    The clinical and ASTLOF columns are left empty: fill them in, then run `ovfkit validate`.
    """
    from ovfkit import labelmap

    try:
        path, notes = labelmap.manifest_from_labelmap(image, labels, convention.value, patient_id, out)
    except ValueError as exc:
        _fail([f"ovfkit manifest from-labelmap: {exc}"])
    for note in notes:
        typer.echo(f"note: {note}")
    typer.echo(f"note: {labelmap.WHOLE_VERTEBRA_NOTE}")
    typer.echo(f"wrote {path}; fill in its empty columns (center, cohort, ASTLOF scores, acuity, age, sex), "
               f"then run `ovfkit validate {path}`")


@app.command()
def schema() -> None:
    """Print the manifest schema as a Markdown table."""
    from ovfkit.manifest import schema_markdown

    typer.echo(schema_markdown(), nl=False)


if __name__ == "__main__":
    app()
