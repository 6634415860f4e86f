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
"""

from __future__ import annotations

from dataclasses import dataclass

from ovfkit.deep.recipe import Recipe
from ovfkit.fusion import FusionSettings
from ovfkit.manifest import COHORTS, HELD_OUT  # noqa: F401 - the cohort roles, re-exported with the settings
from ovfkit.models import MODEL_NAMES
from ovfkit.task import Task, get_task

PROFILES = ("quick", "default", "paper")


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


def settings(profile: str, modality: str, seed: int = 42, task: str | Task = "astlof") -> Settings:
    """The settings of ``profile`` for ``modality``; CT adds liu2025's post-LASSO filter (|rho| > 0.5).

    Parameters
    ----------
    profile : {"quick", "default", "paper"}
    modality : {"xray", "ct"}
    seed : int
    task : str or Task
        ``astlof`` (three classes) or ``acuity`` (binary); see :mod:`ovfkit.task`.
    """
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
                        grid=profile, task=task)
    if profile == "default":
        return Settings(profile, modality, seed, None, 1000, 3, 3, 5,
                        Recipe(size=64 if ct else 96, epochs=4, trainable="layer4", crossfit_folds=2, seed=seed),
                        FusionSettings(deep_components=32, lasso_cv=10, post_lasso_threshold=post, seed=seed),
                        grid=profile, task=task)
    return Settings(profile, modality, seed, None, 2000, 5, 5, 5,
                    Recipe(size=64 if ct else 224, epochs=30, trainable="all", crossfit_folds=5, seed=seed),
                    FusionSettings(deep_components=100, lasso_cv=10, post_lasso_threshold=post, seed=seed),
                    grid=profile, task=task)
