"""ovfkit's default radiomics against a peer's (AutoRadiomics' CT defaults), side by side, from one run.

The task of the issue that asked for it: acute vs chronic fracture on the default synthetic CT cohort (seed 42),
trained on the training cohort (center I) and tested on the internal (I), external (II) and prospective (III)
cohorts, split by patient. Each parameter file is extracted with PyRadiomics through ovfkit into an empty cache
(the time is the extraction's, on all cores), then the same model is fitted to every feature set: z-scoring and a
logistic regression whose penalty (L1 or L2) and C are chosen by patient-grouped 5-fold CV on the training
rows (``ovfkit.transport.logistic_search``). The peer's model search (Optuna over several classifiers) is outside
the comparison; its settings are ``benchmarks/params/ct_baessler.yaml`` (source and license in the file), so
AutoRadiomics need not be installed.

Printed per feature set, without and with ComBat (fitted on the training rows, each new center estimated from its
own features without labels): features, extraction seconds and the ratio to ovfkit's default, and per cohort and
pooled: vertebrae, acute, AUC with its 95% patient-bootstrap CI, mean prediction, calibration slope and
intercept (calibration-in-the-large, log-odds).

    .venv/bin/python benchmarks/peer.py [--modality ct|xray] [--seed 42] [--n-boot 1000]

``--modality xray`` runs ovfkit's X-ray default on the X-ray cohort's acute-vs-chronic label (the peer ships
no radiograph settings, so it has no row there).
"""

from __future__ import annotations

import argparse
import shutil
import sys
import tempfile
import time
import warnings
from pathlib import Path

# benchmarks/radiomics.py would shadow PyRadiomics' `radiomics` package: drop this folder from the import path.
sys.path[:] = [p for p in sys.path if Path(p or ".").resolve() != Path(__file__).resolve().parent]

import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402

from ovfkit import radiomics, runner, transport  # noqa: E402
from ovfkit.manifest import load_manifest  # noqa: E402
from ovfkit.task import get_task  # noqa: E402

PEER = Path(__file__).resolve().parent / "params" / "ct_baessler.yaml"
#: The feature sets per modality: (row name, parameter file).
SETS = {"ct": [("ovfkit ct_volume (default)", "ct_volume"), ("ovfkit ct_volume_1mm (zhang2023)", "ct_volume_1mm"),
               ("ovfkit ct_sagittal (liu2025)", "ct_sagittal"), ("AutoRadiomics CT_Baessler", str(PEER))],
        "xray": [("ovfkit xray (default)", "xray")]}


def score(m: pd.DataFrame, X: pd.DataFrame, seed: int, n_boot: int, combat: bool = False) -> pd.DataFrame:
    """Fit the tuned logistic regression on the training rows; per-cohort AUC and calibration of the rest.

    ``combat``: harmonize first (ComBat fitted on the training rows, each new center estimated against them from
    its own features, no labels: ``ovfkit.harmonize.ComBat(unseen="reference")``).
    """
    from ovfkit import harmonize

    X = X.loc[:, np.isfinite(X.to_numpy(float)).all(axis=0)]
    rows = m.loc[X.index]
    y = get_task("acuity").labels(rows)
    train = rows["cohort"] == "train"
    if combat:
        X = X.loc[:, X[train].std() > 0]
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", RuntimeWarning)  # neuroCombat's convergence check
            X = harmonize.ComBat(batch=rows["center"], unseen="reference").fit(X[train]).transform(X)
    search = transport.logistic_search(seed=seed)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # liblinear's convergence notes at the smallest C
        search.fit(X[train], y[train], groups=rows.loc[train, "patient_id"])
    test = ~train
    p = search.predict_proba(X[test])[:, 1]
    table = transport.per_center(y[test], p, rows.loc[test, "cohort"], rows.loc[test, "patient_id"],
                                 n_boot=n_boot, seed=seed)
    table.attrs["chosen"] = search.best_params_
    return table


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--modality", choices=sorted(SETS), default="ct")
    ap.add_argument("--seed", type=int, default=42)
    ap.add_argument("--n-boot", type=int, default=1000)
    args = ap.parse_args()
    data = runner.REPO_ROOT / "build" / "default" / "data" / args.modality
    m = load_manifest(runner.ensure_cohort(args.modality, data, args.seed, None))
    print(f"cohort: {data} ({len(m)} vertebrae); task: acute vs chronic; train = cohort 'train' "
          f"({int((m['cohort'] == 'train').sum())}), test = the rest ({int((m['cohort'] != 'train').sum())})")
    work = Path(tempfile.mkdtemp(prefix="ovfkit-peer-"))
    results, seconds = {}, {}
    try:
        for name, params in SETS[args.modality]:
            start = time.perf_counter()
            X = radiomics.extract_manifest(m, params, n_jobs=-1, cache_dir=work / name.split()[1], progress=True)
            seconds[name] = time.perf_counter() - start
            if X.attrs["failures"]:
                print(f"{name}: {len(X.attrs['failures'])} vertebrae failed: {X.attrs['failures'][:5]}")
            for harmonized in (False, True):
                key = name + (" + ComBat" if harmonized else "")
                results[key] = score(m, X, args.seed, args.n_boot, combat=harmonized)
                results[key].attrs["features"] = X.shape[1]
                seconds[key] = seconds[name]
    finally:
        shutil.rmtree(work, ignore_errors=True)
    first = SETS[args.modality][0][0]
    pd.set_option("display.width", 200)
    for name, table in results.items():
        print(f"\n## {name}: {table.attrs['features']} features, extraction {seconds[name]:.0f} s "
              f"({seconds[name] / seconds[first]:.2f} x ovfkit's default); chosen {table.attrs['chosen']}")
        shown = table.copy()
        shown["AUC (95% CI)"] = [f"{a:.3f} ({lo:.3f}-{hi:.3f})" for a, lo, hi in
                                 zip(table["AUC"], table["AUC low"], table["AUC high"])]
        print(shown[["n", "events", "AUC (95% CI)", "mean p", "slope", "intercept"]].to_string(
            float_format=lambda v: f"{v:.3f}"))
    pooled = {name: t.loc["pooled", "AUC"] for name, t in results.items()}
    print("\npooled test AUC: " + "; ".join(f"{k} {v:.3f}" for k, v in pooled.items()))
    if args.modality == "ct":
        for tail in ("", " + ComBat"):
            ours, peer = pooled[first + tail], pooled["AutoRadiomics CT_Baessler" + tail]
            print(f"ovfkit's default{tail} minus the peer{tail}: {ours - peer:+.3f} "
                  f"({'at or above' if ours >= peer else 'below'} the peer)")


if __name__ == "__main__":
    sys.exit(main())
