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

    .venv/bin/python benchmarks/peer.py [--modality ct|xray] [--seed 42] [--n-boot 1000] [--sets ct_volume,CT_Baessler]

``--seed 42`` (the default) scores the book's cohort, on which ovfkit's CT default was chosen; another seed draws
a cohort of its own into ``build/peer/seed<N>/`` to test the choice on data it was not chosen on. The
difference between ovfkit's default and the peer comes with a paired patient-bootstrap 95% CI.

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
    table.attrs.update(chosen=search.best_params_, y=y[test].to_numpy(), p=p,
                       groups=rows.loc[test, "patient_id"].to_numpy())
    return table


def paired_difference(a: pd.DataFrame, b: pd.DataFrame, n_boot: int, seed: int) -> tuple[float, float, float]:
    """Pooled AUC of ``a`` minus ``b`` (the same test vertebrae) with its 95% CI from one patient bootstrap."""
    from ovfkit import metrics

    if not np.array_equal(a.attrs["y"], b.attrs["y"]):
        raise ValueError("the two feature sets were scored on different vertebrae (a failed extraction?)")
    y, groups = a.attrs["y"], a.attrs["groups"]
    boots = [metrics.bootstrap_auc(y, np.column_stack([1 - t.attrs["p"], t.attrs["p"]]), groups, n_boot=n_boot,
                                   seed=seed, classes=(0, 1)) for t in (a, b)]
    diff = boots[0] - boots[1]
    lo, hi = np.nanquantile(diff, [0.025, 0.975])
    return a.loc["pooled", "AUC"] - b.loc["pooled", "AUC"], float(lo), float(hi)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--modality", choices=sorted(SETS), default="ct")
    ap.add_argument("--seed", type=int, default=42)
    ap.add_argument("--n-boot", type=int, default=1000)
    ap.add_argument("--sets", default="", help="comma-separated row names' second words (e.g. ct_volume,CT_Baessler)")
    args = ap.parse_args()
    # seed 42 is the book's cohort; another seed gets a cohort of its own (a new draw of patients and centers'
    # noise), which checks that the default was not chosen for one draw
    data = runner.REPO_ROOT / "build" / ("default/data" if args.seed == 42 else f"peer/seed{args.seed}") / args.modality
    m = load_manifest(runner.ensure_cohort(args.modality, data, args.seed, None))
    chosen = [s for s in SETS[args.modality] if not args.sets or s[0].split()[1] in args.sets.split(",")]
    print(f"cohort: {data} ({len(m)} vertebrae); task: acute vs chronic; train = cohort 'train' "
          f"({int((m['cohort'] == 'train').sum())}), test = the rest ({int((m['cohort'] != 'train').sum())})")
    work = Path(tempfile.mkdtemp(prefix="ovfkit-peer-"))
    results, seconds = {}, {}
    try:
        for name, params in chosen:
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
    first = chosen[0][0]
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
    peer = "AutoRadiomics CT_Baessler"
    if peer in results and first != peer:
        for tail in ("", " + ComBat"):
            d, lo, hi = paired_difference(results[first + tail], results[peer + tail], args.n_boot, args.seed)
            print(f"{first}{tail} minus the peer{tail}: {d:+.3f} (95% CI {lo:+.3f} to {hi:+.3f}, paired patient "
                  f"bootstrap; {'at or above' if d >= 0 else 'below'} the peer)")


if __name__ == "__main__":
    sys.exit(main())
