"""One source of run settings: every size of a run, per profile and modality, in one frozen object.

The runner, the cohort generator, the deep features, the selection cascade, the model comparison and
every chapter read their sizes from :func:`settings`; nothing else decides a fold count, a bootstrap
count or a network recipe. The cohort roles live here too.

Profiles:

* ``quick``: a tiny cohort for tests (60 patients per modality), small grids, 200 bootstrap resamples;
* ``default``: the book, on the papers' cohort sizes, sized to build within its time budget on 2 CPU
  cores: partial fine-tuning (layer4) for 4 epochs, X-ray inputs at 96 px, 2 cross-fitting folds (each
  network learns from half the training patients; K networks cost K - 1 single networks' training), 3 outer
  folds of nested cross-validation (each outer fit is the whole tuned pipeline; the paper profile has 5);
* ``paper``: the papers' recipe (224 px X-ray, 30 epochs, full fine-tuning, 100 PCA components, wide
  grids, 2000 resamples); on a GPU.

Studies: ``astlof`` (zhang2024 on X-ray, liu2025 on CT: three ASTLOF classes, three centers) and
``acute-chronic`` (zhang2023, CT only: acute vs chronic, one center; 3-D radiomics on 1 mm isotropic
voxels, L1-penalized logistic selection, deep inputs z-scored per image and 100 PCA components of the deep
features in the default and paper profiles, fusion of the features each source's LASSO kept, no ComBat
since there is one scanner, the paper's seven classifiers and logistic regression); ``fresh-old`` (guo2026 and
li, X-ray only: fresh vs old, eight CNN architectures trained end to end on the same five patient-grouped folds,
:attr:`Settings.zoo`). Its profiles: ``paper`` is guo2026's recipe (224 px, 100 epochs of SGD, every layer
trained, left-right and top-bottom flips); ``default`` keeps the part within its time budget on 2 CPU cores:
64 px inputs (AlexNet's smallest), every network frozen at its pretrained weights but its final linear layer (a
linear probe on the standardized penultimate layer, computed once per image), 30 epochs at a tenfold learning rate
with an L2 penalty of 1e-3 (about scikit-learn's default logistic regression, C = 1, on 576 patches), no flips
(each flip would cost another pass of every network), stand-ins pretrained for 30 steps on 128 crops; ``quick``
trains one step on a tiny cohort.

The radiomics chapter's sensitivity study (:mod:`ovfkit.transport`) extracts a dozen variants of the default
parameter file on a stratified subsample in the default profile (:data:`TRANSPORT_SIZES`: 75 training, 25 per
held-out cohort), on 30 training and 10 per held-out cohort in the quick profile, on every vertebra in the paper
profile (:attr:`Settings.transport_sizes`).

The audit (:mod:`ovfkit.audit`, the book's last part) resplits every study 2 (quick), 5 (default) or 50 (paper)
times per pitfall (:attr:`Settings.audit_repeats`).
"""

from __future__ import annotations

from dataclasses import dataclass, replace

from ovfkit.deep.recipe import Recipe
from ovfkit.deep.zoo import ZooRecipe
from ovfkit.fusion import FusionSettings
from ovfkit.manifest import COHORTS, HELD_OUT  # noqa: F401 - the cohort roles, re-exported with the settings
from ovfkit.models import MODEL_NAMES
from ovfkit.radiomics import default_params
from ovfkit.task import Task, get_task

PROFILES = ("quick", "default", "paper")
STUDIES = ("astlof", "acute-chronic", "fresh-old")
#: zhang2023's seven classifiers and the logistic regression every reader expects as the reference.
ACUTE_CHRONIC_CLASSIFIERS = ("LR", "SVM", "KNN", "DT", "RF", "ExtraTrees", "XGBoost", "LightGBM")
#: The default profile's sensitivity study: a stratified subsample, so that a dozen extractions fit the time budget.
TRANSPORT_SIZES = {"train": 75, "internal": 25, "external": 25, "prospective": 25}


@dataclass(frozen=True)
class Settings:
    """Every size of a run.

    Attributes
    ----------
    profile, modality : str
    seed : int
        The seed of every random step (cohort, folds, networks, bootstrap).
    n_patients : int or None
        Synthetic cohort size; None = the paper's cohort.
    n_boot : int
        Patient-bootstrap resamples behind every CI.
    outer_splits, inner_splits : int
        Nested cross-validation: outer patient-grouped folds (training performance) and inner folds (tuning).
    baseline_splits : int
        Patient-grouped folds that choose the penalty of the plain baselines (chapter 01's radiomics model,
        chapter 04's linear probe).
    deep : Recipe
        Input preparation, fine-tuning and cross-fitting of the deep features.
    fusion : FusionSettings
        The selection cascade (ICC, Spearman, PCA components, LASSO folds, liu2025's post-LASSO filter).
    classifiers : tuple of str
    grid : str
        Which size of :func:`ovfkit.models.param_grid` (the profile's name).
    task : Task
        What is predicted (:mod:`ovfkit.task`): the ASTLOF class, or acute vs chronic.
    study : str
        ``astlof`` or ``acute-chronic``.
    design : str
        The synthetic cohort's design (a key of :data:`ovfkit.synth.DESIGNS`).
    radiomics_params : str or dict
        The shipped PyRadiomics parameter file (:mod:`ovfkit.params`), or a parameter dict.
    zoo : ZooRecipe or None
        The CNN comparison of the fresh-old study (:mod:`ovfkit.deep.zoo`); None in the other studies.
    transport_sizes : dict or None
        Vertebrae per cohort of the radiomics chapter's sensitivity study (:func:`ovfkit.transport.subsample`);
        None: every vertebra.
    audit_repeats : int
        Patient-level resplits of every pitfall of the audit (:func:`ovfkit.audit.run`), and repeats of the
        deep fine-tuning pitfall's cross-validation.
    """

    profile: str
    modality: str
    seed: int
    n_patients: int | None
    n_boot: int
    outer_splits: int
    inner_splits: int
    baseline_splits: int
    deep: Recipe
    fusion: FusionSettings
    classifiers: tuple = MODEL_NAMES
    grid: str = "default"
    task: Task = get_task("astlof")
    study: str = "astlof"
    design: str = ""
    radiomics_params: str | dict = ""
    zoo: ZooRecipe | None = None
    audit_repeats: int = 5
    transport_sizes: dict | None = None


def settings(profile: str, modality: str, seed: int = 42, task: str | Task = "astlof",
             study: str = "astlof") -> Settings:
    """The settings of ``profile`` for ``modality``; CT adds liu2025's post-LASSO filter (|rho| > 0.5).

    Parameters
    ----------
    profile : {"quick", "default", "paper"}
    modality : {"xray", "ct"}
    seed : int
    task : str or Task
        ``astlof`` (three classes) or ``acuity`` (binary); see :mod:`ovfkit.task`.
    study : {"astlof", "acute-chronic", "fresh-old"}
        ``acute-chronic`` is CT only, ``fresh-old`` X-ray only; both set the task to ``acuity``, whatever
        ``task`` says.
    """
    if study not in STUDIES:
        raise ValueError(f"study {study!r} is not one of {', '.join(STUDIES)}")
    if study == "acute-chronic":
        if modality != "ct":
            raise ValueError(f"the acute-chronic study is on CT (zhang2023); modality {modality!r} has no such study")
        return _acute_chronic(settings(profile, modality, seed, "acuity"))
    if study == "fresh-old":
        if modality != "xray":
            raise ValueError(f"the fresh-old study is on X-ray (guo2026, li); modality {modality!r} has no such study")
        return _fresh_old(settings(profile, modality, seed, "acuity"))
    task = get_task(task)
    if profile not in PROFILES:
        raise ValueError(f"profile {profile!r} is not one of {', '.join(PROFILES)}")
    if modality not in ("xray", "ct"):
        raise ValueError(f"modality {modality!r} is not 'xray' or 'ct'")
    ct = modality == "ct"
    post = 0.5 if ct else None
    if profile == "quick":
        return Settings(profile, modality, seed, 60, 200, 3, 3, 3,
                        Recipe(size=32, epochs=2, trainable="layer4", max_train_batches=2, crossfit_folds=2,
                               proxy_steps=2, proxy_images=8, seed=seed),
                        FusionSettings(deep_components=8, lasso_cv=3, post_lasso_threshold=post, seed=seed),
                        grid=profile, task=task, design=modality, radiomics_params=default_params(modality, paper=True),
                        audit_repeats=2, transport_sizes={"train": 30, "internal": 10, "external": 10,
                                                          "prospective": 10})
    if profile == "default":
        return Settings(profile, modality, seed, None, 1000, 3, 3, 5,
                        Recipe(size=64 if ct else 96, epochs=4, trainable="layer4", crossfit_folds=2, seed=seed),
                        FusionSettings(deep_components=32, lasso_cv=10, post_lasso_threshold=post, seed=seed),
                        grid=profile, task=task, design=modality, radiomics_params=default_params(modality, paper=True),
                        audit_repeats=5, transport_sizes=TRANSPORT_SIZES)
    return Settings(profile, modality, seed, None, 2000, 5, 5, 5,
                    Recipe(size=64 if ct else 224, epochs=30, trainable="all", crossfit_folds=5, seed=seed),
                    FusionSettings(deep_components=100, lasso_cv=10, post_lasso_threshold=post, seed=seed),
                    grid=profile, task=task, design=modality, radiomics_params=default_params(modality, paper=True),
                    audit_repeats=50)


def _acute_chronic(base: Settings) -> Settings:
    """zhang2023's study on top of the CT settings of the same profile (see the module's docstring)."""
    components = base.fusion.deep_components if base.profile == "quick" else 100
    return replace(base, study="acute-chronic", design="zhang2023", radiomics_params="ct_volume_1mm",
                   classifiers=ACUTE_CHRONIC_CLASSIFIERS, deep=replace(base.deep, scaling="zscore"),
                   fusion=replace(base.fusion, deep_components=components, combat=False, lasso_method="logistic",
                                  select_sources_first=True))


def _fresh_old(base: Settings) -> Settings:
    """guo2026's and li's CNN comparison on top of the X-ray settings of the same profile (module docstring)."""
    seed = base.seed
    zoo = {"quick": ZooRecipe(size=64, epochs=1, batch_size=8, lr=1e-2, trainable="tail", flips=("lr",), folds=2,
                              max_train_batches=1, proxy_steps=1, proxy_images=4, seed=seed),
           "default": ZooRecipe(size=64, epochs=30, batch_size=32, lr=1e-2, weight_decay=1e-3, trainable="head",
                                flips=(), folds=5, proxy_steps=30, proxy_images=128, seed=seed),
           "paper": ZooRecipe(seed=seed)}[base.profile]
    return replace(base, study="fresh-old", design="guo2026", zoo=zoo,
                   n_patients=40 if base.profile == "quick" else None)
