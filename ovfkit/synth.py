"""Deterministic synthetic multicenter OVF cohort (digital phantoms with known truth).

The cohort follows the design of the papers (``../shared/STUDY.md``, :data:`DESIGNS`): center I is split
by patient 80/20 into ``train`` and ``internal``, center II is ``external`` and center III ``prospective``;
the acute-vs-chronic design ``zhang2023`` has one center (one scanner) split 80/20 by patient, every
vertebra a visible fracture, acute ones more often in younger patients; the fresh-vs-old X-ray design
``guo2026`` has one center, T5-L5 by its Table 1, all patches in ``train`` (five-fold cross-validation).
Patients' age, sex and T-score follow the papers (:func:`population_facts`). Each
vertebra gets true findings (morphology, MRI, BMD T-score, clinical) drawn from a latent model; the
image shows only what a radiologist could see of them:

* morphology: height loss (Genant) and its shape (wedge, biconcave, burst with a retropulsed posterior
  wall fragment);
* MRI: a sclerotic condensation band under the endplate in most fresh (edema) fractures, intravertebral
  gas (vacuum cleft) or a faint fluid lucency in non-union; nothing in healed fractures; on radiographs of
  the acute-vs-chronic designs, endplate sclerosis and anterior osteophytes in old fractures;
* BMD: trabecular density and texture (coarser, vertically striated when osteoporotic);
* clinical: nothing (so labels carry honest noise).

A lateral X-ray patch (:func:`xray_layout`) also shows what hides those signs on a thoracolumbar
radiograph: the neighbouring vertebrae across discs of the level's height (resting on the collapsed
endplate, sometimes with an old fracture of their own), endplates that undulate, the domes of the
diaphragm crossing the patches at T11-L1 (lung above, abdomen below: :func:`level_band`) and rib shadows
over the thoracic levels.

Two readers score the components with realistic disagreement; the consensus label keeps their score
where they agree and the adjudicated (true) score where they do not. For a random subset of training
vertebrae, a second reader's mask (a perturbed copy of the first, for the inter-observer ICC) and reader
1's own second outline drawn weeks later (a smaller perturbation: a reader agrees with themself better
than with a colleague, for the intra-observer ICC) are written. Centers differ in acquisition: pixel
spacing, slice thickness, blur (kernel), noise, gain and calibration offset.

X-ray patches are 2-D lateral projections (axis 0 of the physical space = anterior->posterior,
axis 1 = superior->inferior). CT volumes are 3-D in LPS (x right->left, y anterior->posterior,
z inferior->superior); the array from SimpleITK is ``[z, y, x]``.
"""

from __future__ import annotations

import json
import os
import shutil
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np
import pandas as pd
from scipy import ndimage

from ovfkit import astlof
from ovfkit.atomic import atomic_output
from ovfkit.provenance import code_digest, sha256_file


def code_hash() -> str:
    """16 hex digits identifying the generator's code: this module and every ovfkit module it imports
    (:func:`ovfkit.provenance.code_digest`), the ASTLOF rules among them."""
    return code_digest(__name__)


MODALITIES = ("xray", "ct")
LEVELS = ("T10", "T11", "T12", "L1", "L2", "L3", "L4")
# Fracture frequency by level peaks at the thoracolumbar junction.
LEVEL_WEIGHTS = np.array([0.05, 0.12, 0.25, 0.27, 0.15, 0.10, 0.06])
#: The spine from T4 to S1, cranial to caudal: the levels a design draws and their neighbours on a radiograph.
SPINE = ("T4", "T5", "T6", "T7", "T8", "T9", "T10", "T11", "T12", "L1", "L2", "L3", "L4", "L5", "S1")
#: Levels the domes of the diaphragm cross on a lateral thoracolumbar radiograph (guo2026 names the diaphragm
#: the major obstacle and proposes to split the cases above, at and below it).
DIAPHRAGM_LEVELS = ("T11", "T12", "L1")
#: DXA T-score change per year of age and in men (same reference population): the population model keeps
#: these slopes and centres them on the design's age and share of men, so that the design's T-score mean and
#: SD (:attr:`CohortDesign.tscore`) are those of the whole cohort.
TSCORE_PER_YEAR, TSCORE_MALE = -0.018, 0.30


def level_band(level: str) -> str:
    """Where ``level`` lies against the diaphragm on a lateral radiograph: ``above`` (cranial to T11), ``at``
    (T11-L1, :data:`DIAPHRAGM_LEVELS`) or ``below`` (caudal to L1)."""
    if level not in SPINE:
        raise ValueError(f"level {level!r} is not one of {', '.join(SPINE)}")
    i = SPINE.index(level)
    if i < SPINE.index(DIAPHRAGM_LEVELS[0]):
        return "above"
    return "at" if i <= SPINE.index(DIAPHRAGM_LEVELS[-1]) else "below"


@dataclass(frozen=True)
class CohortDesign:
    """Cohort design of one paper: vertebra counts per cohort, patients, and who the patients are.

    Attributes
    ----------
    paper : str
        The paper whose cohort this design follows.
    modality : {"xray", "ct"}
    n_patients : int
    vertebrae : dict
        Cohort -> vertebrae. ``train`` and ``internal`` come from the first of ``centers`` (split 8:2 by
        patient; a design without ``internal`` keeps all of that center's patients in ``train``), ``external``
        from the second, ``prospective`` from the third.
    stream : int
        Key of the design's random streams (cohorts of different designs never share a draw).
    centers : tuple of str
        Acquisition of each center (keys of :data:`XRAY_CENTERS` / :data:`CT_CENTERS`).
    age : tuple
        Patient age in years: mean, SD, lowest, highest (normal, clipped).
    p_male : float
    tscore : tuple
        DXA T-score of the patients: mean and SD over the cohort (normal, clipped to [-5, 1]); it falls with
        age and is higher in men (:data:`TSCORE_PER_YEAR`, :data:`TSCORE_MALE`) around these. Default:
        liu2025 Table 1 (its four sets: means -2.79 to -2.85, SDs 0.75 to 0.82).
    levels : tuple of str
        Vertebral levels the fractures are drawn from, cranial to caudal (keys of :data:`LEVEL_SIZE`).
    level_weights : tuple of float
        Relative frequency of a patient's first fracture at each of ``levels``.
    adjacent_levels : bool
        A patient's further fractures lie one or two levels from the first (True), or are drawn from
        ``level_weights`` like the first, without repeating a level (False: the weights are then the share of
        all fractures per level, as guo2026 Table 1 gives them).
    acute_logit : tuple or None
        Acute-vs-chronic designs (zhang2023, guo2026): ``(a, b)`` of ``logit P(acute) = a + b * (age - 62) / 10``
        per fractured vertebra, so that acute fractures come from younger patients, as in zhang2023. Every
        vertebra is a visible compression or burst fracture unless ``uncollapsed_in_acute``. None: the ASTLOF
        designs, where the MRI finding follows the fracture and the patient's bone.
    nonunion_in_chronic : float
        Acute-vs-chronic designs: share of chronic fractures that did not heal (vacuum cleft or fluid).
    band_in_chronic : float
        Acute-vs-chronic designs: share of chronic fractures that show a condensation band on CT anyway
        (zhang2023 found a few).
    band_hu : float
        Peak attenuation the condensation band adds on CT (HU): how conspicuous it is.
    uncollapsed_in_acute : float
        Acute-vs-chronic designs: share of acute fractures without visible compression (an occult fracture
        whose height matches its neighbours'; guo2026: 11 of 364 fresh fractures).
    sclerosis_in_chronic : float
        Share of healed chronic fractures whose collapsed endplate shows sclerosis (a dense band along it) on
        the radiograph.
    osteophyte_in_chronic, osteophyte_in_acute : float
        Share of chronic and of acute fractures with anterior osteophytes (bone overgrowth at the anterior
        corners) on the radiograph: a sign of an old fracture that degeneration also gives (guo2026: "vertebral
        wedging, endplate sclerosis, and peripheral bone overgrowth are indicative of chronic injury").
    """

    paper: str
    modality: str
    n_patients: int
    vertebrae: dict
    stream: int
    centers: tuple = ("I", "II", "III")
    age: tuple = (71.0, 8.5, 50, 95)
    p_male: float = 0.22
    tscore: tuple = (-2.82, 0.81)
    levels: tuple = LEVELS
    level_weights: tuple = tuple(LEVEL_WEIGHTS)
    adjacent_levels: bool = True
    acute_logit: tuple | None = None
    nonunion_in_chronic: float = 0.0
    band_in_chronic: float = 0.0
    band_hu: float = 210.0
    uncollapsed_in_acute: float = 0.0
    sclerosis_in_chronic: float = 0.0
    osteophyte_in_chronic: float = 0.0
    osteophyte_in_acute: float = 0.0

    @property
    def n_vertebrae(self) -> int:
        return int(sum(self.vertebrae.values()))


#: guo2026 Table 1: fresh + old fractured vertebrae per level, T5 .. L5 (720 in all).
GUO2026_LEVELS = {"T5": 6, "T6": 25, "T7": 28, "T8": 46, "T9": 35, "T10": 29, "T11": 67, "T12": 132, "L1": 132,
                  "L2": 86, "L3": 59, "L4": 52, "L5": 23}

#: Cohort designs by name: ``xray`` and ``ct`` (the ASTLOF studies, each modality's default), ``zhang2023`` (CT,
#: acute vs chronic: one center, one scanner, 365 patients, 520 fractures, 8:2 split) and ``guo2026`` (X-ray,
#: fresh vs old: one center, 405 patients, 720 vertebral patches, all in ``train`` for patient-grouped
#: five-fold cross-validation).
DESIGNS: dict[str, CohortDesign] = {
    "xray": CohortDesign("zhang2024", "xray", 942, {"train": 712, "internal": 178, "external": 111,
                                                    "prospective": 75}, stream=0,
                         age=(69.34, 10.19, 50, 97), p_male=264 / 942),
    "ct": CohortDesign("liu2025", "ct", 981, {"train": 750, "internal": 187, "external": 110, "prospective": 51},
                       stream=1),
    "zhang2023": CohortDesign("zhang2023", "ct", 365, {"train": 416, "internal": 104}, stream=2, centers=("iCT",),
                              age=(61.7, 17.0, 17, 95), p_male=149 / 365, acute_logit=(0.5, -0.5),
                              nonunion_in_chronic=0.2, band_in_chronic=0.05, band_hu=60.0),
    "guo2026": CohortDesign("guo2026", "xray", 405, {"train": 720}, stream=3, centers=("HMU",),
                            age=(75.0, 14.0, 60, 100), p_male=115 / 405, levels=tuple(GUO2026_LEVELS),
                            level_weights=tuple(GUO2026_LEVELS.values()), adjacent_levels=False,
                            acute_logit=(float(np.log(364 / 356)), 0.0), uncollapsed_in_acute=11 / 364,
                            sclerosis_in_chronic=0.5, osteophyte_in_chronic=0.45, osteophyte_in_acute=0.2),
}


def get_design(modality: str, design: str | None = None) -> CohortDesign:
    """The design called ``design`` (default: the modality's ASTLOF design), checked against ``modality``."""
    if modality not in MODALITIES:
        raise ValueError(f"modality {modality!r} is not one of {', '.join(MODALITIES)}")
    name = modality if design is None else design
    if name not in DESIGNS:
        raise ValueError(f"design {name!r} is not one of {', '.join(DESIGNS)}")
    if DESIGNS[name].modality != modality:
        raise ValueError(f"design {name!r} is a {DESIGNS[name].modality} design, not {modality}; "
                         f"pass --modality {DESIGNS[name].modality}")
    return DESIGNS[name]


COHORT_CENTER = {"train": "I", "internal": "I", "external": "II", "prospective": "III"}


@dataclass(frozen=True)
class XrayCenter:
    """Acquisition of a lateral radiograph at one center (pixel spacing in mm, detector units)."""

    spacing: float
    blur_mm: float
    noise: float
    gain: float
    offset: float
    gamma: float


@dataclass(frozen=True)
class CtCenter:
    """Acquisition of a CT scan at one center (mm and HU)."""

    spacing: float
    slice_thickness: float
    kernel_mm: float
    noise_hu: float
    hu_offset: float
    hu_gain: float


XRAY_CENTERS = {
    "I": XrayCenter(spacing=0.16, blur_mm=0.18, noise=28.0, gain=1.00, offset=0.0, gamma=1.00),
    "II": XrayCenter(spacing=0.19, blur_mm=0.22, noise=32.0, gain=0.86, offset=160.0, gamma=0.96),
    "III": XrayCenter(spacing=0.14, blur_mm=0.14, noise=34.0, gain=1.12, offset=-90.0, gamma=1.06),
    # guo2026's one center (Harbin Medical University Cancer Hospital); the paper gives no acquisition details.
    "HMU": XrayCenter(spacing=0.15, blur_mm=0.20, noise=30.0, gain=0.94, offset=60.0, gamma=1.02),
}
CT_CENTERS = {
    "I": CtCenter(spacing=0.70, slice_thickness=1.25, kernel_mm=0.35, noise_hu=14.0, hu_offset=0.0, hu_gain=1.00),
    "II": CtCenter(spacing=0.80, slice_thickness=1.50, kernel_mm=0.45, noise_hu=16.0, hu_offset=12.0, hu_gain=1.04),
    "III": CtCenter(spacing=0.55, slice_thickness=0.625, kernel_mm=0.25, noise_hu=26.0, hu_offset=-10.0, hu_gain=0.97),
    # zhang2023's one scanner (Philips Brilliance iCT, 120 kVp, 1.0 mm bone-window reconstructions).
    "iCT": CtCenter(spacing=0.68, slice_thickness=1.0, kernel_mm=0.35, noise_hu=15.0, hu_offset=0.0, hu_gain=1.00),
}


# ----------------------------------------------------------------------------------------------
# Labels: patients, vertebrae, true findings and the two readers
# ----------------------------------------------------------------------------------------------

def _split_counts(total: int, weights) -> np.ndarray:
    """Largest-remainder apportionment of ``total`` over ``weights`` (sums exactly to total)."""
    w = np.asarray(weights, dtype=float)
    raw = total * w / w.sum()
    base = np.floor(raw).astype(int)
    rest = total - base.sum()
    order = np.argsort(-(raw - base), kind="stable")
    base[order[:rest]] += 1
    return base


def _patients(design: CohortDesign, n_patients: int, rng: np.random.Generator) -> pd.DataFrame:
    centers = design.centers
    vert = design.vertebrae
    center_vert = np.array([vert["train"] + vert.get("internal", 0), vert.get("external", 0),
                            vert.get("prospective", 0)])[:len(centers)]
    ratio = design.n_vertebrae / design.n_patients
    pats = _split_counts(n_patients, center_vert)
    rows = []
    pid = 0
    for center, n_c in zip(centers, pats):
        n_c = int(n_c)
        counts = np.ones(n_c, dtype=int)
        extras = int(round(n_c * (ratio - 1.0)))
        for _ in range(extras):
            eligible = np.flatnonzero(counts < 3)
            counts[rng.choice(eligible)] += 1
        if center == centers[0]:
            order = rng.permutation(n_c)
            n_train = int(round(0.8 * n_c)) if vert.get("internal") else n_c
            cohort = np.where(np.isin(np.arange(n_c), order[:n_train]), "train", "internal")
        else:
            cohort = np.full(n_c, "external" if center == centers[1] else "prospective")
        for i in range(n_c):
            pid += 1
            rows.append({"patient_id": f"P{pid:04d}", "center": center, "cohort": cohort[i],
                         "n_vertebrae": int(counts[i])})
    pat = pd.DataFrame(rows)
    n = len(pat)
    mean, sd, lo, hi = design.age
    age = np.clip(rng.normal(mean, sd, n), lo, hi).round().astype(int)
    male = rng.random(n) < design.p_male
    # DXA T-score: lower with age, higher in men, around the design's mean; the residual SD makes the
    # cohort's SD the design's (age and sex explain a little of it).
    t_mean, t_sd = design.tscore
    explained = (TSCORE_PER_YEAR * sd) ** 2 + TSCORE_MALE ** 2 * design.p_male * (1 - design.p_male)
    t = (t_mean + TSCORE_PER_YEAR * (age - mean) + TSCORE_MALE * (male - design.p_male)
         + rng.normal(0.0, np.sqrt(t_sd ** 2 - explained), n))
    pat["age"] = age
    pat["sex"] = np.where(male, "M", "F")
    pat["bmd_tscore"] = np.clip(t, -5.0, 1.0).round(1)
    pat["pain_propensity"] = rng.normal(0.0, 1.0, n)
    return pat


def _choose(rng: np.random.Generator, options, probs) -> str:
    p = np.asarray(probs, dtype=float)
    return options[int(rng.choice(len(options), p=p / p.sum()))]


def _astlof_fracture(frailty: float, rng: np.random.Generator) -> tuple[str, str]:
    """Morphology and MRI finding of a fracture in the ASTLOF designs: both follow the patient's bone.

    The weaker the bone, the more bursts and non-unions, and the more of a patient's fractures are old ones
    (healed, normal MRI: prevalent fractures accumulate as BMD falls). The last keeps the papers' class mix
    (about 45/43/12%) with a T-score as spread as theirs (:attr:`CohortDesign.tscore`): with a share of old
    fractures independent of the bone, a fifth of the vertebrae would be class 2.
    """
    morph = _choose(rng, ["normal", "compression", "burst"], [0.09, 0.84 - 0.05 * frailty, 0.07 + 0.05 * frailty])
    if morph == "normal":
        return morph, "edema"  # an occult fracture is seen on MRI only
    p_nonunion = 0.05 + 0.05 * frailty + (0.06 if morph == "burst" else 0.0)
    p_old = float(np.clip(0.8 * frailty - 0.2, 0.02, 0.8))
    mri = _choose(rng, ["normal", "edema", "nonunion"], [p_old, 1.0 - p_old - p_nonunion, p_nonunion])
    if mri == "nonunion":
        mri = "vacuum_cleft" if rng.random() < 0.65 else "fluid"
    return morph, mri


def _acuity_fracture(age: float, rng: np.random.Generator, design: CohortDesign) -> tuple[str, str]:
    """Morphology and MRI finding in an acute-vs-chronic design: a fracture, acute (edema) with a probability
    that falls with age (:attr:`CohortDesign.acute_logit`), else healed or not united; visible unless an acute
    one is drawn uncollapsed (:attr:`CohortDesign.uncollapsed_in_acute`)."""
    morph = _choose(rng, ["compression", "burst"], [0.93, 0.07])
    a, b = design.acute_logit
    if rng.random() < 1.0 / (1.0 + np.exp(-(a + b * (age - 62.0) / 10.0))):
        if design.uncollapsed_in_acute and rng.random() < design.uncollapsed_in_acute:
            return "normal", "edema"
        return morph, "edema"
    if rng.random() < design.nonunion_in_chronic:
        return morph, "vacuum_cleft" if rng.random() < 0.65 else "fluid"
    return morph, "normal"  # healed


def _vertebra_findings(pat: pd.Series, rng: np.random.Generator, design: CohortDesign) -> dict:
    """True findings of one fractured vertebra and the geometry parameters that show them."""
    t = float(pat["bmd_tscore"])
    frailty = np.clip((-t - 1.5) / 3.0, 0.0, 1.0)  # 0 at T=-1.5, 1 at T=-4.5
    if design.acute_logit is None:
        morph, mri = _astlof_fracture(frailty, rng)
    else:
        morph, mri = _acuity_fracture(float(pat["age"]), rng, design)
    # Clinical: follows acuity and patient-level pain propensity; invisible on images.
    prop = float(pat["pain_propensity"])
    base = {"normal": [0.38, 0.59, 0.03], "edema": [0.12, 0.84, 0.04],
            "vacuum_cleft": [0.12, 0.60, 0.28], "fluid": [0.12, 0.60, 0.28]}[mri]
    shift = np.exp(np.array([-0.4, 0.0, 0.4]) * prop)
    clinical = _choose(rng, ["none", "positional", "persistent"], np.array(base) * shift)
    if morph == "burst" and clinical == "persistent" and rng.random() < 0.3:
        clinical = "neurological"

    # Geometry: Genant height loss and shape.
    if morph == "normal":
        shape, loss = "normal", rng.uniform(0.0, 0.12)
    elif morph == "compression":
        shape = "wedge" if rng.random() < 0.6 else "biconcave"
        loss = float(np.clip(rng.normal(0.27 + 0.10 * frailty, 0.07), 0.2, 0.55))
    else:
        shape = "burst"
        loss = float(np.clip(rng.normal(0.36 + 0.10 * frailty, 0.08), 0.22, 0.65))
    if mri in ("vacuum_cleft", "fluid"):
        loss = min(0.7, loss + 0.06)
    found = {
        "morphology_finding": shape if morph != "normal" else "normal",
        "mri_finding": mri,
        "clinical_finding": clinical,
        "height_loss": round(loss, 3),
        "retropulsion_mm": round(float(rng.uniform(2.0, 5.5)) if morph == "burst" else 0.0, 2),
        "condensation_band": bool(mri == "edema" and morph != "normal" and rng.random() < 0.75)
        or bool(mri == "edema" and morph == "normal" and rng.random() < 0.5),
    }
    if design.band_in_chronic and mri != "edema":
        found["condensation_band"] = bool(rng.random() < design.band_in_chronic)
    # Radiographic signs of an old fracture (drawn only where the design gives them a chance).
    p_sclerosis = design.sclerosis_in_chronic if mri == "normal" and morph != "normal" else 0.0
    found["endplate_sclerosis"] = bool(p_sclerosis and rng.random() < p_sclerosis)
    p_osteophyte = design.osteophyte_in_acute if mri == "edema" else design.osteophyte_in_chronic
    found["osteophyte"] = bool(p_osteophyte and rng.random() < p_osteophyte)
    return found


def _reader(true_scores: np.ndarray, p_error: float, rng: np.random.Generator) -> np.ndarray:
    """A reader's scores: the true score, or a neighbouring one with probability ``p_error``."""
    out = true_scores.copy()
    err = rng.random(out.shape) < p_error
    step = np.where(rng.random(out.shape) < 0.5, -1, 1)
    moved = out + step
    moved = np.where((moved < 0) | (moved > 2), out - step, moved)
    out[err] = moved[err]
    return out


READER_ERROR = {"morphology": 0.05, "mri": 0.04, "bmd": 0.02, "clinical": 0.08}


def cohort_table(modality: str, seed: int = 42, n_patients: int | None = None,
                 design: str | None = None) -> pd.DataFrame:
    """The labels of the synthetic cohort, without images (fast, deterministic).

    Parameters
    ----------
    modality : {"xray", "ct"}
    seed : int
    n_patients : int, optional
        Total patients over all cohorts; defaults to the paper's cohort (zhang2024 for X-ray, liu2025
        for CT). Cohort proportions and vertebrae per patient follow the paper.
    design : str, optional
        A key of :data:`DESIGNS` (default: ``modality``, the ASTLOF design); ``zhang2023`` is the CT
        acute-vs-chronic cohort, ``guo2026`` the X-ray fresh-vs-old one.

    Returns
    -------
    DataFrame, one row per vertebra, with the manifest's label columns, the level's band against the
    diaphragm (``level_band``) and the hidden truth (``true_*``, geometry, the signs drawn in the images:
    ``condensation_band``, ``endplate_sclerosis``, ``osteophyte``).
    """
    design = get_design(modality, design)
    n_patients = design.n_patients if n_patients is None else int(n_patients)
    if n_patients < 8:
        raise ValueError(f"n_patients={n_patients} is too small; use at least 8 so that every cohort has a patient")
    rng = np.random.default_rng([seed, design.stream, 0])
    pat = _patients(design, n_patients, rng)
    names = design.levels
    weights = np.asarray(design.level_weights, dtype=float)
    last = len(names) - 1
    rows = []
    for _, p in pat.iterrows():
        if not design.adjacent_levels:
            levels = sorted(rng.choice(len(names), size=p["n_vertebrae"], replace=False, p=weights / weights.sum()))
        else:
            start = rng.choice(len(names), p=weights / weights.sum())
            levels = sorted({int(np.clip(start + k * (1 if start < last - 1 else -1) * rng.integers(1, 3), 0, last))
                             for k in range(p["n_vertebrae"])})
            while len(levels) < p["n_vertebrae"]:  # collisions at the ends of the range
                levels = sorted(set(levels) | {int(rng.integers(0, len(names)))})
        for lev in levels:
            f = _vertebra_findings(p, rng, design)
            rows.append({"patient_id": p["patient_id"], "vertebra_id": f"{p['patient_id']}_{names[lev]}",
                         "level": names[lev], "level_band": level_band(names[lev]), "center": p["center"],
                         "cohort": p["cohort"], "modality": modality, "age": int(p["age"]), "sex": p["sex"],
                         "bmd_tscore": float(p["bmd_tscore"]), **f})
    df = pd.DataFrame(rows)
    true = {
        "morphology": astlof.score_morphology(df["morphology_finding"]),
        "mri": astlof.score_mri(df["mri_finding"]),
        "bmd": astlof.score_bmd(df["bmd_tscore"]),
        "clinical": astlof.score_clinical(df["clinical_finding"]),
    }
    for comp in astlof.COMPONENTS:
        r1 = _reader(true[comp], READER_ERROR[comp], rng)
        r2 = _reader(true[comp], READER_ERROR[comp], rng)
        df[f"{comp}_r1"] = r1
        df[f"{comp}_r2"] = r2
        df[comp] = astlof.consensus(r1, r2, true[comp])
        df[f"true_{comp}"] = true[comp]
    df["astlof_total"] = astlof.total(*(df[c] for c in astlof.COMPONENTS))
    df["astlof_class"] = astlof.astlof_class(df["astlof_total"])
    df["acuity"] = np.where(df["mri_finding"] == "edema", "acute", "chronic")
    df["band_hu"] = design.band_hu
    return df


def population_facts(table: pd.DataFrame, design: str | None = None) -> pd.DataFrame:
    """The patients of a drawn cohort beside the published facts its design follows.

    Parameters
    ----------
    table : DataFrame
        ``cohort_table(modality, seed, n_patients, design)``.
    design : str, optional
        The design ``table`` was made with (default: its modality's).

    Returns
    -------
    DataFrame, one row per fact of ``ovfkit/data/population_facts.csv`` for the design: ``fact``, ``cohort``
    (its value over the patients of ``table``), ``source_value``, ``source`` (paper and where; approximate where
    it says so) and ``tolerance``: three standard errors of the cohort value at this cohort's size (how far
    sampling alone moves it from the source), NaN for a fact shown for comparison only, which the design is
    not drawn to match.
    """
    modality = str(table["modality"].iloc[0])
    get_design(modality, design)
    facts = pd.read_csv(Path(__file__).parent / "data" / "population_facts.csv")
    facts = facts[facts["design"] == (modality if design is None else design)].reset_index(drop=True)
    pat = table.drop_duplicates("patient_id")
    n = len(pat)
    age, t = pat["age"].astype(float), pat["bmd_tscore"].astype(float)
    bmd = astlof.score_bmd(t)
    shares = {"men": pat["sex"] == "M", "bmd0": bmd == 0, "bmd1": bmd == 1, "bmd2": bmd == 2, "normal": t > -1.0}
    cohort, se = [], []
    for key, source in zip(facts["key"], facts["source_value"]):
        if key in shares:
            cohort.append(float(np.mean(shares[key])))
            se.append(np.sqrt(source * (1 - source) / n))
        else:
            x = age if key.startswith("age") else t
            if key.endswith("_mean"):
                cohort.append(float(x.mean()))
                se.append(x.std() / np.sqrt(n))
            else:
                cohort.append(float(x.std()))
                se.append(x.std() / np.sqrt(2 * (n - 1)))
    return pd.DataFrame({"fact": facts["fact"], "cohort": cohort, "source_value": facts["source_value"],
                         "source": facts["source"],
                         "tolerance": np.where(facts["targeted"], 3 * np.asarray(se), np.nan)})


# ----------------------------------------------------------------------------------------------
# Images
# ----------------------------------------------------------------------------------------------

#: (height mm, AP depth mm, LR width mm) of a normal adult vertebral body, T5 .. L5. T5-T9 and L5 are rounded
#: from Panjabi et al. (Spine 1991;16:888-901, thoracic; Spine 1992;17:299-306, lumbar), approximate.
LEVEL_SIZE = {
    "T5": (18.0, 24.5, 29.0), "T6": (18.5, 25.0, 30.0), "T7": (19.0, 25.5, 31.0), "T8": (20.0, 26.5, 32.5),
    "T9": (21.0, 27.0, 34.0), "T10": (22.0, 28.0, 36.0), "T11": (23.0, 29.0, 38.0), "T12": (24.5, 30.0, 40.0),
    "L1": (26.0, 31.5, 42.0), "L2": (27.0, 32.5, 44.0), "L3": (27.5, 33.5, 46.0), "L4": (27.5, 34.0, 48.0),
    "L5": (27.0, 35.0, 50.0),
}
#: Height (mm) of the disc below each level on a lateral radiograph of an older adult: thoracic discs about
#: 4-6 mm, lumbar 8-12 mm growing caudally to L4/5 (approximate, e.g. Frobin et al., Clin Biomech 1997, for
#: the lumbar discs). A patch scales each by 0.8-1.1 (degeneration narrows them); none depends on the fracture.
DISC_BELOW = {"T4": 4.0, "T5": 4.0, "T6": 4.5, "T7": 4.5, "T8": 5.0, "T9": 5.0, "T10": 5.5, "T11": 6.0, "T12": 7.0,
              "L1": 8.0, "L2": 9.0, "L3": 10.0, "L4": 11.0, "L5": 10.0}
#: Side of the square lateral X-ray patch (mm): the fractured body and its two neighbours.
XRAY_PATCH_MM = 56.0
#: Soft-tissue signal the lung's air takes away above the diaphragm (the abdomen below keeps it all).
LUNG_AIR = 9.0


def _texture(rng, shape, spacing_mm, coarse_mm, vertical_weight, vertical_axis) -> np.ndarray:
    """Trabecular texture: isotropic fine grain plus vertically elongated struts, unit variance."""
    sp = np.asarray(spacing_mm, dtype=float)
    fine = ndimage.gaussian_filter(rng.standard_normal(shape, dtype=np.float32), sigma=(0.35 * coarse_mm) / sp)
    fine /= fine.std() + 1e-12
    sig = np.full(len(shape), 0.3 * coarse_mm) / sp
    sig[vertical_axis] = 2.2 * coarse_mm / sp[vertical_axis]
    vert = ndimage.gaussian_filter(rng.standard_normal(shape, dtype=np.float32), sigma=sig)
    vert /= vert.std() + 1e-12
    tex = np.sqrt(1 - vertical_weight ** 2) * fine + vertical_weight * vert
    return tex / (tex.std() + 1e-12)


def _smooth_field(rng, shape, sigma_px) -> np.ndarray:
    """Unit-variance Gaussian random field with correlation length ``sigma_px`` (voxels).

    Large correlation lengths are drawn on a coarser grid and interpolated up (same statistics,
    a fraction of the cost).
    """
    sig = np.broadcast_to(np.asarray(sigma_px, dtype=float), (len(shape),))
    k = max(1, int(sig.min() // 3))
    coarse_shape = tuple(int(np.ceil(n / k)) + 2 for n in shape)
    field = ndimage.gaussian_filter(rng.standard_normal(coarse_shape, dtype=np.float32), sigma=sig / k)
    if k > 1:
        field = ndimage.zoom(field, k, order=1)
    field = field[tuple(slice(0, n) for n in shape)]
    return field / (field.std() + 1e-12)


def _loss_profile(shape: str, s, r2, loss: float):
    """Fractional height loss at AP position s (0 anterior .. 1 posterior) and radial r2 (0 centre)."""
    if shape == "wedge":
        lam = loss * (1.0 - s) ** 1.3
        return lam, 0.75
    if shape == "biconcave":
        lam = loss * np.clip(1.0 - r2, 0.0, 1.0) ** 1.2 + 0.15 * loss
        return lam, 0.5
    if shape == "burst":
        lam = loss * (0.95 - 0.35 * s)
        return lam, 0.6
    return loss * np.ones_like(s) * 0.8 + 0.0 * r2, 0.6


@dataclass(frozen=True)
class _Body:
    height: float
    depth: float
    width: float
    shape: str
    loss: float
    retro: float
    cortex: float = 0.8
    concavity: float = 1.0
    waves: tuple = ()  # endplate undulation (X-ray): amplitude (mm) and phase of _WAVE_K, upper then lower


#: Depth fractions (0 anterior .. 1 posterior) at which an X-ray body's endplates are tabulated.
_S = np.linspace(0.0, 1.0, 129)
#: Harmonics of the endplate undulation over the depth, and their relative amplitudes.
_WAVE_K, _WAVE_W = np.array([2.0, 3.0, 5.0]), np.array([1.0, 0.6, 0.35])


def _waves(rng: np.random.Generator, rms_top: float, rms_bot: float) -> tuple:
    """A smooth random undulation of the upper and lower endplate with the given RMS (mm): 12 numbers."""
    sig = _WAVE_W * np.sqrt(2.0 / (_WAVE_W ** 2).sum())
    amp = rng.normal(0.0, 1.0, (2, 3)) * sig * np.array([[rms_top], [rms_bot]])
    phase = rng.uniform(0.0, 2 * np.pi, (2, 3))
    return tuple(np.stack([amp, phase], axis=-1).ravel().tolist())


def _endplates(body: _Body) -> tuple[np.ndarray, np.ndarray]:
    """Upper and lower endplate of the lateral outline at the depth fractions :data:`_S`: mm from the body's
    centre, superior->inferior (collapse, concavity and undulation)."""
    r2 = (2 * _S - 1) ** 2
    lam, f_top = _loss_profile(body.shape, _S, r2, body.loss)
    conc = body.concavity * (1 - r2)
    h = body.height
    top = -h / 2 + conc + f_top * h * lam
    bot = h / 2 - conc - (1 - f_top) * h * lam
    if body.waves:
        w = np.asarray(body.waves).reshape(2, 3, 2)
        arg = np.pi * np.outer(_S, _WAVE_K)
        top = top + (w[0, :, 0] * np.sin(arg + w[0, :, 1])).sum(axis=1)
        bot = bot + (w[1, :, 0] * np.sin(arg + w[1, :, 1])).sum(axis=1)
    return top, bot


def _body_sdf_2d(body: _Body, u, v):
    """Signed distance (mm, positive inside) of the lateral body outline, and the endplate distances.

    ``u`` runs anterior->posterior from the anterior wall, ``v`` superior->inferior from the centre.
    """
    pos = np.clip(u * ((len(_S) - 1) / body.depth), 0.0, len(_S) - 1)
    cell = np.minimum(np.floor(pos), len(_S) - 2)
    frac, i = pos - cell, cell.astype(np.intp)
    top_s, bot_s = (e.astype(u.dtype) for e in _endplates(body))
    top = top_s[i] + np.diff(top_s)[i] * frac
    bot = bot_s[i] + np.diff(bot_s)[i] * frac
    post = body.depth
    if body.retro > 0:
        post = body.depth + body.retro * np.exp(-((v - (top + 0.3 * (bot - top))) / 3.0) ** 2)
    d_top = v - top
    d_bot = bot - v
    sdf = np.minimum(np.minimum(u, post - u), np.minimum(d_top, d_bot))
    return sdf, d_top, d_bot


def _support(body: _Body, side: int) -> tuple[float, float]:
    """The line a disc rests on: ``(v at mid-depth, slope dv/du)`` of the upper (``side`` -1) or lower (1)
    endplate: the edge of its convex hull over mid-depth, touching the endplate on either side of the middle
    and clear of all of it.

    A wedge tilts it (the neighbour follows: kyphosis), a biconcave collapse leaves it on the rims (the disc
    bulges into the depression): either way the disc keeps its height.
    """
    top, bot = _endplates(body)
    out = -top if side < 0 else bot  # how far each point reaches towards the disc
    u = _S * body.depth
    mid = len(_S) // 2
    a, b = np.meshgrid(np.arange(mid + 1), np.arange(mid, len(_S)), indexing="ij")
    a, b = a[a < b], b[a < b]
    reach = (out[a] * (u[b] - u[mid]) + out[b] * (u[mid] - u[a])) / (u[b] - u[a])
    k = int(np.argmax(reach))
    slope = (out[b[k]] - out[a[k]]) / (u[b[k]] - u[a[k]])
    return (-float(reach[k]), -float(slope)) if side < 0 else (float(reach[k]), float(slope))


@dataclass(frozen=True)
class _Neighbour:
    """The vertebra above (``side`` -1) or below (1) the fractured one, across a disc of ``disc`` mm between
    the two facing support lines (:func:`_support`); ``affine``: (a, b, c, d, e, f) of the rigid map
    ``(a u + b v + c, d u + e v + f)`` from the fractured body's frame to this body's own."""

    body: _Body
    side: int
    disc: float
    affine: tuple

    def local(self, u, v):
        """Points of the fractured body's frame in this body's own (u from its anterior wall, v from its centre)."""
        a, b, c, d, e, f = self.affine
        return a * u + b * v + c, d * u + e * v + f


def _neighbour(body: _Body, nb: _Body, side: int, disc: float) -> _Neighbour:
    """``nb`` placed ``disc`` mm beyond the fractured ``body``'s endplate on ``side``: its facing support line
    parallel to the fractured one's, its posterior wall in line with the fractured one's (the posterior
    vertebral line stays continuous in a compression fracture)."""
    v0, m0 = _support(body, side)
    v1, m1 = _support(nb, -side)
    a0, a1 = np.arctan(m0), np.arctan(m1)
    # Along/across the fractured line, shifted across by the disc and along to the posterior walls, then
    # along/across the neighbour's line.
    cd, sd = np.cos(a1 - a0), np.sin(a1 - a0)
    shift = body.depth / 2 / np.cos(a0) - nb.depth / 2 / np.cos(a1)
    u1 = nb.depth / 2 - np.cos(a1) * shift + np.sin(a1) * side * disc
    v1 = v1 - np.sin(a1) * shift - np.cos(a1) * side * disc
    u0 = body.depth / 2
    return _Neighbour(nb, side, disc, tuple(float(x) for x in (cd, -sd, u1 - cd * u0 + sd * v0,
                                                                sd, cd, v1 - sd * u0 - cd * v0)))


@dataclass(frozen=True)
class XrayLayout:
    """What a lateral X-ray patch shows, drawn before its pixels (:func:`xray_layout`).

    Lengths in mm. The bodies live in the fractured body's frame (u anterior->posterior from its anterior wall,
    v superior->inferior from its centre); the diaphragm and the ribs in the patch's (u, v from the patch
    centre, the same directions).

    Attributes
    ----------
    body : _Body
        The fractured vertebra (the mask).
    neighbours : tuple of _Neighbour
        The vertebrae above and below, across their discs.
    pose : tuple
        Rotation (rad) and shift (u, v) of the spine in the patch: patient positioning.
    band : {"above", "at", "below"}
        The level against the diaphragm (:func:`level_band`).
    diaphragm : tuple
        Per hemidiaphragm, its dome: v at the patch centre, curvature (1/mm), u of its apex; empty unless
        ``band`` is ``at``.
    ribs : tuple
        Per rib shadow: v of its centre line at u = 0, slope dv/du, curvature (1/mm), width.
    spur : tuple
        Anterior osteophyte, drawn if the vertebra has one: on the upper and/or the lower anterior corner
        (two flags), length, angle from the anterior direction towards the disc (rad), thickness at the base.
    """

    body: _Body
    neighbours: tuple
    pose: tuple
    band: str
    diaphragm: tuple
    ribs: tuple
    spur: tuple

    def lung(self, uu, vv) -> np.ndarray:
        """Share of the lung's air at patch points (1 above the diaphragm, 0 below, half between the domes)."""
        if self.band != "at":
            return np.full_like(uu, 1.0 if self.band == "above" else 0.0)
        air = np.zeros_like(uu)
        for v_c, k, u_apex in self.diaphragm:
            dome = v_c + k * ((uu - u_apex) ** 2 - u_apex ** 2)
            air += 0.5 * (1.0 + np.tanh((dome - vv) / 0.8))
        return air / len(self.diaphragm)

    def rib_shadows(self, uu, vv) -> np.ndarray:
        """Summed rib shadows (compact-bone-equivalent mm): a band with a cortical line along each edge."""
        out = np.zeros_like(uu)
        for v_c, slope, curv, width in self.ribs:
            d = np.abs(vv - (v_c + slope * uu + curv * uu ** 2)) * (1.0 + slope ** 2) ** -0.5
            out += 0.8 * (0.5 + 0.5 * np.tanh((width / 2 - d) / 0.4)) + 1.3 * np.exp(-((d - width / 2) / 0.45) ** 2)
        return out


def xray_layout(row: pd.Series, rng: np.random.Generator) -> XrayLayout:
    """Draw the geometry of a lateral X-ray patch of ``row`` (a :func:`cohort_table` row).

    The draws do not depend on the fracture (its shape, height loss or signs) nor on the level, so that two rows
    that differ in those get the same discs, neighbours, pose, diaphragm and ribs from the same ``rng``.
    """
    level = row["level"]
    i = SPINE.index(level)
    h0, d0, w0 = LEVEL_SIZE[level]
    scale = rng.normal(1.0, 0.05)
    shape, loss = row["morphology_finding"], float(row["height_loss"])
    f_top = _loss_profile(shape, _S, _S, loss)[1]  # the share of the collapse the upper endplate takes
    broken = shape != "normal"  # the fractured endplates undulate more
    waves = _waves(rng, 0.15 + 1.2 * loss * f_top * broken, 0.15 + 1.2 * loss * (1 - f_top) * broken)
    body = _Body(float(h0 * scale), float(d0 * scale), float(w0 * scale), shape, loss, float(row["retropulsion_mm"]),
                 waves=waves)
    pose = (float(np.deg2rad(rng.normal(0, 4.0))), *(float(x) for x in rng.normal(0, 1.5, 2)))
    neighbours = []
    for side in (-1, 1):
        size = np.asarray(LEVEL_SIZE.get(SPINE[i + side], LEVEL_SIZE[level])) * scale * rng.normal(1.0, 0.03)
        old = rng.random() < 0.15  # an adjacent old fracture: a mild wedge
        nb_loss = rng.uniform(0.1, 0.3)
        disc = DISC_BELOW[SPINE[i + min(side, 0)]] * rng.uniform(0.8, 1.1)
        nb = _Body(*(float(x) for x in size), "wedge" if old else "normal", nb_loss if old else 0.02, 0.0,
                   waves=_waves(rng, 0.15 + 1.2 * nb_loss * 0.75 * old, 0.15))
        neighbours.append(_neighbour(body, nb, side, disc))
    band = level_band(level)
    v_c = rng.uniform(-16.0, 12.0)
    domes = tuple((float(v_c + off), float(k), float(ua)) for off, k, ua in
                  zip((0.0, rng.uniform(2.0, 8.0)), rng.uniform(0.004, 0.012, 2), rng.uniform(-40.0, -15.0, 2)))
    twelfth = int(rng.random() < 0.6)  # the 12th rib's tip over L1
    n_ribs = 3 if i < SPINE.index("T12") else 2 if level == "T12" else twelfth if level == "L1" else 0
    spacing = (h0 + DISC_BELOW[level]) * rng.uniform(0.9, 1.1)
    first = rng.uniform(-XRAY_PATCH_MM / 2, -XRAY_PATCH_MM / 2 + spacing)
    slope = -np.tan(np.deg2rad(rng.uniform(15.0, 35.0)))  # ribs descend anteriorly
    ribs = tuple((float(first + j * spacing + rng.normal(0, 2.0)), float(slope), float(rng.normal(0, 0.003)),
                  float(rng.uniform(7.0, 10.0))) for j in range(3))[:n_ribs]
    where = rng.random()
    spur = (bool(where < 0.75), bool(where > 0.25), rng.uniform(3.0, 7.0), float(np.deg2rad(rng.uniform(20.0, 50.0))),
            rng.uniform(2.0, 3.5))
    return XrayLayout(body, tuple(neighbours), pose, band, domes if band == "at" else (), ribs, spur)


def _spur(layout: XrayLayout, u, v) -> np.ndarray:
    """Anterior osteophyte (0..1 bone share): a tapering beak from the anterior corner(s) towards the disc."""
    top_flag, bot_flag, length, angle, thick = layout.spur
    top_s, bot_s = _endplates(layout.body)
    out = np.zeros_like(u)
    for on, v0, sign in ((top_flag, float(top_s[0]), -1.0), (bot_flag, float(bot_s[0]), 1.0)):
        if on:
            dx, dy = -float(np.cos(angle)), sign * float(np.sin(angle))
            a = u * dx + (v - v0) * dy
            b = -u * dy + (v - v0) * dx
            taper = np.clip(1.0 - a / length, 0.0, 1.0)
            out += (a > -1.0) * taper * np.exp(-(b / (thick * taper + 0.2)) ** 2)
    return np.clip(out, 0.0, 1.0)


def _xray_image(row: pd.Series, center: XrayCenter, rng: np.random.Generator):
    layout = xray_layout(row, rng)
    body = layout.body
    size_mm = XRAY_PATCH_MM
    sp = center.spacing
    n = int(round(size_mm / sp))
    idx = ((np.arange(n) + 0.5) * sp - size_mm / 2).astype(np.float32)  # float32 pixels: fast
    vv, uu = np.meshgrid(idx, idx, indexing="ij")  # rows: superior->inferior; cols: anterior->posterior
    # Patient positioning: small rotation and translation.
    ang, du, dv = layout.pose
    ca, sa = float(np.cos(ang)), float(np.sin(ang))
    u = ca * uu - sa * vv + body.depth / 2 + du
    v = sa * uu + ca * vv + dv

    sdf, d_top, d_bot = _body_sdf_2d(body, u, v)
    inside = sdf > 0
    t = float(row["bmd_tscore"])
    # Trabecular bone volume fraction (compact-bone equivalent) from BMD; compressed bone is denser.
    rho = max(0.21 + 0.042 * t, 0.02) / (1 - 0.45 * body.loss)
    coarse = 0.9 + 0.18 * max(0.0, -t - 1.5)
    tex = _texture(rng, (n, n), (sp, sp), coarse, min(0.85, 0.35 + 0.12 * max(0.0, -t - 1.5)), 0).astype(np.float32)
    # Lateral chord through the elliptic axial section at AP position u.
    s = np.clip(u / body.depth, 0, 1)
    chord = body.width * np.sqrt(np.clip(1 - (2 * s - 1) ** 2, 0, 1))
    c_in = (body.width - 2 * body.cortex) * np.sqrt(
        np.clip(1 - ((u - body.depth / 2) / (body.depth / 2 - body.cortex)) ** 2, 0, 1))
    soft_edge = np.clip(sdf / sp + 0.5, 0, 1)
    trab = rho * c_in * (1 + 0.28 * tex)
    cort = (chord - c_in) + 0.35 * chord * (np.exp(-(d_top / body.cortex) ** 2) + np.exp(-(d_bot / body.cortex) ** 2))
    bone = soft_edge * (trab + 0.9 * cort)
    if body.retro > 0:  # retropulsed posterior wall fragment, behind the posterior wall
        frag = soft_edge * (u > body.depth - 0.5)
        bone += frag * (rho * 0.3 * body.width * (1 + 0.28 * tex) + 0.25 * body.width * np.exp(-(sdf / body.cortex) ** 2))
    fx = row["mri_finding"]
    if row["condensation_band"]:
        band = np.exp(-((d_top - 3.0) / 1.6) ** 2) * (1 + 0.4 * _smooth_field(rng, (n, n), 1.0 / sp))
        bone += soft_edge * rho * c_in * 1.4 * np.clip(band, 0, None)
    if row["endplate_sclerosis"]:  # healed: a smooth dense rim along the collapsed endplate(s)
        rim = np.exp(-((d_top - 1.4) / 1.0) ** 2)
        if body.shape == "biconcave":
            rim = rim + np.exp(-((d_bot - 1.4) / 1.0) ** 2)
        bone += soft_edge * rho * c_in * 1.8 * rim
    if fx in ("vacuum_cleft", "fluid"):
        cu = body.depth * rng.uniform(0.3, 0.5)
        cv = (rng.uniform(-0.15, 0.15)) * body.height * (1 - body.loss)
        a_u, a_v = body.depth * rng.uniform(0.22, 0.35), rng.uniform(1.0, 2.2)
        cleft = np.exp(-(((u - cu) / a_u) ** 2 + ((v - cv) / a_v) ** 2) ** 2)
        depth = 1.0 if fx == "vacuum_cleft" else 0.35
        bone -= inside * cleft * depth * (0.7 * trab + (12.0 if fx == "vacuum_cleft" else 0.0))
    if row["osteophyte"]:
        bone += 0.3 * body.width * _spur(layout, u, v)
    # Neighbouring vertebrae above and below, across their discs; their bone follows the patient's BMD.
    rho_n = max(0.19 + 0.035 * t, 0.02)
    for nb in layout.neighbours:
        u_n, v_n = nb.local(u, v)
        sdf_n, dt_n, db_n = _body_sdf_2d(nb.body, u_n, v_n)
        edge_n = np.clip(sdf_n / sp + 0.5, 0, 1)
        s_n = np.clip(u_n / nb.body.depth, 0, 1)
        ch_n = nb.body.width * np.sqrt(np.clip(1 - (2 * s_n - 1) ** 2, 0, 1))
        bone += edge_n * (rho_n / (1 - 0.45 * nb.body.loss) * 0.9 * ch_n * (1 + 0.28 * tex) + 0.35 * ch_n * (
            np.exp(-(dt_n / nb.body.cortex) ** 2) + np.exp(-(db_n / nb.body.cortex) ** 2)))
    # Pedicle and posterior elements behind the upper half of the body.
    pu, pv = body.depth + 7.0, -body.height * 0.2
    e = np.sqrt(((u - pu) / 8.0) ** 2 + ((v - pv) / (0.22 * body.height)) ** 2)
    bone += np.clip(1.2 - e, 0, 0.2) / 0.2 * (0.12 * 14.0 * (1 + 0.28 * tex)) + 5.0 * np.exp(-((e - 1) * 6.0 / 0.8) ** 2)
    # Soft tissue: thicker posteriorly (paraspinal muscles), slowly varying; the lung's air above the
    # diaphragm; rib shadows over the thoracic levels.
    soft = 30.0 + 6.0 * (uu / size_mm) + 2.5 * _smooth_field(rng, (n, n), 8.0 / sp) - LUNG_AIR * layout.lung(uu, vv)
    if layout.ribs:
        bone += layout.rib_shadows(uu, vv)
    signal = soft + 3.2 * bone
    signal = ndimage.gaussian_filter(signal, center.blur_mm / sp)
    # Detector: gamma, gain and offset of the center's processing, quantum-like noise, 12 bits.
    norm = np.clip(signal / 160.0, 0, None) ** center.gamma
    img = center.offset + center.gain * 2600.0 * norm + 600.0
    noise = rng.standard_normal((n, n)) * center.noise * np.sqrt(np.clip(norm, 0.05, None) / 0.3)
    img = np.clip(np.round(img + ndimage.gaussian_filter(noise, 0.5)), 0, 4095).astype(np.uint16)
    mask = inside.astype(np.uint8)
    return img, mask, (sp, sp), (0.0, 0.0)


def _ct_image(row: pd.Series, center: CtCenter, rng: np.random.Generator):
    fov = np.array([56.0, 52.0, 52.0])  # x (LR), y (AP), z (SI) in mm
    fine = 0.5
    nf = np.round(fov / fine).astype(int)
    cx, cy, cz = (np.arange(k) * fine - f / 2 + fine / 2 for k, f in zip(nf, fov))
    h0, d0, w0 = LEVEL_SIZE[row["level"]]
    scale = rng.normal(1.0, 0.05)
    body = _Body(h0 * scale, d0 * scale, w0 * scale, row["morphology_finding"], float(row["height_loss"]),
                 float(row["retropulsion_mm"]))
    off = rng.normal(0, 1.0, 3)
    t = float(row["bmd_tscore"])

    def geometry(x, y, z):
        """Signed distance of the body (mm) and the endplate distances at points (x, y, z)."""
        a = body.width / 2
        b = body.depth / 2
        yy = y + b  # 0 at the anterior wall
        s = np.clip(yy / body.depth, 0, 1)
        xn = x / a
        r2 = np.clip(xn ** 2 + (2 * s - 1) ** 2, 0, 1)
        lam, f_top = _loss_profile(body.shape, s, r2, body.loss)
        conc = body.concavity * (1 - r2)
        top = body.height / 2 - conc - f_top * body.height * lam  # z up
        bot = -body.height / 2 + conc + (1 - f_top) * body.height * lam
        if body.retro > 0:
            retro = body.retro * np.exp(-((z - (top - 0.3 * (top - bot))) / 3.0) ** 2) * np.exp(-(x / 8.0) ** 2)
            b_eff = np.where(y > 0, b + retro, b)
        else:
            b_eff = b
        d_ax = (1 - _axial_radius(x / a, y / b_eff)) * min(a, b)
        d_top, d_bot = top - z, z - bot
        return np.minimum.reduce([d_ax, d_top, d_bot]), d_top, d_bot

    X, Y, Z = np.meshgrid(*(np.asarray(c - o, dtype=np.float32) for c, o in zip((cx, cy, cz), off)),
                          indexing="ij")
    sdf, d_top, d_bot = geometry(X, Y, Z)
    inside = np.clip(sdf / fine + 0.5, 0, 1)
    rho_hu = (175.0 + 30.0 * t) / (1 - 0.45 * body.loss)
    coarse = 0.9 + 0.18 * max(0.0, -t - 1.5)
    tex = _texture(rng, X.shape, (fine,) * 3, coarse, min(0.85, 0.35 + 0.12 * max(0.0, -t - 1.5)), 2)
    hu = np.full(X.shape, 40.0) + 8.0 * _smooth_field(rng, X.shape, 6.0 / fine)
    # Paraspinal fat and muscle around; canal (CSF) behind the body.
    fat = _smooth_field(rng, X.shape, 5.0 / fine) > 1.1
    hu = np.where(fat, -90.0, hu)
    canal = ((X / 8.0) ** 2 + ((Y - body.depth / 2 - 9.0) / 7.5) ** 2) < 1
    hu = np.where(canal, 12.0, hu)
    cortex_hu = 850.0
    trab = rho_hu * (1 + 0.45 * tex)
    shell = np.exp(-(np.clip(sdf, 0, None) / body.cortex) ** 2)
    vert_hu = trab * (1 - shell) + cortex_hu * shell
    if row["condensation_band"]:
        band = np.exp(-((d_top - 3.0) / 1.6) ** 2) * np.clip(1 + 0.4 * _smooth_field(rng, X.shape, 2.0), 0, None)
        vert_hu += float(row.get("band_hu", 210.0)) * band
    fx = row["mri_finding"]
    if fx in ("vacuum_cleft", "fluid"):
        cyc = -body.depth / 2 + body.depth * rng.uniform(0.3, 0.5)
        cz_ = rng.uniform(-0.15, 0.15) * body.height * (1 - body.loss)
        ay, az, ax = body.depth * rng.uniform(0.22, 0.35), rng.uniform(1.0, 2.2), body.width * rng.uniform(0.2, 0.35)
        cleft = np.exp(-(((Y - cyc) / ay) ** 2 + ((Z - cz_) / az) ** 2 + (X / ax) ** 2) ** 2)
        target = -900.0 if fx == "vacuum_cleft" else 15.0
        vert_hu = vert_hu * (1 - cleft) + target * cleft
    if body.shape == "burst":  # comminution: irregular fragments in the upper half
        frag = _smooth_field(rng, X.shape, 0.8 / fine)
        vert_hu += np.where(d_top < body.height * 0.45, 55.0 * np.sign(frag) * np.abs(frag) ** 1.5, 0.0)
    hu = hu * (1 - inside) + vert_hu * inside
    # Neighbouring discs (80 HU) and vertebrae.
    z_top = body.height / 2 * (1 - body.loss * 0.5)
    for sign in (-1, 1):
        gap = rng.uniform(8.0, 10.0)
        zc = sign * (body.height / 2 + gap + h0 * scale / 2)
        sdf_n, _, _ = _neighbour_sdf(X, Y, Z - zc, body, h0 * scale)
        in_n = np.clip(sdf_n / fine + 0.5, 0, 1)
        shell_n = np.exp(-(np.clip(sdf_n, 0, None) / body.cortex) ** 2)
        nb_hu = (165.0 + 26.0 * t) * (1 + 0.45 * tex) * (1 - shell_n) + cortex_hu * shell_n
        disc = (np.abs(Z - sign * (z_top + gap / 2)) < gap / 2) & (
            ((X / (body.width / 2)) ** 2 + (Y / (body.depth / 2)) ** 2) < 1)
        hu = np.where(disc & (in_n < 0.5) & (inside < 0.5), 80.0, hu)
        hu = hu * (1 - in_n) + nb_hu * in_n
    # Pedicles.
    for side in (-1, 1):
        ped = ((X - side * (body.width / 2 - 6)) / 4.0) ** 2 + ((Z - 2.0) / 6.0) ** 2 < 1
        ped &= (Y > body.depth / 2 - 2) & (Y < body.depth / 2 + 16)
        hu = np.where(ped, 420.0, hu)

    # Acquisition: kernel blur in-plane, slice profile along z, resample, noise, calibration.
    sig_slice = center.slice_thickness / 2.355
    hu = ndimage.gaussian_filter(hu, sigma=(center.kernel_mm / fine, center.kernel_mm / fine, sig_slice / fine))
    nt = np.floor(fov / np.array([center.spacing, center.spacing, center.slice_thickness])).astype(int)
    tx = (np.arange(nt[0]) + 0.5) * center.spacing - fov[0] / 2
    ty = (np.arange(nt[1]) + 0.5) * center.spacing - fov[1] / 2
    tz = (np.arange(nt[2]) + 0.5) * center.slice_thickness - fov[2] / 2
    TX, TY, TZ = np.meshgrid(tx, ty, tz, indexing="ij")
    coords = np.stack([(TX - cx[0]) / fine, (TY - cy[0]) / fine, (TZ - cz[0]) / fine])
    img = ndimage.map_coordinates(hu, coords, order=1, mode="nearest")
    noise = ndimage.gaussian_filter(rng.standard_normal(img.shape), 0.6)
    noise *= center.noise_hu / (noise.std() + 1e-12)
    img = center.hu_gain * img + center.hu_offset + noise
    img = np.clip(np.round(img), -1024, 3071).astype(np.int16)
    sdf_t, _, _ = geometry(TX - off[0], TY - off[1], TZ - off[2])
    mask = (sdf_t > 0).astype(np.uint8)
    # SimpleITK arrays are [z, y, x].
    img = np.ascontiguousarray(np.transpose(img, (2, 1, 0)))
    mask = np.ascontiguousarray(np.transpose(mask, (2, 1, 0)))
    origin = (float(tx[0]), float(ty[0]), float(tz[0]))
    return img, mask, (center.spacing, center.spacing, center.slice_thickness), origin


def _axial_radius(xn, yn):
    """Normalised radius of the axial outline: elliptic anteriorly (y < 0), flattened posteriorly."""
    x2, y2 = xn * xn, yn * yn
    return np.where(yn > 0, np.sqrt(np.sqrt(x2 * x2 + y2 * y2)), np.sqrt(x2 + y2))


def _neighbour_sdf(X, Y, Z, body: _Body, height: float):
    a, b = body.width / 2, body.depth / 2
    yf = Y / b
    rr = _axial_radius(X / a, yf)
    r2 = np.clip((X / a) ** 2 + yf ** 2, 0, 1)
    conc = body.concavity * (1 - r2)
    d_top, d_bot = height / 2 - conc - Z, Z + height / 2 - conc
    return np.minimum.reduce([(1 - rr) * min(a, b), d_top, d_bot]), d_top, d_bot


#: Boundary shift of reader 2's outline against reader 1's (inter-observer): local amplitude and global bias, mm.
READER2_AMPLITUDE_MM, READER2_BIAS_MM = 0.45, 0.25
#: Reader 1's second outline, drawn weeks later (intra-observer): smaller than reader 2's shift.
REPEAT_AMPLITUDE_MM, REPEAT_BIAS_MM = 0.30, 0.10


def perturb_mask(mask: np.ndarray, spacing, rng: np.random.Generator, amplitude_mm: float = READER2_AMPLITUDE_MM,
                 bias_mm: float = READER2_BIAS_MM) -> np.ndarray:
    """Another outline of the same ROI: the mask with a smooth random boundary shift and a global bias.

    Parameters
    ----------
    mask : ndarray of {0, 1}, shape (ny, nx) or (nz, ny, nx)
    spacing : sequence of float
        Voxel size in mm, in the array's axis order.
    rng : numpy Generator
        Draws the shift field, then the bias.
    amplitude_mm : float
        Standard deviation of the local boundary shift (default: reader 2 against reader 1).
    bias_mm : float
        Standard deviation of the global shift of the whole boundary, outward when positive (default:
        reader 2 against reader 1).

    Returns
    -------
    ndarray of uint8 {0, 1}, the shape of ``mask``: the largest connected component of the shifted ROI.
    """
    sp = np.asarray(spacing, dtype=float)
    inside = ndimage.distance_transform_edt(mask, sampling=sp)
    outside = ndimage.distance_transform_edt(1 - mask, sampling=sp)
    sdf = inside - outside
    field = _smooth_field(rng, mask.shape, 4.0 / sp) * amplitude_mm + rng.normal(0.0, bias_mm)
    out = (sdf + field) > 0
    labels, n = ndimage.label(out)
    if n > 1:  # keep the largest component, as a reader would draw one outline
        sizes = ndimage.sum(out, labels, index=np.arange(1, n + 1))
        out = labels == (1 + int(np.argmax(sizes)))
    return out.astype(np.uint8)


def _write_nifti(array: np.ndarray, spacing, origin, path: Path) -> str:
    import SimpleITK as sitk

    img = sitk.GetImageFromArray(array)
    img.SetSpacing(tuple(float(s) for s in spacing))
    img.SetOrigin(tuple(float(o) for o in origin))
    with atomic_output(path, suffix=".nii.gz") as tmp:
        sitk.WriteImage(img, str(tmp), useCompression=True)
    return sha256_file(path)


def phantom(row: pd.Series, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray, tuple, tuple]:
    """One vertebra's phantom: image and mask arrays (numpy order), spacing and origin (SimpleITK order, mm).

    Parameters
    ----------
    row : Series
        A row of :func:`cohort_table` (its ``modality`` and ``center`` choose the generator and acquisition).
    rng : numpy Generator
        The only source of randomness: the same state gives the same arrays.
    """
    if row["modality"] == "xray":
        return _xray_image(row, XRAY_CENTERS[row["center"]], rng)
    return _ct_image(row, CT_CENTERS[row["center"]], rng)


def _repeat_rng(seed: int, stream: int, index: int) -> np.random.Generator:
    """The random stream of reader 1's repeat outline of case ``index``: its own stream (key 3), so that
    adding it changed no byte of the images, masks and reader-2 masks drawn from the case's stream (key 1)."""
    return np.random.default_rng([seed, stream, 3, index])


def reoutlined_rows(table: pd.DataFrame, seed: int, n_reader2: int = 30, design: str | None = None) -> np.ndarray:
    """Rows of :func:`cohort_table` that reader 2 outlines, and reader 1 again weeks later.

    A random subset of training vertebrae only, so that the ICC filter sees no held-out image.

    Parameters
    ----------
    table : DataFrame
        ``cohort_table(modality, seed, n_patients, design)``.
    seed : int
        The seed ``table`` was made with.
    n_reader2 : int
        Size of the subset (all training vertebrae if there are fewer).
    design : str, optional
        The design ``table`` was made with (default: its modality's).

    Returns
    -------
    ndarray of int, row positions in ``table``, in the order they were drawn.
    """
    modality = str(table["modality"].iloc[0])
    rng = np.random.default_rng([seed, get_design(modality, design).stream, 2])
    train = np.flatnonzero(table["cohort"].to_numpy() == "train")
    return rng.choice(train, size=min(n_reader2, len(train)), replace=False)


def _make_case(row: dict, seed: int, index: int, out: Path, with_reader2: bool, stream: int) -> dict:
    """Write one case's image and mask, and for a re-outlined case reader 2's mask and reader 1's repeat
    (``stream``: the design's, :attr:`CohortDesign.stream`)."""
    rng = np.random.default_rng([seed, stream, 1, index])
    img, mask, spacing, origin = phantom(pd.Series(row), rng)
    vid = row["vertebra_id"]
    result = {
        "image": f"images/{vid}.nii.gz",
        "mask": f"masks/{vid}.nii.gz",
        "mask_reader2": "",
        "image_sha256": _write_nifti(img, spacing, origin, out / "images" / f"{vid}.nii.gz"),
        "mask_sha256": _write_nifti(mask, spacing, origin, out / "masks" / f"{vid}.nii.gz"),
        "mask_reader2_sha256": "",
        "mask_reader1_repeat": "",
        "mask_reader1_repeat_sha256": "",
    }
    if with_reader2:
        m2 = perturb_mask(mask, spacing[::-1], rng)
        result["mask_reader2"] = f"masks_reader2/{vid}.nii.gz"
        result["mask_reader2_sha256"] = _write_nifti(m2, spacing, origin, out / "masks_reader2" / f"{vid}.nii.gz")
        m1b = perturb_mask(mask, spacing[::-1], _repeat_rng(seed, stream, index),
                           amplitude_mm=REPEAT_AMPLITUDE_MM, bias_mm=REPEAT_BIAS_MM)
        result["mask_reader1_repeat"] = f"masks_reader1_repeat/{vid}.nii.gz"
        result["mask_reader1_repeat_sha256"] = _write_nifti(m1b, spacing, origin,
                                                            out / "masks_reader1_repeat" / f"{vid}.nii.gz")
    return result


@dataclass(frozen=True)
class SynthSettings:
    """Everything that determines a synthetic cohort's bytes."""

    modality: str
    seed: int
    n_patients: int
    n_reader2: int
    design: str = ""
    code: str = ""

    def __post_init__(self):
        if not self.code:
            object.__setattr__(self, "code", code_hash())



def synth(modality: str, out: str | os.PathLike, seed: int = 42, n_patients: int | None = None,
          n_reader2: int = 30, n_jobs: int = -1, progress: bool = True, design: str | None = None) -> Path:
    """Generate a synthetic cohort: images, masks and ``manifest.csv`` under ``out``.

    The cohort is written to a temporary sibling folder and moved into place when complete, so an
    interrupted run leaves nothing half written. The same arguments give byte-identical files.

    Parameters
    ----------
    modality : {"xray", "ct"}
    out : path
        Folder to create (replaced if it exists).
    seed : int
    n_patients : int, optional
        Total number of patients; the paper's cohort by default.
    n_reader2 : int
        Number of center-I training vertebrae that get a second reader's mask and reader 1's repeat
        outline (``masks_reader2/``, ``masks_reader1_repeat/``; ICC studies use 30).
    n_jobs : int
        Worker processes (-1: all cores).
    design : str, optional
        A key of :data:`DESIGNS` (default: ``modality``).

    Returns
    -------
    Path of the written ``manifest.csv``.
    """
    from joblib import Parallel, delayed
    from tqdm.auto import tqdm

    from ovfkit.manifest import MANIFEST_COLUMNS, write_csv_atomic

    plan = get_design(modality, design)
    design = modality if design is None else design
    table = cohort_table(modality, seed=seed, n_patients=n_patients, design=design)
    settings = SynthSettings(modality, seed, int(table["patient_id"].nunique()), n_reader2, design)
    out = Path(out)
    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = out.parent / f".{out.name}.partial-{os.getpid()}"
    if tmp.exists():
        shutil.rmtree(tmp)
    for sub in ("images", "masks", "masks_reader2", "masks_reader1_repeat"):
        (tmp / sub).mkdir(parents=True)
    chosen = set(reoutlined_rows(table, seed, n_reader2, design).tolist())
    records = table.to_dict("records")
    jobs = (delayed(_make_case)(rec, seed, i, tmp, i in chosen, plan.stream) for i, rec in enumerate(records))
    results = Parallel(n_jobs=n_jobs, return_as="generator")(jobs)
    files = list(tqdm(results, total=len(records), desc=f"synth {modality}", disable=not progress, unit="case"))
    full = pd.concat([table.reset_index(drop=True), pd.DataFrame(files)], axis=1)
    manifest = full[[c for c in MANIFEST_COLUMNS if c in full.columns]]
    write_csv_atomic(manifest, tmp / "manifest.csv")
    truth_cols = ["vertebra_id", "level_band", "morphology_finding", "mri_finding", "clinical_finding",
                  "height_loss", "retropulsion_mm", "condensation_band", "endplate_sclerosis", "osteophyte",
                  *(f"true_{c}" for c in astlof.COMPONENTS)]
    write_csv_atomic(full[truth_cols], tmp / "truth.csv")
    (tmp / "synth_settings.json").write_text(json.dumps(asdict(settings), indent=2, sort_keys=True) + "\n")
    if out.exists():
        trash = out.parent / f".{out.name}.old-{os.getpid()}"
        os.replace(out, trash)
        os.replace(tmp, out)
        shutil.rmtree(trash)
    else:
        os.replace(tmp, out)
    return out / "manifest.csv"


def cohort_is_current(folder: str | os.PathLike, modality: str, seed: int, n_patients: int | None,
                      n_reader2: int = 30, design: str | None = None) -> bool:
    """True if ``folder`` holds a complete cohort generated with exactly these settings."""
    folder = Path(folder)
    path = folder / "synth_settings.json"
    if not (path.exists() and (folder / "manifest.csv").exists()):
        return False
    n = get_design(modality, design).n_patients if n_patients is None else int(n_patients)
    expected = asdict(SynthSettings(modality, seed, n, n_reader2, modality if design is None else design))
    try:
        return json.loads(path.read_text(encoding="utf-8")) == expected
    except json.JSONDecodeError:
        return False
